//! The dashboard's session cookie: set at sign-in or sign-up when asked, cleared at sign-out.

use crate::http::credentials::{self, SESSION_COOKIE};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

/// What deciding on the cookie's attributes and the login-CSRF check need from a request.
#[derive(Debug, Clone)]
pub struct CookieContext {
    /// Add `Secure`: always when configured, else when a TLS proxy says it served HTTPS.
    pub secure: bool,
    pub fetch_site: Option<String>,
}

impl CookieContext {
    /// The context when the request asked for a cookie session. A page on another site
    /// must not sign a browser in (login CSRF), so such a request is refused.
    pub fn if_requested(&self, requested: bool) -> Result<Option<&CookieContext>, ApiError> {
        if !requested {
            return Ok(None);
        }
        if credentials::is_cross_site(self.fetch_site.as_deref()) {
            return Err(ApiError::CsrfRejected);
        }
        Ok(Some(self))
    }

    /// Sets the session cookie, living as long as the session.
    pub fn set_session(&self, response: &mut Response, secret: &str, max_age_secs: i64) {
        self.append(
            response,
            format!("{SESSION_COOKIE}={secret}; Max-Age={max_age_secs}"),
        );
    }

    pub fn clear_session(&self, response: &mut Response) {
        self.append(response, format!("{SESSION_COOKIE}=; Max-Age=0"));
    }

    fn append(&self, response: &mut Response, cookie: String) {
        // Strict: the browser never sends the session along with another site's request.
        let secure = if self.secure { "; Secure" } else { "" };
        let value = format!("{cookie}; Path=/; HttpOnly; SameSite=Strict{secure}");
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&value).expect("session secrets are base62"),
        );
    }
}

pub fn cookie_context(state: &AppState) -> BoxedFilter<(CookieContext,)> {
    let always_secure = state.secure_cookies;
    warp::header::optional::<String>("x-forwarded-proto")
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .map(move |proto: Option<String>, fetch_site| CookieContext {
            secure: always_secure || proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
            fetch_site,
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(context: &CookieContext, set: bool) -> String {
        let mut response = Response::default();
        if set {
            context.set_session(&mut response, "tok_sess_abc", 60);
        } else {
            context.clear_session(&mut response);
        }
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn cookie_attributes() {
        let plain = CookieContext {
            secure: false,
            fetch_site: None,
        };
        assert_eq!(
            cookies(&plain, true),
            "tooken_session=tok_sess_abc; Max-Age=60; Path=/; HttpOnly; SameSite=Strict"
        );
        let tls = CookieContext {
            secure: true,
            fetch_site: Some("same-origin".into()),
        };
        assert!(cookies(&tls, true).ends_with("; Secure"));
        assert_eq!(
            cookies(&tls, false),
            "tooken_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(tls.if_requested(true).unwrap().is_some());
        let foreign = CookieContext {
            secure: false,
            fetch_site: Some("cross-site".into()),
        };
        assert!(matches!(
            foreign.if_requested(true),
            Err(ApiError::CsrfRejected)
        ));
        assert!(
            foreign.if_requested(false).unwrap().is_none(),
            "bearer sign-ins are unaffected"
        );
    }
}
