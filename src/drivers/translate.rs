//! Object-to-rows translation: one JSON object (a Kubernetes object, or any nested document)
//! becomes one row of its table plus rows of child tables for the lists nested in it, each
//! child row carrying columns of its parent (Congress's parent-key translator, generalised:
//! `$parent.COLUMN` may name any column of the parent row).

use congress_engine::Value;
use congress_model::resources::{ColumnMapping, TableMapping};
use std::collections::{BTreeMap, HashSet};

/// Why a table mapping cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("table `{0}` is defined twice")]
    DuplicateTable(String),
    #[error("table `{table}`: column `{column}` is defined twice")]
    DuplicateColumn { table: String, column: String },
    #[error("table `{table}`, column `{column}`: {message}")]
    BadPath { table: String, column: String, message: String },
    #[error("table `{table}`: child path `{path}`: {message}")]
    BadChildPath { table: String, path: String, message: String },
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Path(Vec<Step>),
    /// A column of the parent row, by position.
    Parent(usize),
    /// The item's position in its list.
    Index,
}

/// A validated [`TableMapping`], ready to translate objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Translator {
    table: String,
    columns: Vec<Source>,
    children: Vec<(Vec<Step>, Translator)>,
}

/// Rows per table produced from one object (a table may get several rows).
pub type TableRows = BTreeMap<String, Vec<Vec<Value>>>;

impl Translator {
    /// Validate `mapping` (unique tables and columns, well-formed paths, `$parent` only in
    /// child tables and naming a parent column).
    pub fn new(mapping: &TableMapping) -> Result<Translator, MappingError> {
        let mut tables = HashSet::new();
        Translator::build(mapping, None, &mut tables)
    }

    /// Validate several top-level mappings that share one datasource (table names unique
    /// across all of them).
    pub fn many<'a>(mappings: impl IntoIterator<Item = &'a TableMapping>) -> Result<Vec<Translator>, MappingError> {
        let mut tables = HashSet::new();
        mappings.into_iter().map(|m| Translator::build(m, None, &mut tables)).collect()
    }

    fn build(
        mapping: &TableMapping,
        parent: Option<&TableMapping>,
        tables: &mut HashSet<String>,
    ) -> Result<Translator, MappingError> {
        if !tables.insert(mapping.table.clone()) {
            return Err(MappingError::DuplicateTable(mapping.table.clone()));
        }
        let mut seen = HashSet::new();
        let mut columns = Vec::with_capacity(mapping.columns.len());
        for c in &mapping.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(MappingError::DuplicateColumn { table: mapping.table.clone(), column: c.name.clone() });
            }
            columns.push(column_source(&mapping.table, c, parent)?);
        }
        let mut children = Vec::with_capacity(mapping.children.len());
        for child in &mapping.children {
            let path = parse_path(&child.path).map_err(|message| MappingError::BadChildPath {
                table: child.table.table.clone(),
                path: child.path.clone(),
                message,
            })?;
            children.push((path, Translator::build(&child.table, Some(mapping), tables)?));
        }
        Ok(Translator { table: mapping.table.clone(), columns, children })
    }

    /// The table this translator fills (children have their own).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Every table name, this one first, then children depth first.
    pub fn tables(&self) -> Vec<String> {
        let mut out = vec![self.table.clone()];
        for (_, child) in &self.children {
            out.extend(child.tables());
        }
        out
    }

    /// The rows `object` contributes, per table.
    pub fn translate(&self, object: &serde_json::Value) -> TableRows {
        let mut out = TableRows::new();
        self.translate_into(object, &[], 0, &mut out);
        out
    }

    fn translate_into(&self, object: &serde_json::Value, parent: &[Value], index: usize, out: &mut TableRows) {
        let row: Vec<Value> = self
            .columns
            .iter()
            .map(|source| match source {
                Source::Path(steps) => lookup(object, steps).map_or_else(none, Value::from_json_congress),
                Source::Parent(i) => parent.get(*i).cloned().unwrap_or_else(none),
                Source::Index => Value::Int(index as i64),
            })
            .collect();
        for (path, child) in &self.children {
            if let Some(serde_json::Value::Array(items)) = lookup(object, path) {
                for (i, item) in items.iter().enumerate() {
                    child.translate_into(item, &row, i, out);
                }
            }
        }
        out.entry(self.table.clone()).or_default().push(row);
    }
}

/// A missing value, as Congress's translators write it.
fn none() -> Value {
    Value::str("None")
}

fn column_source(table: &str, c: &ColumnMapping, parent: Option<&TableMapping>) -> Result<Source, MappingError> {
    let bad = |message: String| MappingError::BadPath { table: table.to_string(), column: c.name.clone(), message };
    if c.path == "$index" {
        return match parent {
            Some(_) => Ok(Source::Index),
            None => Err(bad("`$index` is only meaningful in a child table".into())),
        };
    }
    if let Some(rest) = c.path.strip_prefix("$parent") {
        let Some(p) = parent else {
            return Err(bad("`$parent` is only meaningful in a child table".into()));
        };
        let name = rest.strip_prefix('.').ok_or_else(|| bad("write `$parent.COLUMN`".into()))?;
        let i = p
            .columns
            .iter()
            .position(|pc| pc.name == name)
            .ok_or_else(|| bad(format!("the parent table `{}` has no column `{name}`", p.table)))?;
        return Ok(Source::Parent(i));
    }
    if c.path.starts_with('$') {
        return Err(bad(format!("unknown special path `{}` (use `$parent.COLUMN` or `$index`)", c.path)));
    }
    parse_path(&c.path).map(Source::Path).map_err(bad)
}

/// Parse a dotted path: `metadata.name`, `spec.containers.0.image`,
/// `metadata.labels["app.kubernetes.io/name"]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = path;
    let mut expect_field = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]").ok_or_else(|| format!("unclosed `[\"` in `{path}`"))?;
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end + 2..];
            expect_field = false;
            continue;
        }
        if !expect_field {
            rest = rest.strip_prefix('.').ok_or_else(|| format!("expected `.` or `[\"` in `{path}` at `{rest}`"))?;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let field = &rest[..end];
        if field.is_empty() {
            return Err(format!("empty field name in `{path}`"));
        }
        steps.push(match field.parse::<usize>() {
            Ok(i) => Step::Index(i),
            Err(_) => Step::Field(field.to_string()),
        });
        rest = &rest[end..];
        expect_field = false;
    }
    if steps.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(steps)
}

fn lookup<'v>(mut v: &'v serde_json::Value, steps: &[Step]) -> Option<&'v serde_json::Value> {
    for step in steps {
        v = match (step, v) {
            (Step::Field(f), serde_json::Value::Object(m)) => m.get(f)?,
            (Step::Index(i), serde_json::Value::Array(a)) => a.get(*i)?,
            (Step::Index(i), serde_json::Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::ChildTable;
    use serde_json::json;

    fn col(name: &str, path: &str) -> ColumnMapping {
        ColumnMapping { name: name.into(), path: path.into() }
    }

    fn pods() -> TableMapping {
        TableMapping {
            table: "pods".into(),
            columns: vec![col("uid", "metadata.uid"), col("name", "metadata.name"), col("app", "metadata.labels.app")],
            children: vec![ChildTable {
                path: "spec.containers".into(),
                table: TableMapping {
                    table: "containers".into(),
                    columns: vec![col("pod", "$parent.uid"), col("name", "name"), col("image", "image")],
                    children: vec![ChildTable {
                        path: "ports".into(),
                        table: TableMapping {
                            table: "ports".into(),
                            columns: vec![
                                col("pod", "$parent.pod"),
                                col("container", "$parent.name"),
                                col("i", "$index"),
                                col("port", "containerPort"),
                            ],
                            children: vec![],
                        },
                    }],
                },
            }],
        }
    }

    #[test]
    fn nested_lists_become_child_tables_keyed_by_the_parent() {
        let t = Translator::new(&pods()).unwrap();
        let pod = json!({
            "metadata": {"uid": "u1", "name": "web"},
            "spec": {"containers": [
                {"name": "app", "image": "evil.io/app:1", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                {"name": "side", "image": "ok.io/side"}
            ]}
        });
        let rows = t.translate(&pod);
        assert_eq!(rows["pods"], vec![vec![Value::str("u1"), Value::str("web"), Value::str("None")]]);
        assert_eq!(rows["containers"].len(), 2);
        assert_eq!(rows["containers"][0], vec![Value::str("u1"), Value::str("app"), Value::str("evil.io/app:1")]);
        assert_eq!(
            rows["ports"],
            vec![
                vec![Value::str("u1"), Value::str("app"), Value::Int(0), Value::Int(80)],
                vec![Value::str("u1"), Value::str("app"), Value::Int(1), Value::Int(443)],
            ]
        );
        assert_eq!(t.tables(), vec!["pods", "containers", "ports"]);
    }

    #[test]
    fn bracketed_keys_and_indexes_and_odd_values() {
        let m = TableMapping {
            table: "t".into(),
            columns: vec![
                col("a", r#"metadata.labels["app.kubernetes.io/name"]"#),
                col("b", "spec.list.1"),
                col("c", "spec.flag"),
                col("d", "spec.obj"),
            ],
            children: vec![],
        };
        let t = Translator::new(&m).unwrap();
        let rows = t.translate(&json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"list": [1, 2], "flag": true, "obj": {"k": 1}}
        }));
        assert_eq!(rows["t"][0], vec![Value::str("x"), Value::Int(2), Value::str("True"), Value::str(r#"{"k":1}"#)]);
        // Not an object at all: every column is missing, nothing panics.
        assert_eq!(t.translate(&json!(42))["t"][0], vec![Value::str("None"); 4]);
    }

    #[test]
    fn bad_mappings_say_where() {
        let mut m = pods();
        m.columns.push(col("uid", "metadata.name"));
        assert!(matches!(Translator::new(&m), Err(MappingError::DuplicateColumn { .. })));

        let mut m = pods();
        m.columns[0].path = "$parent.uid".into();
        let e = Translator::new(&m).unwrap_err().to_string();
        assert!(e.contains("table `pods`, column `uid`") && e.contains("child table"), "{e}");

        let mut m = pods();
        m.children[0].table.columns[0].path = "$parent.nope".into();
        let e = Translator::new(&m).unwrap_err().to_string();
        assert!(e.contains("no column `nope`"), "{e}");

        for bad in ["", "a..b", "a[\"x", "$what", "a]b["] {
            let mut m = pods();
            m.columns[1].path = bad.into();
            assert!(Translator::new(&m).is_err(), "{bad:?} accepted");
        }

        let mut m = pods();
        m.children[0].table.table = "pods".into();
        assert_eq!(Translator::new(&m), Err(MappingError::DuplicateTable("pods".into())));
        assert!(Translator::many([&pods(), &pods()]).is_err());
    }
}
