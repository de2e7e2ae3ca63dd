//! The dashboard's assets, compiled into the binary (nothing is fetched at run time), served
//! under `/ui/`; `GET /` answers Congress's version list, or sends a browser to `/ui/`.
//! `--ui-dir DIR` serves the files from disk instead, for working on them.

use super::Api;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::sync::Arc;

/// The compiled-in files: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("ui/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("ui/style.css")),
];

/// Where the assets come from.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    /// Serve from this folder instead of the compiled-in files.
    pub dir: Option<PathBuf>,
}

impl Assets {
    fn get(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        let (_, kind, text) = FILES.iter().find(|(n, _, _)| *n == name)?;
        match &self.dir {
            // Only the known names: a request cannot reach other files.
            Some(dir) => std::fs::read(dir.join(name)).ok().map(|b| (*kind, b)),
            None => Some((*kind, text.as_bytes().to_vec())),
        }
    }
}

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|State(api): State<Arc<Api>>| async move { file(&api, "index.html") }))
        .route(
            "/ui/{name}",
            get(|State(api): State<Arc<Api>>, Path(name): Path<String>| async move { file(&api, &name) }),
        )
}

async fn root(headers: HeaderMap) -> Response {
    let html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if html { Redirect::to("/ui/").into_response() } else { axum::Json(super::v1::versions_body()).into_response() }
}

fn file(api: &Api, name: &str) -> Response {
    match api.ui.get(name) {
        Some((kind, body)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
