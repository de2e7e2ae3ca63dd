//! The `push` driver: data sent to the operator instead of fetched by it. Congress's
//! `PUT /v1/data-sources/{name}/tables/{table}/rows` replaces one table; a JSON document of
//! `replace` and `patch` (`add`, `remove`) per table changes several tables in one
//! transaction. This module turns a request body into checked row changes (every row the
//! table's width, every value a scalar) and keeps the rows pushed so far, so a replace
//! commits only its difference; the HTTP side (auth, limits) is the operator's.

use super::TableChange;
use super::poll::Tables;
use congress_engine::{Schema, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Why a push was refused (the HTTP status and a message that says where and why).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the body is not JSON: {message} (line {line}, column {column})")]
    NotJson { line: usize, column: usize, message: String },
    #[error("the body is not {expected}")]
    Shape { expected: &'static str },
    #[error("datasource `{datasource}` has no table `{table}` (its tables: {known})")]
    UnknownTable { datasource: String, table: String, known: String },
    #[error("table `{table}`, row {row}: {found} values, but the table has {width} columns")]
    Width { table: String, row: usize, found: usize, width: usize },
    #[error("table `{table}`, row {row}, column {column}: a nested value (rows hold strings, numbers, booleans, null)")]
    Nested { table: String, row: usize, column: usize },
    #[error("table `{table}`, row {row}: not a list of values or an object by column")]
    NotARow { table: String, row: usize },
    #[error("table `{table}`, row {row}: no column `{column}` (its columns: {known})")]
    UnknownColumn { table: String, row: usize, column: String, known: String },
    #[error("table `{table}` is both replaced and patched")]
    Both { table: String },
}

impl PushError {
    /// Congress's error code for the body (`{"error": {"error_code": ...}}`).
    pub fn status(&self) -> u16 {
        match self {
            PushError::UnknownTable { .. } => 404,
            _ => 400,
        }
    }
}

/// One table's patch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    #[serde(default)]
    add: Vec<serde_json::Value>,
    #[serde(default)]
    remove: Vec<serde_json::Value>,
}

/// The multi-table document.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    replace: BTreeMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    patch: BTreeMap<String, Patch>,
}

/// The rows pushed to one datasource so far.
#[derive(Debug)]
pub struct PushState {
    datasource: String,
    schema: Schema,
    tables: Tables,
}

impl PushState {
    pub fn new(datasource: &str, schema: Schema) -> PushState {
        PushState { datasource: datasource.to_string(), schema, tables: Tables::default() }
    }

    /// The changes `PUT .../tables/{table}/rows` with `body` (a JSON list of rows) makes.
    pub fn replace_rows(&self, table: &str, body: &[u8]) -> Result<Pending, PushError> {
        let value = parse(body)?;
        let serde_json::Value::Array(rows) = value else {
            return Err(PushError::Shape { expected: "a JSON list of rows (`[[\"a\", 1], ...]`)" });
        };
        let rows = self.rows(table, &rows)?;
        Ok(self.pending(vec![(table.to_string(), rows)], Vec::new()))
    }

    /// The changes a multi-table document makes: `{"replace": {TABLE: [ROW, ...]},
    /// "patch": {TABLE: {"add": [ROW, ...], "remove": [ROW, ...]}}}`.
    pub fn apply_document(&self, body: &[u8]) -> Result<Pending, PushError> {
        let value = parse(body)?;
        let doc: Document = serde_json::from_value(value).map_err(|_| PushError::Shape {
            expected: "`{\"replace\": {TABLE: [ROW, ...]}, \"patch\": {TABLE: {\"add\": [...], \"remove\": [...]}}}`",
        })?;
        let mut replaced = Vec::new();
        for (table, rows) in &doc.replace {
            if doc.patch.contains_key(table) {
                return Err(PushError::Both { table: table.clone() });
            }
            replaced.push((table.clone(), self.rows(table, rows)?));
        }
        let mut patches = Vec::new();
        for (table, p) in &doc.patch {
            let added = self.rows(table, &p.add)?;
            let removed = self.rows(table, &p.remove)?;
            patches.push(TableChange { table: table.clone(), added, removed });
        }
        Ok(self.pending(replaced, patches))
    }

    fn pending(&self, replaced: Vec<(String, Vec<Vec<Value>>)>, patches: Vec<TableChange>) -> Pending {
        let mut diff = self.tables.diff(replaced);
        let mut changes = std::mem::take(&mut diff.changes);
        // A patch removes, then adds; what is committed is its net effect.
        let mut patched = Vec::new();
        for p in patches {
            let before = self.tables.rows(&p.table);
            let mut rows = before.clone();
            for r in &p.removed {
                rows.remove(r);
            }
            rows.extend(p.added);
            let added: Vec<Vec<Value>> = rows.iter().filter(|r| !before.contains(*r)).cloned().collect();
            let removed: Vec<Vec<Value>> = before.iter().filter(|r| !rows.contains(*r)).cloned().collect();
            if !added.is_empty() || !removed.is_empty() {
                changes.push(TableChange { table: p.table.clone(), added, removed });
            }
            patched.push((p.table, rows.into_iter().collect()));
        }
        Pending { changes, diff, patched }
    }

    /// Record what `pending` did, once its changes are committed.
    pub fn commit(&mut self, pending: Pending) {
        self.tables.apply(pending.diff);
        let patched = self.tables.diff(pending.patched);
        self.tables.apply(patched);
    }

    /// Rows per table.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = self.schema.keys().map(|t| (t.clone(), 0)).collect();
        counts.extend(self.tables.counts().map(|(t, n)| (t.to_string(), n)));
        counts
    }

    fn rows(&self, table: &str, rows: &[serde_json::Value]) -> Result<Vec<Vec<Value>>, PushError> {
        let Some(columns) = self.schema.get(table) else {
            return Err(PushError::UnknownTable {
                datasource: self.datasource.clone(),
                table: table.to_string(),
                known: self.schema.keys().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
            });
        };
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                // A list of values in column order, or (as Congress's push drivers take) an
                // object by column name, a missing column being null.
                let values: Vec<serde_json::Value> = match row {
                    serde_json::Value::Array(values) => values.clone(),
                    serde_json::Value::Object(m) => {
                        if let Some(k) = m.keys().find(|k| !columns.contains(k)) {
                            return Err(PushError::UnknownColumn {
                                table: table.to_string(),
                                row: i + 1,
                                column: k.clone(),
                                known: columns.join(", "),
                            });
                        }
                        columns.iter().map(|c| m.get(c).cloned().unwrap_or(serde_json::Value::Null)).collect()
                    }
                    _ => return Err(PushError::NotARow { table: table.to_string(), row: i + 1 }),
                };
                if values.len() != columns.len() {
                    return Err(PushError::Width {
                        table: table.to_string(),
                        row: i + 1,
                        found: values.len(),
                        width: columns.len(),
                    });
                }
                values
                    .iter()
                    .enumerate()
                    .map(|(c, v)| match v {
                        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                            Err(PushError::Nested { table: table.to_string(), row: i + 1, column: c + 1 })
                        }
                        v => Ok(Value::from_json_congress(v)),
                    })
                    .collect()
            })
            .collect()
    }
}

/// The changes of one push, not yet committed.
#[derive(Debug)]
pub struct Pending {
    pub changes: Vec<TableChange>,
    diff: super::poll::Diff,
    patched: Vec<(String, Vec<Vec<Value>>)>,
}

fn parse(body: &[u8]) -> Result<serde_json::Value, PushError> {
    serde_json::from_slice(body).map_err(|e| PushError::NotJson {
        line: e.line(),
        column: e.column(),
        message: super::http::describe_json(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> PushState {
        let schema: Schema = [
            ("events".to_string(), vec!["time".to_string(), "host".to_string(), "status".to_string()]),
            ("hosts".to_string(), vec!["name".to_string()]),
        ]
        .into_iter()
        .collect();
        PushState::new("doctor", schema)
    }

    #[test]
    fn a_replace_commits_its_difference_and_the_same_rows_commit_nothing() {
        let mut s = state();
        let p = s.replace_rows("events", br#"[["t1", "h1", "down"], ["t2", "h2", "up"]]"#).unwrap();
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].added.len(), 2);
        s.commit(p);
        assert!(s.replace_rows("events", br#"[["t2", "h2", "up"], ["t1", "h1", "down"]]"#).unwrap().changes.is_empty());
        let p = s.replace_rows("events", br#"[["t2", "h2", "up"]]"#).unwrap();
        assert_eq!(p.changes[0].removed, vec![vec![Value::str("t1"), Value::str("h1"), Value::str("down")]]);
        s.commit(p);
        assert_eq!(s.counts()["events"], 1);
        assert_eq!(s.counts()["hosts"], 0);
        // Rows as objects by column, as Congress's push drivers take them; a missing column is null (Congress's `None`).
        let p = s.replace_rows("events", br#"[{"host": "h3", "time": "t3"}]"#).unwrap();
        assert_eq!(p.changes[0].added, vec![vec![Value::str("t3"), Value::str("h3"), Value::str("None")]]);
    }

    #[test]
    fn a_document_replaces_and_patches_several_tables_at_once() {
        let mut s = state();
        let p = s
            .apply_document(
                br#"{"replace": {"hosts": [["a"], ["b"]]}, "patch": {"events": {"add": [[1, "a", true]]}}}"#,
            )
            .unwrap();
        assert_eq!(p.changes.len(), 2);
        s.commit(p);
        // Removed, then added again: no change; removing a row never added: nothing.
        let p = s
            .apply_document(
                br#"{"patch": {"events": {"add": [[1, "a", true]], "remove": [[1, "a", true], [9, "x", null]]}}}"#,
            )
            .unwrap();
        assert!(p.changes.is_empty(), "{:?}", p.changes);
        let p = s
            .apply_document(br#"{"patch": {"events": {"add": [[2, "b", false]], "remove": [[1, "a", true]]}}}"#)
            .unwrap();
        assert_eq!(p.changes[0].removed, vec![vec![Value::Int(1), Value::str("a"), Value::str("True")]]);
        assert_eq!(p.changes[0].added, vec![vec![Value::Int(2), Value::str("b"), Value::str("False")]]);
        s.commit(p);
        assert_eq!(s.counts()["events"], 1);
        assert_eq!(s.counts()["hosts"], 2);
    }

    #[test]
    fn bad_bodies_say_where_and_change_nothing() {
        let s = state();
        let cases: &[(&[u8], &str)] = &[
            (b"[[\"a\", ", "not JSON"),
            (b"{\"a\": 1}", "a JSON list of rows"),
            (b"[[\"t\", \"h\"]]", "row 1: 2 values, but the table has 3 columns"),
            (b"[[\"t\", \"h\", \"s\"], [\"t\", {\"x\": 1}, \"s\"]]", "row 2, column 2: a nested value"),
            (b"[\"t\"]", "row 1: not a list"),
            (b"[{\"time\": \"t\", \"zone\": \"z\"}]", "row 1: no column `zone` (its columns: time, host, status)"),
        ];
        for (body, words) in cases {
            let e = s.replace_rows("events", body).unwrap_err();
            assert!(e.to_string().contains(words), "{e}");
            assert_eq!(e.status(), 400);
        }
        let e = s.replace_rows("nope", b"[]").unwrap_err();
        assert_eq!(e.status(), 404);
        assert!(e.to_string().contains("no table `nope` (its tables: `events`, `hosts`)"), "{e}");
        let e = s.apply_document(br#"{"replace": {"hosts": []}, "patch": {"hosts": {}}}"#).unwrap_err();
        assert!(matches!(e, PushError::Both { .. }));
        let e = s.apply_document(br#"{"upsert": {}}"#).unwrap_err();
        assert!(e.to_string().contains("replace"), "{e}");
        let e =
            s.apply_document(br#"{"replace": {"hosts": [["a"]]}, "patch": {"events": {"add": [["x"]]}}}"#).unwrap_err();
        assert!(matches!(e, PushError::Width { .. }), "one bad table refuses the whole document: {e}");
    }
}
