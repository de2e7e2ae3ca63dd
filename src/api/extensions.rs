//! What the API offers beyond Congress, for the dashboard and for audits: an overview of
//! everything, a policy's violations paged, sorted and filtered on the server, the proof of
//! one violation, the history of violations (JSON or JSON lines) and the ActionRequests with
//! approve and deny.

use super::backend::HistoryFilter;
use super::v1::{engine_of, find_policy, violations};
use super::{Api, ApiError, convert};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use congress_engine::Value as EValue;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type Shared = State<Arc<Api>>;
type Result<T> = std::result::Result<T, ApiError>;

/// The most violations one page holds.
pub const MAX_PAGE: usize = 1000;
/// The most history events one request returns.
pub const MAX_HISTORY: usize = 100_000;

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/overview", get(overview))
        .route("/v1/policies/{p}/violations", get(violations_page))
        .route("/v1/policies/{p}/explain", get(explain))
        .route("/v1/policies/{p}/history", get(policy_history))
        .route("/v1/history", get(all_history))
        .route("/v1/action-requests", get(action_requests))
        .route("/v1/action-requests/{id}", post(decide))
}

async fn overview(State(api): Shared) -> Result<Json<Value>> {
    let policies = api.backend.policies().await?;
    let datasources = api.backend.datasources().await?;
    let mut actions = api.backend.action_requests().await?;
    actions.truncate(10);
    Ok(Json(json!({
        "policies": policies.iter().map(|e| convert::policy_json(e, violations(&api, &e.policy))).collect::<Vec<_>>(),
        "datasources": datasources.iter().map(convert::datasource_json).collect::<Vec<_>>(),
        "action_requests": actions,
    })))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    sort: Option<String>,
    order: Option<String>,
    filter: Option<String>,
}

/// A row as Congress prints it: `error("vm-1", 3)`.
pub fn print_row(table: &str, row: &[EValue]) -> String {
    let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
    format!("{table}({})", cells.join(", "))
}

async fn violations_page(State(api): Shared, Path(p): Path<String>, Query(q): Query<PageQuery>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let name = engine_of(&entry.policy);
    let rows = api.backend.engine().view(&name).map(|v| v.errors.clone()).unwrap_or_default();
    let first_seen = api.backend.first_seen(&name).await?;
    let needle = q.filter.as_deref().map(str::to_lowercase).filter(|f| !f.is_empty());
    let mut shown: Vec<(String, &Vec<EValue>, Option<&String>)> = rows
        .iter()
        .map(|r| {
            let printed = print_row("error", r);
            let seen = first_seen.get(&printed);
            (printed, r, seen)
        })
        .filter(|(printed, _, _)| needle.as_deref().is_none_or(|n| printed.to_lowercase().contains(n)))
        .collect();
    match q.sort.as_deref().unwrap_or("row") {
        "row" => shown.sort_by(|a, b| a.0.cmp(&b.0)),
        "first_seen" => shown.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0))),
        other => return Err(ApiError::bad_request(format!("sort `{other}`: sort by `row` or `first_seen`"))),
    }
    match q.order.as_deref().unwrap_or("asc") {
        "asc" => {}
        "desc" => shown.reverse(),
        other => return Err(ApiError::bad_request(format!("order `{other}`: `asc` or `desc`"))),
    }
    let total = shown.len();
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let page: Vec<Value> = shown
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(printed, row, seen)| {
            json!({"row": printed, "data": row.iter().map(EValue::to_json).collect::<Vec<_>>(), "first_seen": seen})
        })
        .collect();
    Ok(Json(json!({"total": total, "offset": offset, "limit": limit, "results": page})))
}

#[derive(Debug, Deserialize)]
struct ExplainQuery {
    row: String,
}

fn proof_json(p: &congress_engine::Proof) -> Value {
    json!({"literal": p.literal, "how": p.how, "children": p.children.iter().map(proof_json).collect::<Vec<_>>()})
}

async fn explain(State(api): Shared, Path(p): Path<String>, Query(q): Query<ExplainQuery>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let name = engine_of(&entry.policy);
    let row = q.row.clone();
    let proof = api.backend.engine().run(move |e| e.explain(&name, &row)).await??;
    Ok(Json(json!({"row": q.row, "proof": proof_json(&proof)})))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
    policy: Option<String>,
}

fn millis(what: &str, t: &Option<String>) -> Result<Option<i64>> {
    t.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp_millis())
                .map_err(|e| ApiError::bad_request(format!("{what} `{s}` is not an RFC 3339 time: {e}")))
        })
        .transpose()
}

async fn history(api: &Api, policy: Option<String>, q: HistoryQuery) -> Result<Response> {
    let filter = HistoryFilter {
        policy,
        since_ms: millis("since", &q.since)?,
        until_ms: millis("until", &q.until)?,
        limit: q.limit.unwrap_or(1000).clamp(1, MAX_HISTORY),
    };
    let records = api.backend.history(filter).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({"results": records})).into_response()),
        "jsonl" => {
            let mut body = String::new();
            for r in &records {
                body.push_str(&serde_json::to_string(r).unwrap_or_default());
                body.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        other => Err(ApiError::bad_request(format!("format `{other}`: `json` or `jsonl`"))),
    }
}

async fn policy_history(State(api): Shared, Path(p): Path<String>, Query(q): Query<HistoryQuery>) -> Result<Response> {
    let (entry, _) = find_policy(&api, &p).await?;
    history(&api, Some(engine_of(&entry.policy)), q).await
}

async fn all_history(State(api): Shared, Query(q): Query<HistoryQuery>) -> Result<Response> {
    let policy = match &q.policy {
        Some(p) => Some(engine_of(&find_policy(&api, p).await?.0.policy)),
        None => None,
    };
    history(&api, policy, q).await
}

async fn action_requests(State(api): Shared) -> Result<Json<Value>> {
    Ok(Json(json!({"results": api.backend.action_requests().await?})))
}

#[derive(Debug, Deserialize)]
struct DecideQuery {
    action: Option<String>,
}

async fn decide(State(api): Shared, Path(id): Path<String>, Query(q): Query<DecideQuery>) -> Result<Json<Value>> {
    let approve = match q.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(ApiError::bad_request("POST on an ActionRequest needs ?action=approve or ?action=deny")),
    };
    Ok(Json(json!(api.backend.decide(&id, approve).await?)))
}
