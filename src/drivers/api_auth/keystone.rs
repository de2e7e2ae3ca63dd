//! The API's callers authenticated by Keystone, as keystonemiddleware does it: the server
//! holds a token of its own (password auth, project-scoped; reused until shortly before it
//! expires, renewed once when Keystone answers 401 to it) and validates each caller's token
//! with `GET /v3/auth/tokens` (`X-Auth-Token`: its own, `X-Subject-Token`: the caller's).
//! The token's roles decide its access: any admin role is `Admin`, any reader role `Read`.
//!
//! Cache rules (per token, keyed by its SHA-256):
//! - a valid token is remembered until `cache_ttl` (default 300 s) or its `expires_at`,
//!   whichever comes first, so a token revoked in Keystone is accepted until then (as with
//!   keystonemiddleware's `token_cache_time`);
//! - a rejected token is remembered as rejected for [`NEGATIVE_TTL`] (5 s, at most
//!   `cache_ttl`);
//! - a `cache_ttl` of zero caches nothing; Keystone being unavailable is never cached;
//! - at most [`CACHE_CAPACITY`] tokens; a full cache drops what expires soonest.

use super::cache::{TokenCache, TokenDigest};
use super::{
    Access, AuthError, Authenticator, CACHE_CAPACITY, CALL_TIMEOUT, Identity, NEGATIVE_TTL, authorize, plausible,
};
use crate::credentials::{Credentials, SecretValue};
use crate::keystone::Keystone;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where Keystone is, the service's own credentials, and how roles map to access.
#[derive(Clone, Debug)]
pub struct KeystoneAuthConfig {
    /// Keystone's v3 URL, e.g. `http://keystone:5000/v3`.
    pub auth_url: String,
    /// The service user (it needs the `service` or `admin` role to validate other users'
    /// tokens: Keystone's `identity:validate_token` policy).
    pub username: String,
    pub password: SecretValue,
    /// The project the service's token is scoped to.
    pub project: String,
    pub user_domain: String,
    pub project_domain: String,
    /// Roles that give `Admin` (compared without regard to case, as oslo.policy does).
    pub admin_roles: Vec<String>,
    /// Roles that give `Read`.
    pub reader_roles: Vec<String>,
    /// How long a validated token is trusted without asking Keystone again.
    pub cache_ttl: Duration,
}

impl Default for KeystoneAuthConfig {
    /// Domains `Default`, admin roles `admin`, reader roles `reader` and `member`, a 300 s
    /// cache; the URL and the credentials empty (to be set).
    fn default() -> KeystoneAuthConfig {
        KeystoneAuthConfig {
            auth_url: String::new(),
            username: String::new(),
            password: SecretValue::new(""),
            project: String::new(),
            user_domain: "Default".into(),
            project_domain: "Default".into(),
            admin_roles: vec!["admin".into()],
            reader_roles: vec!["reader".into(), "member".into()],
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Why a [`KeystoneAuth`] cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneConfigError {
    #[error("the Keystone URL `{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("the Keystone service credentials have no {0}")]
    Missing(&'static str),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What Keystone said about a token, as remembered.
#[derive(Clone, Debug, PartialEq)]
struct TokenInfo {
    user: String,
    project: Option<String>,
    roles: Vec<String>,
}

#[derive(Clone, Debug)]
enum Cached {
    Valid(Arc<TokenInfo>),
    Invalid,
}

/// Callers authenticated by Keystone. See the top of this file.
#[derive(Debug)]
pub struct KeystoneAuth {
    /// `{auth_url}/auth/tokens`.
    tokens_url: String,
    service: Keystone,
    client: reqwest::Client,
    admin_roles: Vec<String>,
    reader_roles: Vec<String>,
    cache_ttl: Duration,
    cache: Mutex<TokenCache<Cached>>,
    validations: AtomicU64,
}

impl KeystoneAuth {
    pub fn new(config: KeystoneAuthConfig) -> Result<KeystoneAuth, KeystoneConfigError> {
        let auth_url = config.auth_url.trim().trim_end_matches('/').to_string();
        if !(auth_url.starts_with("http://") || auth_url.starts_with("https://")) {
            return Err(KeystoneConfigError::BadUrl(config.auth_url));
        }
        for (value, what) in [(&config.username, "username"), (&config.project, "project")] {
            if value.trim().is_empty() {
                return Err(KeystoneConfigError::Missing(what));
            }
        }
        if config.password.expose().is_empty() {
            return Err(KeystoneConfigError::Missing("password"));
        }
        let settings = BTreeMap::from([
            ("auth_url".to_string(), auth_url.clone()),
            ("username".to_string(), config.username),
            ("project_name".to_string(), config.project),
            ("user_domain_name".to_string(), config.user_domain),
            ("project_domain_name".to_string(), config.project_domain),
        ]);
        let credentials = Credentials::from_strings([("password".to_string(), config.password.expose().to_string())]);
        // Cannot fail: the URL, the user name and the password are there.
        let service = Keystone::new(&settings, &credentials, None).map_err(|_| KeystoneConfigError::Missing("user"))?;
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| KeystoneConfigError::Client(crate::http::describe(&e)))?;
        Ok(KeystoneAuth {
            tokens_url: format!("{auth_url}/auth/tokens"),
            service,
            client,
            admin_roles: config.admin_roles,
            reader_roles: config.reader_roles,
            cache_ttl: config.cache_ttl,
            cache: Mutex::new(TokenCache::new(CACHE_CAPACITY)),
            validations: AtomicU64::new(0),
        })
    }

    /// How many validation requests (`GET /v3/auth/tokens`) were sent to Keystone so far:
    /// cache misses, and their retries with a renewed service token.
    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::Relaxed)
    }

    async fn check(&self, token: Option<&str>, need: Access) -> Result<Identity, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        if !plausible(token) {
            return Err(AuthError::Invalid);
        }
        let key = TokenDigest::of(token);
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key, Instant::now());
        let info = match cached {
            Some(Cached::Valid(info)) => info,
            Some(Cached::Invalid) => return Err(AuthError::Invalid),
            None => {
                let answer = self.validate(token).await?;
                let now = chrono::Utc::now();
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                match answer {
                    // Keystone's word, but by this clock the token has expired: refused, as
                    // keystonemiddleware does.
                    Some((info, expires)) if expires > now => {
                        let info = Arc::new(info);
                        let ttl = positive_ttl(self.cache_ttl, now, expires);
                        cache.insert(key, Cached::Valid(info.clone()), ttl, Instant::now());
                        info
                    }
                    _ => {
                        cache.insert(key, Cached::Invalid, NEGATIVE_TTL.min(self.cache_ttl), Instant::now());
                        return Err(AuthError::Invalid);
                    }
                }
            }
        };
        let access = authorize(role_access(&info.roles, &self.admin_roles, &self.reader_roles), need)?;
        Ok(Identity { user: info.user.clone(), project: info.project.clone(), roles: info.roles.clone(), access })
    }

    /// Ask Keystone about `token`: its owner and expiry, or `None` when Keystone rejects it.
    async fn validate(&self, token: &str) -> Result<Option<(TokenInfo, chrono::DateTime<chrono::Utc>)>, AuthError> {
        let own = self.service_token(None).await?;
        let mut response = self.ask(&own, token).await?;
        if response.status().as_u16() == 401 {
            // Keystone refused the service's own token (revoked, or the keys rotated): a
            // new one, once.
            tracing::info!(url = %self.tokens_url, "Keystone refused the service token; authenticating again");
            let renewed = self.service_token(Some(&own)).await?;
            response = self.ask(&renewed, token).await?;
        }
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            401 => {
                return Err(self.unavailable("refused the service's own token (HTTP 401), even a new one".into()));
            }
            403 => {
                return Err(self.unavailable(
                    "does not let the service user validate tokens (HTTP 403): give it the `service` or `admin` role"
                        .into(),
                ));
            }
            status => return Err(self.unavailable(format!("answered HTTP {status}"))),
        }
        let body = self.read_body(response).await?;
        parse_token(&body).map(Some).map_err(|e| self.unavailable(format!("answered with an unreadable token: {e}")))
    }

    /// The service's token: the one in use, or when Keystone refused `refused`, a new one
    /// (unless another request has renewed it meanwhile).
    async fn service_token(&self, refused: Option<&SecretValue>) -> Result<SecretValue, AuthError> {
        let service_error = |e: crate::keystone::KeystoneError| {
            AuthError::Unavailable(format!("the service's own Keystone token: {e}"))
        };
        let current = self.service.token(&self.client, false).await.map_err(service_error)?;
        if refused.is_none_or(|r| *r != current.value) {
            return Ok(current.value);
        }
        Ok(self.service.token(&self.client, true).await.map_err(service_error)?.value)
    }

    async fn ask(&self, own: &SecretValue, token: &str) -> Result<reqwest::Response, AuthError> {
        self.validations.fetch_add(1, Ordering::Relaxed);
        self.client
            .get(&self.tokens_url)
            .query(&[("nocatalog", "1")])
            .header("X-Auth-Token", own.expose())
            .header("X-Subject-Token", token)
            .send()
            .await
            .map_err(|e| self.unavailable(crate::http::describe(&e)))
    }

    /// The answer's body, at most 1 MiB (a token without its catalog is a few hundred bytes).
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, AuthError> {
        const MAX_ANSWER: usize = 1 << 20;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unavailable(crate::http::describe(&e)))? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(self.unavailable(format!("answered with more than {MAX_ANSWER} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn unavailable(&self, what: String) -> AuthError {
        AuthError::Unavailable(format!("Keystone at {}: {what}", self.tokens_url))
    }
}

impl Authenticator for KeystoneAuth {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, need: Access) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(self.check(token, need))
    }

    fn name(&self) -> &'static str {
        "keystone"
    }
}

/// The access `roles` give: `Admin` with any of `admin`, `Read` with any of `reader`, none
/// otherwise. Names compare without regard to case.
fn role_access(roles: &[String], admin: &[String], reader: &[String]) -> Option<Access> {
    let has = |wanted: &[String]| roles.iter().any(|r| wanted.iter().any(|w| w.eq_ignore_ascii_case(r)));
    if has(admin) {
        Some(Access::Admin)
    } else if has(reader) {
        Some(Access::Read)
    } else {
        None
    }
}

/// How long to trust a token Keystone validated at `now`: `cache_ttl`, but not past its
/// expiry.
fn positive_ttl(
    cache_ttl: Duration,
    now: chrono::DateTime<chrono::Utc>,
    expires: chrono::DateTime<chrono::Utc>,
) -> Duration {
    (expires - now).to_std().unwrap_or(Duration::ZERO).min(cache_ttl)
}

/// The owner, roles and expiry of a validation answer (`{"token": {...}}`).
fn parse_token(body: &[u8]) -> Result<(TokenInfo, chrono::DateTime<chrono::Utc>), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Body,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        expires_at: String,
        user: Named,
        #[serde(default)]
        project: Option<Named>,
        #[serde(default)]
        roles: Vec<Named>,
    }
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
    }
    impl Named {
        fn label(self) -> Option<String> {
            self.name.filter(|n| !n.is_empty()).or(self.id.filter(|i| !i.is_empty()))
        }
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| crate::http::describe_json(&e))?;
    let expires = chrono::DateTime::parse_from_rfc3339(&answer.token.expires_at)
        .map_err(|e| format!("expires_at: {e}"))?
        .with_timezone(&chrono::Utc);
    let user = answer.token.user.label().ok_or("the token names no user")?;
    let project = answer.token.project.and_then(Named::label);
    let roles = answer.token.roles.into_iter().filter_map(|r| r.name).collect();
    Ok((TokenInfo { user, project, roles }, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roles_map_to_access() {
        let (admin, reader) = (names(&["admin"]), names(&["reader", "member"]));
        let access = |roles: &[&str]| role_access(&names(roles), &admin, &reader);
        assert_eq!(access(&["admin", "reader", "member"]), Some(Access::Admin));
        assert_eq!(access(&["admin"]), Some(Access::Admin));
        assert_eq!(access(&["Admin"]), Some(Access::Admin), "oslo.policy compares roles without case");
        assert_eq!(access(&["reader"]), Some(Access::Read));
        assert_eq!(access(&["member", "other"]), Some(Access::Read));
        assert_eq!(access(&["other"]), None);
        assert_eq!(access(&[]), None);
        assert_eq!(role_access(&names(&["admin"]), &[], &[]), None);
        assert_eq!(role_access(&names(&["auditor"]), &admin, &names(&["auditor"])), Some(Access::Read));
    }

    #[test]
    fn a_token_is_trusted_until_the_ttl_or_its_expiry() {
        let now = chrono::Utc::now();
        let ttl = Duration::from_secs(300);
        assert_eq!(positive_ttl(ttl, now, now + chrono::Duration::hours(1)), ttl);
        assert_eq!(positive_ttl(ttl, now, now + chrono::Duration::seconds(42)), Duration::from_secs(42));
        assert_eq!(positive_ttl(ttl, now, now - chrono::Duration::seconds(1)), Duration::ZERO);
        assert_eq!(positive_ttl(Duration::ZERO, now, now + chrono::Duration::hours(1)), Duration::ZERO);
    }

    #[test]
    fn a_validation_answer_gives_user_project_roles_and_expiry() {
        let body = serde_json::json!({"token": {
            "methods": ["password"], "expires_at": "2030-01-02T03:04:05.000000Z",
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
            "roles": [{"id": "r1", "name": "reader"}, {"id": "r2", "name": "member"}]}});
        let (info, expires) = parse_token(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            info,
            TokenInfo { user: "alice".into(), project: Some("demo".into()), roles: names(&["reader", "member"]) }
        );
        assert_eq!(expires.to_rfc3339(), "2030-01-02T03:04:05+00:00");
        // Unscoped: no project, no roles; ids when names are missing.
        let body = serde_json::json!({"token": {"expires_at": "2030-01-02T03:04:05Z", "user": {"id": "u1"}}});
        let (info, _) = parse_token(body.to_string().as_bytes()).unwrap();
        assert_eq!(info, TokenInfo { user: "u1".into(), project: None, roles: vec![] });
        assert!(parse_token(b"{\"token\": {}}").is_err());
        assert!(parse_token(b"not json").is_err());
        let bad_time = serde_json::json!({"token": {"expires_at": "soon", "user": {"id": "u"}}});
        assert!(parse_token(bad_time.to_string().as_bytes()).unwrap_err().contains("expires_at"));
    }

    #[test]
    fn the_config_is_checked_and_never_prints_the_password() {
        let config = KeystoneAuthConfig {
            auth_url: "http://127.0.0.1:1/v3/".into(),
            username: "congress".into(),
            password: SecretValue::new("canary-pw-31"),
            project: "service".into(),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("canary"));
        let auth = KeystoneAuth::new(config.clone()).unwrap();
        assert_eq!(auth.tokens_url, "http://127.0.0.1:1/v3/auth/tokens");
        assert!(!format!("{auth:?}").contains("canary"));
        assert_eq!(auth.name(), "keystone");
        let bad = KeystoneAuth::new(KeystoneAuthConfig { auth_url: "keystone:5000".into(), ..config.clone() });
        assert!(matches!(bad, Err(KeystoneConfigError::BadUrl(_))));
        let bad = KeystoneAuth::new(KeystoneAuthConfig { password: SecretValue::new(""), ..config.clone() });
        assert!(matches!(bad, Err(KeystoneConfigError::Missing("password"))));
        let bad = KeystoneAuth::new(KeystoneAuthConfig { project: " ".into(), ..config });
        assert!(matches!(bad, Err(KeystoneConfigError::Missing("project"))));
    }

    #[tokio::test]
    async fn missing_and_implausible_tokens_are_refused_without_asking_keystone() {
        // Nothing listens on port 1: a request would be Unavailable, not Missing or Invalid.
        let auth = KeystoneAuth::new(KeystoneAuthConfig {
            auth_url: "http://127.0.0.1:1/v3".into(),
            username: "congress".into(),
            password: SecretValue::new("pw"),
            project: "service".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(auth.authenticate(None, Access::Read).await, Err(AuthError::Missing)));
        assert!(matches!(auth.authenticate(Some("two words"), Access::Read).await, Err(AuthError::Invalid)));
        assert_eq!(auth.validations(), 0);
    }
}
