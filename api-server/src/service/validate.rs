//! Checks on request fields beyond what their types enforce.

use crate::service::Error;
use tooken_contract::Scope;
use tooken_contract::labels::{self, Labels, MAX_LABELS};

pub const MAX_NAME_LEN: usize = 128;

/// A display name: trimmed, 1–128 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::validation(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(Error::validation(
            field,
            format!("{field} must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A token's `name_prefix`: like a name, but never trimmed, because every character of a
/// prefix decides what it confines; surrounding whitespace is refused instead.
pub fn name_prefix(value: &str) -> Result<String, Error> {
    const FIELD: &str = "name_prefix";
    if value.trim() != value {
        return Err(Error::validation(
            FIELD,
            "name_prefix must not start or end with whitespace",
        ));
    }
    name(FIELD, value)
}

/// A token's labels: at most 16, Kubernetes label keys, bounded values.
pub fn labels(labels: &Labels) -> Result<(), Error> {
    if labels.len() > MAX_LABELS {
        return Err(Error::validation(
            "labels",
            format!(
                "at most {MAX_LABELS} labels are allowed, not {}",
                labels.len()
            ),
        ));
    }
    let problem = labels.iter().find_map(|(key, value)| {
        labels::key_problem(key).or_else(|| labels::value_problem(key, value))
    });
    match problem {
        Some(problem) => Err(Error::validation("labels", problem)),
        None => Ok(()),
    }
}

/// At least one scope; duplicates collapse; order is canonical.
pub fn scopes(scopes: &[Scope]) -> Result<Vec<Scope>, Error> {
    if scopes.is_empty() {
        return Err(Error::validation(
            "scopes",
            "at least one scope is required",
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// A normalised email address: trimmed, lowercased, one `@` with text on both sides.
pub fn email(field: &str, value: &str) -> Result<String, Error> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.'));
    if valid {
        Ok(email)
    } else {
        Err(Error::validation(
            field,
            format!("{field} is not an email address"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "a@b@c.com",
            "ada@localhost",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  ci-prod ").unwrap(), "ci-prod");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(name("name", "a\u{7}b").is_err());
    }

    #[test]
    fn name_prefixes_are_names_that_are_never_trimmed() {
        assert_eq!(name_prefix("k8s:dev/").unwrap(), "k8s:dev/");
        for bad in [
            "",
            " k8s:dev/",
            "k8s:dev/ ",
            "a\u{0}b",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            match name_prefix(bad) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, "name_prefix"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn labels_are_counted_and_checked() {
        let mut ok = Labels::new();
        ok.insert("tooken.io/namespace".into(), "dev".into());
        assert!(labels(&ok).is_ok());
        let many: Labels = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        let err = labels(&many).unwrap_err().to_string();
        assert!(err.contains("at most 16"), "{err}");
        let mut bad_key = ok.clone();
        bad_key.insert("not a key".into(), "v".into());
        let err = labels(&bad_key).unwrap_err().to_string();
        assert!(err.contains("`not a key`"), "{err}");
        let mut bad_value = ok;
        bad_value.insert("team".into(), "x".repeat(254));
        let err = labels(&bad_value).unwrap_err().to_string();
        assert!(err.contains("`team`") && err.contains("253"), "{err}");
    }

    #[test]
    fn scopes_are_required_and_deduplicated() {
        assert!(scopes(&[]).is_err());
        assert_eq!(
            scopes(&[Scope::TokensWrite, Scope::TokensRead, Scope::TokensWrite]).unwrap(),
            [Scope::TokensRead, Scope::TokensWrite]
        );
    }
}
