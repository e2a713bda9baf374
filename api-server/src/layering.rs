//! The api-server's layers, checked on its source: a module imports only from its own layer
//! or a lower one, and no two modules import each other, directly or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules by layer, highest first.
const LAYERS: &[&[&str]] = &[
    // Putting the server together, the command line, and the test harness.
    &["app", "cli", "telemetry", "test_support"],
    // HTTP: the server loop, routes, parsing, replies, the error mapping, the dashboard.
    &["http"],
    // What runs beside the routes: first-run setup, background jobs, webhook delivery.
    &["bootstrap", "maintenance", "delivery"],
    // The domain: operations and their unit of work, who is calling, what is recorded.
    &[
        "service",
        "auth",
        "audit",
        "outbox",
        "usage",
        "webhook_targets",
    ],
    &["store"],
    &["metrics", "rate_limit", "csv"],
];

/// Every module file (`http::routes::tokens`), with the modules it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    collect(&root, &root, &mut files);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .into_iter()
        .map(|(module, text)| {
            // Tests may reach anywhere; the layers are about the code they test.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let used = crate_paths(code)
                .into_iter()
                .chain(super_paths(&module, code))
                .filter_map(|path| longest_module(&modules, &path))
                // A module's own children and parents are part of it.
                .filter(|used| !related(&module, used))
                .collect();
            (module, used)
        })
        .collect()
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("src is readable").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            if !parts.is_empty() {
                let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                files.insert(parts.join("::"), text);
            }
        }
    }
}

/// Each `crate::a::b` path in `code`, with `crate::a::{b, c::d}` groups spelled out.
fn crate_paths(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .flat_map(|(at, _)| paths_from(&code[at + "crate::".len()..]))
        .collect()
}

/// Each `super::b` path in `module`'s `code`, as the `crate::` path it stands for.
fn super_paths(module: &str, code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("super::") {
        // The first `super` of a `super::super::` chain stands for the whole chain.
        if code[..at].ends_with("::") {
            continue;
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(after) = rest.strip_prefix("super::") {
            rest = after;
            up += 1;
        }
        let parts: Vec<&str> = module.split("::").collect();
        let Some(base) = parts
            .len()
            .checked_sub(up)
            .map(|keep| parts[..keep].join("::"))
        else {
            continue;
        };
        for path in paths_from(rest) {
            paths.push(if base.is_empty() {
                path
            } else {
                format!("{base}::{path}")
            });
        }
    }
    paths
}

/// The path at the start of `rest` (`a::b`), or the paths of its group (`a::{b, c::d}`).
fn paths_from(rest: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    let base = rest[..end].trim_end_matches(':').to_owned();
    if rest[end..].starts_with('{') {
        let group = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
        for item in group.split(',') {
            let item = item.trim().trim_start_matches('{');
            if !item.is_empty() && item != "self" {
                paths.push(if base.is_empty() {
                    item.to_owned()
                } else {
                    format!("{base}::{item}")
                });
            }
        }
    }
    if !base.is_empty() {
        paths.push(base);
    }
    paths
}

fn longest_module(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        let candidate = parts.join("::");
        if modules.contains(&candidate) {
            return Some(candidate);
        }
        parts.pop();
    }
    None
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("`{top}` has no layer in LAYERS; add it where it belongs"))
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let mut upward = Vec::new();
    for (module, used) in imports() {
        for target in used {
            if layer_of(&target) < layer_of(&module) {
                upward.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports up a layer: {upward:#?}");
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = imports();
    // Depth-first search; meeting a module still on the path closes a circle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if !done.insert(module.to_owned()) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(circle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("modules import each other: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_checks_see_imports() {
    let graph = imports();
    assert!(graph["http::routes::tokens"].contains("service::tokens"));
    assert!(graph["service::tokens"].contains("store::tokens"));
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let resolved: BTreeSet<String> =
        crate_paths("use crate::store::{Store, tokens::{self, TokenRow}};")
            .iter()
            .filter_map(|path| longest_module(&modules, path))
            .collect();
    assert_eq!(
        resolved,
        ["store", "store::tokens"].map(String::from).into()
    );
    // `super::` paths count too, relative to the module that writes them.
    assert!(graph["http::endpoint"].contains("http::route_table"));
    assert_eq!(
        super_paths(
            "store::credentials",
            "use super::{tokens::decode_scopes, Store};"
        ),
        ["store::tokens::decode_scopes", "store::Store"]
    );
    assert_eq!(
        super_paths("http::routes::tokens", "use super::super::error::ApiError;"),
        ["http::error::ApiError"]
    );
}

#[test]
fn only_the_store_reaches_the_connection_pool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    collect(&root, &root, &mut files);
    let reaching: Vec<&String> = files
        .iter()
        .filter(|(module, text)| {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            !module.starts_with("store") && *module != "layering" && code.contains(".pool()")
        })
        .map(|(module, _)| module)
        .collect();
    assert!(
        reaching.is_empty(),
        "use Store::connection or a unit of work: {reaching:?}"
    );
}
