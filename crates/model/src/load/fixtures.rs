//! Data files: fixtures (`tables:`), schema files (`schema:`) and `Datasource` manifests,
//! every row checked against its table's columns.
//!
//! A datasource is known by its engine name ([`engine_name`]): that of a `Datasource`
//! manifest's `metadata.name`, as the operator names it, and likewise of the names fixtures
//! (`DATASOURCE:table`, `datasource: NAME`) and schema files write, so `kube-data` and
//! `kube_data` are one datasource everywhere. Messages quote a name as the file writes it.

use super::documents::{
    DATA_EXTS, Doc, collect_files, documents, find_key, is_congress, manifest_kind, metadata_name, read, spec_of,
};
use super::{FixtureSet, LoadError, Origin, TableFixture};
use crate::engine_name;
use crate::resources::DatasourceSpec;
use congress_engine::syntax::Span;
use congress_engine::{Schema, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A fixture document waiting for every schema to be known.
struct PendingTable {
    /// The engine name, and the name as the file writes it (for messages).
    datasource: String,
    written: String,
    table: String,
    rows: serde_json::Value,
    origin: Origin,
    /// Byte offset of the table key in `doc_text`, and the document.
    key_at: usize,
    doc_text: String,
    first_line: usize,
}

/// Read every data file under `paths`: fixtures (`tables:`), schema files (`schema:`) and
/// `Datasource` manifests. Rows are checked against the schemas.
pub fn load_fixtures(paths: &[PathBuf]) -> Result<FixtureSet, Vec<LoadError>> {
    load_fixtures_with_schemas(paths, BTreeMap::new())
}

/// [`load_fixtures`], with schemas known beforehand (e.g. from [`load_schemas`] over the
/// policy paths; keys are datasource names, taken to their engine names); the data files
/// may define more.
pub fn load_fixtures_with_schemas(
    paths: &[PathBuf],
    schemas: BTreeMap<String, Schema>,
) -> Result<FixtureSet, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, DATA_EXTS, &mut errors);
    let schemas: BTreeMap<String, Schema> = schemas.into_iter().map(|(k, v)| (engine_name(&k), v)).collect();
    let mut schema_origin: HashMap<String, Origin> =
        schemas.keys().map(|k| (k.clone(), Origin::new(format!("<schema of {k}>"), 0, 1, 1))).collect();
    let mut set = FixtureSet { schemas, tables: Vec::new() };
    let mut pending: Vec<PendingTable> = Vec::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        for doc in documents(file, &text, &mut errors) {
            if manifest_kind(&doc.value).is_some() {
                if is_congress(&doc, &mut errors).as_deref() == Some("Datasource") {
                    let Some(name) = metadata_name(&doc, &mut errors) else { continue };
                    let Some(spec) = spec_of::<DatasourceSpec>(&doc, "Datasource", &mut errors) else {
                        continue;
                    };
                    add_schema(&mut set, &mut schema_origin, &name, spec.schema(), doc.start(), &mut errors);
                }
                continue;
            }
            let Some(map) = doc.value.as_object() else {
                errors.push(LoadError::Fixture {
                    origin: doc.start(),
                    message: "not a fixture: expected a mapping with `tables` or `schema`".into(),
                });
                continue;
            };
            for k in map.keys() {
                if !matches!(k.as_str(), "datasource" | "tables" | "schema") {
                    let origin = doc.key_origin(k, 0).map_or_else(|| doc.start(), |(_, o)| o);
                    errors.push(LoadError::Fixture {
                        origin,
                        message: format!("unknown key `{k}` in a fixture (expected `datasource`, `tables`, `schema`)"),
                    });
                }
            }
            if !map.contains_key("tables") && !map.contains_key("schema") {
                errors.push(LoadError::Fixture {
                    origin: doc.start(),
                    message: "not a fixture: expected `tables` or `schema`".into(),
                });
                continue;
            }
            if let Some(schema) = map.get("schema") {
                schema_doc(&doc, schema, &mut set, &mut schema_origin, &mut errors);
            }
            let default_ds = match map.get("datasource") {
                None => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    let origin = doc.key_origin("datasource", 0).map_or_else(|| doc.start(), |(_, o)| o);
                    errors.push(LoadError::Fixture { origin, message: "`datasource` must be a string".into() });
                    continue;
                }
            };
            let Some(tables) = map.get("tables") else { continue };
            let tables_at = doc.key_origin("tables", 0).map_or(0, |(b, _)| b);
            let Some(tables) = tables.as_object() else {
                errors.push(LoadError::Fixture {
                    origin: doc.origin_at(tables_at),
                    message: "`tables` must map table names to lists of rows".into(),
                });
                continue;
            };
            let mut cursor = tables_at;
            for (key, rows) in tables {
                let key_at = find_key(doc.text, key, cursor).unwrap_or(tables_at);
                cursor = key_at.max(cursor);
                let origin = doc.origin_at(key_at);
                let (ds, table) = match (key.split_once(':'), &default_ds) {
                    (Some((d, t)), _) => (d.to_string(), t.to_string()),
                    (None, Some(d)) => (d.clone(), key.clone()),
                    (None, None) => {
                        errors.push(LoadError::Fixture {
                            origin,
                            message: format!(
                                "table `{key}` has no datasource: write `DATASOURCE:{key}` or add `datasource: NAME`"
                            ),
                        });
                        continue;
                    }
                };
                pending.push(PendingTable {
                    datasource: engine_name(&ds),
                    written: ds,
                    table,
                    rows: rows.clone(),
                    origin,
                    key_at,
                    doc_text: doc.text.to_string(),
                    first_line: doc.first_line,
                });
            }
        }
    }
    for p in pending {
        if let Some(t) = convert_table(p, &set.schemas, &mut errors) {
            set.tables.push(t);
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

/// The schemas of the `Datasource` manifests under `paths` (other documents are ignored),
/// keyed by engine name: policy directories often hold the Datasource manifests their
/// rules read.
pub fn load_schemas(paths: &[PathBuf]) -> Result<BTreeMap<String, Schema>, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, DATA_EXTS, &mut errors);
    let mut set = FixtureSet::default();
    let mut origins = HashMap::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        for doc in documents(file, &text, &mut errors) {
            if manifest_kind(&doc.value).is_some_and(|(_, k)| k == "Datasource")
                && is_congress(&doc, &mut errors).is_some()
                && let Some(name) = metadata_name(&doc, &mut errors)
                && let Some(spec) = spec_of::<DatasourceSpec>(&doc, "Datasource", &mut errors)
            {
                add_schema(&mut set, &mut origins, &name, spec.schema(), doc.start(), &mut errors);
            }
        }
    }
    if errors.is_empty() { Ok(set.schemas) } else { Err(errors) }
}

/// The schema of the datasource `name` (as written; kept under its engine name).
fn add_schema(
    set: &mut FixtureSet,
    origins: &mut HashMap<String, Origin>,
    name: &str,
    schema: Schema,
    origin: Origin,
    errors: &mut Vec<LoadError>,
) {
    let engine = engine_name(name);
    if name.is_empty() || name.contains(':') || engine == "builtin" {
        errors.push(LoadError::Fixture { origin, message: format!("invalid datasource name `{name}`") });
        return;
    }
    if let Some(first) = origins.get(&engine) {
        if set.schemas.get(&engine) != Some(&schema) {
            errors.push(LoadError::Fixture {
                origin,
                message: format!("datasource `{name}` has a second, different schema (first at {first})"),
            });
        }
        return;
    }
    origins.insert(engine.clone(), origin);
    set.schemas.insert(engine, schema);
}

/// `schema: {DATASOURCE: {TABLE: [COLUMN, ...]}}`.
fn schema_doc(
    doc: &Doc,
    schema: &serde_json::Value,
    set: &mut FixtureSet,
    origins: &mut HashMap<String, Origin>,
    errors: &mut Vec<LoadError>,
) {
    let at = doc.key_origin("schema", 0).map_or(0, |(b, _)| b);
    let bad = |errors: &mut Vec<LoadError>, b: usize, m: String| {
        errors.push(LoadError::Fixture { origin: doc.origin_at(b), message: m });
    };
    let Some(dss) = schema.as_object() else {
        return bad(errors, at, "`schema` must map datasource names to {table: [columns]}".into());
    };
    for (ds, tables) in dss {
        let ds_at = find_key(doc.text, ds, at).unwrap_or(at);
        let Some(tables) = tables.as_object() else {
            bad(errors, ds_at, format!("schema of `{ds}` must map table names to lists of columns"));
            continue;
        };
        let mut s = Schema::new();
        for (t, cols) in tables {
            let cols: Option<Vec<String>> =
                cols.as_array().and_then(|a| a.iter().map(|c| c.as_str().map(str::to_string)).collect());
            match cols {
                Some(c) => {
                    s.insert(t.clone(), c);
                }
                None => {
                    let t_at = find_key(doc.text, t, ds_at).unwrap_or(ds_at);
                    bad(errors, t_at, format!("columns of `{ds}:{t}` must be a list of names"));
                }
            }
        }
        add_schema(set, origins, ds, s, doc.origin_at(ds_at), errors);
    }
}

/// Line starts (byte offsets) of rows under a table key: lines beginning with `-`, `[` or
/// `{` after the key, at the indentation of the first one (best effort; JSON and YAML).
fn row_offsets(text: &str, key_at: usize) -> Vec<usize> {
    let line_start = text[..key_at].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = key_at - line_start;
    let mut out = Vec::new();
    let mut row_indent: Option<usize> = None;
    let key_line_end = text[key_at..].find('\n').map_or(text.len(), |i| key_at + i + 1);
    // Flow rows on the key's own line (`servers: [[a, b]]`): one offset for all.
    let rest = text[key_at..key_line_end].trim_end();
    if rest.ends_with(']') || rest.ends_with('}') {
        return vec![key_at];
    }
    let mut off = key_line_end;
    for line in text[key_line_end..].split_inclusive('\n') {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.trim().is_empty() || body.starts_with('#') {
            off += line.len();
            continue;
        }
        let starter = body.starts_with('-') || body.starts_with('[') || body.starts_with('{');
        match row_indent {
            None if starter && indent >= key_indent => {
                row_indent = Some(indent);
                out.push(off + indent);
            }
            Some(ri) if indent == ri && starter => out.push(off + indent),
            Some(ri) if indent < ri && !(body.starts_with(']') || body.starts_with('}')) => break,
            None if indent <= key_indent => break,
            _ => {}
        }
        off += line.len();
    }
    out
}

fn convert_table(
    p: PendingTable,
    schemas: &BTreeMap<String, Schema>,
    errors: &mut Vec<LoadError>,
) -> Option<TableFixture> {
    let PendingTable { datasource, written, table, rows, origin, key_at, doc_text, first_line } = p;
    let at = |b: usize| {
        let (l, c) = Span::new(b, b).line_col(&doc_text);
        Origin { line: first_line + l - 1, col: c, ..origin.clone() }
    };
    let Some(schema) = schemas.get(&datasource) else {
        errors.push(LoadError::Fixture {
            origin,
            message: format!(
                "no schema for datasource `{written}`: add a Datasource manifest or a schema file to the data files"
            ),
        });
        return None;
    };
    let Some(columns) = schema.get(&table) else {
        let known: Vec<&str> = schema.keys().map(String::as_str).collect();
        errors.push(LoadError::Fixture {
            origin,
            message: format!(
                "unknown table `{written}:{table}` (datasource `{written}` has: {})",
                if known.is_empty() { "no tables".to_string() } else { known.join(", ") }
            ),
        });
        return None;
    };
    let rows = match rows {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(a) => a,
        _ => {
            errors.push(LoadError::Fixture { origin, message: format!("rows of `{written}:{table}` must be a list") });
            return None;
        }
    };
    let offsets = row_offsets(&doc_text, key_at);
    let row_at = |i: usize| offsets.get(i).or(offsets.last()).copied().unwrap_or(key_at);
    let n_err = errors.len();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let here = row_at(i);
        let name = format!("`{written}:{table}` row {}", i + 1);
        let mut values = Vec::with_capacity(columns.len());
        let mut bad = |b: usize, m: String| errors.push(LoadError::Fixture { origin: at(b), message: m });
        match row {
            serde_json::Value::Array(vals) => {
                if vals.len() != columns.len() {
                    bad(
                        here,
                        format!(
                            "{name} has {} values but the table has {} columns ({})",
                            vals.len(),
                            columns.len(),
                            columns.join(", ")
                        ),
                    );
                    continue;
                }
                for (c, v) in columns.iter().zip(vals) {
                    match scalar(v) {
                        Some(v) => values.push(v),
                        None => bad(here, format!("{name}, column `{c}`: nested value {v} (only scalars are allowed)")),
                    }
                }
            }
            serde_json::Value::Object(obj) => {
                let next = row_at(i + 1);
                let end = if next > here { next } else { doc_text.len() };
                for k in obj.keys() {
                    if !columns.contains(k) {
                        let b = find_key(&doc_text[..end], k, here).unwrap_or(here);
                        bad(b, format!("{name}: unknown column `{k}` (columns: {})", columns.join(", ")));
                    }
                }
                for c in columns {
                    match obj.get(c) {
                        None => values.push(Value::str("None")),
                        Some(v) => match scalar(v) {
                            Some(v) => values.push(v),
                            None => {
                                let b = find_key(&doc_text[..end], c, here).unwrap_or(here);
                                bad(b, format!("{name}, column `{c}`: nested value {v} (only scalars are allowed)"))
                            }
                        },
                    }
                }
            }
            other => {
                bad(here, format!("{name}: a row must be a list of values or a mapping of columns, not {other}"));
                continue;
            }
        }
        out.push(values);
    }
    if errors.len() > n_err {
        return None;
    }
    Some(TableFixture { datasource, table, rows: out, origin })
}

/// A scalar JSON value as Congress converts it; `None` for arrays and objects.
fn scalar(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
        v => Some(Value::from_json_congress(v)),
    }
}
