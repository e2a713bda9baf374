//! CSV that opens cleanly in a spreadsheet: RFC 4180 quoting, and cells that a spreadsheet
//! would run as a formula (`=`, `+`, `-`, `@`, tab, CR) defused with a leading `'`.

/// One CSV line, CRLF-terminated.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell_text(cell.as_ref()));
    }
    out.push_str("\r\n");
    out
}

fn cell_text(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(line(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            line(&["x,y", "say \"hi\"", "two\nlines"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(line(&[" padded"]), "\" padded\"\r\n");
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(
            line(&["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(line(&["+1", "-2", "@SUM(A1)"]), "'+1,'-2,'@SUM(A1)\r\n");
    }
}
