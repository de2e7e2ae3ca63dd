//! `congress simulate --manifest`: admission offline, for CI pipelines. Each object of the
//! manifests is admitted as a CREATE in order, as the operator's webhook would admit it: its
//! rows (through the `kubernetes` Datasources among `--data`) are applied hypothetically,
//! and the rows it would add to the `error` table of a `proactive` policy are its new
//! violations, each with its proof. An object a `deny` policy refuses is not kept; the others
//! are, so a later object is checked against them (two Ingresses with one host in one file).

use congress_drivers::admission::{self, NewViolation};
use congress_engine::Value;
use congress_model::engine_name;
use congress_model::load::Loaded;
use congress_model::resources::{AdmissionAction, DatasourceSpec, Enforcement, KubernetesSource};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// One object of the manifests and where it is.
struct Object {
    at: String,
    value: Json,
}

impl Object {
    fn describe(&self) -> String {
        let s = |p: &str| self.value.pointer(p).and_then(Json::as_str).unwrap_or("");
        match s("/metadata/namespace") {
            "" => format!("{} {}", s("/kind"), s("/metadata/name")),
            ns => format!("{} {ns}/{}", s("/kind"), s("/metadata/name")),
        }
    }
}

fn files(paths: &[PathBuf], out: &mut Vec<PathBuf>) -> Result<(), String> {
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            let (dirs, plain): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|e| e.is_dir());
            out.extend(
                plain.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json")),
            );
            files(&dirs, out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(())
}

/// Every YAML/JSON document under `paths`, with `file (document N)`.
fn documents(paths: &[PathBuf]) -> Result<Vec<Object>, String> {
    let mut list = Vec::new();
    files(paths, &mut list)?;
    let mut out = Vec::new();
    for f in list {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Json::deserialize(doc).map_err(|e| format!("{} (document {}): {e}", f.display(), i + 1))?;
            if !value.is_null() {
                out.push(Object { at: format!("{} (document {})", f.display(), i + 1), value });
            }
        }
    }
    Ok(out)
}

/// The `kubernetes` Datasources among the data files: `(engine name, source)`.
fn kubernetes_datasources(data: &[PathBuf]) -> Result<Vec<(String, KubernetesSource)>, String> {
    let mut out = Vec::new();
    for doc in documents(data)? {
        let v = &doc.value;
        if v.get("kind").and_then(Json::as_str) != Some("Datasource")
            || v.get("apiVersion").and_then(Json::as_str) != Some(congress_model::resources::API_VERSION)
        {
            continue;
        }
        let Some(name) = v.pointer("/metadata/name").and_then(Json::as_str) else { continue };
        let spec: DatasourceSpec = serde_json::from_value(v.get("spec").cloned().unwrap_or(Json::Null))
            .map_err(|e| format!("{}: Datasource {name}: {e}", doc.at))?;
        if let Some(k) = spec.kubernetes.filter(|_| spec.driver == "kubernetes") {
            out.push((engine_name(name), k));
        }
    }
    Ok(out)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Admit every object of `manifests` against `loaded` (see the module's comment).
pub fn run(manifests: &[PathBuf], data: &[PathBuf], loaded: &mut Loaded, json_out: bool) -> ExitCode {
    let datasources = match kubernetes_datasources(data) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let mappings = match admission::mappings(&datasources) {
        Ok(m) => m,
        Err(e) => return fail(format!("a kubernetes Datasource's mapping: {e}")),
    };
    if mappings.is_empty() {
        return fail("no `kubernetes` Datasource among --data: the objects cannot become rows");
    }
    let proactive: Vec<(String, AdmissionAction)> = loaded
        .policies
        .iter()
        .filter(|p| !p.library && p.enforcement == Enforcement::Proactive)
        .map(|p| (p.name.clone(), p.admission))
        .collect();
    if proactive.is_empty() {
        eprintln!("note: no policy has `enforcement: proactive`: every object is admitted");
    }
    let names: Vec<String> = proactive.iter().map(|(n, _)| n.clone()).collect();
    let action = |policy: &str| proactive.iter().find(|(n, _)| n == policy).map_or(AdmissionAction::Deny, |(_, a)| *a);
    let objects = match documents(manifests) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if let Some(o) = objects.iter().find(|o| {
        o.value.get("apiVersion").and_then(Json::as_str).is_none()
            || o.value.get("kind").and_then(Json::as_str).is_none()
            || o.value.pointer("/metadata/name").and_then(Json::as_str).is_none()
    }) {
        return fail(format!("{}: not a Kubernetes object (apiVersion, kind and metadata.name are needed)", o.at));
    }
    let engine = &mut loaded.engine;
    let mut denied_any = false;
    let mut report = Vec::new();
    for o in &objects {
        let changes = admission::row_changes(&mappings, None, Some(&o.value));
        let violations = match admission::new_violations(engine, &changes, &names) {
            Ok(v) => v,
            Err(e) => return fail(format!("{}: {}: the rows do not fit the tables: {e}", o.at, o.describe())),
        };
        let denied = violations.iter().any(|v| action(&v.policy) == AdmissionAction::Deny);
        denied_any |= denied;
        if !denied {
            // Admitted: kept, so later objects see it.
            let mut txn = engine.transaction();
            for c in &changes {
                txn.insert_rows(&c.policy, &c.table, c.added.clone());
            }
            if let Err(e) = txn.commit() {
                return fail(format!("{}: {e}", o.at));
            }
        }
        if json_out {
            report.push(json!({
                "object": o.describe(),
                "source": o.at,
                "allowed": !denied,
                "violations": violations.iter().map(|v| json!({
                    "policy": v.policy,
                    "action": action(&v.policy).as_str(),
                    "row": v.row.iter().map(Value::to_json).collect::<Vec<_>>(),
                    "reason": v.reason,
                    "proof": v.proof,
                })).collect::<Vec<_>>(),
            }));
        } else {
            print_text(o, denied, &violations, &action);
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({ "results": report })).unwrap_or_default());
    }
    if denied_any { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn print_text(o: &Object, denied: bool, violations: &[NewViolation], action: &dyn Fn(&str) -> AdmissionAction) {
    let verdict = if denied {
        "denied"
    } else if violations.is_empty() {
        "admitted"
    } else {
        "admitted with warnings"
    };
    println!("{}: {verdict}", o.describe());
    for v in violations {
        println!("  {} ({}): {}", v.policy, action(&v.policy).as_str(), v.text);
        for line in v.reason.lines() {
            println!("      {line}");
        }
    }
}
