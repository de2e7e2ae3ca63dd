//! Keystone v3 authentication for the OpenStack drivers: a password or application-credential
//! token, reused until shortly before it expires, and the service catalog it carries, where a
//! driver finds its endpoint (service type, interface, region).

use super::credentials::{Credentials, CredentialsError, SecretValue, setting};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("no Keystone URL: set `config.auth_url` (or `http.auth.url`)")]
    NoAuthUrl,
    #[error("Keystone at {url}: {message}")]
    Request { url: String, message: String, timeout: bool },
    #[error("Keystone at {url} refused the credentials (HTTP {status})")]
    Refused { url: String, status: u16 },
    #[error("Keystone at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("Keystone at {url} answered without a token: {message}")]
    BadAnswer { url: String, message: String },
    #[error("the Keystone catalog has no `{service_type}` endpoint for interface `{interface}`{}", region.as_ref().map(|r| format!(" in region `{r}`")).unwrap_or_default())]
    NoEndpoint { service_type: String, interface: String, region: Option<String> },
}

/// How to authenticate.
#[derive(Clone, Debug)]
enum Method {
    Password {
        username: String,
        password: SecretValue,
        user_domain: String,
        project: Option<String>,
        project_domain: String,
    },
    ApplicationCredential {
        id: String,
        secret: SecretValue,
    },
    /// A token issued already: Keystone is asked only for its catalog and expiry.
    Token(SecretValue),
}

/// One issued token and its catalog.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: SecretValue,
    /// When to stop reusing it.
    renew_at: chrono::DateTime<chrono::Utc>,
    catalog: Vec<CatalogEntry>,
}

#[derive(Clone, Debug, serde::Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, serde::Deserialize)]
struct Endpoint {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

/// A Keystone session: credentials, and the token in use.
#[derive(Debug)]
pub struct Keystone {
    auth_url: String,
    method: Method,
    token: Mutex<Option<Token>>,
}

impl Keystone {
    /// From the datasource's `config` and credentials: `auth_url` (or `default_url`),
    /// then `application_credential_id` + `application_credential_secret`, or `username` +
    /// `password` (+ `project_name`, `user_domain_name`, `project_domain_name`, default
    /// `Default`).
    pub fn new(
        config: &BTreeMap<String, String>,
        credentials: &Credentials,
        default_url: Option<&str>,
    ) -> Result<Keystone, KeystoneError> {
        let auth_url = setting(config, credentials, "auth_url")
            .or_else(|| default_url.map(str::to_string))
            .ok_or(KeystoneError::NoAuthUrl)?;
        let get = |key: &str| setting(config, credentials, key);
        let method = match get("application_credential_id") {
            Some(id) => Method::ApplicationCredential {
                id,
                secret: credentials
                    .require("application_credential_secret", "Keystone application-credential auth")?
                    .clone(),
            },
            None => Method::Password {
                username: get("username").ok_or_else(|| CredentialsError::Missing {
                    key: "username".into(),
                    what: "Keystone password auth",
                })?,
                password: credentials.require("password", "Keystone password auth")?.clone(),
                user_domain: get("user_domain_name").unwrap_or_else(|| "Default".into()),
                project: get("project_name").or_else(|| get("tenant_name")),
                project_domain: get("project_domain_name").unwrap_or_else(|| "Default".into()),
            },
        };
        Ok(Keystone { auth_url: auth_url.trim_end_matches('/').to_string(), method, token: Mutex::new(None) })
    }

    /// A session of a token issued already (an `os.auth` context's `token`): its catalog
    /// and expiry are read from Keystone at `auth_url` (`GET /auth/tokens`), the token itself
    /// is used as it is.
    pub fn with_token(auth_url: &str, token: SecretValue) -> Keystone {
        Keystone {
            auth_url: auth_url.trim_end_matches('/').to_string(),
            method: Method::Token(token),
            token: Mutex::new(None),
        }
    }

    /// Whether a 401 may be cured by a new token (not for a token issued already).
    pub fn renewable(&self) -> bool {
        !matches!(self.method, Method::Token(_))
    }

    /// Keystone's URL (without a trailing `/`).
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }

    /// The token in use, or a new one when there is none, it is close to expiry, or
    /// `renew` (the service said 401 to the last one).
    pub async fn token(&self, client: &reqwest::Client, renew: bool) -> Result<Token, KeystoneError> {
        if !renew {
            let current = self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if let Some(t) = current.filter(|t| chrono::Utc::now() < t.renew_at) {
                return Ok(t);
            }
        }
        let token = self.issue(client).await?;
        *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    async fn issue(&self, client: &reqwest::Client) -> Result<Token, KeystoneError> {
        let url = format!("{}/auth/tokens", self.auth_url);
        let request_error = |e: reqwest::Error| KeystoneError::Request {
            url: url.clone(),
            message: super::http::describe(&e),
            timeout: e.is_timeout(),
        };
        let body = match &self.method {
            Method::Token(token) => {
                // Validating a token of one's own needs no other right (Keystone's policy).
                let response = client
                    .get(&url)
                    .header("X-Auth-Token", token.expose())
                    .header("X-Subject-Token", token.expose())
                    .send()
                    .await
                    .map_err(request_error)?;
                return self.read_token(&url, response, Some(token.clone())).await;
            }
            Method::Password { username, password, user_domain, project, project_domain } => {
                let mut auth = serde_json::json!({"identity": {"methods": ["password"], "password": {"user": {
                    "name": username, "domain": {"name": user_domain}, "password": password.expose()}}}});
                if let Some(p) = project {
                    auth["scope"] = serde_json::json!({"project": {"name": p, "domain": {"name": project_domain}}});
                }
                serde_json::json!({ "auth": auth })
            }
            Method::ApplicationCredential { id, secret } => serde_json::json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose()}}}}),
        };
        let response = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(request_error)?;
        self.read_token(&url, response, None).await
    }

    /// A token answer: its `X-Subject-Token` (or `known`, the token asked about), expiry and
    /// catalog.
    async fn read_token(
        &self,
        url: &str,
        response: reqwest::Response,
        known: Option<SecretValue>,
    ) -> Result<Token, KeystoneError> {
        let url = url.to_string();
        let request_error = |e: reqwest::Error| KeystoneError::Request {
            url: url.clone(),
            message: super::http::describe(&e),
            timeout: e.is_timeout(),
        };
        let status = response.status().as_u16();
        match status {
            200 | 201 => {}
            400 | 401 | 403 | 404 => return Err(KeystoneError::Refused { url, status }),
            _ => return Err(KeystoneError::Status { url, status }),
        }
        let bad = |message: String| KeystoneError::BadAnswer { url: url.clone(), message };
        let value = match known {
            Some(token) => token,
            None => response
                .headers()
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok())
                .map(SecretValue::new)
                .ok_or_else(|| bad("no X-Subject-Token header".into()))?,
        };
        // A token answer carries the catalog: large for a big cloud, never 16 MiB.
        const MAX_ANSWER: usize = 16 << 20;
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(bad(format!("the answer is larger than {MAX_ANSWER} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Body,
        }
        #[derive(serde::Deserialize)]
        struct Body {
            expires_at: String,
            #[serde(default)]
            catalog: Vec<CatalogEntry>,
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let expires = chrono::DateTime::parse_from_rfc3339(&answer.token.expires_at)
            .map_err(|e| bad(format!("expires_at: {e}")))?
            .with_timezone(&chrono::Utc);
        Ok(Token { value, renew_at: renew_at(chrono::Utc::now(), expires), catalog: answer.token.catalog })
    }

    /// Drop the token in use (the next request authenticates again).
    pub fn forget(&self) {
        *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Reuse a token until a tenth of its life, at most five minutes, is left.
fn renew_at(
    now: chrono::DateTime<chrono::Utc>,
    expires: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    let life = (expires - now).to_std().unwrap_or(Duration::ZERO);
    let margin = (life / 10).min(Duration::from_secs(300));
    expires - chrono::Duration::from_std(margin).unwrap_or_default()
}

impl Token {
    /// The endpoint of `service_type` for `interface` (and `region`, when given).
    pub fn endpoint(&self, service_type: &str, interface: &str, region: Option<&str>) -> Result<String, KeystoneError> {
        self.catalog
            .iter()
            .filter(|e| e.service_type == service_type)
            .flat_map(|e| &e.endpoints)
            .find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r))
            })
            .map(|e| e.url.clone())
            .ok_or_else(|| KeystoneError::NoEndpoint {
                service_type: service_type.into(),
                interface: interface.into(),
                region: region.map(str::to_string),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let now = chrono::Utc::now();
        let hour = now + chrono::Duration::hours(1);
        assert_eq!(renew_at(now, hour), hour - chrono::Duration::minutes(5));
        let minute = now + chrono::Duration::seconds(60);
        assert_eq!(renew_at(now, minute), minute - chrono::Duration::seconds(6));
        assert!(renew_at(now, now - chrono::Duration::seconds(1)) <= now);
    }

    #[test]
    fn credentials_choose_the_method_and_say_what_is_missing() {
        let none = Credentials::default();
        assert!(matches!(Keystone::new(&cfg(&[]), &none, None), Err(KeystoneError::NoAuthUrl)));
        let e = Keystone::new(&cfg(&[("auth_url", "http://k/v3"), ("username", "admin")]), &none, None).unwrap_err();
        assert!(e.to_string().contains("`password`"), "{e}");
        let secret = Credentials::from_strings([("application_credential_secret".to_string(), "s".to_string())]);
        let k =
            Keystone::new(&cfg(&[("auth_url", "http://k/v3/"), ("application_credential_id", "id1")]), &secret, None)
                .unwrap();
        assert!(matches!(k.method, Method::ApplicationCredential { .. }));
        assert_eq!(k.auth_url, "http://k/v3");
    }

    #[test]
    fn the_catalog_is_searched_by_type_interface_and_region() {
        let catalog: Vec<CatalogEntry> = serde_json::from_value(serde_json::json!([
            {"type": "compute", "endpoints": [
                {"interface": "public", "region_id": "r1", "url": "http://a"},
                {"interface": "internal", "region_id": "r1", "url": "http://b"},
                {"interface": "public", "region_id": "r2", "url": "http://c"}]}]))
        .unwrap();
        let t = Token { value: SecretValue::new("t"), renew_at: chrono::Utc::now(), catalog };
        assert_eq!(t.endpoint("compute", "public", None).unwrap(), "http://a");
        assert_eq!(t.endpoint("compute", "public", Some("r2")).unwrap(), "http://c");
        assert_eq!(t.endpoint("compute", "internal", Some("r1")).unwrap(), "http://b");
        let e = t.endpoint("network", "public", Some("r1")).unwrap_err().to_string();
        assert!(e.contains("`network`") && e.contains("`r1`"), "{e}");
    }
}
