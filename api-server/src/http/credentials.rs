//! How a request presents its credential: the bearer header or the dashboard's session
//! cookie, and the CSRF check a cookie session's changes must pass.

use crate::auth::{PresentedSecret, csrf_token, hashes_match};
use crate::http::error::ApiError;
use crate::service::Error;
use tooken_contract::Secret;
use tooken_contract::credential::{CredentialFormatError, SecretKind};

/// Parses `Bearer <secret>`; the scheme is case-insensitive (RFC 9110 §11.1).
pub fn bearer(header: Option<&str>) -> Result<Secret, CredentialFormatError> {
    let value = header.ok_or(CredentialFormatError::Prefix)?;
    let (scheme, rest) = value.split_once(' ').ok_or(CredentialFormatError::Prefix)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialFormatError::Prefix);
    }
    Secret::parse(rest)
}

/// The dashboard's session cookie. It is HttpOnly, so page scripts never see the secret.
pub const SESSION_COOKIE: &str = "tooken_session";

/// The header that must repeat a cookie session's CSRF token on every change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session secret in a `Cookie` header, if there is one.
pub fn session_cookie(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
    })
}

/// Whether `Sec-Fetch-Site` says another site sent the request. Browsers set it on every
/// request; tools that do not send it are not browsers and carry no ambient cookies.
pub fn is_cross_site(fetch_site: Option<&str>) -> bool {
    matches!(fetch_site, Some("cross-site" | "same-site"))
}

/// How a request presents its credential: a bearer header, or the dashboard's cookie.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub csrf_token: Option<String>,
    pub fetch_site: Option<String>,
    /// GET and HEAD change nothing, so they need no CSRF token.
    pub safe_method: bool,
}

impl Presented {
    /// The bearer header wins; a cookie session must also pass the CSRF check on changes.
    pub fn secret(&self) -> Result<PresentedSecret, ApiError> {
        if self.authorization.is_some() {
            let secret = bearer(self.authorization.as_deref())
                .map_err(|_| ApiError::Service(Error::Unauthorized))?;
            return Ok(PresentedSecret {
                secret,
                from_cookie: false,
            });
        }
        let value =
            session_cookie(self.cookie.as_deref()).ok_or(ApiError::Service(Error::Unauthorized))?;
        let secret = Secret::parse(value).map_err(|_| ApiError::Service(Error::Unauthorized))?;
        if secret.kind() != SecretKind::Session {
            return Err(ApiError::Service(Error::Unauthorized));
        }
        if !self.safe_method {
            let expected = csrf_token(&secret);
            let presented = self.csrf_token.as_deref().unwrap_or_default();
            if is_cross_site(self.fetch_site.as_deref()) || !hashes_match(&expected, presented) {
                return Err(ApiError::CsrfRejected);
            }
        }
        Ok(PresentedSecret {
            secret,
            from_cookie: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bearer_parsing() {
        let secret = Secret::generate();
        let header = format!("Bearer {}", secret.expose());
        assert_eq!(bearer(Some(&header)).unwrap(), secret);
        let lower = format!("bearer {}", secret.expose());
        assert_eq!(bearer(Some(&lower)).unwrap(), secret);
        assert!(bearer(None).is_err());
        assert!(bearer(Some(secret.expose())).is_err());
        assert!(bearer(Some(&format!("Bearer  {}", secret.expose()))).is_err());
        assert!(bearer(Some(&format!("Basic {}", secret.expose()))).is_err());
    }
}
