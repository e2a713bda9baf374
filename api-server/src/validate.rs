//! Checks on request fields beyond what their types enforce.

use crate::error::ApiError;
use tooken_contract::Scope;

pub const MAX_NAME_LEN: usize = 128;

/// A display name: trimmed, 1–128 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::validation(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// At least one scope; duplicates collapse; order is canonical.
pub fn scopes(scopes: &[Scope]) -> Result<Vec<Scope>, ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::validation(
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
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.'));
    if valid {
        Ok(email)
    } else {
        Err(ApiError::validation(
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
    fn scopes_are_required_and_deduplicated() {
        assert!(scopes(&[]).is_err());
        assert_eq!(
            scopes(&[Scope::TokensWrite, Scope::TokensRead, Scope::TokensWrite]).unwrap(),
            [Scope::TokensRead, Scope::TokensWrite]
        );
    }
}
