//! Object-to-rows translation, one language for Kubernetes objects and HTTP answers: one
//! JSON object becomes one row of its table plus rows of child tables for what is nested in
//! it (lists, maps, single objects), each child row able to carry columns of its parent
//! (Congress's parent-key translator, generalised: `$parent.COLUMN` may name any column of
//! the parent row). Congress's other translators map onto it: `HDICT` is a table, `LIST` a
//! child over a list with `$value`, `VDICT` a child over `map.*` with `$key` and `$value`,
//! `id-col` a column with `generatedId`, `VALUE` conversions a column `type`.

use congress_engine::Value;
use congress_model::resources::{ColumnMapping, TableMapping};
use md5::{Digest, Md5};
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
    /// Every item of a list, or every value of a map (child paths only).
    Each,
}

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Path(Vec<Step>),
    /// A column of the parent row, by position.
    Parent(usize),
    /// The item's position in its list.
    Index,
    /// The item itself.
    Item,
    /// The map key the N-th `*` step of the child path went through.
    Key(usize),
}

/// How a value is converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversion {
    /// As Congress's `value_to_congress`.
    Congress,
    String,
    Integer,
    Float,
    Boolean,
    /// A digest of the value's canonical JSON (Congress's generated `id-col`).
    GeneratedId,
}

#[derive(Clone, Debug, PartialEq)]
struct Column {
    source: Source,
    conversion: Conversion,
    default: Value,
}

/// A validated [`TableMapping`], ready to translate objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Translator {
    table: String,
    /// Position of this table among the tables of its root translator (pre-order).
    slot: usize,
    columns: Vec<Column>,
    children: Vec<(Vec<Step>, Translator)>,
}

/// Rows per table produced from one object (a table may get several rows).
pub type TableRows = BTreeMap<String, Vec<Vec<Value>>>;

/// Where a child item was found: its position and the map keys of the `*` steps on the way.
struct Place<'a> {
    index: usize,
    keys: &'a [Value],
    item: &'a serde_json::Value,
}

impl Translator {
    /// Validate `mapping` (unique tables and columns, well-formed paths, `$parent` only in
    /// child tables and naming a parent column).
    pub fn new(mapping: &TableMapping) -> Result<Translator, MappingError> {
        let mut tables = HashSet::new();
        Translator::build(mapping, None, 0, &mut tables)
    }

    /// Validate several top-level mappings that share one datasource (table names unique
    /// across all of them).
    pub fn many<'a>(mappings: impl IntoIterator<Item = &'a TableMapping>) -> Result<Vec<Translator>, MappingError> {
        let mut tables = HashSet::new();
        mappings.into_iter().map(|m| Translator::build(m, None, 0, &mut tables)).collect()
    }

    fn build(
        mapping: &TableMapping,
        parent: Option<(&TableMapping, usize)>,
        slot: usize,
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
            columns.push(column(&mapping.table, c, parent)?);
        }
        let mut children = Vec::with_capacity(mapping.children.len());
        let mut next = slot + 1;
        for child in &mapping.children {
            let bad = |message: String| MappingError::BadChildPath {
                table: child.table.table.clone(),
                path: child.path.clone(),
                message,
            };
            let path = parse_path(&child.path, true).map_err(bad)?;
            let wildcards = path.iter().filter(|s| **s == Step::Each).count();
            let t = Translator::build(&child.table, Some((mapping, wildcards)), next, tables)?;
            next += t.table_count();
            children.push((path, t));
        }
        Ok(Translator { table: mapping.table.clone(), slot, columns, children })
    }

    /// The table this translator fills (children have their own).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Every table name, this one first, then children depth first (the order of the slots
    /// [`Translator::translate_with`] reports).
    pub fn tables(&self) -> Vec<String> {
        let mut out = vec![self.table.clone()];
        for (_, child) in &self.children {
            out.extend(child.tables());
        }
        out
    }

    fn table_count(&self) -> usize {
        1 + self.children.iter().map(|(_, c)| c.table_count()).sum::<usize>()
    }

    /// The rows `object` contributes, per table.
    pub fn translate(&self, object: &serde_json::Value) -> TableRows {
        let names = self.tables();
        let mut out = TableRows::new();
        self.translate_with(object, &mut |slot, row| out.entry(names[slot].clone()).or_default().push(row));
        out
    }

    /// Hand each row `object` contributes to `emit`, with its table's slot (its position in
    /// [`Translator::tables`]): no table names are copied, for drivers translating many
    /// objects.
    pub fn translate_with(&self, object: &serde_json::Value, emit: &mut impl FnMut(usize, Vec<Value>)) {
        self.translate_into(&Place { index: 0, keys: &[], item: object }, &[], emit);
    }

    fn translate_into(&self, place: &Place<'_>, parent: &[Value], emit: &mut impl FnMut(usize, Vec<Value>)) {
        let row: Vec<Value> = self.columns.iter().map(|c| c.value(place, parent)).collect();
        for (path, child) in &self.children {
            let mut keys = Vec::new();
            each_item(place.item, path, &mut keys, &mut |index, keys, item| {
                child.translate_into(&Place { index, keys, item }, &row, emit);
            });
        }
        emit(self.slot, row);
    }
}

impl Column {
    fn value(&self, place: &Place<'_>, parent: &[Value]) -> Value {
        let json = match &self.source {
            Source::Path(steps) => lookup(place.item, steps),
            Source::Item => Some(place.item),
            Source::Parent(i) => return parent.get(*i).cloned().unwrap_or_else(|| self.default.clone()),
            Source::Index => return Value::Int(place.index as i64),
            Source::Key(n) => return place.keys.get(*n).cloned().unwrap_or_else(|| self.default.clone()),
        };
        match json {
            None | Some(serde_json::Value::Null) => self.default.clone(),
            Some(v) => convert(v, self.conversion).unwrap_or_else(|| self.default.clone()),
        }
    }
}

fn convert(v: &serde_json::Value, conversion: Conversion) -> Option<Value> {
    use serde_json::Value as J;
    Some(match conversion {
        Conversion::Congress => Value::from_json_congress(v),
        Conversion::String => match v {
            J::String(s) => Value::str(s),
            J::Bool(b) => Value::str(if *b { "True" } else { "False" }),
            other => Value::str(other.to_string()),
        },
        Conversion::Integer => match v {
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => {
                    let f = n.as_f64()?;
                    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(Value::Int(f as i64))?
                }
            },
            J::String(s) => Value::Int(s.trim().parse().ok()?),
            J::Bool(b) => Value::Int(i64::from(*b)),
            _ => return None,
        },
        Conversion::Float => match v {
            J::Number(n) => Value::Float(n.as_f64()?),
            J::String(s) => Value::Float(s.trim().parse().ok()?),
            _ => return None,
        },
        Conversion::Boolean => {
            let b = match v {
                J::Bool(b) => *b,
                J::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => true,
                    "false" | "no" | "off" | "0" => false,
                    _ => return None,
                },
                J::Number(n) => n.as_f64()? != 0.0,
                _ => return None,
            };
            Value::str(if b { "True" } else { "False" })
        }
        Conversion::GeneratedId => {
            // serde_json's maps are sorted by key (no `preserve_order`), so the text is
            // canonical: equal values get equal ids whatever order the service sent.
            let digest = Md5::digest(v.to_string().as_bytes());
            let mut hex = String::with_capacity(32);
            for b in digest {
                hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
            Value::str(hex)
        }
    })
}

/// Visit every item a child path reaches: a list at the end is one item per element, an
/// object one item, null or missing none; a `*` step visits each element of a list or value
/// of a map, recording the map key (or the list position) in `keys`.
fn each_item<'v>(
    v: &'v serde_json::Value,
    steps: &[Step],
    keys: &mut Vec<Value>,
    visit: &mut impl FnMut(usize, &[Value], &'v serde_json::Value),
) {
    use serde_json::Value as J;
    let Some((first, rest)) = steps.split_first() else {
        match v {
            J::Null => {}
            J::Array(items) => items.iter().enumerate().for_each(|(i, item)| visit(i, keys, item)),
            item => visit(0, keys, item),
        }
        return;
    };
    match (first, v) {
        (Step::Each, J::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                keys.push(Value::Int(i as i64));
                if rest.is_empty() {
                    visit(i, keys, item);
                } else {
                    each_item(item, rest, keys, visit);
                }
                keys.pop();
            }
        }
        (Step::Each, J::Object(map)) => {
            for (i, (key, item)) in map.iter().enumerate() {
                keys.push(Value::str(key));
                if rest.is_empty() {
                    visit(i, keys, item);
                } else {
                    each_item(item, rest, keys, visit);
                }
                keys.pop();
            }
        }
        (Step::Each, _) => {}
        (step, v) => {
            if let Some(next) = lookup(v, std::slice::from_ref(step)) {
                each_item(next, rest, keys, visit);
            }
        }
    }
}

/// A missing value, as Congress's translators write it.
fn none() -> Value {
    Value::str("None")
}

fn column(table: &str, c: &ColumnMapping, parent: Option<(&TableMapping, usize)>) -> Result<Column, MappingError> {
    let bad = |message: String| MappingError::BadPath { table: table.to_string(), column: c.name.clone(), message };
    let conversion = match (c.type_.as_deref(), c.generated_id) {
        (Some(_), true) => return Err(bad("`type` and `generatedId` exclude each other".into())),
        (None, true) => Conversion::GeneratedId,
        (None, false) => Conversion::Congress,
        (Some("string"), _) => Conversion::String,
        (Some("integer"), _) => Conversion::Integer,
        (Some("float"), _) => Conversion::Float,
        (Some("boolean"), _) => Conversion::Boolean,
        (Some(other), _) => {
            return Err(bad(format!("unknown type `{other}` (use string, integer, float or boolean)")));
        }
    };
    let default = c.default.as_deref().map_or_else(none, Value::str);
    let source = column_source(c, parent).map_err(bad)?;
    Ok(Column { source, conversion, default })
}

fn column_source(c: &ColumnMapping, parent: Option<(&TableMapping, usize)>) -> Result<Source, String> {
    let child_only = |what: &str| format!("`{what}` is only meaningful in a child table");
    match c.path.as_str() {
        "$index" => return parent.map(|_| Source::Index).ok_or_else(|| child_only("$index")),
        "$value" => return Ok(Source::Item),
        _ => {}
    }
    if let Some(rest) = c.path.strip_prefix("$key") {
        let (_, wildcards) = parent.ok_or_else(|| child_only("$key"))?;
        let n = match rest {
            "" => 0,
            _ => rest
                .strip_prefix('.')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| "write `$key` or `$key.N` (N counts the `*` steps from 0)".to_string())?,
        };
        if n >= wildcards {
            return Err(format!("`{}` needs a child path with {} `*` step(s); it has {wildcards}", c.path, n + 1));
        }
        return Ok(Source::Key(n));
    }
    if let Some(rest) = c.path.strip_prefix("$parent") {
        let (p, _) = parent.ok_or_else(|| child_only("$parent"))?;
        let name = rest.strip_prefix('.').ok_or_else(|| "write `$parent.COLUMN`".to_string())?;
        let i = p
            .columns
            .iter()
            .position(|pc| pc.name == name)
            .ok_or_else(|| format!("the parent table `{}` has no column `{name}`", p.table))?;
        return Ok(Source::Parent(i));
    }
    if c.path.starts_with('$') {
        return Err(format!("unknown special path `{}` (use `$parent.COLUMN`, `$index`, `$value` or `$key`)", c.path));
    }
    parse_path(&c.path, false).map(Source::Path)
}

/// Parse a dotted path: `metadata.name`, `spec.containers.0.image`,
/// `metadata.labels["app.kubernetes.io/name"]`, and in child paths `addresses.*.*`.
fn parse_path(path: &str, wildcards: bool) -> Result<Vec<Step>, String> {
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
            Err(_) if field == "*" && wildcards => Step::Each,
            Err(_) if field == "*" => return Err(format!("`*` in `{path}`: only a child table's path may use `*`")),
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

/// Parse a dotted path to a value (no `*`), for the `items` of a request and the like.
pub fn field_path(path: &str) -> Result<FieldPath, String> {
    parse_path(path, false).map(|steps| FieldPath { text: path.to_string(), steps })
}

/// A parsed dotted path (see [`field_path`]); it displays as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    steps: Vec<Step>,
}

impl FieldPath {
    pub fn get<'v>(&self, v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        lookup(v, &self.steps)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
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
        ColumnMapping { name: name.into(), path: path.into(), ..Default::default() }
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

    fn typed(name: &str, path: &str, type_: Option<&str>, generated_id: bool) -> ColumnMapping {
        ColumnMapping {
            name: name.into(),
            path: path.into(),
            type_: type_.map(str::to_string),
            generated_id,
            ..Default::default()
        }
    }

    fn child(path: &str, table: &str, columns: Vec<ColumnMapping>) -> ChildTable {
        ChildTable { path: path.into(), table: TableMapping { table: table.into(), columns, children: vec![] } }
    }

    #[test]
    fn congress_translators_map_onto_wildcards_keys_values_and_objects() {
        let m = TableMapping {
            table: "servers".into(),
            columns: vec![col("id", "id")],
            children: vec![
                // VDICT: one row per key.
                child(
                    "metadata.*",
                    "metadata",
                    vec![col("server", "$parent.id"), col("k", "$key"), col("v", "$value")],
                ),
                // LIST of strings.
                child("tags", "tags", vec![col("server", "$parent.id"), col("tag", "$value"), col("i", "$index")]),
                // A map of lists: one row per item of every list, with the map key.
                child(
                    "addresses.*.*",
                    "addresses",
                    vec![col("server", "$parent.id"), col("net", "$key"), col("i", "$key.1"), col("ip", "addr")],
                ),
                // A single object is one row; null is none.
                child("gateway", "gateway", vec![col("server", "$parent.id"), col("net", "network_id")]),
            ],
        };
        let t = Translator::new(&m).unwrap();
        let rows = t.translate(&json!({
            "id": "s1",
            "metadata": {"owner": "a", "tier": "web"},
            "tags": ["x", "y"],
            "addresses": {"private": [{"addr": "10.0.0.1"}, {"addr": "10.0.0.2"}], "public": [{"addr": "1.2.3.4"}]},
            "gateway": {"network_id": "n1"}
        }));
        assert_eq!(
            rows["metadata"],
            vec![
                vec![Value::str("s1"), Value::str("owner"), Value::str("a")],
                vec![Value::str("s1"), Value::str("tier"), Value::str("web")]
            ]
        );
        assert_eq!(rows["tags"][1], vec![Value::str("s1"), Value::str("y"), Value::Int(1)]);
        assert_eq!(rows["addresses"].len(), 3);
        assert_eq!(
            rows["addresses"][1],
            vec![Value::str("s1"), Value::str("private"), Value::Int(1), Value::str("10.0.0.2")]
        );
        assert_eq!(
            rows["addresses"][2],
            vec![Value::str("s1"), Value::str("public"), Value::Int(0), Value::str("1.2.3.4")]
        );
        assert_eq!(rows["gateway"], vec![vec![Value::str("s1"), Value::str("n1")]]);
        let none = t.translate(&json!({"id": "s2", "gateway": null, "metadata": "odd", "addresses": {"p": null}}));
        assert!(!none.contains_key("gateway") && !none.contains_key("metadata") && !none.contains_key("addresses"));
        assert_eq!(t.tables(), vec!["servers", "metadata", "tags", "addresses", "gateway"]);
    }

    #[test]
    fn conversions_defaults_and_generated_ids() {
        let mut m = TableMapping {
            table: "t".into(),
            columns: vec![
                typed("n", "n", Some("integer"), false),
                typed("f", "f", Some("float"), false),
                typed("b", "b", Some("boolean"), false),
                typed("s", "s", Some("string"), false),
                typed("id", "pool", None, true),
                ColumnMapping {
                    name: "d".into(),
                    path: "missing".into(),
                    default: Some("".into()),
                    ..Default::default()
                },
            ],
            children: vec![child("pool", "pool", vec![col("owner", "$parent.id"), col("start", "start")])],
        };
        let t = Translator::new(&m).unwrap();
        let a = t.translate(&json!({"n": "42", "f": "1.5", "b": "yes", "s": 7, "pool": {"start": "a", "end": "b"}}));
        let b = t.translate(&json!({"n": 42.0, "f": 2, "b": false, "s": true, "pool": {"end": "b", "start": "a"}}));
        let row = &a["t"][0];
        assert_eq!(row[..4], [Value::Int(42), Value::Float(1.5), Value::str("True"), Value::str("7")]);
        assert_eq!(b["t"][0][..4], [Value::Int(42), Value::Float(2.0), Value::str("False"), Value::str("True")]);
        assert_eq!(row[5], Value::str(""));
        // The same value in another key order: the same id, 32 hex digits, carried by the child.
        assert_eq!(row[4], b["t"][0][4]);
        assert_eq!(row[4].as_str().unwrap().len(), 32);
        assert_eq!(a["pool"][0][0], row[4]);
        // A value that does not convert is the default.
        let bad = t.translate(&json!({"n": "many", "f": [], "b": "maybe"}));
        assert_eq!(bad["t"][0][..3], [Value::str("None"), Value::str("None"), Value::str("None")]);

        m.columns[0].type_ = Some("decimal".into());
        assert!(Translator::new(&m).unwrap_err().to_string().contains("unknown type `decimal`"));
        m.columns[0].type_ = Some("integer".into());
        m.columns[0].generated_id = true;
        assert!(Translator::new(&m).unwrap_err().to_string().contains("exclude each other"));
    }

    #[test]
    fn keys_and_wildcards_are_checked() {
        let mut m = TableMapping {
            table: "t".into(),
            columns: vec![col("a", "a")],
            children: vec![child("list", "c", vec![col("k", "$key")])],
        };
        let e = Translator::new(&m).unwrap_err().to_string();
        assert!(e.contains("needs a child path with 1 `*` step(s); it has 0"), "{e}");
        m.children[0].path = "map.*".into();
        m.children[0].table.columns[0].path = "$key.1".into();
        assert!(Translator::new(&m).is_err());
        m.children[0].table.columns[0].path = "$key.x".into();
        assert!(Translator::new(&m).unwrap_err().to_string().contains("`$key.N`"));
        m.columns[0].path = "a.*".into();
        m.children.clear();
        assert!(Translator::new(&m).unwrap_err().to_string().contains("only a child table's path may use `*`"));
        m.columns[0].path = "$key".into();
        assert!(Translator::new(&m).unwrap_err().to_string().contains("only meaningful in a child table"));
    }
}
