//! The API's callers authenticated by the Kubernetes API server (the operator's API): a
//! TokenReview says who the token belongs to, then two SubjectAccessReviews say what that user
//! may do with `policies.congress.dev`: `create` gives `Admin`, `get` gives `Read`.
//!
//! Cache rules (per token, keyed by its SHA-256): the answer (who, and the access, even none)
//! is remembered for [`CACHE_TTL`] (10 s), so a change of RBAC or a deleted ServiceAccount
//! takes effect within 10 s; a rejected token is remembered for [`NEGATIVE_TTL`] (5 s); an
//! API server that cannot answer is never cached. At most [`CACHE_CAPACITY`] tokens.

use super::cache::{TokenCache, TokenDigest};
use super::{
    Access, AuthError, Authenticator, CACHE_CAPACITY, CALL_TIMEOUT, Identity, NEGATIVE_TTL, authorize, plausible,
    redact,
};
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a reviewed token's answer is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// The resource whose RBAC decides the access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesAuthConfig {
    /// The API group: `congress.dev`.
    pub group: String,
    /// The resource: `policies`.
    pub resource: String,
}

impl Default for KubernetesAuthConfig {
    fn default() -> KubernetesAuthConfig {
        KubernetesAuthConfig { group: "congress.dev".into(), resource: "policies".into() }
    }
}

/// A reviewed token's owner and access, as remembered.
#[derive(Clone, Debug, PartialEq)]
struct Reviewed {
    user: String,
    groups: Vec<String>,
    access: Option<Access>,
}

#[derive(Clone, Debug)]
enum Cached {
    Valid(Arc<Reviewed>),
    Invalid,
}

/// Callers authenticated by the API server. See the top of this file. Its own client needs
/// `create` on `tokenreviews.authentication.k8s.io` and
/// `subjectaccessreviews.authorization.k8s.io`.
pub struct KubernetesAuth {
    client: kube::Client,
    config: KubernetesAuthConfig,
    cache: Mutex<TokenCache<Cached>>,
    reviews: AtomicU64,
}

impl fmt::Debug for KubernetesAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesAuth").field("config", &self.config).field("cache", &self.cache).finish()
    }
}

impl KubernetesAuth {
    pub fn new(client: kube::Client, config: KubernetesAuthConfig) -> KubernetesAuth {
        KubernetesAuth {
            client,
            config,
            cache: Mutex::new(TokenCache::new(CACHE_CAPACITY)),
            reviews: AtomicU64::new(0),
        }
    }

    /// How many TokenReviews were sent so far (cache misses).
    pub fn reviews(&self) -> u64 {
        self.reviews.load(Ordering::Relaxed)
    }

    async fn check(&self, token: Option<&str>, need: Access) -> Result<Identity, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        if !plausible(token) {
            return Err(AuthError::Invalid);
        }
        let key = TokenDigest::of(token);
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key, Instant::now());
        let reviewed = match cached {
            Some(Cached::Valid(r)) => r,
            Some(Cached::Invalid) => return Err(AuthError::Invalid),
            None => {
                let answer = self.review(token).await?;
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                match answer {
                    Some(r) => {
                        let r = Arc::new(r);
                        cache.insert(key, Cached::Valid(r.clone()), CACHE_TTL, Instant::now());
                        r
                    }
                    None => {
                        cache.insert(key, Cached::Invalid, NEGATIVE_TTL, Instant::now());
                        return Err(AuthError::Invalid);
                    }
                }
            }
        };
        let access = authorize(reviewed.access, need)?;
        Ok(Identity { user: reviewed.user.clone(), project: None, roles: reviewed.groups.clone(), access })
    }

    /// Who `token` belongs to and what they may do, or `None` when the API server does not
    /// authenticate it.
    async fn review(&self, token: &str) -> Result<Option<Reviewed>, AuthError> {
        self.reviews.fetch_add(1, Ordering::Relaxed);
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = tokio::time::timeout(CALL_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| unavailable("TokenReview", &format!("no answer within {} s", CALL_TIMEOUT.as_secs()), token))?
            .map_err(|e| unavailable("TokenReview", &e.to_string(), token))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        let Some(name) = user.username.clone().filter(|u| !u.is_empty()) else {
            return Err(AuthError::Unavailable("the TokenReview authenticated the token but named no user".into()));
        };
        let (create, get) =
            futures::try_join!(self.allowed(&user, "create", token), self.allowed(&user, "get", token))?;
        Ok(Some(Reviewed { user: name, groups: user.groups.unwrap_or_default(), access: access_of(create, get) }))
    }

    /// Whether `user` may `verb` the configured resource (cluster-wide).
    async fn allowed(&self, user: &UserInfo, verb: &str, token: &str) -> Result<bool, AuthError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(self.config.group.clone()),
                    resource: Some(self.config.resource.clone()),
                    verb: Some(verb.to_string()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = tokio::time::timeout(CALL_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| {
                unavailable("SubjectAccessReview", &format!("no answer within {} s", CALL_TIMEOUT.as_secs()), token)
            })?
            .map_err(|e| unavailable("SubjectAccessReview", &e.to_string(), token))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

impl Authenticator for KubernetesAuth {
    fn authenticate<'a>(&'a self, token: Option<&'a str>, need: Access) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(self.check(token, need))
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }
}

/// `create` allowed is `Admin`, else `get` allowed is `Read`, else nothing.
fn access_of(create: bool, get: bool) -> Option<Access> {
    if create {
        Some(Access::Admin)
    } else if get {
        Some(Access::Read)
    } else {
        None
    }
}

/// A review that failed: the API server's message, with the token blotted out should it
/// quote it.
fn unavailable(review: &str, message: &str, token: &str) -> AuthError {
    AuthError::Unavailable(redact(&format!("the Kubernetes API server's {review}: {message}"), token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_admin_and_get_is_read() {
        assert_eq!(access_of(true, true), Some(Access::Admin));
        assert_eq!(access_of(true, false), Some(Access::Admin));
        assert_eq!(access_of(false, true), Some(Access::Read));
        assert_eq!(access_of(false, false), None);
        assert_eq!(
            KubernetesAuthConfig::default(),
            KubernetesAuthConfig { group: "congress.dev".into(), resource: "policies".into() }
        );
    }

    #[test]
    fn a_failed_review_never_quotes_the_token() {
        let e = unavailable("TokenReview", "bad request: token eyJhbGciOi.x.y is malformed", "eyJhbGciOi.x.y");
        assert_eq!(e.status(), 503);
        assert_eq!(
            e.to_string(),
            "authentication is unavailable: the Kubernetes API server's TokenReview: bad request: token <hidden> is malformed"
        );
    }
}
