//! Confined tokens (issue 20): a token with a `name_prefix` sees and manages only the tokens
//! whose name starts with it, and hands out nothing that reaches further. The operator confines
//! each token it issues to `k8s:<namespace>/`, so one namespace never reaches another's tokens.

use crate::service::Error;
use tooken_contract::Scope;

/// Whether `name` is inside the view of `prefix`; without a prefix everything is.
pub fn within(prefix: Option<&str>, name: &str) -> bool {
    prefix.is_none_or(|prefix| name.starts_with(prefix))
}

/// A confined token holds only scopes that a prefix narrows: the `tokens:*` ones.
pub fn check_scopes(scopes: &[Scope]) -> Result<(), Error> {
    match scopes.iter().find(|scope| scope.is_workspace_wide()) {
        Some(scope) => Err(Error::validation(
            "scopes",
            format!(
                "a token with a name_prefix cannot hold `{scope}`: it reaches the whole \
                 workspace, which no prefix narrows; only tokens:* scopes can be confined"
            ),
        )),
        None => Ok(()),
    }
}

/// A confined token's own name starts with its prefix, so it stays inside its own view.
pub fn check_name(prefix: &str, name: &str) -> Result<(), Error> {
    if name.starts_with(prefix) {
        Ok(())
    } else {
        Err(Error::validation(
            "name",
            format!("name must start with the name_prefix `{prefix}`"),
        ))
    }
}

/// The refusal a confined caller gets for reaching outside `prefix`.
pub fn outside(prefix: &str, what: &str) -> Error {
    Error::Forbidden(format!(
        "this token is confined to names starting with `{prefix}`; {what}"
    ))
}

/// The prefix of a token that a caller confined to `caller` creates as `name`: the `requested`
/// one, which may only narrow the caller's, or else the caller's own. A confined caller can
/// neither name a token outside its prefix nor create an unconfined one.
pub fn prefix_for_new_token(
    caller: Option<&str>,
    name: &str,
    requested: Option<String>,
) -> Result<Option<String>, Error> {
    let Some(caller) = caller else {
        return Ok(requested);
    };
    if !name.starts_with(caller) {
        return Err(outside(
            caller,
            "it can create only tokens whose name starts with it",
        ));
    }
    match requested {
        Some(requested) if !requested.starts_with(caller) => Err(outside(
            caller,
            "the name_prefix of a token it creates must start with it",
        )),
        Some(requested) => Ok(Some(requested)),
        None => Ok(Some(caller.to_owned())),
    }
}

/// A caller confined to `caller` may hand out a working secret (by rotating) of a token
/// confined to `target` only when that token reaches no further than the caller.
pub fn check_hand_out(caller: Option<&str>, target: Option<&str>) -> Result<(), Error> {
    match (caller, target) {
        (None, _) => Ok(()),
        (Some(caller), Some(target)) if target.starts_with(caller) => Ok(()),
        (Some(caller), _) => Err(outside(
            caller,
            "it cannot rotate a token that is not confined within that prefix",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: Error) -> String {
        err.to_string()
    }

    #[test]
    fn a_prefix_limits_the_view() {
        assert!(within(None, "anything"));
        assert!(within(Some("k8s:dev/"), "k8s:dev/api"));
        assert!(within(Some("k8s:dev/"), "k8s:dev/"));
        assert!(!within(Some("k8s:dev/"), "k8s:prod/api"));
        assert!(!within(Some("k8s:dev/"), "k8s:dev"));
    }

    #[test]
    fn workspace_wide_scopes_are_refused_by_name() {
        assert!(
            check_scopes(&[Scope::TokensRead, Scope::TokensWrite, Scope::TokensRevoke]).is_ok()
        );
        for scope in [Scope::AuditRead, Scope::WebhooksRead, Scope::WebhooksWrite] {
            match check_scopes(&[Scope::TokensRead, scope]) {
                Err(Error::Validation { field, message }) => {
                    assert_eq!(field, "scopes");
                    assert!(message.contains(scope.as_str()), "{message}");
                    assert!(message.contains("whole workspace"), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_name_must_start_with_its_prefix() {
        assert!(check_name("k8s:dev/", "k8s:dev/api").is_ok());
        assert!(matches!(
            check_name("k8s:dev/", "api"),
            Err(Error::Validation { ref field, .. }) if field == "name"
        ));
    }

    #[test]
    fn an_unconfined_caller_gives_what_is_asked() {
        assert_eq!(prefix_for_new_token(None, "n", None).unwrap(), None);
        assert_eq!(
            prefix_for_new_token(None, "a/n", Some("a/".into())).unwrap(),
            Some("a/".into())
        );
    }

    #[test]
    fn a_confined_caller_only_narrows() {
        let dev = Some("k8s:dev/");
        // Inherited when not asked for: never unconfined.
        assert_eq!(
            prefix_for_new_token(dev, "k8s:dev/api", None).unwrap(),
            Some("k8s:dev/".into())
        );
        assert_eq!(
            prefix_for_new_token(dev, "k8s:dev/api/1", Some("k8s:dev/api/".into())).unwrap(),
            Some("k8s:dev/api/".into())
        );
        let err = prefix_for_new_token(dev, "k8s:prod/api", None).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
        assert!(message(err).contains("k8s:dev/"));
        let err = prefix_for_new_token(dev, "k8s:dev/api", Some("k8s:".into())).unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
        assert!(message(err).contains("name_prefix"));
    }

    #[test]
    fn rotation_hands_out_no_more_reach() {
        assert!(check_hand_out(None, None).is_ok());
        assert!(check_hand_out(Some("k8s:dev/"), Some("k8s:dev/")).is_ok());
        assert!(check_hand_out(Some("k8s:dev/"), Some("k8s:dev/api/")).is_ok());
        for broader in [None, Some("k8s:")] {
            let err = check_hand_out(Some("k8s:dev/"), broader).unwrap_err();
            assert!(matches!(err, Error::Forbidden(_)));
            assert!(message(err).contains("not confined within"));
        }
    }
}
