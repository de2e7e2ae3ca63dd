//! A fake OpenStack cloud for driver tests: nova, neutron, glance and cinder answering on
//! 127.0.0.1 with the documented response shapes of their list APIs (the shapes Congress's
//! drivers translate), paginated as each service paginates (`X_links` lists, glance's `next`
//! path), with switches to inject every fault a poll must survive and to change objects
//! between polls. Tokens are checked against a real Keystone when one is given (as
//! keystonemiddleware does: `GET /v3/auth/tokens`), and cached once valid.
//!
//! Services live under one port: `/compute/v2.1`, `/network`, `/image`,
//! `/volume/v3/{project}`; [`FakeCloud::endpoints`] lists them for a Keystone catalog.
//!
//! Actions are answered as the real APIs answer them, and change the listed objects (the next
//! poll sees them): nova's server actions (`POST servers/{id}/action`, 202; 409 when the
//! server is not in a state the action starts from, as pausing a paused one), its metadata
//! (`POST servers/{id}/metadata`) and `DELETE servers/{id}` (204); neutron's
//! `GET`/`PUT v2.0/ports/{id}`; and `/hooks/...`, a webhook receiver that answers 200 to
//! anything. Every action request is recorded in [`CloudState::actions`], with its headers.

#![allow(dead_code)] // each test binary that includes this uses part of it

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A fault a service shows until it is cleared.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer after this long (longer than the driver's timeout: a timeout).
    Slow(Duration),
    /// Answer with this status and a JSON error body.
    Status(u16),
    /// Answer with this status to the next N requests only (then recover: a failure that
    /// passes, however slowly the caller comes back).
    StatusTimes(u16, u32),
    /// Answer 401 to the next N requests (then recover: a token the service forgot).
    Unauthorized(u32),
    /// Answer 200 with HTML.
    NotJson,
    /// Answer 200 with JSON of another shape (the list is an object).
    WrongShape,
    /// Answer 200 with a valid JSON body of this many bytes.
    Huge(usize),
    /// Point the next-page link at another host (which would get the credentials).
    ForeignNextLink,
    /// Point the next-page link back at the page itself.
    LoopingNextLink,
}

/// How the fake checks tokens.
#[derive(Clone, Debug)]
pub enum TokenCheck {
    /// Any `X-Auth-Token` (or none) is accepted.
    None,
    /// Valid when the real Keystone at `url` says so (checked with an admin token of the
    /// fake's own, taken again when it expires).
    Keystone { url: String, admin_password: String },
    /// `Authorization: Bearer TOKEN` (the generic `http` driver's bearer auth).
    Bearer(String),
    /// `Authorization: Basic base64(USER:PASSWORD)`.
    Basic(String, String),
}

/// One listed collection: its objects and how it pages.
#[derive(Clone, Debug, Default)]
pub struct Collection {
    /// The key of the list in the answer (`servers`).
    pub key: &'static str,
    pub items: Vec<Value>,
    /// `servers_links`-style link lists (`X_links`), glance's `next`, or no paging.
    pub paging: Paging,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Paging {
    #[default]
    None,
    Links,
    GlanceNext,
}

/// Everything the fake serves, and the switches.
#[derive(Debug, Default)]
pub struct CloudState {
    /// By route: `compute/servers/detail`, `network/v2.0/ports`, `volume/volumes/detail`.
    pub collections: BTreeMap<String, Collection>,
    /// By service: `compute`, `network`, `image`, `volume`.
    pub faults: HashMap<String, Fault>,
    /// Items per page (default 1000, nova's `max_limit`).
    pub page_size: usize,
    /// Requests served, as `service path?query`.
    pub requests: Vec<String>,
    /// `X-Auth-Token` values seen (to check tokens are reused).
    pub tokens_seen: Vec<String>,
    /// Time spent building answers (for benches: the fake's share of a poll).
    pub busy: Duration,
    /// Every POST, PUT, PATCH and DELETE, in order.
    pub actions: Vec<ActionSeen>,
    valid_tokens: HashSet<String>,
}

impl CloudState {
    pub fn collection(&mut self, route: &str) -> &mut Collection {
        self.collections.get_mut(route).unwrap_or_else(|| panic!("no collection {route}"))
    }

    /// The object of `route` whose `id` is `id`.
    pub fn object(&mut self, route: &str, id: &str) -> &mut Value {
        self.collection(route).items.iter_mut().find(|o| o["id"] == id).unwrap_or_else(|| panic!("no {id} in {route}"))
    }
}

/// One action request as it arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionSeen {
    pub method: String,
    /// The path as sent (still percent-encoded), without the leading `/`:
    /// `compute/v2.1/servers/srv-000000/action`.
    pub path: String,
    pub query: Option<String>,
    /// The body as JSON (`Null` when empty; a string when it is not JSON).
    pub body: Value,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
}

impl ActionSeen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// The running fake.
pub struct FakeCloud {
    pub url: String,
    pub project: String,
    state: Arc<Mutex<CloudState>>,
    check: TokenCheck,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct App {
    state: Arc<Mutex<CloudState>>,
    check: TokenCheck,
    base: String,
    client: reqwest::Client,
    admin_token: Arc<Mutex<Option<String>>>,
}

impl FakeCloud {
    /// Start serving `state` on a free port of 127.0.0.1.
    pub async fn start(state: CloudState, check: TokenCheck, project: &str) -> FakeCloud {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let (state, router) = FakeCloud::router(state, &check, &url);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeCloud { url, project: project.to_string(), state, check, task }
    }

    /// [`FakeCloud::start`] over HTTPS, with a certificate for 127.0.0.1 issued by a CA made
    /// for it with `openssl`: returns the cloud and the CA's PEM.
    pub async fn start_tls(state: CloudState, check: TokenCheck, project: &str) -> (FakeCloud, String) {
        let (ca, cert, key) = tls_files();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let url = format!("https://{}", listener.local_addr().expect("local address"));
        let (state, router) = FakeCloud::router(state, &check, &url);
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
            rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                .map(|c| c.expect("a certificate"))
                .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a key");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a server certificate");
        let tls = TlsListener { tcp: listener, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
        let task = tokio::spawn(async move {
            let _ = axum::serve(tls, router).await;
        });
        (FakeCloud { url, project: project.to_string(), state, check, task }, ca)
    }

    fn router(state: CloudState, check: &TokenCheck, url: &str) -> (Arc<Mutex<CloudState>>, Router) {
        let mut state = state;
        if state.page_size == 0 {
            state.page_size = 1000;
        }
        let state = Arc::new(Mutex::new(state));
        let app = App {
            state: state.clone(),
            check: check.clone(),
            base: url.to_string(),
            client: reqwest::Client::new(),
            admin_token: Arc::new(Mutex::new(None)),
        };
        let router = Router::new()
            .route("/{service}/{*rest}", axum::routing::get(serve).post(act).put(act).patch(act).delete(act))
            .with_state(app);
        (state, router)
    }

    /// Change what is served, or set a fault.
    pub fn state(&self) -> MutexGuard<'_, CloudState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_fault(&self, service: &str, fault: Option<Fault>) {
        let mut s = self.state();
        match fault {
            Some(f) => s.faults.insert(service.to_string(), f),
            None => s.faults.remove(service),
        };
    }

    /// Each service's catalog type and endpoint URL.
    pub fn endpoints(&self) -> Vec<(&'static str, String)> {
        vec![
            ("compute", format!("{}/compute/v2.1", self.url)),
            ("network", format!("{}/network", self.url)),
            ("image", format!("{}/image", self.url)),
            ("volumev3", format!("{}/volume/v3/{}", self.url, self.project)),
        ]
    }
}

/// The fault a request to `service` meets; a fault for the next N requests counts this one.
fn take_fault(faults: &mut HashMap<String, Fault>, service: &str) -> Option<Fault> {
    let fault = faults.get(service).cloned();
    if let Some(Fault::Unauthorized(n) | Fault::StatusTimes(_, n)) = faults.get_mut(service) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            faults.remove(service);
        }
    }
    fault
}

async fn serve(
    State(app): State<App>,
    Path((service, rest)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let fault = {
        let mut s = app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.requests.push(format!("{service} {rest}?{}", q.join("&")));
        if let Some(t) = &token {
            s.tokens_seen.push(t.clone());
        }
        take_fault(&mut s.faults, &service)
    };
    match &fault {
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Status(code) | Fault::StatusTimes(code, _)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, axum::Json(json!({"computeFault": {"code": code, "message": "injected"}})))
                .into_response();
        }
        Some(Fault::Unauthorized(_)) => return unauthorized(),
        _ => {}
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    if !app.token_valid(token.as_deref(), bearer.as_deref()).await {
        return unauthorized();
    }
    // Cinder's endpoint carries the project: `volume/v3/{project}/volumes/detail`.
    let route = match service.as_str() {
        "volume" => rest.splitn(3, '/').nth(2).map(|r| format!("volume/{r}")),
        "compute" => rest.strip_prefix("v2.1/").map(|r| format!("compute/{r}")),
        _ => Some(format!("{service}/{rest}")),
    };
    let started = std::time::Instant::now();
    let page = {
        let s = app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        route.as_ref().and_then(|r| s.collections.get(r)).map(|c| page(c, &query, s.page_size))
    };
    let Some((items, next_marker, key, paging)) = page else {
        // One object: `servers/{id}` of `servers/detail`, `v2.0/ports/{id}` of `v2.0/ports`.
        let one = route.as_deref().and_then(|r| {
            let (list, id) = r.rsplit_once('/')?;
            let s = app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let c = s.collections.get(list).or_else(|| s.collections.get(&format!("{list}/detail")))?;
            let object = c.items.iter().find(|o| o["id"] == id)?.clone();
            Some(json!({ c.key.trim_end_matches('s'): object }))
        });
        return match one {
            Some(body) => axum::Json(body).into_response(),
            None => not_found("no such path"),
        };
    };
    match &fault {
        Some(Fault::NotJson) => {
            return (StatusCode::OK, [("content-type", "text/html")], "<html><body>maintenance</body></html>")
                .into_response();
        }
        Some(Fault::WrongShape) => return axum::Json(json!({ key: {"unexpected": items.len()} })).into_response(),
        Some(Fault::Huge(n)) => {
            let filler = "x".repeat(*n);
            return axum::Json(json!({ key: [], "filler": filler })).into_response();
        }
        _ => {}
    }
    let mut body = serde_json::Map::new();
    body.insert(key.to_string(), Value::Array(items));
    if let Some(marker) = next_marker {
        let mut q: BTreeMap<String, String> = query.clone();
        q.insert("marker".into(), marker);
        let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match paging {
            Paging::Links => {
                let host = if fault == Some(Fault::ForeignNextLink) { "http://attacker.invalid" } else { &app.base };
                let mut href = format!("{host}/{service}/{rest}?{}", qs.join("&"));
                if fault == Some(Fault::LoopingNextLink) {
                    let same: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    href = format!("{host}/{service}/{rest}?{}", same.join("&"));
                }
                body.insert(format!("{key}_links"), json!([{"rel": "next", "href": href}]));
            }
            // Glance's next link is a path from the API root, without the endpoint's prefix.
            Paging::GlanceNext => {
                let path = rest.clone();
                body.insert("next".into(), json!(format!("/{path}?{}", qs.join("&"))));
            }
            Paging::None => {}
        }
    }
    let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).busy += started.elapsed();
    Response::builder().header("content-type", "application/json").body(Body::from(bytes)).unwrap_or_default()
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"itemNotFound": {"code": 404, "message": message}}))).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"badRequest": {"code": 400, "message": message}}))).into_response()
}

/// A POST, PUT, PATCH or DELETE: recorded, then answered as the service would (after the
/// faults and the token check of a GET).
async fn act(
    State(app): State<App>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let raw = uri.path().trim_start_matches('/').to_string();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let (service, rest) = raw.split_once('/').unwrap_or((raw.as_str(), ""));
    let (service, rest) = (service.to_string(), rest.to_string());
    let fault = {
        let mut s = app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.actions.push(ActionSeen {
            method: method.to_string(),
            path: raw.clone(),
            query: uri.query().map(str::to_string),
            body: body.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
        });
        take_fault(&mut s.faults, &service)
    };
    match &fault {
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Status(code) | Fault::StatusTimes(code, _)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, axum::Json(json!({"computeFault": {"code": code, "message": "injected"}})))
                .into_response();
        }
        Some(Fault::Unauthorized(_)) => return unauthorized(),
        _ => {}
    }
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if !app.token_valid(token, bearer).await {
        return unauthorized();
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut s = app.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match (service.as_str(), method.as_str(), parts.as_slice()) {
        ("hooks", _, _) => axum::Json(json!({"ok": true})).into_response(),
        ("compute", "POST", ["v2.1", "servers", id, "action"]) => {
            let Some(server) = find(&mut s, "compute/servers/detail", id) else {
                return not_found(&format!("Instance {id} could not be found."));
            };
            server_action(server, id, &body)
        }
        ("compute", "POST", ["v2.1", "servers", id, "metadata"]) => {
            let Some(server) = find(&mut s, "compute/servers/detail", id) else {
                return not_found(&format!("Instance {id} could not be found."));
            };
            let Some(new) =
                body.get("metadata").and_then(Value::as_object).filter(|m| m.values().all(Value::is_string))
            else {
                return bad_request("Malformed request body: metadata must be an object of strings");
            };
            if !server["metadata"].is_object() {
                server["metadata"] = json!({});
            }
            for (k, v) in new {
                server["metadata"][k] = v.clone();
            }
            axum::Json(json!({"metadata": server["metadata"].clone()})).into_response()
        }
        ("compute", "DELETE", ["v2.1", "servers", id]) => {
            let Some(c) = s.collections.get_mut("compute/servers/detail") else { return not_found("no servers") };
            let before = c.items.len();
            c.items.retain(|o| o["id"] != *id);
            if c.items.len() == before {
                return not_found(&format!("Instance {id} could not be found."));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("network", "POST", ["v2.0", "security-groups"]) => {
            let Some(new) = body.get("security_group").and_then(Value::as_object) else {
                return bad_request("Resource body required");
            };
            let Some(groups) = s.collections.get_mut("network/v2.0/security-groups") else {
                return not_found("no security groups");
            };
            let mut group = json!({"id": format!("sg-new-{}", groups.items.len()), "security_group_rules": []});
            for (k, v) in new {
                group[k] = v.clone();
            }
            groups.items.push(group.clone());
            (StatusCode::CREATED, axum::Json(json!({"security_group": group}))).into_response()
        }
        ("network", "PUT", ["v2.0", "ports", id]) => {
            let Some(port) = find(&mut s, "network/v2.0/ports", id) else {
                return (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"NeutronError": {"type": "PortNotFound",
                        "message": format!("Port {id} could not be found."), "detail": ""}})),
                )
                    .into_response();
            };
            let Some(update) = body.get("port").and_then(Value::as_object) else {
                return bad_request("Resource body required");
            };
            for (k, v) in update {
                if k != "id" {
                    port[k] = v.clone();
                }
            }
            axum::Json(json!({"port": port.clone()})).into_response()
        }
        _ => not_found("no such path"),
    }
}

fn find<'s>(s: &'s mut CloudState, route: &str, id: &str) -> Option<&'s mut Value> {
    s.collections.get_mut(route)?.items.iter_mut().find(|o| o["id"] == id)
}

/// Nova's server actions: `{"pause": null}` and the like, each from the states it starts
/// from (else 409, as nova answers).
fn server_action(server: &mut Value, id: &str, body: &Value) -> Response {
    let Some((action, _)) = body.as_object().filter(|b| b.len() == 1).and_then(|b| b.iter().next()) else {
        return bad_request("Malformed request body: one action expected");
    };
    let status = server["status"].as_str().unwrap_or_default().to_string();
    let (from, to): (&[&str], Option<&str>) = match action.as_str() {
        "pause" => (&["ACTIVE"], Some("PAUSED")),
        "unpause" => (&["PAUSED"], Some("ACTIVE")),
        "os-stop" => (&["ACTIVE", "ERROR"], Some("SHUTOFF")),
        "os-start" => (&["SHUTOFF"], Some("ACTIVE")),
        "suspend" => (&["ACTIVE"], Some("SUSPENDED")),
        "resume" => (&["SUSPENDED"], Some("ACTIVE")),
        "reboot" => (&["ACTIVE", "SHUTOFF"], None),
        "lock" | "unlock" => {
            server["locked"] = json!(action == "lock");
            return StatusCode::ACCEPTED.into_response();
        }
        other => return bad_request(&format!("There is no such action: {other}")),
    };
    if !from.contains(&status.as_str()) {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"conflictingRequest": {"code": 409, "message": format!(
                "Cannot '{action}' instance {id} while it is in vm_state {}", status.to_lowercase())}})),
        )
            .into_response();
    }
    if let Some(to) = to {
        server["status"] = json!(to);
    }
    StatusCode::ACCEPTED.into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"code": 401, "message": "The request you have made requires authentication."}})),
    )
        .into_response()
}

/// The page after `query.marker`, of `query.limit` (at most the page size) items.
fn page(
    c: &Collection,
    query: &BTreeMap<String, String>,
    page_size: usize,
) -> (Vec<Value>, Option<String>, &'static str, Paging) {
    if c.paging == Paging::None {
        return (c.items.clone(), None, c.key, c.paging);
    }
    let start = match query.get("marker") {
        Some(m) => c.items.iter().position(|o| o["id"] == m.as_str()).map_or(c.items.len(), |i| i + 1),
        None => 0,
    };
    let limit = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(page_size).min(page_size).max(1);
    let end = (start + limit).min(c.items.len());
    let items = c.items[start..end].to_vec();
    let next =
        (end < c.items.len()).then(|| items.last().and_then(|o| o["id"].as_str()).unwrap_or_default().to_string());
    (items, next, c.key, c.paging)
}

impl App {
    async fn token_valid(&self, token: Option<&str>, authorization: Option<&str>) -> bool {
        let (url, admin_password) = match &self.check {
            TokenCheck::None => return true,
            TokenCheck::Bearer(expected) => return authorization == Some(format!("Bearer {expected}").as_str()),
            TokenCheck::Basic(user, password) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                return authorization == Some(format!("Basic {encoded}").as_str());
            }
            TokenCheck::Keystone { url, admin_password } => (url, admin_password),
        };
        let Some(token) = token else { return false };
        if self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).valid_tokens.contains(token) {
            return true;
        }
        // Keystone's answer about `token`: 200 valid, 404 not; 401 means the fake's own admin
        // token expired: take a new one and ask again.
        for _ in 0..2 {
            let admin = self.admin_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let admin = match admin {
                Some(t) => t,
                None => match admin_token(&self.client, url, admin_password).await {
                    Some(t) => {
                        *self.admin_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(t.clone());
                        t
                    }
                    None => return false,
                },
            };
            let answer = self
                .client
                .get(format!("{url}/auth/tokens"))
                .header("X-Auth-Token", admin)
                .header("X-Subject-Token", token)
                .send()
                .await;
            match answer.map(|r| r.status().as_u16()) {
                Ok(401) => *self.admin_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None,
                Ok(status) if (200..300).contains(&status) => {
                    self.state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .valid_tokens
                        .insert(token.to_string());
                    return true;
                }
                _ => return false,
            }
        }
        false
    }
}

/// A project-scoped admin token from the Keystone at `url`.
async fn admin_token(client: &reqwest::Client, url: &str, password: &str) -> Option<String> {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = client.post(format!("{url}/auth/tokens")).json(&body).send().await.ok()?;
    r.headers().get("x-subject-token")?.to_str().ok().map(str::to_string)
}

/// TLS connections, handshaken one at a time (a handshake that fails, e.g. a client that
/// does not trust the certificate, is dropped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed, made with `openssl`: (CA PEM,
/// certificate PEM, key PEM).
fn tls_files() -> (String, String, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=congress-test-ca"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.path().join("ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect(f);
    (read("ca.crt"), read("srv.crt"), read("srv.key"))
}

/// Forget the tokens validated so far (the next request of each is checked again).
pub fn forget_tokens(cloud: &FakeCloud) {
    cloud.state().valid_tokens.clear();
}

// ---- Objects in the documented shapes ----

/// A nova server (`GET /servers/detail`, microversion 2.26) on network `network` at `ip`.
pub fn server(id: &str, name: &str, status: &str, network: &str, ip: &str) -> Value {
    json!({
        "id": id, "name": name, "status": status, "tenant_id": "p1", "user_id": "u1",
        "hostId": "h1", "created": "2026-11-30T10:00:00Z", "updated": "2026-11-30T10:00:00Z",
        "image": {"id": "img-1", "links": []}, "flavor": {"id": "m1.small", "links": []},
        "OS-EXT-AZ:availability_zone": "nova", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute-1",
        "addresses": {network: [{"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed",
                                  "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]},
        "tags": ["web"], "metadata": {"owner": "team-a"}, "links": []
    })
}

pub fn flavor(id: &str, vcpus: i64, ram: i64) -> Value {
    json!({"id": id, "name": id, "vcpus": vcpus, "ram": ram, "disk": 20, "OS-FLV-EXT-DATA:ephemeral": 0,
           "rxtx_factor": 1.0, "os-flavor-access:is_public": true, "links": []})
}

/// A neutron network (`GET /v2.0/networks`).
pub fn network(id: &str, name: &str, status: &str) -> Value {
    json!({"id": id, "name": name, "status": status, "tenant_id": "p1", "project_id": "p1",
           "admin_state_up": true, "shared": false, "subnets": [], "router:external": false})
}

/// A neutron port of `device` on `network` at `ip`.
pub fn port(id: &str, network: &str, device: &str, ip: &str) -> Value {
    json!({"id": id, "name": "", "network_id": network, "tenant_id": "p1", "mac_address": "fa:16:3e:00:00:01",
           "admin_state_up": true, "status": "ACTIVE", "device_id": device, "device_owner": "compute:nova",
           "fixed_ips": [{"subnet_id": "s1", "ip_address": ip}], "security_groups": ["sg-default"]})
}

/// A glance image (`GET /v2/images`).
pub fn image(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "status": "active", "visibility": "public", "protected": false,
           "container_format": "bare", "disk_format": "qcow2", "owner": "p1", "min_ram": 0, "min_disk": 0,
           "size": 1024, "checksum": "c", "created_at": "2026-11-30T10:00:00Z",
           "updated_at": "2026-11-30T10:00:00Z", "tags": ["base"], "file": format!("/v2/images/{id}/file"),
           "schema": "/v2/schemas/image"})
}

/// A cinder volume (`GET /v3/{project}/volumes/detail`) attached to `server`.
pub fn volume(id: &str, server: Option<&str>) -> Value {
    let attachments: Vec<Value> = server
        .map(|s| {
            json!({"server_id": s, "attachment_id": format!("att-{id}"), "host_name": null,
                        "device": "/dev/vdb", "volume_id": id, "id": id})
        })
        .into_iter()
        .collect();
    json!({"id": id, "name": id, "size": 10, "status": if server.is_some() {"in-use"} else {"available"},
           "user_id": "u1", "description": null, "bootable": "false", "created_at": "2026-11-30T10:00:00Z",
           "volume_type": "lvm", "encrypted": false, "availability_zone": "nova", "replication_status": null,
           "multiattach": false, "snapshot_id": null, "source_volid": null, "consistencygroup_id": null,
           "migration_status": null, "attachments": attachments})
}

/// A cloud with `servers` servers on network `net-1` (all ACTIVE), the networks and ports
/// they need, a flavor, an image and a volume.
pub fn small_cloud(servers: usize) -> CloudState {
    let mut c = CloudState::default();
    let mut add = |route: &str, key: &'static str, paging: Paging, items: Vec<Value>| {
        c.collections.insert(route.to_string(), Collection { key, items, paging });
    };
    let ids: Vec<String> = (0..servers).map(|i| format!("srv-{i:06}")).collect();
    add(
        "compute/servers/detail",
        "servers",
        Paging::Links,
        ids.iter().enumerate().map(|(i, id)| server(id, &format!("vm-{i}"), "ACTIVE", "net-1", &ip(i))).collect(),
    );
    add("compute/flavors/detail", "flavors", Paging::Links, vec![flavor("m1.small", 1, 2048)]);
    add(
        "compute/os-hypervisors/detail",
        "hypervisors",
        Paging::Links,
        vec![json!({"id": 1,
        "hypervisor_hostname": "compute-1", "state": "up", "status": "enabled"})],
    );
    add(
        "compute/os-services",
        "services",
        Paging::None,
        vec![json!({"id": 1, "binary": "nova-compute",
        "host": "compute-1", "zone": "nova", "status": "enabled", "state": "up",
        "updated_at": "2026-11-30T10:00:00Z", "disabled_reason": null})],
    );
    add(
        "compute/os-availability-zone/detail",
        "availabilityZoneInfo",
        Paging::None,
        vec![json!({"zoneName": "nova", "zoneState": {"available": true}, "hosts": null})],
    );
    add("network/v2.0/networks", "networks", Paging::Links, vec![network("net-1", "private", "ACTIVE")]);
    add(
        "network/v2.0/ports",
        "ports",
        Paging::Links,
        ids.iter().enumerate().map(|(i, id)| port(&format!("port-{i:06}"), "net-1", id, &ip(i))).collect(),
    );
    add(
        "network/v2.0/subnets",
        "subnets",
        Paging::Links,
        vec![json!({
        "id": "s1", "name": "private-subnet", "tenant_id": "p1", "network_id": "net-1", "ip_version": 4,
        "cidr": "10.0.0.0/8", "gateway_ip": "10.0.0.1", "enable_dhcp": true, "ipv6_ra_mode": null,
        "ipv6_address_mode": null, "allocation_pools": [{"start": "10.0.0.2", "end": "10.255.255.254"}],
        "dns_nameservers": ["8.8.8.8", "8.8.4.4"], "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.1"}]})],
    );
    add(
        "network/v2.0/routers",
        "routers",
        Paging::Links,
        vec![
            json!({"id": "r1", "name": "edge", "tenant_id": "p1", "status": "ACTIVE", "admin_state_up": true,
               "distributed": false, "external_gateway_info": {"network_id": "public", "enable_snat": true,
               "external_fixed_ips": [{"subnet_id": "public-subnet", "ip_address": "172.24.4.10"}]}}),
            json!({"id": "r2", "name": "inner", "tenant_id": "p1", "status": "ACTIVE", "admin_state_up": false,
               "distributed": false, "external_gateway_info": null}),
        ],
    );
    add(
        "network/v2.0/security-groups",
        "security_groups",
        Paging::Links,
        vec![json!({
        "id": "sg-default", "name": "default", "tenant_id": "p1", "description": "Default security group",
        "security_group_rules": [
            {"id": "rule-1", "security_group_id": "sg-default", "tenant_id": "p1", "remote_group_id": null,
             "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
             "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
            {"id": "rule-2", "security_group_id": "sg-default", "tenant_id": "p1", "remote_group_id": "sg-default",
             "direction": "egress", "ethertype": "IPv6", "protocol": null, "port_range_min": null,
             "port_range_max": null, "remote_ip_prefix": null}]})],
    );
    add(
        "network/v2.0/floatingips",
        "floatingips",
        Paging::Links,
        vec![json!({
        "id": "fip-1", "router_id": "r1", "tenant_id": "p1", "floating_network_id": "public",
        "fixed_ip_address": "10.0.0.0", "floating_ip_address": "172.24.4.20", "port_id": "port-000000",
        "status": "ACTIVE"})],
    );
    add("image/v2/images", "images", Paging::GlanceNext, vec![image("img-1", "cirros")]);
    add("volume/volumes/detail", "volumes", Paging::Links, vec![volume("vol-1", ids.first().map(String::as_str))]);
    add(
        "volume/snapshots/detail",
        "snapshots",
        Paging::Links,
        vec![json!({
        "id": "snap-1", "name": "nightly", "size": 10, "status": "available", "volume_id": "vol-1",
        "created_at": "2026-11-30T10:00:00Z", "description": null})],
    );
    add(
        "volume/os-services",
        "services",
        Paging::None,
        vec![json!({
        "binary": "cinder-volume", "host": "storage-1@lvm", "zone": "nova", "status": "enabled", "state": "up",
        "updated_at": "2026-11-30T10:00:00Z", "disabled_reason": null})],
    );
    c
}

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}
