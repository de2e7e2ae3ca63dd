//! Between Congress's JSON and the resources both backends keep: a `Policy` is Congress's
//! policy (its rules are the spec's statements, each with a stable id), a `LibraryPolicy` a
//! library policy, a `Datasource` a data source. What Congress has no field for is kept in
//! annotations (`congress.dev/abbreviation`, `congress.dev/owner`).

use super::backend::{DatasourceEntry, PolicyEntry};
use super::error::ApiError;
use congress_model::engine_name;
use congress_model::loader::{self, Statement};
use congress_model::resources::{
    Datasource, DatasourceSpec, LibraryPolicy, LibraryPolicySpec, Policy, PolicyKindSpec, RuleEntry,
};
use kube::ResourceExt;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Congress's policy abbreviation (at most 5 characters), kept on the Policy.
pub const ABBREVIATION: &str = "congress.dev/abbreviation";
/// Who created a policy through the API (`user`, as Congress says; `system` for its own).
pub const OWNER: &str = "congress.dev/owner";
/// Config keys of a data source that are secrets: shown as `<hidden>`.
pub const SECRET_KEYS: &[&str] = &["password", "token", "application_credential_secret", "secret"];

/// A uuid-shaped id derived from `parts` (stable: the same rule has the same id everywhere).
pub fn stable_id(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let x: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// A policy's id: its uid.
pub fn policy_id(p: &Policy) -> String {
    p.metadata.uid.clone().unwrap_or_else(|| stable_id(&["policy", &p.name_any()]))
}

/// Whether `key` (an id, a name, or an engine name) names `p`.
pub fn names_policy(p: &Policy, key: &str) -> bool {
    let name = p.name_any();
    key == name || policy_id(p) == key || engine_name(&name) == engine_name(key)
}

/// Congress's policy object, with this project's additions.
pub fn policy_json(entry: &PolicyEntry, violations: usize) -> Value {
    let p = &entry.policy;
    let name = p.name_any();
    let annotations = p.annotations();
    let abbreviation = annotations.get(ABBREVIATION).cloned().unwrap_or_else(|| name.chars().take(5).collect());
    let kind = p.spec.kind.map(kind_name).unwrap_or_else(|| "nonrecursive".to_string());
    let library = p.spec.library_ref.as_ref().map(|l| {
        let version =
            p.status.as_ref().and_then(|s| s.library.as_ref()).map(|s| s.version.clone()).or(l.version.clone());
        json!({"name": l.name, "version": version})
    });
    json!({
        "id": policy_id(p),
        "name": name,
        "abbreviation": abbreviation,
        "description": p.spec.description.clone().unwrap_or_default(),
        "owner_id": annotations.get(OWNER).cloned().unwrap_or_else(|| "user".to_string()),
        "kind": kind,
        "enforcement": serde_json::to_value(p.spec.enforcement).unwrap_or(Value::Null),
        "category": p.spec.category,
        "severity": p.spec.severity,
        "library": library,
        "violations": violations,
        "state": if entry.problem.is_some() { "error" } else { "ok" },
        "message": entry.problem,
    })
}

fn kind_name(k: PolicyKindSpec) -> String {
    serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// A refused policy: 400 (409 for a duplicate rule) naming each problem's rule and `line:col`
/// (`error_data`: each problem as `{rule, line, column, message}`).
pub fn rule_error(policy: &str, problems: &[loader::Problem]) -> ApiError {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match &p.rule {
            Some(rule) => format!("{rule} {}:{}: {}", p.line, p.column, p.message),
            None => p.message.clone(),
        })
        .collect();
    let data: Vec<Value> = problems
        .iter()
        .map(|p| json!({"rule": p.rule, "line": p.line, "column": p.column, "message": p.message}))
        .collect();
    let message = format!("policy {policy}: {}", lines.join("; "));
    let duplicate = problems.iter().any(|p| p.message.contains("already exists"));
    let error =
        if duplicate { ApiError::conflict("rule_already_exists", message) } else { ApiError::rule_syntax(message) };
    error.with_data(json!(data))
}

/// One of a policy's rules as Congress shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleView {
    pub id: String,
    pub name: Option<String>,
    pub comment: Option<String>,
    pub rule: String,
}

/// The statements of `p` as the engine loads them (a library policy's rules included).
pub fn statements(p: &Policy, library: &[LibraryPolicy]) -> Result<Vec<Statement>, ApiError> {
    let lib = p.spec.library_ref.as_ref().and_then(|r| library.iter().find(|l| l.name_any() == r.name));
    let lib = lib.map(|l| (l.metadata.name.as_deref().unwrap_or(""), &l.spec));
    loader::statements_from_spec(&p.spec, lib).map(|s| s.statements).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A policy's rules, each with its stable id.
pub fn rules(p: &Policy, library: &[LibraryPolicy]) -> Result<Vec<RuleView>, ApiError> {
    let id = policy_id(p);
    Ok(statements(p, library)?
        .into_iter()
        .map(|st| RuleView {
            id: stable_id(&[&id, &st.text]),
            name: st
                .name
                .clone()
                .or_else(|| Some(st.label.clone()).filter(|l| !l.starts_with("rules[") && l != "text")),
            comment: st.comment.clone(),
            rule: st.text,
        })
        .collect())
}

/// `p`'s rules as `rules[]` entries (a `text` block split into its statements), so one can be
/// added or removed.
pub fn rule_entries(p: &Policy) -> Vec<RuleEntry> {
    let mut entries = p.spec.rules.clone().unwrap_or_default();
    if let Some(text) = &p.spec.text {
        entries.extend(loader::text_statements(text, "text").into_iter().map(|st| RuleEntry {
            name: st.name,
            comment: st.comment,
            rule: st.text,
        }));
    }
    entries
}

/// A rule in a request body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    pub rule: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl From<RuleBody> for RuleEntry {
    fn from(r: RuleBody) -> RuleEntry {
        RuleEntry { name: r.name.filter(|n| !n.is_empty()), comment: r.comment.filter(|c| !c.is_empty()), rule: r.rule }
    }
}

/// `POST /v1/policies`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub abbreviation: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Option<Vec<RuleBody>>,
    /// Accepted and ignored, as Congress does (the server assigns both).
    #[serde(default, rename = "id")]
    pub _id: Option<Value>,
    #[serde(default, rename = "owner_id")]
    pub _owner_id: Option<Value>,
}

/// A policy or library name: a Kubernetes object name (lower-case letters, digits, `-`;
/// `_` is taken for `-`, as the engine names it).
pub fn resource_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim().replace('_', "-");
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(n)
    } else {
        Err(ApiError::bad_request(format!(
            "name `{name}`: at most 63 lower-case letters, digits, `-` or `_`, starting with a letter"
        )))
    }
}

impl CreatePolicy {
    /// The Policy this request creates.
    pub fn into_policy(self) -> Result<Policy, ApiError> {
        let name = resource_name(&self.name)?;
        let kind = match self.kind.as_deref().filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(serde_json::from_value::<PolicyKindSpec>(json!(k)).map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown kind of policy `{k}` (nonrecursive, action, database, materialized, z3)"
                ))
            })?),
        };
        if let Some(a) = &self.abbreviation
            && a.chars().count() > 5
        {
            return Err(ApiError::bad_request(format!("abbreviation `{a}` is longer than 5 characters")));
        }
        let mut p = Policy::new(&name, Default::default());
        p.spec.kind = kind;
        p.spec.description = self.description.filter(|d| !d.is_empty());
        p.spec.rules = Some(self.rules.unwrap_or_default().into_iter().map(RuleEntry::from).collect());
        let mut annotations = BTreeMap::new();
        if let Some(a) = self.abbreviation.filter(|a| !a.is_empty()) {
            annotations.insert(ABBREVIATION.to_string(), a);
        }
        if !annotations.is_empty() {
            p.metadata.annotations = Some(annotations);
        }
        Ok(p)
    }
}

/// Congress's library policy, with this project's additions (the LibraryPolicy's spec).
pub fn library_json(l: &LibraryPolicy, include_rules: bool, active: Vec<String>) -> Value {
    let name = l.name_any();
    let mut v = serde_json::to_value(&l.spec).unwrap_or_else(|_| json!({}));
    let rules: Vec<Value> = loader::library_statements(&l.spec)
        .map(|s| s.statements)
        .unwrap_or_default()
        .into_iter()
        .filter(|st| st.part != loader::Part::Parameter)
        .map(|st| json!({"rule": st.text, "name": st.name, "comment": st.comment}))
        .collect();
    if let Some(m) = v.as_object_mut() {
        m.remove("text");
        m.insert("id".into(), json!(l.metadata.uid.clone().unwrap_or_else(|| stable_id(&["library", &name]))));
        m.insert("name".into(), json!(name));
        m.insert("abbreviation".into(), json!(name.chars().take(5).collect::<String>()));
        m.insert("description".into(), json!(l.spec.description.clone().unwrap_or_default()));
        m.insert("kind".into(), json!(l.spec.kind.map(kind_name).unwrap_or_else(|| "nonrecursive".into())));
        m.insert("version".into(), json!(l.spec.version()));
        m.insert("active".into(), json!(active));
        if include_rules {
            m.insert("rules".into(), Value::Array(rules));
        } else {
            m.remove("rules");
        }
    }
    v
}

/// A library policy from a request body: Congress's `{name, description, kind, rules}` and
/// any LibraryPolicy spec field.
pub fn library_from_json(mut body: Value, name_in_path: Option<&str>) -> Result<LibraryPolicy, ApiError> {
    let Some(m) = body.as_object_mut() else {
        return Err(ApiError::bad_request("a library policy must be a JSON object"));
    };
    for key in ["id", "abbreviation", "active", "owner_id"] {
        m.remove(key);
    }
    let name = match (m.remove("name"), name_in_path) {
        (Some(Value::String(n)), _) => n,
        (None | Some(Value::Null), Some(n)) => n.to_string(),
        _ => return Err(ApiError::bad_request("a library policy needs a `name`")),
    };
    if m.get("kind").is_some_and(|k| k.is_null() || k == "") {
        m.remove("kind");
    }
    let spec: LibraryPolicySpec = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid library policy `{name}`: {e}")))?;
    spec.validate().map_err(|e| ApiError::bad_request(format!("library policy `{name}`: {e}")))?;
    let name = resource_name(&name)?;
    Ok(LibraryPolicy::new(&name, spec))
}

/// Congress's data source object (secret config values hidden).
pub fn datasource_json(e: &DatasourceEntry) -> Value {
    let d = &e.datasource;
    let mut config: BTreeMap<String, String> = d.spec.config.clone();
    for k in SECRET_KEYS.iter().copied().chain(e.secret_keys.iter().map(String::as_str)) {
        if config.contains_key(k) || e.secret_keys.iter().any(|s| s == k) {
            config.insert(k.to_string(), "<hidden>".into());
        }
    }
    let name = d.name_any();
    json!({
        "id": d.metadata.uid.clone().unwrap_or_else(|| stable_id(&["datasource", &name])),
        "name": name,
        "driver": d.spec.driver,
        "description": d.annotations().get("congress.dev/description").cloned().unwrap_or_default(),
        "type": Value::Null,
        "enabled": true,
        "config": config,
        "synced": e.state.synced,
        "last_updated": e.state.last_updated,
        "last_error": e.state.last_error,
        "rows": e.state.rows,
    })
}

/// `POST /v1/data-sources`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDatasource {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Accepted and ignored (a data source here is always enabled; the server assigns the id).
    #[serde(default, rename = "enabled")]
    pub _enabled: Option<bool>,
    #[serde(default, rename = "id")]
    pub _id: Option<Value>,
    #[serde(default, rename = "type")]
    pub _type: Option<Value>,
    /// This project's addition: the tables of a `push` data source.
    #[serde(default)]
    pub tables: Option<Vec<congress_model::resources::TableSchema>>,
}

impl CreateDatasource {
    /// The Datasource and its secret settings (kept apart, never shown).
    pub fn into_datasource(self) -> Result<(Datasource, BTreeMap<String, String>), ApiError> {
        let name = resource_name(&self.name)?;
        let mut config = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut poll = None;
        for (k, v) in self.config.unwrap_or_default() {
            let v = match v {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            if k == "poll_time" {
                poll = Some(v.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(format!("config.poll_time `{v}` is not a whole number of seconds"))
                })?);
            } else if SECRET_KEYS.contains(&k.as_str()) {
                secrets.insert(k, v);
            } else {
                config.insert(k, v);
            }
        }
        let spec = DatasourceSpec {
            driver: self.driver,
            tables: self.tables.unwrap_or_default(),
            poll_interval_seconds: poll,
            config,
            ..DatasourceSpec::default()
        };
        let mut d = Datasource::new(&name, spec);
        if let Some(desc) = self.description.filter(|d| !d.is_empty()) {
            d.metadata.annotations = Some(BTreeMap::from([("congress.dev/description".to_string(), desc)]));
        }
        Ok((d, secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        let a = stable_id(&["p", "error(x) :- q(x)"]);
        assert_eq!(a, stable_id(&["p", "error(x) :- q(x)"]));
        assert_ne!(a, stable_id(&["p2", "error(x) :- q(x)"]));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn names_follow_kubernetes_with_underscores_allowed() {
        assert_eq!(resource_name("my_policy").unwrap(), "my-policy");
        assert!(resource_name("Bad").is_err());
        assert!(resource_name("").is_err());
        assert!(resource_name("x-").is_err());
    }

    #[test]
    fn create_policy_checks_kind_and_abbreviation() {
        let req: CreatePolicy =
            serde_json::from_value(json!({"name": "p", "kind": null, "abbreviation": null, "description": null}))
                .unwrap();
        let p = req.into_policy().unwrap();
        assert_eq!(p.spec.kind, None);
        let bad: CreatePolicy = serde_json::from_value(json!({"name": "p", "kind": "nope"})).unwrap();
        assert!(bad.into_policy().unwrap_err().message.contains("unknown kind"));
        let long: CreatePolicy = serde_json::from_value(json!({"name": "p", "abbreviation": "toolong"})).unwrap();
        assert!(long.into_policy().is_err());
        assert!(serde_json::from_value::<CreatePolicy>(json!({"name": "p", "rulez": []})).is_err());
    }

    #[test]
    fn secret_config_is_kept_apart_and_hidden() {
        let req: CreateDatasource = serde_json::from_value(json!({
            "name": "nova", "driver": "nova",
            "config": {"username": "admin", "password": "s3cret", "poll_time": "0", "auth_url": "http://x"}
        }))
        .unwrap();
        let (d, secrets) = req.into_datasource().unwrap();
        assert_eq!(secrets.get("password").map(String::as_str), Some("s3cret"));
        assert!(!d.spec.config.contains_key("password"));
        assert_eq!(d.spec.poll_interval_seconds, Some(0));
        let shown = datasource_json(&DatasourceEntry {
            datasource: d,
            state: Default::default(),
            secret_keys: vec!["password".into()],
        });
        assert_eq!(shown["config"]["password"], "<hidden>");
        assert!(!shown.to_string().contains("s3cret"));
    }
}
