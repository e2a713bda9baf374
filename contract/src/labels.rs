//! Labels on tokens: which namespace and resource a token serves, shown in the audit log and
//! the dashboard. Keys are Kubernetes label keys (`name` or `dns.prefix/name`), so the operator
//! can pass its own (`tooken.io/namespace`); values are free text.

use std::collections::BTreeMap;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A token's labels, ordered by key so that equal sets serialise alike.
pub type Labels = BTreeMap<String, String>;

pub const MAX_LABELS: usize = 16;
/// The part after the optional `prefix/`.
pub const MAX_KEY_NAME_LEN: usize = 63;
/// The optional DNS prefix before `/`.
pub const MAX_KEY_PREFIX_LEN: usize = 253;
pub const MAX_VALUE_LEN: usize = 253;

/// The key rule as a regular expression, for the OpenAPI document. It bounds each DNS label
/// of the prefix to 63 characters; the prefix's 253 in all is stated in the description.
pub const KEY_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// Values: any text without control characters, empty included.
pub const VALUE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// Why a key is not a Kubernetes label key, or `None` when it is one.
pub fn key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > MAX_KEY_PREFIX_LEN || !is_dns_subdomain(prefix))
    {
        return Some(format!(
            "the prefix of label key `{key}` must be a lowercase DNS name of at most \
             {MAX_KEY_PREFIX_LEN} characters, such as tooken.io"
        ));
    }
    if !is_key_name(name) {
        return Some(format!(
            "label key `{key}` must be 1-{MAX_KEY_NAME_LEN} letters, digits, `-`, `_` or `.`, \
             starting and ending with a letter or digit, after an optional `prefix/`"
        ));
    }
    None
}

/// Why a value is refused, or `None` when it is fine.
pub fn value_problem(key: &str, value: &str) -> Option<String> {
    if value.chars().count() > MAX_VALUE_LEN {
        Some(format!(
            "the value of label `{key}` must be at most {MAX_VALUE_LEN} characters"
        ))
    } else if value.chars().any(char::is_control) {
        Some(format!(
            "the value of label `{key}` must not contain control characters"
        ))
    } else {
        None
    }
}

fn is_alphanumeric_edge(text: &str, inner: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || inner(b))
        }
        _ => false,
    }
}

fn is_key_name(name: &str) -> bool {
    name.len() <= MAX_KEY_NAME_LEN
        && is_alphanumeric_edge(name, |b| matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(prefix: &str) -> bool {
    prefix.split('.').all(|label| {
        label.len() <= 63
            && !label.bytes().any(|b| b.is_ascii_uppercase())
            && is_alphanumeric_edge(label, |b| b == b'-')
    })
}

/// The OpenAPI schema of a labels object, with the limits above.
pub fn schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_LABELS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(KEY_PATTERN))
                .max_length(Some(MAX_KEY_PREFIX_LEN + 1 + MAX_KEY_NAME_LEN)),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_VALUE_LEN))
                .pattern(Some(VALUE_PATTERN)),
        ))
        .description(Some(format!(
            "At most {MAX_LABELS}. Keys are Kubernetes label keys: a name of 1-{MAX_KEY_NAME_LEN} \
             letters, digits, `-`, `_` and `.` (starting and ending with a letter or digit), \
             optionally after a lowercase DNS prefix of at most {MAX_KEY_PREFIX_LEN} characters \
             and `/`, e.g. `tooken.io/namespace`. Values are at most {MAX_VALUE_LEN} characters \
             without control characters."
        )))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_label_keys_are_accepted() {
        for key in [
            "team",
            "tooken.io/namespace",
            "tooken.io/tookentoken",
            "app.kubernetes.io/name",
            "a",
            "A_b.c-9",
            &"x".repeat(MAX_KEY_NAME_LEN),
        ] {
            assert_eq!(key_problem(key), None, "{key}");
        }
    }

    #[test]
    fn other_keys_are_refused_with_a_reason() {
        for key in [
            "",
            "-team",
            "team-",
            "has space",
            "ünicode",
            "/name",
            "Tooken.io/name",
            "tooken..io/name",
            "tooken.io/",
            "a/b/c",
            &"x".repeat(MAX_KEY_NAME_LEN + 1),
            &format!("{}/name", "a".repeat(MAX_KEY_PREFIX_LEN + 1)),
        ] {
            let problem = key_problem(key).unwrap_or_else(|| panic!("{key:?} accepted"));
            assert!(problem.contains("label key"), "{problem}");
        }
    }

    #[test]
    fn values_are_bounded_text() {
        assert_eq!(value_problem("k", ""), None);
        assert_eq!(value_problem("k", &"é".repeat(MAX_VALUE_LEN)), None);
        assert!(value_problem("k", &"x".repeat(MAX_VALUE_LEN + 1)).is_some());
        assert!(value_problem("k", "a\nb").is_some());
    }
}
