//! The committed CRDs must be what the code generates; regenerate with
//! `cargo run -p tooken-operator --bin crdgen -- crds` and copy them into the chart.

#[test]
fn committed_crds_match_the_code() {
    for (file, yaml) in tooken_operator::crds() {
        for dir in ["crds", "charts/tooken/crds"] {
            let path = format!("{}/../{dir}/{file}", env!("CARGO_MANIFEST_DIR"));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == yaml,
                "{dir}/{file} is stale: run `cargo run -p tooken-operator --bin crdgen -- {dir}`"
            );
        }
    }
}

#[test]
fn crd_schema_rejects_what_it_should() {
    let crd: serde_json::Value = yaml_serde::from_str(&tooken_operator::crd_yaml()).unwrap();
    let version = &crd["spec"]["versions"][0];
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let scopes = &spec["properties"]["scopes"];
    assert_eq!(scopes["minItems"], 1);
    assert_eq!(
        scopes["items"]["enum"],
        serde_json::json!([
            "tokens:read",
            "tokens:write",
            "tokens:revoke",
            "tokens:rotate",
            "audit:read",
            "webhooks:read",
            "webhooks:write"
        ])
    );
    assert_eq!(
        spec["properties"]["gracePeriod"]["pattern"],
        tooken_operator::duration::PATTERN
    );
    assert_eq!(
        spec["properties"]["rotation"]["properties"]["every"]["pattern"],
        tooken_operator::duration::PATTERN
    );
    assert!(spec["properties"]["expiry"]["x-kubernetes-validations"].is_array());
    assert_eq!(spec["required"], serde_json::json!(["scopes"]));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Token", "Secret", "Expires", "Ready", "Age"]);
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["tt", "tooken"])
    );
    // The pattern really rejects malformed durations.
    for (text, ok) in [
        ("90s", true),
        ("1h30m", true),
        ("1.5h", false),
        ("soon", false),
        ("", false),
    ] {
        assert_eq!(tooken_operator::duration::parse(text).is_ok(), ok, "{text}");
    }
}
