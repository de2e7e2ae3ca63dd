//! Congress's v1 REST API and the dashboard, served by `congress serve` (standalone, over
//! SQLite) and by the operator (a view of the cluster). One router, one set of handlers;
//! what differs is the [`Backend`] that keeps the state.
//!
//! - [`v1`]: Congress's endpoints, with its shapes, status codes and error body;
//! - [`extensions`]: what Congress lacks and the dashboard needs (an overview, paged
//!   violations, proofs, the history of violations, ActionRequests);
//! - [`ui`]: the dashboard's assets, compiled in;
//! - [`auth`]: who may call (Keystone tokens, Kubernetes tokens, or nobody checks, on
//!   loopback only);
//! - [`standalone`]: the backend of `congress serve`.
//!
//! Every request is authenticated before it is read: GET and HEAD need read access,
//! everything else admin. Bodies are limited in size and parsed here, so a malformed one
//! gets Congress's error body with the reason, never a bare framework message.

pub mod auth;
pub mod backend;
pub mod convert;
pub mod error;
pub mod extensions;
pub mod operator;
pub mod standalone;
pub mod ui;
pub mod v1;

use auth::{Access, Authenticator};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use backend::Backend;
pub use error::ApiError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;
use std::time::Instant;

/// The default largest request body (a `PUT .../rows` of a big table fits).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// What every handler shares.
pub struct Api {
    pub backend: Arc<dyn Backend>,
    pub auth: Arc<dyn Authenticator>,
    pub ui: ui::Assets,
    pub metrics: ApiMetrics,
    /// What `/metrics` shows (the API's metrics).
    registry: prometheus_client::registry::Registry,
}

/// The API's metrics.
pub struct ApiMetrics {
    /// Requests answered, by method and status class.
    pub requests: Family<RequestLabel, Counter>,
    /// Error responses by cause (`rule_syntax`, `unauthorized`, ...).
    pub errors: Family<ReasonLabel, Counter>,
    pub seconds: Family<RequestLabel, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> ApiMetrics {
        fn buckets() -> Histogram {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16))
        }
        ApiMetrics {
            requests: Family::default(),
            errors: Family::default(),
            seconds: Family::new_with_constructor(buckets as fn() -> Histogram),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

impl ApiMetrics {
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register("congress_api_requests", "API requests answered", self.requests.clone());
        registry.register("congress_api_errors", "API error responses by cause", self.errors.clone());
        registry.register("congress_api_request_seconds", "Time to answer an API request", self.seconds.clone());
    }
}

impl Api {
    pub fn new(backend: Arc<dyn Backend>, auth: Arc<dyn Authenticator>, ui: ui::Assets) -> Api {
        let metrics = ApiMetrics::default();
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        Api { backend, auth, ui, metrics, registry }
    }

    /// The API's metrics in Prometheus's text format.
    pub fn encode_metrics(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The whole API: Congress's endpoints, the extensions and the dashboard.
pub fn router(api: Arc<Api>, max_body: usize) -> Router {
    let guarded = v1::routes()
        .merge(extensions::routes())
        .layer(axum::middleware::from_fn_with_state(api.clone(), authenticate))
        .layer(axum::extract::DefaultBodyLimit::max(max_body));
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(api): State<Arc<Api>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], api.encode_metrics())
            }),
        )
        .merge(ui::routes())
        .merge(guarded)
        .fallback(|| async { ApiError::not_found("no such resource") })
        .layer(axum::middleware::from_fn_with_state(api.clone(), observe))
        .with_state(api)
}

/// Count and time every request; log failures with their cause.
async fn observe(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let label = RequestLabel { method: method.to_string(), status: format!("{}xx", status.as_u16() / 100) };
    api.metrics.requests.get_or_create(&label).inc();
    api.metrics.seconds.get_or_create(&label).observe(started.elapsed().as_secs_f64());
    if let Some(error::ErrorReason(reason)) = response.extensions().get::<error::ErrorReason>() {
        api.metrics.errors.get_or_create(&ReasonLabel { reason: (*reason).to_string() }).inc();
        tracing::info!(%method, %path, status = status.as_u16(), reason, "request refused");
    }
    response
}

/// Authenticate the caller: read access for GET and HEAD, admin for the rest.
async fn authenticate(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let need = if matches!(*request.method(), Method::GET | Method::HEAD) { Access::Read } else { Access::Admin };
    let token = auth::request_token(request.headers()).map(str::to_string);
    match api.auth.authenticate(token.as_deref(), need).await {
        Ok(identity) => {
            let span = tracing::debug_span!("api", user = %identity.user);
            let _entered = span.enter();
            next.run(request).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let mut response = ApiError::new(status, 0, e.code(), e.to_string()).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Keystone"));
            }
            response
        }
    }
}

/// A JSON body, parsed here so every problem gets Congress's error body: too large (413),
/// not JSON (400, with `line:col`), the wrong shape (400, naming the field).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A request body, read within the size limit (413 with Congress's error body beyond it).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, 1000, "body_too_large", "the request body is too large")
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })
    }
}

/// Parse a request body (an empty body is JSON `null`).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| {
        let what = if e.is_data() { "invalid request body" } else { "the request body is not valid JSON" };
        ApiError::new(StatusCode::BAD_REQUEST, 1000, "malformed_body", format!("{what}: {e}"))
            .with_data(serde_json::json!({"line": e.line(), "column": e.column()}))
    })
}

/// Serve `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// A 201 with a JSON body.
pub fn created(body: serde_json::Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}
