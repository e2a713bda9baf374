//! What `tooken` prints: aligned tables for people, the API's JSON for scripts, and
//! `NAME=secret` lines for `.env` files.

use crate::exit::Failure;
use clap::ValueEnum;
use jiff::Timestamp;
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Env,
}

pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.into());
    }

    pub fn render(&self) -> String {
        let columns = self.rows[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

pub fn print_json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("API values serialise")
    );
}

/// A time to the second, or `none`.
pub fn time(at: Option<Timestamp>, none: &str) -> String {
    at.map_or_else(|| none.to_owned(), |at| format!("{at:.0}"))
}

/// Output that has no secret: `--output env` has nothing to print.
pub fn show<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce() -> Table,
) -> Result<(), Failure> {
    match format {
        Format::Table => table().print(),
        Format::Json => print_json(value),
        Format::Env => return Err(no_secret()),
    }
    Ok(())
}

/// Output with a secret that is shown once: under the table, in the JSON, or as `var=secret`.
pub fn secret<T: Serialize>(
    format: Format,
    value: &T,
    var: &str,
    secret: &str,
    table: impl FnOnce() -> Table,
) -> Result<(), Failure> {
    match format {
        Format::Table => {
            table().print();
            println!("\nsecret (shown only now; store it safely): {secret}");
        }
        Format::Json => print_json(value),
        Format::Env => println!("{var}={secret}"),
    }
    Ok(())
}

pub fn deleted(format: Format, id: &str) -> Result<(), Failure> {
    match format {
        Format::Table => println!("deleted {id}"),
        Format::Json => print_json(&serde_json::json!({"id": id, "deleted": true})),
        Format::Env => return Err(no_secret()),
    }
    Ok(())
}

fn no_secret() -> Failure {
    Failure::Usage("--output env is for commands that show a secret (create, rotate, regenerate)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(["1".into(), "my-first-token".into()]);
        table.row(["12345".into(), "b".into()]);
        assert_eq!(
            table.render(),
            "ID     NAME\n1      my-first-token\n12345  b\n"
        );
    }
}
