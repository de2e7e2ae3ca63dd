//! The HTTP side of `push` datasources, served beside `/metrics`:
//!
//! - `PUT /v1/data-sources/{name}/tables/{table}/rows` with a JSON list of rows replaces the
//!   table (Congress's API, and python-congressclient's `datasource row update`);
//! - `POST /v1/data-sources/{name}/tables` with `{"replace": {...}, "patch": {...}}` changes
//!   several tables in one transaction.
//!
//! Every request is authenticated (`Authorization: Bearer`, checked against the `token` of
//! the Datasource's Secret, or a ServiceAccount token checked with a TokenReview); bodies
//! over the limit, unknown tables, wrong widths and bad JSON get a 4xx with Congress's error
//! body (`{"error": {"message", "error_code"}}`) and change nothing. Only the leader takes
//! pushes (a standby answers 503: the engine that counts is the leader's).

use super::{Context, lock};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use congress_drivers::api_auth::{Access, Authenticator};
use congress_drivers::credentials::SecretValue;
use congress_drivers::push::{Pending, PushError, PushState};
use congress_drivers::{DriverStatus, Sink};
use k8s_openapi::api::authentication::v1::TokenReview;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// The default largest body accepted.
pub const DEFAULT_MAX_BODY: u64 = 8 << 20;

/// Who may push.
#[derive(Debug)]
pub enum PushAuth {
    Bearer(SecretValue),
    /// ServiceAccount tokens, checked with a TokenReview; the users allowed (none when empty).
    ServiceAccount(Vec<String>),
}

/// One `push` datasource's endpoint.
pub struct PushEndpoint {
    pub engine_name: String,
    pub auth: PushAuth,
    pub max_body: u64,
    pub state: tokio::sync::Mutex<PushState>,
    pub status: watch::Sender<DriverStatus>,
}

/// The push routes.
pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/v1/data-sources/{name}/tables/{table}/rows", axum::routing::put(put_rows))
        .route("/v1/data-sources/{name}/tables", axum::routing::post(post_tables))
        .with_state(ctx)
}

/// Congress's error body.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({"error": {"message": message, "error_code": status.as_u16(), "error_data": null}});
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    response
}

async fn put_rows(
    State(ctx): State<Arc<Context>>,
    Path((name, table)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(ctx, None, name, headers, body, move |state, bytes| state.replace_rows(&table, bytes)).await
}

async fn post_tables(
    State(ctx): State<Arc<Context>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(ctx, None, name, headers, body, |state, bytes| state.apply_document(bytes)).await
}

/// A push among the API's requests: `PUT /v1/data-sources/{name}/tables/{table}/rows`
/// (`table` is set) or `POST /v1/data-sources/{name}/tables`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    pub name: String,
    pub table: Option<String>,
}

impl PushTarget {
    /// The push that `method` on `path` is, if it is one.
    pub fn of(method: &axum::http::Method, path: &str) -> Option<PushTarget> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let ok = |s: &str| !s.is_empty() && !s.contains('%');
        match parts.as_slice() {
            ["", "v1", "data-sources", name, "tables", table, "rows"]
                if method == axum::http::Method::PUT && ok(name) && ok(table) =>
            {
                Some(PushTarget { name: name.to_string(), table: Some(table.to_string()) })
            }
            ["", "v1", "data-sources", name, "tables"] if method == axum::http::Method::POST && ok(name) => {
                Some(PushTarget { name: name.to_string(), table: None })
            }
            _ => None,
        }
    }
}

/// Serve a push that came in with the API's requests: also let in callers that the API's
/// authenticator gives admin access (a Kubernetes token with `create` on policies).
pub async fn serve(
    ctx: Arc<Context>,
    api_auth: Arc<dyn Authenticator>,
    target: PushTarget,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let PushTarget { name, table } = target;
    match table {
        Some(table) => {
            handle(ctx, Some(api_auth), name, headers, body, move |state, bytes| state.replace_rows(&table, bytes))
                .await
        }
        None => handle(ctx, Some(api_auth), name, headers, body, |state, bytes| state.apply_document(bytes)).await,
    }
}

/// Why a push was refused: the HTTP status and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    fn new(status: StatusCode, message: impl Into<String>) -> Refused {
        Refused { status, message: message.into() }
    }
}

/// The endpoint of `push` datasource `name` (its resource or engine name).
pub fn endpoint(ctx: &Context, name: &str) -> Option<Arc<PushEndpoint>> {
    let pushes = lock(&ctx.pushes);
    pushes.get(name).or_else(|| pushes.values().find(|e| e.engine_name == name)).cloned()
}

/// Replace table `table` of `push` datasource `name` with `rows` (already authorised: the
/// operator's API). Rows added and removed.
pub async fn replace_rows(
    ctx: &Context,
    name: &str,
    table: &str,
    rows: &[Vec<serde_json::Value>],
) -> Result<(usize, usize), Refused> {
    let endpoint = endpoint(ctx, name).ok_or_else(|| {
        Refused::new(StatusCode::NOT_FOUND, format!("no push datasource `{name}` (only `push` data sources take rows)"))
    })?;
    if !ctx.is_leader() {
        return Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica is a standby; push to the leader (retry)",
        ));
    }
    let bytes = serde_json::to_vec(rows).map_err(|e| Refused::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    apply(ctx, &endpoint, name, |state| state.replace_rows(table, &bytes)).await
}

async fn handle(
    ctx: Arc<Context>,
    api_auth: Option<Arc<dyn Authenticator>>,
    name: String,
    headers: HeaderMap,
    body: Body,
    build: impl FnOnce(&PushState, &[u8]) -> Result<Pending, PushError>,
) -> Response {
    let Some(endpoint) = endpoint(&ctx, &name) else {
        return error(StatusCode::NOT_FOUND, format!("no push datasource `{name}`"));
    };
    if let Err(response) = authenticate(&ctx, &endpoint, &headers, api_auth.as_deref()).await {
        return response;
    }
    if !ctx.is_leader() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "this replica is a standby; push to the leader (retry)");
    }
    let limit = usize::try_from(endpoint.max_body).unwrap_or(usize::MAX);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes"));
    };
    match apply(&ctx, &endpoint, &name, |state| build(state, &bytes)).await {
        Ok((added, removed)) => {
            (StatusCode::OK, axum::Json(json!({"added": added, "removed": removed}))).into_response()
        }
        Err(r) => error(r.status, r.message),
    }
}

/// Check a push against the datasource's state, apply it to the engine in one
/// transaction, then record it. Rows added and removed.
async fn apply(
    ctx: &Context,
    endpoint: &PushEndpoint,
    name: &str,
    build: impl FnOnce(&PushState) -> Result<Pending, PushError>,
) -> Result<(usize, usize), Refused> {
    let started = Instant::now();
    let mut state = endpoint.state.lock().await;
    let pending = build(&state).map_err(|e| {
        Refused::new(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), e.to_string())
    })?;
    let added: usize = pending.changes.iter().map(|c| c.added.len()).sum();
    let removed: usize = pending.changes.iter().map(|c| c.removed.len()).sum();
    if !pending.changes.is_empty()
        && let Err(e) = ctx.engine.apply(&endpoint.engine_name, pending.changes.clone()).await
    {
        return Err(Refused::new(StatusCode::BAD_REQUEST, format!("the engine refused the rows: {e}")));
    }
    state.commit(pending);
    let rows = state.counts();
    drop(state);
    endpoint.status.send_modify(|s| {
        s.synced = true;
        s.rows = rows;
        s.last_sync = Some(congress_model::now_rfc3339());
        s.polls += 1;
        s.rows_changed = (added + removed) as u64;
        s.last_poll_seconds = started.elapsed().as_secs_f64();
    });
    tracing::info!(datasource = %name, added, removed, "rows pushed");
    Ok((added, removed))
}

/// Whether the request's bearer token may push to `endpoint`.
/// With `api_auth` (the operator's API), a token it gives admin access is let in too.
async fn authenticate(
    ctx: &Context,
    endpoint: &PushEndpoint,
    headers: &HeaderMap,
    api_auth: Option<&dyn Authenticator>,
) -> Result<(), Response> {
    let refused = match endpoint_auth(ctx, endpoint, headers).await {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    let token = congress_drivers::api_auth::request_token(headers);
    match (api_auth, token) {
        (Some(auth), Some(token)) if auth.authenticate(Some(token), Access::Admin).await.is_ok() => Ok(()),
        _ => Err(refused),
    }
}

/// Whether the request's token is the one `endpoint` takes.
async fn endpoint_auth(ctx: &Context, endpoint: &PushEndpoint, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(error(StatusCode::UNAUTHORIZED, "a bearer token is required (`Authorization: Bearer TOKEN`)"));
    };
    match &endpoint.auth {
        PushAuth::Bearer(expected) => {
            if same(token.as_bytes(), expected.expose().as_bytes()) {
                Ok(())
            } else {
                Err(error(StatusCode::UNAUTHORIZED, "the bearer token is not the datasource's"))
            }
        }
        PushAuth::ServiceAccount(allowed) => {
            let review: TokenReview = serde_json::from_value(json!({"spec": {"token": token}}))
                .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot build a TokenReview"))?;
            let api: Api<TokenReview> = Api::all(ctx.client.clone());
            let answer = api.create(&PostParams::default(), &review).await.map_err(|e| {
                tracing::warn!(error = %e, "TokenReview failed");
                error(StatusCode::SERVICE_UNAVAILABLE, "the token could not be reviewed (TokenReview failed)")
            })?;
            let status = answer.status.unwrap_or_default();
            if status.authenticated != Some(true) {
                return Err(error(StatusCode::UNAUTHORIZED, "the token is not a valid ServiceAccount token"));
            }
            let user = status.user.and_then(|u| u.username).unwrap_or_default();
            if allowed.contains(&user) {
                Ok(())
            } else {
                Err(error(StatusCode::FORBIDDEN, format!("`{user}` may not push to this datasource")))
            }
        }
    }
}

/// Compare in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
    }
}
