//! The API's Keystone authenticator against a real Keystone (the shared one of
//! `scripts/test.sh`, `CONGRESS_TEST_KEYSTONE`, else one of this process; skipped with a
//! note when Keystone is not installed, unless `CONGRESS_E2E=require`). Each test makes the
//! users, projects and roles it needs, under names of its own. Validations are counted by the
//! authenticator itself ([`KeystoneAuth::validations`]): every request it sends to Keystone.

#[path = "support/keystone.rs"]
mod keystone;

use congress_drivers::api_auth::{Access, AuthError, Authenticator, KeystoneAuth, KeystoneAuthConfig};
use congress_drivers::credentials::SecretValue;
use keystone::{ADMIN_PASSWORD, Keystone};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A name no other test (or run) uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("api-auth-{what}-{}-{nanos}", std::process::id())
}

/// An authenticator whose service user is `user` (password `password`, project `project`).
fn auth_as(url: &str, user: &str, password: &str, project: &str, cache_ttl: Duration) -> KeystoneAuth {
    KeystoneAuth::new(KeystoneAuthConfig {
        auth_url: url.to_string(),
        username: user.to_string(),
        password: SecretValue::new(password),
        project: project.to_string(),
        cache_ttl,
        ..Default::default()
    })
    .expect("a valid configuration")
}

/// An authenticator whose service user is Keystone's admin.
fn auth(ks: &Keystone, cache_ttl: Duration) -> KeystoneAuth {
    auth_as(&ks.url, "admin", ADMIN_PASSWORD, "admin", cache_ttl)
}

/// A request of Keystone's admin: (status, body). Writes hold the shared write lock.
async fn admin(ks: &Keystone, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let _lock = (method != Method::GET).then(|| ks.write_lock());
    let token = ks.admin_token().await;
    let mut request =
        reqwest::Client::new().request(method, format!("{}/{path}", ks.url)).header("X-Auth-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("keystone answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The id of role `name`, made when missing (another test may make it at the same time).
async fn role(ks: &Keystone, name: &str) -> String {
    for _ in 0..2 {
        let (_, found) = admin(ks, Method::GET, &format!("roles?name={name}"), None).await;
        if let Some(id) = found["roles"][0]["id"].as_str() {
            return id.to_string();
        }
        let (status, made) = admin(ks, Method::POST, "roles", Some(json!({"role": {"name": name}}))).await;
        if let Some(id) = made["role"]["id"].as_str() {
            return id.to_string();
        }
        assert_eq!(status, 409, "create role {name}: {made}");
    }
    panic!("role {name} neither found nor made");
}

/// A new user in a new project of its own, with `roles` there: (user id, project name).
async fn user(ks: &Keystone, name: &str, password: &str, roles: &[&str]) -> (String, String) {
    let project = format!("{name}-project");
    let (status, p) =
        admin(ks, Method::POST, "projects", Some(json!({"project": {"name": project, "domain_id": "default"}}))).await;
    assert_eq!(status, 201, "create project: {p}");
    let (status, u) = admin(
        ks,
        Method::POST,
        "users",
        Some(json!({"user": {"name": name, "password": password, "domain_id": "default"}})),
    )
    .await;
    assert_eq!(status, 201, "create user: {u}");
    let (project_id, user_id) = (p["project"]["id"].as_str().unwrap(), u["user"]["id"].as_str().unwrap());
    for r in roles {
        let role_id = role(ks, r).await;
        let (status, body) =
            admin(ks, Method::PUT, &format!("projects/{project_id}/users/{user_id}/roles/{role_id}"), None).await;
        assert_eq!(status, 204, "grant {r}: {body}");
    }
    (user_id.to_string(), project)
}

/// A project-scoped token of a new user with `roles`.
async fn token_with_roles(ks: &Keystone, what: &str, roles: &[&str]) -> String {
    let name = unique(what);
    let (_, project) = user(ks, &name, "pw-1", roles).await;
    ks.token(&name, "pw-1", &project).await.expect("a token of the new user")
}

fn is_forbidden(r: &Result<congress_drivers::api_auth::Identity, AuthError>, need: Access) -> bool {
    matches!(r, Err(AuthError::Forbidden { need: n }) if *n == need)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_access_admin_reader_member_and_none() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let auth = auth(&ks, Duration::from_secs(300));

    let admin_token = ks.admin_token().await;
    let id = auth.authenticate(Some(&admin_token), Access::Admin).await.expect("the admin token is admin");
    assert_eq!((id.user.as_str(), id.project.as_deref(), id.access), ("admin", Some("admin"), Access::Admin));
    assert!(id.roles.contains(&"admin".to_string()), "{:?}", id.roles);

    let reader = token_with_roles(&ks, "reader", &["reader"]).await;
    let id = auth.authenticate(Some(&reader), Access::Read).await.expect("a reader may read");
    assert_eq!((id.access, id.roles.clone()), (Access::Read, vec!["reader".to_string()]));
    assert!(id.user.starts_with("api-auth-reader-") && id.project.as_deref().is_some_and(|p| p.ends_with("-project")));
    let refused = auth.authenticate(Some(&reader), Access::Admin).await;
    assert!(is_forbidden(&refused, Access::Admin), "{refused:?}");
    assert_eq!(refused.unwrap_err().status(), 403);

    // `member` (which implies `reader` in Keystone) reads too.
    let member = token_with_roles(&ks, "member", &["member"]).await;
    assert_eq!(auth.authenticate(Some(&member), Access::Read).await.expect("a member reads").access, Access::Read);

    // A role that is neither: authenticated, and forbidden even to read.
    let other = token_with_roles(&ks, "other", &["api-auth-neither"]).await;
    let refused = auth.authenticate(Some(&other), Access::Read).await;
    assert!(is_forbidden(&refused, Access::Read), "{refused:?}");

    // Roles given to the authenticator change the mapping.
    let custom = KeystoneAuth::new(KeystoneAuthConfig {
        auth_url: ks.url.clone(),
        username: "admin".into(),
        password: SecretValue::new(ADMIN_PASSWORD),
        project: "admin".into(),
        admin_roles: vec!["api-auth-neither".into()],
        reader_roles: vec![],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(custom.authenticate(Some(&other), Access::Admin).await.expect("custom admin").access, Access::Admin);
    assert!(is_forbidden(&custom.authenticate(Some(&reader), Access::Read).await, Access::Read));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_garbage_tokens_are_refused_and_a_bad_token_reaches_keystone_once() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let auth = auth(&ks, Duration::from_secs(300));
    let missing = auth.authenticate(None, Access::Read).await;
    assert!(matches!(missing, Err(AuthError::Missing)), "{missing:?}");
    assert_eq!(auth.validations(), 0);

    // A fernet-looking token Keystone cannot decrypt: 404 from Keystone, then remembered.
    let garbage = "gAAAAABnotarealtokenATALLxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_-";
    for _ in 0..10 {
        let r = auth.authenticate(Some(garbage), Access::Read).await;
        assert!(matches!(r, Err(AuthError::Invalid)), "{r:?}");
    }
    assert_eq!(auth.validations(), 1, "a rejected token is cached for a few seconds");
    let e = auth.authenticate(Some("garbage"), Access::Read).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (401, "InvalidToken"));
    assert_eq!(auth.validations(), 2);
    // Not even a token: refused without asking.
    assert!(matches!(auth.authenticate(Some("has spaces"), Access::Read).await, Err(AuthError::Invalid)));
    assert_eq!(auth.validations(), 2);
}

/// The cache rule for revocation: a token validated once is trusted until the cache's TTL
/// (here 3 s) even if revoked meanwhile, then refused; the refusal is remembered for
/// min(5 s, TTL). With a TTL of zero, revocation is seen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_trusted_until_the_cache_ttl_then_invalid() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let ttl = Duration::from_secs(3);
    let cached = auth(&ks, ttl);
    let uncached = auth(&ks, Duration::ZERO);
    let token = ks.admin_token().await;
    assert_eq!(cached.authenticate(Some(&token), Access::Admin).await.expect("valid").access, Access::Admin);
    // The cache's clock starts once the answer is in.
    let validated = Instant::now();
    assert_eq!(uncached.authenticate(Some(&token), Access::Admin).await.expect("valid").access, Access::Admin);
    assert_eq!((cached.validations(), uncached.validations()), (1, 1));

    ks.revoke(&token).await;
    let r = uncached.authenticate(Some(&token), Access::Read).await;
    assert!(matches!(r, Err(AuthError::Invalid)), "without a cache, revoked at once: {r:?}");
    let revoked_after = validated.elapsed();
    if revoked_after < ttl - Duration::from_millis(300) {
        let id = cached.authenticate(Some(&token), Access::Admin).await.expect("still trusted from the cache");
        assert_eq!(id.access, Access::Admin);
        assert_eq!(cached.validations(), 1, "a cached token is not validated again");
    } else {
        eprintln!("NOTE: revoking took {revoked_after:?}, past the cache's TTL: the cached answer was not checked");
    }

    tokio::time::sleep(ttl.saturating_sub(validated.elapsed()) + Duration::from_millis(100)).await;
    let r = cached.authenticate(Some(&token), Access::Read).await;
    assert!(matches!(r, Err(AuthError::Invalid)), "after the TTL: {r:?}");
    assert_eq!(cached.validations(), 2);
    assert!(matches!(cached.authenticate(Some(&token), Access::Read).await, Err(AuthError::Invalid)));
    assert_eq!(cached.validations(), 2, "the refusal is remembered");
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(matches!(cached.authenticate(Some(&token), Access::Read).await, Err(AuthError::Invalid)));
    assert_eq!(cached.validations(), 3, "for min(5 s, TTL) only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_not_validated_again() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let auth = auth(&ks, Duration::from_secs(300));
    let reader = token_with_roles(&ks, "cached", &["reader"]).await;
    let started = Instant::now();
    for i in 0..50 {
        let need = if i % 2 == 0 { Access::Read } else { Access::Admin };
        let r = auth.authenticate(Some(&reader), need).await;
        assert!(r.is_ok() == (need == Access::Read), "{r:?}");
    }
    assert_eq!(auth.validations(), 1);
    let admin_token = ks.admin_token().await;
    auth.authenticate(Some(&admin_token), Access::Admin).await.expect("admin");
    auth.authenticate(Some(&admin_token), Access::Admin).await.expect("admin");
    assert_eq!(auth.validations(), 2);
    eprintln!("51 authentications of 2 tokens, 2 validations: {:?}", started.elapsed());
}

/// Keystone refuses the service's own token (its user disabled and enabled again, which
/// revokes every token it had): the authenticator gets a new one and validates again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_token_is_replaced_once() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let name = unique("service");
    let (user_id, project) = user(&ks, &name, "svc-pw", &["service"]).await;
    let auth = auth_as(&ks.url, &name, "svc-pw", &project, Duration::ZERO);
    let caller = ks.admin_token().await;
    auth.authenticate(Some(&caller), Access::Admin).await.expect("a `service` user validates tokens");
    assert_eq!(auth.validations(), 1);

    for enabled in [false, true] {
        let (status, body) =
            admin(&ks, Method::PATCH, &format!("users/{user_id}"), Some(json!({"user": {"enabled": enabled}}))).await;
        assert_eq!(status, 200, "{body}");
    }
    // Keystone revokes by the second: a token issued in the second of the revocation is
    // revoked too.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let id = auth.authenticate(Some(&caller), Access::Admin).await.expect("validated with a new service token");
    assert_eq!(id.access, Access::Admin);
    assert_eq!(auth.validations(), 3, "one refused, one with the new token");
    auth.authenticate(Some(&caller), Access::Admin).await.expect("the new service token is kept");
    assert_eq!(auth.validations(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_service_credentials_or_rights_are_unavailable_and_say_nothing_secret() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let caller = ks.admin_token().await;

    let wrong = auth_as(&ks.url, "admin", "canary-wrong-pw", "admin", Duration::from_secs(300));
    let e = wrong.authenticate(Some(&caller), Access::Read).await.unwrap_err();
    assert!(matches!(e, AuthError::Unavailable(_)), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("refused the credentials (HTTP 401)"), "{message}");
    assert!(!message.contains("canary") && !message.contains(&caller), "{message}");
    assert_eq!(wrong.validations(), 0);

    // A plain member may validate only its own tokens.
    let name = unique("weak");
    let (_, project) = user(&ks, &name, "weak-pw", &["member"]).await;
    let weak = auth_as(&ks.url, &name, "weak-pw", &project, Duration::from_secs(300));
    let e = weak.authenticate(Some(&caller), Access::Read).await.unwrap_err();
    assert_eq!(e.status(), 503, "{e}");
    assert!(e.to_string().contains("`service` or `admin` role"), "{e}");
    assert!(!e.to_string().contains(&caller));
    // Not cached: the next request asks again.
    assert!(weak.authenticate(Some(&caller), Access::Read).await.is_err());
    assert_eq!(weak.validations(), 2);
}

/// No Keystone needed: nothing listens, or a server that never answers (the 5 s timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_down_or_silent_is_unavailable_without_the_token_in_the_message() {
    let token = "gAAAAABcanary-token-7d1";
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("its address").port()
    };
    let down = auth_as(&format!("http://127.0.0.1:{closed}/v3"), "admin", "canary-pw", "admin", Duration::from_secs(1));
    for _ in 0..2 {
        let e = down.authenticate(Some(token), Access::Read).await.unwrap_err();
        assert!(matches!(e, AuthError::Unavailable(_)), "never cached: {e:?}");
        assert_eq!((e.status(), e.code()), (503, "Unavailable"));
        let message = e.to_string();
        assert!(message.contains(&format!("127.0.0.1:{closed}")), "{message}");
        assert!(!message.contains("canary") && !format!("{e:?}").contains("canary"), "{message}");
    }

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = silent.local_addr().expect("its address").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let quiet = auth_as(&format!("http://127.0.0.1:{port}/v3"), "admin", "canary-pw", "admin", Duration::from_secs(1));
    let started = Instant::now();
    let e = quiet.authenticate(Some(token), Access::Read).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("timed out") && !e.to_string().contains("canary"), "{e}");
    assert!(took >= Duration::from_secs(5) && took < Duration::from_secs(8), "{took:?}");
    held.abort();
}

/// A token that expires in Keystone is not trusted past its expiry, whatever the cache's TTL
/// (a Keystone of this test whose tokens live 4 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_not_trusted_past_its_expiry() {
    let Some(ks) = Keystone::start_own_or_skip(4).await else { return };
    let auth = auth(&ks, Duration::from_secs(300));
    let token = ks.admin_token().await;
    let issued = Instant::now();
    auth.authenticate(Some(&token), Access::Admin).await.expect("valid");
    auth.authenticate(Some(&token), Access::Admin).await.expect("valid, from the cache");
    assert_eq!(auth.validations(), 1);
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(issued.elapsed())).await;
    let r = auth.authenticate(Some(&token), Access::Read).await;
    assert!(matches!(r, Err(AuthError::Invalid)), "{r:?}");
    assert!(auth.validations() >= 2, "asked again once the token expired");
}
