//! Prints the TookenToken CRD as YAML: `cargo run -p tooken-operator --bin crdgen > crds/tookentokens.tooken.io.yaml`.

fn main() {
    print!("{}", tooken_operator::crd_yaml());
}
