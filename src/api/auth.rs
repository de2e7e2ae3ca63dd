//! Who may call the API. The authenticators (Keystone, Kubernetes) live in the drivers'
//! library; this is the interface the router uses, and [`NoAuth`].

use axum::http::HeaderMap;
use futures::future::BoxFuture;

/// Who called.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub user: String,
    pub project: Option<String>,
    pub roles: Vec<String>,
    pub access: Access,
}

/// What a caller may do: read (GET, HEAD) or everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Admin,
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send a token in X-Auth-Token")]
    Missing,
    #[error("the token is invalid or has expired")]
    Invalid,
    #[error("forbidden: this needs {} access", if *.need == Access::Admin { "admin" } else { "read" })]
    Forbidden { need: Access },
    #[error("the token cannot be checked now: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Invalid => 401,
            AuthError::Forbidden { .. } => 403,
            AuthError::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Invalid => "token_invalid",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::Unavailable(_) => "auth_unavailable",
        }
    }
}

/// Checks callers.
pub trait Authenticator: Send + Sync {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, need: Access) -> BoxFuture<'a, Result<Identity, AuthError>>;
    fn name(&self) -> &'static str;
}

/// The token of a request: `X-Auth-Token` first, else `Authorization: Bearer`.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim()).filter(|t| !t.is_empty());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Nobody is checked: every caller is an admin. Only with `--no-auth`, on loopback.
pub struct NoAuth;

impl Authenticator for NoAuth {
    fn authenticate<'a>(&'a self, _: Option<&'a str>, _: Access) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async {
            Ok(Identity { user: "anonymous".into(), project: None, roles: vec!["admin".into()], access: Access::Admin })
        })
    }

    fn name(&self) -> &'static str {
        "none"
    }
}
