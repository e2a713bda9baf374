//! Writes the CRDs into a directory: `cargo run -p tooken-operator --bin crdgen -- crds`
//! (then copy `crds/*` into `charts/tooken/crds/`).

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "crds".into());
    for (file, yaml) in tooken_operator::crds() {
        std::fs::write(std::path::Path::new(&dir).join(file), yaml)?;
    }
    Ok(())
}
