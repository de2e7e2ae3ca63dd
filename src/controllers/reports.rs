//! Policy reports: each Policy's violations as `wgpolicyk8s.io/v1alpha2` reports, the format
//! Kyverno and Policy Reporter read. Rows that name a namespaced object go to a
//! `PolicyReport` in its namespace, the rest to a `ClusterPolicyReport`. A report holds at
//! most [`MAX_RESULTS`] results and about [`MAX_BYTES`] of them (etcd refuses objects past
//! ~1.5 MB), so a scope with more violations is split into numbered parts.
//!
//! Parts are sticky: a row stays in the part it was first written to, a new row goes to the
//! first part with room, so one violation appearing or clearing rewrites one part, not all
//! that follow it. The [`ReportBook`] of a policy is rebuilt from the reports in the API
//! when the operator starts (or becomes leader), so nothing is lost or written twice.

use congress_drivers::kubernetes::ObjectRef;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// At most this many results in one report part.
pub const MAX_RESULTS: usize = 1000;
/// At most about this many bytes of results in one report part.
pub const MAX_BYTES: usize = 800_000;
/// Row texts longer than this are cut (and made unique with a hash).
pub const MAX_KEY: usize = 1000;
/// The label naming the policy a report belongs to.
pub const POLICY_LABEL: &str = "congress.dev/policy";
/// The field manager of every write.
pub const MANAGER: &str = "congress-operator";

/// A violation as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The row's text (bounded by [`MAX_KEY`]): identity within a policy.
    pub key: String,
    /// The row as JSON values.
    pub row: Json,
    /// The object the row names, if any.
    pub resource: Option<ObjectRef>,
    /// RFC 3339 time the row first appeared.
    pub first_seen: String,
    /// The policy's category (its own, its library's, else `congress`).
    pub category: String,
    /// The policy's severity (its own or its library's), if any.
    pub severity: Option<&'static str>,
}

/// The identity of a row, bounded in size.
pub fn row_key(text: &str) -> String {
    if text.len() <= MAX_KEY {
        return text.to_string();
    }
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    format!("{}…#{:016x}", super::prefix(text, MAX_KEY - 20), h.finish())
}

/// Where a report lives: a namespace, or the cluster.
pub type Scope = Option<String>;

#[derive(Clone, Debug, Default)]
struct Part {
    results: BTreeMap<String, Json>,
    bytes: usize,
    /// The part exists in the API.
    exists: bool,
    /// `results` changed since the part was last written.
    dirty: bool,
}

impl Part {
    fn remove(&mut self, key: &str) -> bool {
        let Some(r) = self.results.remove(key) else { return false };
        self.bytes = self.bytes.saturating_sub(size(&r));
        self.dirty = true;
        true
    }

    fn insert(&mut self, key: &str, result: Json) {
        let n = size(&result);
        if let Some(old) = self.results.insert(key.to_string(), result) {
            self.bytes = self.bytes.saturating_sub(size(&old));
        }
        self.bytes += n;
        self.dirty = true;
    }
}

/// The keys a [`ReportBook::set`] added and removed (a row that moved between scopes is
/// in neither).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookDelta {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// One write the book needs.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportChange {
    Apply { scope: Scope, part: usize, results: Vec<Json> },
    Delete { scope: Scope, part: usize },
}

/// The report parts of one policy, as written and as wanted.
#[derive(Clone, Debug, Default)]
pub struct ReportBook {
    scopes: BTreeMap<Scope, Vec<Part>>,
}

fn size(result: &Json) -> usize {
    serde_json::to_vec(result).map_or(0, |v| v.len())
}

impl ReportBook {
    /// A book holding what the API already has (seed it from [`load`]).
    pub fn from_existing(existing: Vec<(Scope, usize, Vec<Json>)>) -> ReportBook {
        let mut book = ReportBook::default();
        for (scope, index, results) in existing {
            let parts = book.scopes.entry(scope).or_default();
            if parts.len() <= index {
                parts.resize_with(index + 1, Part::default);
            }
            let part = &mut parts[index];
            for r in results {
                if let Some(key) = r.get("message").and_then(Json::as_str) {
                    part.bytes += size(&r);
                    part.results.insert(key.to_string(), r);
                }
            }
            part.exists = true;
        }
        book
    }

    /// Every violation the book holds, by key, with its first-seen time.
    pub fn first_seen(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for parts in self.scopes.values() {
            for part in parts {
                for (key, r) in &part.results {
                    if let Some(t) = r.pointer("/properties/firstSeen").and_then(Json::as_str) {
                        out.insert(key.clone(), t.to_string());
                    }
                }
            }
        }
        out
    }

    /// Make the book hold exactly `violations` (for policy `policy`); returns the keys
    /// that appeared and disappeared.
    pub fn set(&mut self, policy: &str, violations: &[Violation]) -> BookDelta {
        let mut wanted: BTreeMap<Scope, BTreeMap<&str, &Violation>> = BTreeMap::new();
        for v in violations {
            let scope = v.resource.as_ref().and_then(|r| r.namespace.clone());
            wanted.entry(scope).or_default().insert(v.key.as_str(), v);
        }
        let mut removed = BTreeSet::new();
        // Drop what is no longer wanted (or moved scope).
        for (scope, parts) in &mut self.scopes {
            let keep = wanted.get(scope);
            for part in parts.iter_mut() {
                let gone: Vec<String> =
                    part.results.keys().filter(|k| keep.is_none_or(|w| !w.contains_key(k.as_str()))).cloned().collect();
                for k in gone {
                    part.remove(&k);
                    removed.insert(k);
                }
            }
        }
        // Add what is new, to the first part with room; refresh what changed in place.
        let mut added = Vec::new();
        for (scope, rows) in wanted {
            let parts = self.scopes.entry(scope).or_default();
            for (key, v) in rows {
                if let Some(part) = parts.iter_mut().find(|p| p.results.contains_key(key)) {
                    if !part.results.get(key).is_some_and(|r| describes(r, v)) {
                        part.insert(key, result_json(policy, v));
                    }
                    continue;
                }
                let result = result_json(policy, v);
                let n = size(&result);
                let i = match parts.iter().position(|p| p.results.len() < MAX_RESULTS && p.bytes + n <= MAX_BYTES) {
                    Some(i) => i,
                    None => {
                        parts.push(Part::default());
                        parts.len() - 1
                    }
                };
                parts[i].insert(key, result);
                if !removed.remove(key) {
                    added.push(key.to_string());
                }
            }
        }
        BookDelta { added, removed: removed.into_iter().collect() }
    }

    /// The writes that make the API match the book (parts changed since they were written,
    /// and parts now empty to delete).
    pub fn changes(&self) -> Vec<ReportChange> {
        let mut out = Vec::new();
        for (scope, parts) in &self.scopes {
            for (i, part) in parts.iter().enumerate() {
                if part.results.is_empty() {
                    if part.exists {
                        out.push(ReportChange::Delete { scope: scope.clone(), part: i });
                    }
                } else if part.dirty || !part.exists {
                    out.push(ReportChange::Apply {
                        scope: scope.clone(),
                        part: i,
                        results: part.results.values().cloned().collect(),
                    });
                }
            }
        }
        out
    }

    /// Record that `change` reached the API.
    pub fn written(&mut self, change: &ReportChange) {
        let (ReportChange::Apply { scope, part, .. } | ReportChange::Delete { scope, part }) = change;
        if let Some(p) = self.scopes.get_mut(scope).and_then(|parts| parts.get_mut(*part)) {
            p.exists = matches!(change, ReportChange::Apply { .. });
            p.dirty = false;
        }
        // Trailing parts that are empty and deleted are forgotten.
        if let Some(parts) = self.scopes.get_mut(scope) {
            while parts.last().is_some_and(|p| p.results.is_empty() && !p.exists) {
                parts.pop();
            }
            if parts.is_empty() {
                self.scopes.remove(scope);
            }
        }
    }

    /// Number of parts in each scope.
    #[cfg(test)]
    pub fn parts(&self) -> BTreeMap<Scope, usize> {
        self.scopes.iter().map(|(s, p)| (s.clone(), p.len())).collect()
    }
}

/// Whether `result` (as written) still describes `v`: the same first-seen time and the same
/// object. Cheaper than building the result again and comparing.
fn describes(result: &Json, v: &Violation) -> bool {
    let seen = result.pointer("/properties/firstSeen").and_then(Json::as_str) == Some(v.first_seen.as_str());
    let object = result.pointer("/resources/0");
    let same_object = match (&v.resource, object) {
        (None, None) => true,
        (Some(o), Some(r)) => {
            r.get("name").and_then(Json::as_str) == Some(o.name.as_str())
                && r.get("kind").and_then(Json::as_str) == Some(o.kind.as_str())
                && r.get("namespace").and_then(Json::as_str) == o.namespace.as_deref()
        }
        _ => false,
    };
    let labels = result.get("category").and_then(Json::as_str) == Some(v.category.as_str())
        && result.get("severity").and_then(Json::as_str) == v.severity;
    seen && same_object && labels
}

/// One `results[]` entry.
fn result_json(policy: &str, v: &Violation) -> Json {
    let seconds = chrono::DateTime::parse_from_rfc3339(&v.first_seen).map_or(0, |t| t.timestamp());
    let mut r = json!({
        "policy": policy,
        "rule": "error",
        "result": "fail",
        "source": "congress",
        "category": v.category,
        "message": v.key,
        "timestamp": {"seconds": seconds, "nanos": 0},
        "properties": {"firstSeen": v.first_seen},
    });
    if let Some(severity) = v.severity {
        r["severity"] = Json::String(severity.to_string());
    }
    let row = v.row.to_string();
    if row.len() <= MAX_KEY {
        r["properties"]["row"] = Json::String(row);
    }
    if let Some(o) = &v.resource {
        let mut reference = json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name});
        if !o.uid.is_empty() {
            reference["uid"] = Json::String(o.uid.clone());
        }
        if let Some(ns) = &o.namespace {
            reference["namespace"] = Json::String(ns.clone());
        }
        r["resources"] = json!([reference]);
    }
    r
}

/// The name of part `part` of `policy`'s report.
pub fn report_name(policy: &str, part: usize) -> String {
    if part == 0 { format!("congress-{policy}") } else { format!("congress-{policy}-{part}") }
}

fn api_resource(cluster: bool) -> ApiResource {
    let kind = if cluster { "ClusterPolicyReport" } else { "PolicyReport" };
    ApiResource::from_gvk(&GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", kind))
}

fn api(client: &Client, scope: &Scope) -> Api<DynamicObject> {
    match scope {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &api_resource(false)),
        None => Api::all_with(client.clone(), &api_resource(true)),
    }
}

fn part_of(name: &str, policy: &str) -> Option<usize> {
    let base = report_name(policy, 0);
    if name == base {
        return Some(0);
    }
    name.strip_prefix(&base)?.strip_prefix('-')?.parse().ok()
}

/// Read `policy`'s reports from the API: (scope, part, results).
pub async fn load(client: &Client, policy: &str) -> Result<Vec<(Scope, usize, Vec<Json>)>, kube::Error> {
    let lp = ListParams::default().labels(&format!("{POLICY_LABEL}={policy}"));
    let mut out = Vec::new();
    for cluster in [true, false] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(cluster));
        for obj in api.list(&lp).await?.items {
            let Some(part) = obj.metadata.name.as_deref().and_then(|n| part_of(n, policy)) else { continue };
            let scope = if cluster { None } else { obj.metadata.namespace.clone() };
            let results = obj.data.get("results").and_then(Json::as_array).cloned().unwrap_or_default();
            out.push((scope, part, results));
        }
    }
    Ok(out)
}

/// Whether reports can be read: both kinds listed (at most one object each).
pub async fn probe(client: &Client) -> Result<(), kube::Error> {
    let lp = ListParams::default().limit(1);
    for cluster in [true, false] {
        Api::<DynamicObject>::all_with(client.clone(), &api_resource(cluster)).list(&lp).await?;
    }
    Ok(())
}

/// Write one change.
pub async fn write(client: &Client, policy: &str, change: &ReportChange) -> Result<(), kube::Error> {
    match change {
        ReportChange::Apply { scope, part, results } => {
            let cluster = scope.is_none();
            let mut metadata = json!({
                "name": report_name(policy, *part),
                "labels": {
                    POLICY_LABEL: policy,
                    "app.kubernetes.io/managed-by": "congress",
                    "congress.dev/part": part.to_string(),
                },
            });
            if let Some(ns) = scope {
                metadata["namespace"] = Json::String(ns.clone());
            }
            let body = json!({
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": if cluster { "ClusterPolicyReport" } else { "PolicyReport" },
                "metadata": metadata,
                "summary": {"pass": 0, "fail": results.len(), "warn": 0, "error": 0, "skip": 0},
                "results": results,
            });
            let params = PatchParams::apply(MANAGER).force();
            api(client, scope).patch(&report_name(policy, *part), &params, &Patch::Apply(&body)).await.map(|_| ())
        }
        ReportChange::Delete { scope, part } => {
            match api(client, scope).delete(&report_name(policy, *part), &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Delete every report of `policy`.
pub async fn delete_all(client: &Client, policy: &str) -> Result<(), kube::Error> {
    let mut seen = BTreeSet::new();
    for (scope, part, _) in load(client, policy).await? {
        if seen.insert((scope.clone(), part)) {
            write(client, policy, &ReportChange::Delete { scope, part }).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(i: usize, ns: Option<&str>) -> Violation {
        Violation {
            key: format!("error(\"pod-{i:05}\")"),
            row: json!([format!("pod-{i:05}")]),
            resource: ns.map(|ns| ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some(ns.into()),
                name: format!("pod-{i:05}"),
                uid: format!("uid-{i}"),
            }),
            first_seen: "2026-11-22T10:00:00Z".into(),
            category: "Pod Security".into(),
            severity: Some("high"),
        }
    }

    #[test]
    fn results_carry_category_and_severity() {
        let r = result_json("p", &v(1, Some("ns")));
        assert_eq!(r["category"], "Pod Security");
        assert_eq!(r["severity"], "high");
        // A new severity makes the result out of date, so it is written again.
        let mut other = v(1, Some("ns"));
        other.severity = Some("low");
        assert!(describes(&r, &v(1, Some("ns"))));
        assert!(!describes(&r, &other));
        let none = Violation { severity: None, category: "congress".into(), ..v(2, None) };
        let r = result_json("p", &none);
        assert_eq!(r["category"], "congress");
        assert!(r.get("severity").is_none());
    }

    fn apply_all(book: &mut ReportBook) -> Vec<ReportChange> {
        let changes = book.changes();
        for c in &changes {
            book.written(c);
        }
        changes
    }

    #[test]
    fn scopes_split_by_namespace_and_into_parts() {
        let mut book = ReportBook::default();
        let mut rows: Vec<Violation> = (0..2500).map(|i| v(i, Some("a"))).collect();
        rows.push(v(9, None));
        book.set("p", &rows);
        assert_eq!(book.parts(), BTreeMap::from([(None, 1), (Some("a".to_string()), 3)]));
        assert_eq!(apply_all(&mut book).len(), 4);
        assert!(book.changes().is_empty(), "written parts are not rewritten");
    }

    #[test]
    fn one_change_rewrites_one_part() {
        let mut book = ReportBook::default();
        let mut rows: Vec<Violation> = (0..2500).map(|i| v(i, Some("a"))).collect();
        book.set("p", &rows);
        apply_all(&mut book);
        // A row at the front clears and a new one appears: parts stay where they are.
        rows.remove(0);
        rows.push(v(0, Some("a")));
        rows[2498].key = "error(\"aaa-new\")".into();
        let delta = book.set("p", &rows);
        assert_eq!(delta.added, vec!["error(\"aaa-new\")".to_string()]);
        assert_eq!(delta.removed, vec!["error(\"pod-02499\")".to_string()]);
        let changes = apply_all(&mut book);
        assert_eq!(changes.len(), 1, "{changes:?}");
        // Everything clears: every part is deleted and the book forgets them.
        book.set("p", &[]);
        let changes = apply_all(&mut book);
        assert_eq!(changes.len(), 3);
        assert!(changes.iter().all(|c| matches!(c, ReportChange::Delete { .. })));
        assert!(book.parts().is_empty());
    }

    #[test]
    fn a_book_rebuilt_from_the_api_writes_nothing_new() {
        let mut book = ReportBook::default();
        let rows: Vec<Violation> = (0..1500).map(|i| v(i, Some("a"))).collect();
        book.set("p", &rows);
        let existing: Vec<(Scope, usize, Vec<Json>)> = apply_all(&mut book)
            .into_iter()
            .map(|c| match c {
                ReportChange::Apply { scope, part, results } => (scope, part, results),
                ReportChange::Delete { .. } => unreachable!(),
            })
            .collect();
        let mut again = ReportBook::from_existing(existing);
        assert_eq!(again.first_seen().len(), 1500);
        again.set("p", &rows);
        assert!(again.changes().is_empty());
    }

    #[test]
    fn big_rows_are_bounded_by_bytes() {
        let mut book = ReportBook::default();
        let rows: Vec<Violation> = (0..900)
            .map(|i| {
                let mut r = v(i, None);
                r.key = row_key(&format!("error(\"{i}{}\")", "x".repeat(5000)));
                r
            })
            .collect();
        assert!(rows[0].key.len() < MAX_KEY + 30);
        book.set("p", &rows);
        for c in book.changes() {
            if let ReportChange::Apply { results, .. } = c {
                let bytes: usize = results.iter().map(size).sum();
                assert!(bytes <= MAX_BYTES, "{bytes}");
            }
        }
        assert!(book.parts()[&None] >= 2);
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_of(&report_name("p", 0), "p"), Some(0));
        assert_eq!(part_of(&report_name("p", 12), "p"), Some(12));
        assert_eq!(part_of("congress-p-x", "p"), None);
        assert_eq!(part_of("congress-pq", "p"), None);
    }
}
