//! Who may call the Congress v1 REST API: the caller's token (`X-Auth-Token`, or
//! `Authorization: Bearer`) checked by an [`Authenticator`], which answers with an
//! [`Identity`] and the [`Access`] it has, or an [`AuthError`] that maps to 401, 403 or 503.
//!
//! Three authenticators: [`KeystoneAuth`] (OpenStack: the token validated by Keystone the way
//! keystonemiddleware does, roles mapped to access), [`KubernetesAuth`] (the operator: a
//! TokenReview, then SubjectAccessReviews on `policies.congress.dev`), and [`NoAuth`]
//! (everyone is admin; only behind an explicit flag on loopback, which the server checks).
//!
//! Tokens are never kept, logged or printed: results are cached by the token's SHA-256
//! ([`cache::TokenDigest`]), and no error message holds a token.

pub mod cache;
pub mod keystone;
pub mod kubernetes;

pub use keystone::{KeystoneAuth, KeystoneAuthConfig};
pub use kubernetes::{KubernetesAuth, KubernetesAuthConfig};

use axum::http::{HeaderMap, header};
use futures::future::BoxFuture;
use std::fmt;
use std::time::Duration;

/// How long any one call to Keystone or the Kubernetes API server may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a rejected token is remembered as rejected (at most the cache's TTL), so a flood
/// of the same bad token reaches the identity service once every few seconds, not once a
/// request.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// The most tokens an authenticator remembers.
pub const CACHE_CAPACITY: usize = 10_000;

/// Longer tokens are refused without asking anyone (Keystone's fernet and JWS tokens are a
/// few hundred bytes, Kubernetes' a kilobyte or two).
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Who called.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The user's name (Keystone: the token's user name, else its id; Kubernetes: the
    /// username of the TokenReview, e.g. `system:serviceaccount:NS:NAME`).
    pub user: String,
    /// Keystone: the project the token is scoped to (its name, else its id). Kubernetes: none.
    pub project: Option<String>,
    /// Keystone: the token's role names. Kubernetes: the user's groups.
    pub roles: Vec<String>,
    /// The most the caller may do (not only what this request needed).
    pub access: Access,
}

/// What a caller may do: `Admin` everything, `Read` only GET and HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Admin,
}

impl Access {
    /// What a request of `method` needs: `Read` for GET and HEAD, `Admin` for anything else.
    pub fn for_method(method: &axum::http::Method) -> Access {
        if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
            Access::Read
        } else {
            Access::Admin
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Admin => "admin",
        })
    }
}

/// Why a request is not let in. No message holds a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token: 401.
    #[error("authentication required: send a token in `X-Auth-Token` or `Authorization: Bearer`")]
    Missing,
    /// The token was rejected (unknown, revoked, expired, malformed): 401.
    #[error("the token is invalid or expired")]
    Invalid,
    /// Authenticated, but without the access the request needs: 403.
    #[error("forbidden: this request needs {need} access")]
    Forbidden { need: Access },
    /// The identity service is unreachable or misbehaving: 503.
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Invalid => 401,
            AuthError::Forbidden { .. } => 403,
            AuthError::Unavailable(_) => 503,
        }
    }

    /// A stable reason, as a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingToken",
            AuthError::Invalid => "InvalidToken",
            AuthError::Forbidden { .. } => "Forbidden",
            AuthError::Unavailable(_) => "Unavailable",
        }
    }
}

/// Checks a caller's token.
pub trait Authenticator: Send + Sync {
    /// `token` is the caller's token (from `X-Auth-Token`, or `Authorization: Bearer`: see
    /// [`request_token`]); `need` the access the request needs.
    fn authenticate<'a>(&'a self, token: Option<&'a str>, need: Access) -> BoxFuture<'a, Result<Identity, AuthError>>;

    /// The authenticator's name, for logs and metrics: `none`, `keystone`, `kubernetes`.
    fn name(&self) -> &'static str;
}

/// The token of a request: `X-Auth-Token` first, else `Authorization: Bearer` (the scheme in
/// any case). Surrounding blanks are dropped; an empty or unreadable value counts as absent.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    let auth_token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(token) = auth_token.filter(|t| !t.is_empty()) {
        return Some(token);
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `token` could be a token at all: not empty, at most [`MAX_TOKEN_BYTES`], visible
/// ASCII only. Anything else is refused without a call to the identity service.
pub fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_BYTES && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Check `access` (none: no role or permission at all) against what the request needs.
pub fn authorize(access: Option<Access>, need: Access) -> Result<Access, AuthError> {
    match access {
        Some(a) if a >= need => Ok(a),
        _ => Err(AuthError::Forbidden { need }),
    }
}

/// `message` with every occurrence of `token` blotted out: for text that comes from
/// elsewhere (an API server's error) and might quote it.
pub(crate) fn redact(message: &str, token: &str) -> String {
    if token.is_empty() { message.to_string() } else { message.replace(token, "<hidden>") }
}

/// No authentication: every caller, with or without a token, is an admin. Only for a server
/// started with an explicit `--no-auth` on loopback (the server checks that, not this).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuth;

impl Authenticator for NoAuth {
    fn authenticate<'a>(
        &'a self,
        _token: Option<&'a str>,
        _need: Access,
    ) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async {
            Ok(Identity { user: "anonymous".into(), project: None, roles: Vec::new(), access: Access::Admin })
        })
    }

    fn name(&self) -> &'static str {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_comes_from_x_auth_token_first_then_a_bearer_authorization() {
        assert_eq!(request_token(&headers(&[])), None);
        assert_eq!(request_token(&headers(&[("x-auth-token", " abc ")])), Some("abc"));
        assert_eq!(request_token(&headers(&[("authorization", "Bearer xyz")])), Some("xyz"));
        assert_eq!(request_token(&headers(&[("authorization", "bearer   xyz ")])), Some("xyz"));
        assert_eq!(request_token(&headers(&[("authorization", "BEARER xyz")])), Some("xyz"));
        assert_eq!(request_token(&headers(&[("x-auth-token", "abc"), ("authorization", "Bearer xyz")])), Some("abc"));
        // An empty X-Auth-Token does not hide the bearer token.
        assert_eq!(request_token(&headers(&[("x-auth-token", " "), ("authorization", "Bearer xyz")])), Some("xyz"));
        assert_eq!(request_token(&headers(&[("authorization", "Basic dXNlcjpwdw==")])), None);
        assert_eq!(request_token(&headers(&[("authorization", "Bearer")])), None);
        assert_eq!(request_token(&headers(&[("authorization", "Bearer   ")])), None);
        assert_eq!(request_token(&headers(&[("authorization", "Bearerxyz")])), None);
        let mut h = HeaderMap::new();
        h.insert("x-auth-token", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(request_token(&h), None);
    }

    #[test]
    fn errors_map_to_statuses_and_stable_codes_without_tokens() {
        let cases = [
            (AuthError::Missing, 401, "MissingToken"),
            (AuthError::Invalid, 401, "InvalidToken"),
            (AuthError::Forbidden { need: Access::Admin }, 403, "Forbidden"),
            (AuthError::Unavailable("Keystone at http://k/v3: timed out".into()), 503, "Unavailable"),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status(), e.code()), (status, code), "{e}");
        }
        assert_eq!(
            AuthError::Forbidden { need: Access::Admin }.to_string(),
            "forbidden: this request needs admin access"
        );
        assert!(AuthError::Missing.to_string().contains("X-Auth-Token"));
    }

    #[test]
    fn admin_covers_read_and_nothing_covers_nothing() {
        assert!(Access::Admin > Access::Read);
        assert_eq!(authorize(Some(Access::Admin), Access::Read).unwrap(), Access::Admin);
        assert_eq!(authorize(Some(Access::Admin), Access::Admin).unwrap(), Access::Admin);
        assert_eq!(authorize(Some(Access::Read), Access::Read).unwrap(), Access::Read);
        assert!(matches!(
            authorize(Some(Access::Read), Access::Admin),
            Err(AuthError::Forbidden { need: Access::Admin })
        ));
        assert!(matches!(authorize(None, Access::Read), Err(AuthError::Forbidden { need: Access::Read })));
        assert_eq!(Access::for_method(&axum::http::Method::GET), Access::Read);
        assert_eq!(Access::for_method(&axum::http::Method::HEAD), Access::Read);
        assert_eq!(Access::for_method(&axum::http::Method::POST), Access::Admin);
        assert_eq!(Access::for_method(&axum::http::Method::DELETE), Access::Admin);
    }

    #[test]
    fn implausible_tokens_are_recognised_and_redaction_blots_tokens_out() {
        assert!(plausible("gAAAAABk-_x.y~z"));
        assert!(!plausible(""));
        assert!(!plausible("has space"));
        assert!(!plausible("tab\there"));
        assert!(!plausible("é"));
        assert!(!plausible(&"a".repeat(MAX_TOKEN_BYTES + 1)));
        assert!(plausible(&"a".repeat(MAX_TOKEN_BYTES)));
        assert_eq!(redact("bad token s3cr3t: s3cr3t", "s3cr3t"), "bad token <hidden>: <hidden>");
        assert_eq!(redact("nothing", ""), "nothing");
    }

    #[tokio::test]
    async fn no_auth_lets_everyone_in_as_admin() {
        let id = NoAuth.authenticate(None, Access::Admin).await.unwrap();
        assert_eq!(id.access, Access::Admin);
        assert_eq!(NoAuth.name(), "none");
    }
}
