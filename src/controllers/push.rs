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
    handle(ctx, name, headers, body, move |state, bytes| state.replace_rows(&table, bytes)).await
}

async fn post_tables(
    State(ctx): State<Arc<Context>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(ctx, name, headers, body, |state, bytes| state.apply_document(bytes)).await
}

async fn handle(
    ctx: Arc<Context>,
    name: String,
    headers: HeaderMap,
    body: Body,
    build: impl FnOnce(&PushState, &[u8]) -> Result<Pending, PushError>,
) -> Response {
    let endpoint = {
        let pushes = lock(&ctx.pushes);
        pushes.get(&name).or_else(|| pushes.values().find(|e| e.engine_name == name)).cloned()
    };
    let Some(endpoint) = endpoint else {
        return error(StatusCode::NOT_FOUND, format!("no push datasource `{name}`"));
    };
    if let Err(response) = authenticate(&ctx, &endpoint, &headers).await {
        return response;
    }
    if !ctx.is_leader() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "this replica is a standby; push to the leader (retry)");
    }
    let limit = usize::try_from(endpoint.max_body).unwrap_or(usize::MAX);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes"));
    };
    let started = Instant::now();
    let mut state = endpoint.state.lock().await;
    let pending = match build(&state, &bytes) {
        Ok(p) => p,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, e.to_string());
        }
    };
    let added: usize = pending.changes.iter().map(|c| c.added.len()).sum();
    let removed: usize = pending.changes.iter().map(|c| c.removed.len()).sum();
    if !pending.changes.is_empty()
        && let Err(e) = ctx.engine.apply(&endpoint.engine_name, pending.changes.clone()).await
    {
        return error(StatusCode::BAD_REQUEST, format!("the engine refused the rows: {e}"));
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
    (StatusCode::OK, axum::Json(json!({"added": added, "removed": removed}))).into_response()
}

/// Whether the request's bearer token may push to `endpoint`.
async fn authenticate(ctx: &Context, endpoint: &PushEndpoint, headers: &HeaderMap) -> Result<(), Response> {
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
