//! Congress's v1 endpoints (`congress/api/router.py`): policies, rules, tables, rows,
//! simulate and execute, the library, data sources and drivers, with Congress's shapes:
//! lists as `{"results": [...]}`, creation as 201, deletion as 200 with the deleted object,
//! non-CRUD operations as `POST <element>?action=NAME`, a method a resource lacks as 501.

use super::backend::{DatasourceEntry, PolicyEntry};
use super::convert::{self, CreateDatasource, CreatePolicy, RuleBody};
use super::{Api, ApiError, JsonBody, RawBody, created};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use congress_engine::{SimulateRequest, Value as EValue};
use congress_model::engine_name;
use congress_model::resources::{ActionArgs, LibraryRef, Policy};
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Shared = State<Arc<Api>>;
type Result<T> = std::result::Result<T, ApiError>;

/// A route whose missing methods answer 501, as Congress does.
fn route(r: MethodRouter<Arc<Api>>) -> MethodRouter<Arc<Api>> {
    r.fallback(|| async { ApiError::not_implemented("this method is not supported on this resource") })
}

pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1", route(get(versions)))
        .route("/v1/", route(get(versions)))
        .route("/v1/policies", route(get(list_policies).post(create_policy)))
        .route("/v1/policies/{p}", route(get(show_policy).delete(delete_policy).post(policy_action)))
        .route("/v1/policies/{p}/rules", route(get(list_rules).post(create_rule)))
        .route("/v1/policies/{p}/rules/{r}", route(get(show_rule).delete(delete_rule)))
        .route("/v1/policies/{p}/tables", route(get(policy_tables)))
        .route("/v1/policies/{p}/tables/{t}", route(get(policy_table)))
        .route("/v1/policies/{p}/tables/{t}/rows", route(get(policy_rows)))
        .route("/v1/policies/{p}/status", route(get(policy_status)))
        .route("/v1/librarypolicies", route(get(list_library).post(create_library)))
        .route("/v1/librarypolicies/{id}", route(get(show_library).put(replace_library).delete(delete_library)))
        .route("/v1/data-sources", route(get(list_datasources).post(create_datasource)))
        .route("/v1/data-sources/{d}", route(get(show_datasource).delete(delete_datasource).post(datasource_action)))
        .route("/v1/data-sources/{d}/schema", route(get(datasource_schema)))
        .route("/v1/data-sources/{d}/status", route(get(datasource_status)))
        .route("/v1/data-sources/{d}/actions", route(get(datasource_actions)))
        .route("/v1/data-sources/{d}/tables", route(get(datasource_tables)))
        .route("/v1/data-sources/{d}/tables/{t}", route(get(datasource_table)))
        .route("/v1/data-sources/{d}/tables/{t}/spec", route(get(datasource_table_spec)))
        .route("/v1/data-sources/{d}/tables/{t}/rows", route(get(datasource_rows).put(replace_rows)))
        .route("/v1/system/drivers", route(get(list_drivers)))
        .route("/v1/system/drivers/{id}", route(get(show_driver)))
}

/// `GET /`: the API versions.
pub fn versions_body() -> Value {
    json!({"versions": [{
        "id": "v1", "status": "CURRENT", "updated": "2013-08-12T17:42:13Z",
        "links": [{"rel": "self", "href": "/v1/"}]
    }]})
}

async fn versions() -> Json<Value> {
    Json(versions_body())
}

fn results<T: serde::Serialize>(items: T) -> Json<Value> {
    Json(json!({ "results": items }))
}

// ---- policies ----

/// The policy `key` names, and every policy.
pub async fn find_policy(api: &Api, key: &str) -> Result<(PolicyEntry, Vec<PolicyEntry>)> {
    let all = api.backend.policies().await?;
    let found = all.iter().find(|e| convert::names_policy(&e.policy, key)).cloned();
    match found {
        Some(p) => Ok((p, all)),
        None => Err(ApiError::no_policy(key)),
    }
}

/// The engine name of a policy.
pub fn engine_of(p: &Policy) -> String {
    engine_name(&p.name_any())
}

pub fn violations(api: &Api, p: &Policy) -> usize {
    api.backend.engine().view(&engine_of(p)).map_or(0, |v| v.errors.len())
}

async fn list_policies(State(api): Shared) -> Result<Json<Value>> {
    let all = api.backend.policies().await?;
    Ok(results(all.iter().map(|e| convert::policy_json(e, violations(&api, &e.policy))).collect::<Vec<_>>()))
}

#[derive(Debug, Deserialize)]
struct CreateQuery {
    library_policy: Option<String>,
}

/// The optional body of an activation: a name and parameter rows (this project's addition;
/// Congress takes an empty body).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Activation {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, Vec<Value>>,
}

async fn create_policy(State(api): Shared, Query(q): Query<CreateQuery>, RawBody(body): RawBody) -> Result<Response> {
    let policy = match q.library_policy {
        Some(lib) => {
            activation(&api, &lib, super::parse_json::<Option<Activation>>(&body)?.unwrap_or_default()).await?
        }
        None => super::parse_json::<CreatePolicy>(&body)?.into_policy()?,
    };
    let entry = api.backend.create_policy(policy).await?;
    Ok(created(convert::policy_json(&entry, violations(&api, &entry.policy))))
}

/// The Policy that activates library policy `key` (its id or name).
async fn activation(api: &Api, key: &str, body: Activation) -> Result<Policy> {
    let library = api.backend.library().await?;
    let lib = library
        .iter()
        .find(|l| l.name_any() == key || l.metadata.uid.as_deref() == Some(key) || library_id(l) == key)
        .ok_or_else(|| ApiError::not_found(format!("library policy {key} does not exist")))?;
    let name = convert::resource_name(body.name.as_deref().unwrap_or(&lib.name_any()))?;
    let mut p = Policy::new(&name, Default::default());
    p.spec.library_ref = Some(LibraryRef {
        name: lib.name_any(),
        version: Some(lib.spec.version().to_string()),
        parameters: body.parameters,
    });
    p.spec.description = lib.spec.description.clone();
    p.spec.category = lib.spec.category.clone();
    p.spec.severity = lib.spec.severity;
    p.spec.enforcement = lib.spec.enforcement.unwrap_or_default();
    Ok(p)
}

fn library_id(l: &congress_model::resources::LibraryPolicy) -> String {
    convert::library_json(l, false, vec![])["id"].as_str().unwrap_or_default().to_string()
}

async fn show_policy(State(api): Shared, Path(p): Path<String>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    Ok(Json(convert::policy_json(&entry, violations(&api, &entry.policy))))
}

async fn delete_policy(State(api): Shared, Path(p): Path<String>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let shown = convert::policy_json(&entry, violations(&api, &entry.policy));
    api.backend.delete_policy(&entry.policy.name_any()).await?;
    Ok(Json(shown))
}

#[derive(Debug, Deserialize)]
struct ActionQuery {
    action: Option<String>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    trace: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

#[derive(Debug, Deserialize)]
struct SimulateBody {
    query: Option<String>,
    sequence: Option<String>,
    action_policy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    name: String,
    #[serde(default)]
    args: Option<ActionArgs>,
}

async fn policy_action(
    State(api): Shared,
    Path(p): Path<String>,
    Query(q): Query<ActionQuery>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let (entry, _) = find_policy(&api, &p).await?;
    let policy = engine_of(&entry.policy);
    match q.action.as_deref() {
        Some("simulate") => {
            let body: SimulateBody = super::parse_json(&body)?;
            let (Some(query), Some(sequence), Some(action_policy)) = (body.query, body.sequence, body.action_policy)
            else {
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    1004,
                    "simulate_error",
                    "Simulate requires parameters: query, sequence, action_policy",
                ));
            };
            let (delta, trace) = (flag(&q.delta), flag(&q.trace));
            let answer = simulate(&api, policy, query, sequence, action_policy, delta, trace).await?;
            Ok(Json(answer).into_response())
        }
        Some("execute") => {
            let body: ExecuteBody = super::parse_json(&body)?;
            let view = api.backend.execute(&body.name, body.args.unwrap_or_default(), Some(&policy)).await?;
            Ok(Json(json!({"result": view})).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("unknown action `{other}` (simulate, execute)"))),
        None => Err(ApiError::not_implemented("POST on a policy needs ?action=simulate or ?action=execute")),
    }
}

/// Run a simulation on the engine thread (nothing it changes is kept).
pub async fn simulate(
    api: &Api,
    policy: String,
    query: String,
    sequence: String,
    action_policy: String,
    delta: bool,
    trace: bool,
) -> Result<Value> {
    let answer = api
        .backend
        .engine()
        .run(move |engine| {
            let req = SimulateRequest {
                policy: &policy,
                query: &query,
                sequence: &sequence,
                action_policy: &action_policy,
                delta,
            };
            // Congress's default action policy, `action`, is taken as empty where the engine
            // has none (the operator's engine has only the policies the cluster declares).
            let stand_in = action_policy == "action"
                && engine.policy_kind("action").is_none()
                && engine.create_policy("action", congress_engine::PolicyKind::Action).is_ok();
            let result = engine.simulate(&req);
            let traced = match (&result, trace) {
                (Ok(_), true) => engine.trace(&policy, &query).map(Some),
                _ => Ok(None),
            };
            if stand_in {
                let _ = engine.delete_policy("action");
            }
            Ok::<_, congress_engine::EngineError>((result?, traced?))
        })
        .await?;
    let (result, trace) = answer.map_err(|e| match e {
        congress_engine::EngineError::NoSuchPolicy(p) => ApiError::no_policy(&p),
        e => ApiError::new(axum::http::StatusCode::BAD_REQUEST, 1004, "simulate_error", e.to_string()),
    })?;
    let mut body = json!({ "result": result });
    if let Some(t) = trace {
        body["trace"] = json!(t);
    }
    Ok(body)
}

// ---- rules ----

async fn list_rules(State(api): Shared, Path(p): Path<String>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let library = api.backend.library().await?;
    Ok(results(convert::rules(&entry.policy, &library)?))
}

async fn find_rule(api: &Api, p: &str, r: &str) -> Result<(PolicyEntry, convert::RuleView)> {
    let (entry, _) = find_policy(api, p).await?;
    let library = api.backend.library().await?;
    let rule = convert::rules(&entry.policy, &library)?
        .into_iter()
        .find(|x| x.id == r || x.name.as_deref() == Some(r))
        .ok_or_else(|| ApiError::not_found(format!("no rule {r} in policy {p}")))?;
    Ok((entry, rule))
}

async fn show_rule(State(api): Shared, Path((p, r)): Path<(String, String)>) -> Result<Json<Value>> {
    let (_, rule) = find_rule(&api, &p, &r).await?;
    Ok(Json(json!(rule)))
}

fn editable(p: &Policy) -> Result<()> {
    match &p.spec.library_ref {
        Some(l) => Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            1019,
            "rule_not_permitted",
            format!(
                "policy {} is activated from library policy {}: its rules are the library's (change the library policy, or its parameters)",
                p.name_any(),
                l.name
            ),
        )),
        None => Ok(()),
    }
}

async fn create_rule(
    State(api): Shared,
    Path(p): Path<String>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Response> {
    let (entry, _) = find_policy(&api, &p).await?;
    let mut policy = entry.policy;
    editable(&policy)?;
    if body.rule.trim().is_empty() {
        return Err(ApiError::rule_syntax("empty string passed: not a valid rule"));
    }
    let text = body.rule.trim().to_string();
    let library = api.backend.library().await?;
    if convert::rules(&policy, &library)?.iter().any(|r| r.rule == text) {
        return Err(ApiError::conflict("rule_already_exists", format!("Rule already exists in policy {p}: {text}")));
    }
    let mut entries = convert::rule_entries(&policy);
    entries.push(body.into());
    policy.spec.rules = Some(entries);
    policy.spec.text = None;
    let updated = api.backend.update_policy(policy).await?;
    let library = api.backend.library().await?;
    let rule = convert::rules(&updated.policy, &library)?
        .into_iter()
        .rfind(|r| r.rule == text)
        .ok_or_else(|| ApiError::internal("internal", "the rule was added but is not among the policy's rules"))?;
    Ok(created(json!(rule)))
}

async fn delete_rule(State(api): Shared, Path((p, r)): Path<(String, String)>) -> Result<Json<Value>> {
    let (entry, rule) = find_rule(&api, &p, &r).await?;
    let mut policy = entry.policy;
    editable(&policy)?;
    let mut entries = convert::rule_entries(&policy);
    let before = entries.len();
    entries.retain(|e| e.rule.trim() != rule.rule);
    if entries.len() == before {
        return Err(ApiError::not_found(format!("no rule {r} in policy {p}")));
    }
    policy.spec.rules = Some(entries);
    policy.spec.text = None;
    api.backend.update_policy(policy).await?;
    Ok(Json(json!(rule)))
}

// ---- tables and rows ----

async fn policy_tables(State(api): Shared, Path(p): Path<String>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let name = engine_of(&entry.policy);
    let tables = api.backend.engine().run(move |e| e.tables(&name)).await??;
    Ok(results(tables.into_iter().map(|t| json!({"id": t})).collect::<Vec<_>>()))
}

async fn policy_table(State(api): Shared, Path((p, t)): Path<(String, String)>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let name = engine_of(&entry.policy);
    let table = t.clone();
    let tables = api.backend.engine().run(move |e| e.tables(&name)).await??;
    if tables.contains(&table) {
        Ok(Json(json!({"id": t})))
    } else {
        Err(ApiError::not_found(format!("table {t} does not exist in policy {p}")))
    }
}

#[derive(Debug, Deserialize)]
struct RowsQuery {
    trace: Option<String>,
}

/// `rows` as Congress's `{"data": [...]}` objects.
pub fn row_objects(rows: &[Vec<EValue>]) -> Vec<Value> {
    rows.iter().map(|r| json!({"data": r.iter().map(EValue::to_json).collect::<Vec<_>>()})).collect()
}

async fn policy_rows(
    State(api): Shared,
    Path((p, t)): Path<(String, String)>,
    Query(q): Query<RowsQuery>,
) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let name = engine_of(&entry.policy);
    let trace = flag(&q.trace);
    let (rows, trace) = api
        .backend
        .engine()
        .run(move |e| {
            // `nova:servers` names a data source's table.
            let (policy, table) = match t.split_once(':') {
                Some((ds, table)) => (engine_name(ds), table.to_string()),
                None => (name.clone(), t.clone()),
            };
            let rows = e.rows(&policy, &table)?;
            let trace = if trace {
                let width = rows
                    .first()
                    .map_or_else(|| e.schema(&policy).and_then(|s| s.get(&table)).map_or(0, Vec::len), Vec::len);
                let vars: Vec<String> = (0..width).map(|i| format!("x{i}")).collect();
                Some(e.trace(&name, &format!("{t}({})", vars.join(", ")))?)
            } else {
                None
            };
            Ok::<_, congress_engine::EngineError>((rows, trace))
        })
        .await??;
    let mut body = json!({"results": row_objects(&rows)});
    if let Some(t) = trace {
        body["trace"] = json!(t);
    }
    Ok(Json(body))
}

async fn policy_status(State(api): Shared, Path(p): Path<String>) -> Result<Json<Value>> {
    let (entry, _) = find_policy(&api, &p).await?;
    let shown = convert::policy_json(&entry, violations(&api, &entry.policy));
    Ok(Json(json!({"name": shown["name"], "id": shown["id"], "state": shown["state"], "message": shown["message"]})))
}

// ---- the library ----

#[derive(Debug, Deserialize)]
struct LibraryQuery {
    include_rules: Option<String>,
    name: Option<String>,
}

/// Which policies activate each library policy.
fn activations(policies: &[PolicyEntry]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for e in policies {
        if let Some(l) = &e.policy.spec.library_ref {
            out.entry(l.name.clone()).or_default().push(e.policy.name_any());
        }
    }
    out
}

async fn list_library(State(api): Shared, Query(q): Query<LibraryQuery>) -> Result<Json<Value>> {
    let library = api.backend.library().await?;
    let active = activations(&api.backend.policies().await?);
    let include = q.include_rules.as_deref().is_none_or(|v| !matches!(v, "false" | "False" | "0"));
    let items: Vec<Value> = library
        .iter()
        .filter(|l| q.name.as_deref().is_none_or(|n| l.name_any() == convert::resource_name(n).unwrap_or_default()))
        .map(|l| convert::library_json(l, include, active.get(&l.name_any()).cloned().unwrap_or_default()))
        .collect();
    Ok(results(items))
}

async fn find_library(api: &Api, key: &str) -> Result<congress_model::resources::LibraryPolicy> {
    let library = api.backend.library().await?;
    library
        .into_iter()
        .find(|l| l.name_any() == key || library_id(l) == key || l.name_any() == key.replace('_', "-"))
        .ok_or_else(|| ApiError::not_found(format!("library policy {key} does not exist")))
}

async fn show_library(State(api): Shared, Path(id): Path<String>) -> Result<Json<Value>> {
    let l = find_library(&api, &id).await?;
    let active = activations(&api.backend.policies().await?);
    Ok(Json(convert::library_json(&l, true, active.get(&l.name_any()).cloned().unwrap_or_default())))
}

async fn create_library(State(api): Shared, JsonBody(body): JsonBody<Value>) -> Result<Response> {
    let l = convert::library_from_json(body, None)?;
    let stored = api.backend.put_library(l, true).await?;
    Ok(created(convert::library_json(&stored, true, vec![])))
}

async fn replace_library(
    State(api): Shared,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let old = find_library(&api, &id).await?;
    let mut l = convert::library_from_json(body, Some(&old.name_any()))?;
    if l.name_any() != old.name_any() {
        return Err(ApiError::bad_request("a library policy cannot be renamed (create a new one)"));
    }
    l.metadata.uid = old.metadata.uid.clone();
    let stored = api.backend.put_library(l, false).await?;
    Ok(Json(convert::library_json(&stored, true, vec![])))
}

async fn delete_library(State(api): Shared, Path(id): Path<String>) -> Result<Json<Value>> {
    let l = find_library(&api, &id).await?;
    let deleted = api.backend.delete_library(&l.name_any()).await?;
    Ok(Json(convert::library_json(&deleted, true, vec![])))
}

// ---- data sources ----

async fn find_datasource(api: &Api, key: &str) -> Result<DatasourceEntry> {
    let all = api.backend.datasources().await?;
    all.into_iter()
        .find(|d| {
            let name = d.datasource.name_any();
            name == key || engine_name(&name) == engine_name(key) || d.datasource.metadata.uid.as_deref() == Some(key)
        })
        .ok_or_else(|| ApiError::not_found(format!("data source {key} does not exist")))
}

async fn list_datasources(State(api): Shared) -> Result<Json<Value>> {
    let all = api.backend.datasources().await?;
    Ok(results(all.iter().map(convert::datasource_json).collect::<Vec<_>>()))
}

async fn create_datasource(State(api): Shared, JsonBody(body): JsonBody<CreateDatasource>) -> Result<Response> {
    if api
        .backend
        .datasources()
        .await?
        .iter()
        .any(|d| d.datasource.name_any() == convert::resource_name(&body.name).unwrap_or_default())
    {
        return Err(ApiError::conflict("datasource_exists", format!("data source {} already exists", body.name)));
    }
    let (d, secrets) = body.into_datasource()?;
    let entry = api.backend.create_datasource(attach_secrets(d, secrets)).await?;
    Ok(created(convert::datasource_json(&entry)))
}

/// Secret settings travel to the backend in a private annotation, which the backend removes
/// before anything is stored or shown.
pub const SECRETS_IN_TRANSIT: &str = "congress.dev/secrets-in-transit";

fn attach_secrets(
    mut d: congress_model::resources::Datasource,
    secrets: BTreeMap<String, String>,
) -> congress_model::resources::Datasource {
    if !secrets.is_empty() {
        d.annotations_mut().insert(SECRETS_IN_TRANSIT.to_string(), serde_json::to_string(&secrets).unwrap_or_default());
    }
    d
}

async fn show_datasource(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    Ok(Json(convert::datasource_json(&find_datasource(&api, &d).await?)))
}

async fn delete_datasource(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    let shown = convert::datasource_json(&entry);
    api.backend.delete_datasource(&entry.datasource.name_any()).await?;
    Ok(Json(shown))
}

async fn datasource_action(
    State(api): Shared,
    Path(d): Path<String>,
    Query(q): Query<ActionQuery>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let entry = find_datasource(&api, &d).await?;
    let name = entry.datasource.name_any();
    match q.action.as_deref() {
        Some("request-refresh") => {
            api.backend.refresh(&name).await?;
            Ok(Json(json!({})).into_response())
        }
        Some("execute") => {
            let body: ExecuteBody = super::parse_json(&body)?;
            let action = format!("{}:{}", engine_name(&name), body.name.rsplit(':').next().unwrap_or(&body.name));
            let view = api.backend.execute(&action, body.args.unwrap_or_default(), None).await?;
            Ok(Json(json!({"result": view})).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("unknown action `{other}` (request-refresh, execute)"))),
        None => {
            Err(ApiError::not_implemented("POST on a data source needs ?action=request-refresh or ?action=execute"))
        }
    }
}

fn schema_json(entry: &DatasourceEntry) -> Vec<Value> {
    entry
        .datasource
        .spec
        .schema()
        .into_iter()
        .map(|(table, columns)| {
            json!({"table_id": table, "columns": columns.iter().map(|c| json!({"name": c, "description": "None"})).collect::<Vec<_>>()})
        })
        .collect()
}

async fn datasource_schema(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    Ok(Json(json!({"tables": schema_json(&entry)})))
}

async fn datasource_table_spec(State(api): Shared, Path((d, t)): Path<(String, String)>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    schema_json(&entry)
        .into_iter()
        .find(|s| s["table_id"] == t)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("table {t} does not exist in data source {d}")))
}

async fn datasource_status(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    let s = &entry.state;
    Ok(Json(json!({
        "last_updated": s.last_updated, "last_error": s.last_error, "number_of_updates": s.number_of_updates,
        "initialized": s.synced, "subscriptions": [], "subscribers": [], "synced": s.synced, "rows": s.rows,
    })))
}

async fn datasource_actions(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    let actions: Vec<Value> = entry
        .datasource
        .spec
        .http_source()
        .ok()
        .flatten()
        .map(|s| s.actions.iter().map(|a| json!({"name": a.name, "args": [], "description": a.description})).collect())
        .unwrap_or_default();
    Ok(results(actions))
}

async fn datasource_tables(State(api): Shared, Path(d): Path<String>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    Ok(results(entry.datasource.spec.schema().keys().map(|t| json!({"id": t})).collect::<Vec<_>>()))
}

async fn datasource_table(State(api): Shared, Path((d, t)): Path<(String, String)>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    if entry.datasource.spec.schema().contains_key(&t) {
        Ok(Json(json!({"id": t})))
    } else {
        Err(ApiError::not_found(format!("table {t} does not exist in data source {d}")))
    }
}

async fn datasource_rows(State(api): Shared, Path((d, t)): Path<(String, String)>) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    let name = engine_name(&entry.datasource.name_any());
    let rows = api.backend.engine().run(move |e| e.rows(&name, &t)).await??;
    Ok(results(row_objects(&rows)))
}

async fn replace_rows(
    State(api): Shared,
    Path((d, t)): Path<(String, String)>,
    JsonBody(body): JsonBody<Vec<Value>>,
) -> Result<Json<Value>> {
    let entry = find_datasource(&api, &d).await?;
    let schema = entry.datasource.spec.schema();
    let columns =
        schema.get(&t).ok_or_else(|| ApiError::not_found(format!("table {t} does not exist in data source {d}")))?;
    let rows = push_rows(columns, body).map_err(ApiError::bad_request)?;
    api.backend.replace_rows(&entry.datasource.name_any(), &t, rows).await?;
    Ok(Json(json!({})))
}

/// Rows pushed as lists of values or as objects by column name, checked against the table.
pub fn push_rows(columns: &[String], body: Vec<Value>) -> std::result::Result<Vec<Vec<Value>>, String> {
    body.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(cells) if cells.len() == columns.len() => check_cells(i, cells),
            Value::Array(cells) => Err(format!("row {i}: {} values for {} columns", cells.len(), columns.len())),
            Value::Object(mut m) => {
                if let Some(k) = m.keys().find(|k| !columns.contains(k)) {
                    return Err(format!("row {i}: no column `{k}` (columns: {})", columns.join(", ")));
                }
                check_cells(i, columns.iter().map(|c| m.remove(c).unwrap_or(Value::Null)).collect())
            }
            other => Err(format!("row {i}: a row is a list or an object, not {other}")),
        })
        .collect()
}

fn check_cells(i: usize, cells: Vec<Value>) -> std::result::Result<Vec<Value>, String> {
    if let Some(c) = cells.iter().find(|c| c.is_array() || c.is_object()) {
        return Err(format!("row {i}: a value must be a string, a number, a boolean or null, not {c}"));
    }
    Ok(cells)
}

// ---- drivers ----

fn drivers() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = congress_model::resources::http::PRESETS
        .iter()
        .map(|(name, _)| (name.to_string(), format!("OpenStack {name} (polled over HTTP, Keystone auth)")))
        .collect();
    out.push(("http".into(), "Any JSON HTTP API, mapped to tables by configuration".into()));
    out.push(("push".into(), "Tables whose rows are pushed through the API (PUT .../rows)".into()));
    out.push(("kubernetes".into(), "Kubernetes objects, watched (operator only)".into()));
    out
}

async fn list_drivers() -> Json<Value> {
    results(drivers().into_iter().map(|(id, d)| json!({"id": id, "description": d})).collect::<Vec<_>>())
}

async fn show_driver(Path(id): Path<String>) -> Result<Json<Value>> {
    let (id, description) = drivers()
        .into_iter()
        .find(|(d, _)| *d == id)
        .ok_or_else(|| ApiError::not_found(format!("driver {id} does not exist")))?;
    let tables: Vec<Value> = congress_model::resources::http::preset(&id)
        .ok()
        .flatten()
        .map(|_| {
            let spec = congress_model::resources::DatasourceSpec { driver: id.clone(), ..Default::default() };
            spec.schema()
                .into_iter()
                .map(|(t, cols)| json!({"table_id": t, "columns": cols.iter().map(|c| json!({"name": c, "description": "None"})).collect::<Vec<_>>()}))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(
        json!({"id": id, "description": description, "config": {}, "secret": convert::SECRET_KEYS, "tables": tables}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_rows_are_checked_against_the_table() {
        let cols = vec!["id".to_string(), "n".to_string()];
        assert_eq!(push_rows(&cols, vec![json!(["a", 1])]).unwrap(), vec![vec![json!("a"), json!(1)]]);
        assert_eq!(push_rows(&cols, vec![json!({"n": 2, "id": "b"})]).unwrap(), vec![vec![json!("b"), json!(2)]]);
        assert!(push_rows(&cols, vec![json!(["a"])]).unwrap_err().contains("1 values for 2 columns"));
        assert!(push_rows(&cols, vec![json!({"x": 1})]).unwrap_err().contains("no column `x`"));
        assert!(push_rows(&cols, vec![json!(["a", [1]])]).unwrap_err().contains("must be a string"));
        assert!(push_rows(&cols, vec![json!(3)]).unwrap_err().contains("a row is a list or an object"));
    }
}
