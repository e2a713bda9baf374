//! Request bodies and query strings into typed values, naming the field at fault.

use crate::http::error::ApiError;
use serde::de::DeserializeOwned;

/// Parses a JSON body, naming the field at fault (`scopes[1]`) when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so a value of the wrong shape is never reported as malformed JSON.
    let value = crate::http::strict_json::from_slice(body)
        .map_err(|err| ApiError::InvalidJson(err.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "",
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field =
            unknown_field_name(&message).unwrap_or(if path == "." { String::new() } else { path });
        let message = explain(&field, message);
        ApiError::validation(field, message)
    })
}

/// Like `parse_json`, but an empty body means `T::default()`.
pub fn parse_json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// Rewords serde's messages for the fields where they would puzzle a caller.
fn explain(field: &str, message: String) -> String {
    if field.starts_with("scopes") {
        message.replacen("unknown variant", "unknown scope", 1)
    } else if field.ends_with("_at") && !message.starts_with("invalid type: null") {
        format!("{field} must be an RFC 3339 timestamp such as 2030-01-31T00:00:00Z ({message})")
    } else {
        message
    }
}

/// serde reports an unknown or missing field at its parent's path; name the field itself.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// Parses query parameters, naming the parameter at fault. A NUL character is refused: no
/// parameter needs one, and PostgreSQL cannot compare text with it.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if let Some((name, _)) =
        form_urlencoded::parse(query.as_bytes()).find(|(_, value)| value.contains('\0'))
    {
        return Err(ApiError::validation(
            name.into_owned(),
            "must not contain a NUL character",
        ));
    }
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = unknown_field_name(&message).unwrap_or(path);
        ApiError::validation(field, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Error;
    use tooken_contract::tokens::CreateTokenRequest;

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":["tokens:read", 5]}"#)
            .unwrap_err();
        match err {
            ApiError::Service(Error::Validation { field, .. }) => assert_eq!(field, "scopes[1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_fields_and_scopes_are_named() {
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":[],"colour":1}"#)
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Service(Error::Validation { ref field, .. }) if field == "colour"),
            "{err:?}"
        );
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":["tokens:destroy"]}"#)
            .unwrap_err();
        match err {
            ApiError::Service(Error::Validation { field, message }) => {
                assert_eq!(field, "scopes[0]");
                assert!(message.contains("tokens:destroy"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            parse_json::<CreateTokenRequest>(br#"{"name":"#),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":[]} trailing"#),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
