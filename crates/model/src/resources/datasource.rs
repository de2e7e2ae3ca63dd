//! `Datasource`: a driver and the schema of the tables it reports.

use super::Condition;
use congress_engine::Schema;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One table of a datasource and its columns, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<String>,
}

/// The spec of a [`Datasource`].
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "congress.dev",
    version = "v1alpha1",
    kind = "Datasource",
    plural = "datasources",
    shortname = "cds",
    status = "DatasourceStatus",
    printcolumn = r#"{"name":"Driver","type":"string","jsonPath":".spec.driver"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Synced","type":"date","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceSpec {
    /// The driver that fills the tables (e.g. `nova`, `kubernetes`, `static`).
    pub driver: String,
    /// The schema: every table and its columns.
    #[serde(default)]
    pub tables: Vec<TableSchema>,
    /// Seconds between polls (the driver's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_seconds: Option<u32>,
    /// Driver settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// What the `kubernetes` driver watches (its tables come from here, not `tables`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSource>,
}

/// The `kubernetes` driver's settings: the kinds it watches, each as one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesSource {
    #[schemars(length(min = 1))]
    pub resources: Vec<WatchedResource>,
}

/// One watched kind and the table its objects become.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatchedResource {
    /// `group/version` or `version` for the core group (`v1`, `apps/v1`).
    #[schemars(length(min = 1), regex(pattern = r"^([a-z0-9.-]+/)?v[0-9]+((alpha|beta)[0-9]+)?$"))]
    pub api_version: String,
    /// The kind (`Pod`).
    #[schemars(length(min = 1), regex(pattern = r"^[A-Z][A-Za-z0-9]*$"))]
    pub kind: String,
    /// The plural resource name, when it is not the kind lower-cased plus `s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// Watch only this namespace (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Watch only objects matching this label selector (`app=web,tier!=db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// The table, its columns, and child tables for nested lists.
    #[serde(flatten)]
    pub table: TableMapping,
}

/// A table built from objects (or from a list nested in them): one row per object or item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableMapping {
    /// The table's name (`pods`).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub table: String,
    /// The columns, in order.
    #[schemars(length(min = 1))]
    pub columns: Vec<ColumnMapping>,
    /// Lists nested in each object (or item), each its own table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildTable>,
}

impl TableMapping {
    /// Add this table and its children (recursively) to `schema`.
    pub fn add_to_schema(&self, schema: &mut Schema) {
        schema.insert(self.table.clone(), self.columns.iter().map(|c| c.name.clone()).collect());
        for child in &self.children {
            child.table.add_to_schema(schema);
        }
    }
}

/// A list nested in the parent's object, as a table of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildTable {
    /// Dotted path to the list inside the parent (`spec.containers`).
    #[schemars(length(min = 1))]
    pub path: String,
    #[serde(flatten)]
    pub table: TableMapping,
}

/// One column: a name and where its value comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMapping {
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Dotted field path (`metadata.name`, `metadata.labels.app`, `status.phase`);
    /// `$parent.COLUMN` is a column of the parent row (the parent key of a child table);
    /// `$index` is the item's position in its list.
    #[schemars(length(min = 1))]
    pub path: String,
}

impl DatasourceSpec {
    /// The engine schema: table name -> columns.
    /// Tables listed in `tables`, then those of the `kubernetes` mapping.
    pub fn schema(&self) -> Schema {
        let mut schema: Schema = self.tables.iter().map(|t| (t.name.clone(), t.columns.clone())).collect();
        for resource in self.kubernetes.iter().flat_map(|k| &k.resources) {
            resource.table.add_to_schema(&mut schema);
        }
        schema
    }
}

impl From<&DatasourceSpec> for Schema {
    fn from(spec: &DatasourceSpec) -> Schema {
        spec.schema()
    }
}

/// What the operator last saw of a [`Datasource`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Every table, its columns and its row count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableStatus>,
    /// RFC 3339 time of the last successful sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// The last error the driver hit (cleared by a successful sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The `metadata.generation` the driver runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One table of a running datasource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableStatus {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_a_schema() {
        let spec = DatasourceSpec {
            driver: "nova".into(),
            tables: vec![TableSchema { name: "servers".into(), columns: vec!["id".into(), "status".into()] }],
            ..Default::default()
        };
        let schema = Schema::from(&spec);
        assert_eq!(schema["servers"], vec!["id".to_string(), "status".to_string()]);
    }
}
