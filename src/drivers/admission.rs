//! Admission: what an admitted Kubernetes object would change, before it happens (Congress's
//! proactive enforcement). The object (and, for an UPDATE or DELETE, the object it replaces)
//! becomes rows through the same mapping its `kubernetes` Datasource uses; the difference
//! (old rows out, new rows in, every table of the object at once) is applied hypothetically
//! to the engine ([`Engine::hypothetically`]); the rows it would add to the `error` table of
//! a proactive policy are the new violations, each with its proof. Violations that already
//! exist are not new, so they never block an unrelated change. Nothing persists.
//!
//! Used by `congress simulate --manifest` (offline, on loaded fixtures) and, later, by the
//! operator's admission webhook (on the live engine, on its thread).

use super::translate::{MappingError, Translator};
use congress_engine::{Engine, EngineError, RowChange, Value, render_proof};
use congress_model::resources::{KubernetesSource, WatchedResource};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

/// How one watched kind of one `kubernetes` Datasource becomes rows.
pub struct KindMapping {
    /// The Datasource's engine name (`kube`).
    pub datasource: String,
    pub resource: WatchedResource,
    translator: Translator,
}

/// The mappings of `kubernetes` Datasources, `(engine name, source)`.
pub fn mappings(datasources: &[(String, KubernetesSource)]) -> Result<Vec<KindMapping>, MappingError> {
    let mut out = Vec::new();
    for (datasource, source) in datasources {
        for r in &source.resources {
            out.push(KindMapping {
                datasource: datasource.clone(),
                resource: r.clone(),
                translator: Translator::new(&r.table)?,
            });
        }
    }
    Ok(out)
}

impl KindMapping {
    /// Whether `object` is of this mapping's kind, in its namespace and matching its label
    /// selector (as the Datasource's watch would have it).
    pub fn matches(&self, object: &Json) -> bool {
        let str_at = |p: &str| object.pointer(p).and_then(Json::as_str);
        if str_at("/apiVersion") != Some(self.resource.api_version.as_str())
            || str_at("/kind") != Some(self.resource.kind.as_str())
        {
            return false;
        }
        if let Some(ns) = &self.resource.namespace
            && str_at("/metadata/namespace") != Some(ns.as_str())
        {
            return false;
        }
        let labels: BTreeMap<String, String> = object
            .pointer("/metadata/labels")
            .and_then(Json::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        self.resource.label_selector.as_deref().is_none_or(|s| selector_matches(s, &labels))
    }
}

/// A label selector in its string form (`app=web,tier!=db,env in (a, b),!legacy`) against
/// `labels`. A requirement that does not parse matches nothing.
pub fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    split_requirements(selector).iter().all(|req| requirement_matches(req.trim(), labels))
}

/// Requirements are separated by commas outside parentheses.
fn split_requirements(selector: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0usize);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&selector[start..]);
    out.into_iter().filter(|r| !r.trim().is_empty()).collect()
}

fn requirement_matches(req: &str, labels: &BTreeMap<String, String>) -> bool {
    let set = |rest: &str| -> Option<BTreeSet<String>> {
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some(key) = req.strip_prefix('!') {
        return !labels.contains_key(key.trim());
    }
    if let Some((k, v)) = req.split_once("!=") {
        return labels.get(k.trim()).is_none_or(|x| x != v.trim());
    }
    if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
        return labels.get(k.trim()).is_some_and(|x| x == v.trim());
    }
    let words: Vec<&str> = req.splitn(3, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => labels.contains_key(*key),
        [key, "in", rest] => set(rest).is_some_and(|s| labels.get(*key).is_some_and(|v| s.contains(v))),
        [key, "notin", rest] => set(rest).is_some_and(|s| labels.get(*key).is_none_or(|v| !s.contains(v))),
        _ => false,
    }
}

/// What replacing `old` by `new` changes in the tables of the Datasources that watch the
/// object's kind: per table, the rows that go and the rows that come (rows in both are
/// left alone). `old` is absent for a CREATE, `new` for a DELETE.
pub fn row_changes(mappings: &[KindMapping], old: Option<&Json>, new: Option<&Json>) -> Vec<RowChange> {
    /// A table's rows from the old object and from the new one.
    type Sides = (BTreeSet<Vec<Value>>, BTreeSet<Vec<Value>>);
    let mut by_table: BTreeMap<(String, String), Sides> = BTreeMap::new();
    for m in mappings {
        for (side, object) in [(0, old), (1, new)] {
            let Some(object) = object.filter(|o| m.matches(o)) else { continue };
            for (table, rows) in m.translator.translate(object) {
                let entry = by_table.entry((m.datasource.clone(), table)).or_default();
                let set = if side == 0 { &mut entry.0 } else { &mut entry.1 };
                set.extend(rows);
            }
        }
    }
    by_table
        .into_iter()
        .filter_map(|((policy, table), (before, after))| {
            let removed: Vec<Vec<Value>> = before.difference(&after).cloned().collect();
            let added: Vec<Vec<Value>> = after.difference(&before).cloned().collect();
            (!removed.is_empty() || !added.is_empty()).then_some(RowChange { policy, table, removed, added })
        })
        .collect()
}

/// A row the change would add to a proactive policy's `error` table.
#[derive(Clone, Debug, PartialEq)]
pub struct NewViolation {
    /// The policy's engine name.
    pub policy: String,
    pub row: Vec<Value>,
    /// The row as `error(...)` prints.
    pub text: String,
    /// Why it would hold: which rules and facts (the engine's explanation), or why that
    /// could not be told.
    pub proof: String,
    /// The short form: the rule that derives the row and the facts it rests on.
    pub reason: String,
}

/// The short form of a proof: the rule of its root, then the distinct facts at its leaves
/// (rows of datasources and facts of policies), in the order met.
pub fn short_proof(p: &congress_engine::Proof) -> String {
    fn leaves<'a>(p: &'a congress_engine::Proof, out: &mut Vec<&'a str>) {
        if p.children.is_empty() {
            if p.how.starts_with("fact") && !out.contains(&p.literal.as_str()) {
                out.push(&p.literal);
            }
            return;
        }
        for c in &p.children {
            leaves(c, out);
        }
    }
    let mut facts = Vec::new();
    leaves(p, &mut facts);
    let rule = p.how.strip_prefix("rule: ").unwrap_or(&p.how);
    format!("by {rule}\nfrom {}", facts.join(", "))
}

/// The rows `changes` would add to the `error` tables of `policies` (engine names), each
/// with its proof, in policy and row order. Nothing of the change persists.
pub fn new_violations(
    engine: &mut Engine,
    changes: &[RowChange],
    policies: &[String],
) -> Result<Vec<NewViolation>, EngineError> {
    engine.hypothetically(changes, |e, commit| {
        let mut out = Vec::new();
        for d in &commit.changes {
            if d.table != "error" || !policies.contains(&d.policy) {
                continue;
            }
            for row in &d.added {
                let cells: Vec<String> = row.iter().map(Value::to_string).collect();
                let text = format!("error({})", cells.join(", "));
                let (proof, reason) = match e.explain(&d.policy, &text) {
                    Ok(p) => (render_proof(&p), short_proof(&p)),
                    Err(err) => (format!("(no proof: {err})"), format!("(no proof: {err})")),
                };
                out.push(NewViolation { policy: d.policy.clone(), row: row.clone(), text, proof, reason });
            }
        }
        out.sort_by(|a, b| (&a.policy, &a.text).cmp(&(&b.policy, &b.text)));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors_match_as_the_api_server_does() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(selector_matches("app=web", &l));
        assert!(selector_matches("app==web,tier!=db", &l));
        assert!(selector_matches("tier in (front, back),!legacy", &l));
        assert!(selector_matches("app", &l));
        assert!(selector_matches("env notin (prod)", &l));
        assert!(!selector_matches("app=db", &l));
        assert!(!selector_matches("tier notin (front)", &l));
        assert!(!selector_matches("!app", &l));
        assert!(!selector_matches("app in web", &l), "a requirement that does not parse matches nothing");
        assert!(selector_matches("", &l));
    }

    fn kube() -> Vec<KindMapping> {
        let source: KubernetesSource = serde_json::from_value(json!({"resources": [{
            "apiVersion": "v1", "kind": "Pod", "table": "pods",
            "columns": [{"name": "ns", "path": "metadata.namespace"}, {"name": "name", "path": "metadata.name"}],
            "children": [{"path": "spec.containers", "table": "containers",
                "columns": [{"name": "pod", "path": "$parent.name"}, {"name": "image", "path": "image"}]}]
        }, {
            "apiVersion": "v1", "kind": "Service", "namespace": "shop", "table": "services",
            "columns": [{"name": "name", "path": "metadata.name"}]
        }]}))
        .unwrap();
        mappings(&[("kube".into(), source)]).unwrap()
    }

    fn pod(name: &str, images: &[&str]) -> Json {
        let containers: Vec<Json> = images.iter().map(|i| json!({"name": "c", "image": i})).collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "shop", "name": name}, "spec": {"containers": containers}})
    }

    #[test]
    fn an_update_changes_only_the_rows_that_differ_in_every_table_of_the_object() {
        let m = kube();
        let create = row_changes(&m, None, Some(&pod("p", &["a", "b"])));
        assert_eq!(create.len(), 2);
        assert_eq!((create[0].table.as_str(), create[0].added.len()), ("containers", 2));
        assert_eq!((create[1].table.as_str(), create[1].added.len()), ("pods", 1));
        let update = row_changes(&m, Some(&pod("p", &["a", "b"])), Some(&pod("p", &["a", "c"])));
        assert_eq!(update.len(), 1, "the pods row is unchanged");
        assert_eq!(update[0].removed, vec![vec![Value::str("p"), Value::str("b")]]);
        assert_eq!(update[0].added, vec![vec![Value::str("p"), Value::str("c")]]);
        let delete = row_changes(&m, Some(&pod("p", &["a"])), None);
        assert!(delete.iter().all(|c| c.added.is_empty() && !c.removed.is_empty()));
        // Kinds no Datasource watches, or outside its namespace, change nothing.
        let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "elsewhere", "name": "s"}});
        assert!(row_changes(&m, None, Some(&other)).is_empty());
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert!(row_changes(&m, None, Some(&cm)).is_empty());
    }

    #[test]
    fn only_new_rows_of_the_chosen_policies_are_violations_with_a_proof() {
        let mut e = Engine::with_default_policies();
        let schema = [
            ("pods".to_string(), vec!["ns".to_string(), "name".to_string()]),
            ("containers".to_string(), vec!["pod".to_string(), "image".to_string()]),
        ]
        .into_iter()
        .collect();
        e.create_datasource("kube", schema).unwrap();
        e.create_policy("registries", congress_engine::PolicyKind::Nonrecursive).unwrap();
        e.create_policy("other", congress_engine::PolicyKind::Nonrecursive).unwrap();
        e.insert_rules("registries", r#"error(pod, image) :- kube:containers(pod, image), not builtin:startswith(image, "registry.example.com/")"#)
            .unwrap();
        e.insert_rules("other", r#"error(pod) :- kube:pods(ns, pod)"#).unwrap();
        let m = kube();
        // An existing violation does not block an unrelated change.
        let old = row_changes(&m, None, Some(&pod("old", &["docker.io/x"])));
        let mut t = e.transaction();
        for c in &old {
            t.insert_rows(&c.policy, &c.table, c.added.clone());
        }
        t.commit().unwrap();
        let ok = row_changes(&m, None, Some(&pod("p", &["registry.example.com/a"])));
        assert!(new_violations(&mut e, &ok, &["registries".into()]).unwrap().is_empty());
        let bad = row_changes(&m, None, Some(&pod("p", &["registry.example.com/a", "evil.io/b"])));
        let v = new_violations(&mut e, &bad, &["registries".into()]).unwrap();
        assert_eq!(v.len(), 1, "only the proactive policy's new row: {v:?}");
        assert_eq!(v[0].text, r#"error("p", "evil.io/b")"#);
        assert!(v[0].proof.contains(r#"kube:containers("p", "evil.io/b")"#), "{}", v[0].proof);
        assert_eq!(
            v[0].reason,
            "by error(pod, image) :- kube:containers(pod, image), not builtin:startswith(image, \"registry.example.com/\")\nfrom kube:containers(\"p\", \"evil.io/b\")"
        );
        // Nothing persisted.
        assert_eq!(e.rows("kube", "pods").unwrap().len(), 1);
    }
}
