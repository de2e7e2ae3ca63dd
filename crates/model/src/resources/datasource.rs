//! `Datasource`: a driver and the schema of the tables it reports.

use super::Condition;
use super::http::HttpSource;
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
    /// What the `http` driver asks for, and how its answers become tables. The OpenStack
    /// drivers (`nova`, `neutronv2`, ...) are shipped `http` configurations: they need no
    /// `http` here (one given replaces the shipped one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSource>,
    /// The Secret holding the driver's credentials (passwords, tokens): never in `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// How the `push` driver accepts data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSource>,
    /// At most this many actions run per minute on this service (default 60; 0: none run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_per_minute: Option<u32>,
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
    /// The table's name (`pods`; Congress's `servers.addresses` has a dot).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.]*$"))]
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
    /// Dotted path to the list inside the parent (`spec.containers`): one row per item.
    /// A `*` step goes through every item of a list or every value of a map
    /// (`metadata.*` is one row per key, `addresses.*.*` one per address of every network);
    /// `$key` then names the map key (`$key.1` that of the second `*`), `$value` the item.
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
    /// `$index` is the item's position in its list; `$value` is the item itself (a list of
    /// strings); `$key` (or `$key.N`) is the map key a `*` step of the child's path went
    /// through.
    #[schemars(length(min = 1))]
    pub path: String,
    /// Convert the value: `string`, `integer`, `float`, `boolean` (a value that does not
    /// convert is `None`); absent, JSON values map as Congress maps them.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(string|integer|float|boolean)$"))]
    pub type_: Option<String>,
    /// The value when the path is missing or null (default: the string `None`, as Congress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The column holds a generated id of the value (a digest of its canonical JSON, as
    /// Congress's `id-col`): a child table built from the same value names it with
    /// `$parent.COLUMN`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated_id: bool,
}

impl DatasourceSpec {
    /// The engine schema: table name -> columns.
    /// Tables listed in `tables`, then those of the `kubernetes` mapping, then those of the
    /// `http` configuration (the shipped one for `nova` and the like) not listed in `tables`
    /// (fixtures may declare a shorter table than the live driver fills).
    pub fn schema(&self) -> Schema {
        let mut schema: Schema = self.tables.iter().map(|t| (t.name.clone(), t.columns.clone())).collect();
        for resource in self.kubernetes.iter().flat_map(|k| &k.resources) {
            resource.table.add_to_schema(&mut schema);
        }
        if let Ok(Some(http)) = self.http_source() {
            let mut filled = Schema::new();
            for request in &http.requests {
                request.table.add_to_schema(&mut filled);
            }
            for (table, columns) in filled {
                schema.entry(table).or_insert(columns);
            }
        }
        schema
    }

    /// Tables declared in `tables` that the `http` configuration fills with other columns
    /// (the driver cannot run: its rows would not fit, or would land in the wrong columns).
    pub fn conflicting_tables(&self) -> Vec<String> {
        let Ok(Some(http)) = self.http_source() else { return Vec::new() };
        let mut filled = Schema::new();
        for request in &http.requests {
            request.table.add_to_schema(&mut filled);
        }
        self.tables
            .iter()
            .filter(|t| filled.get(&t.name).is_some_and(|c| *c != t.columns))
            .map(|t| {
                format!("`{}` ({}; the driver fills {})", t.name, t.columns.join(", "), filled[&t.name].join(", "))
            })
            .collect()
    }

    /// The `http` configuration this datasource runs: `spec.http`, or the one shipped for
    /// its driver (`nova`, `neutronv2`, `glancev2`, `cinder`, `keystonev3`); `None` for
    /// drivers that are not HTTP (`kubernetes`, `push`, fixtures).
    pub fn http_source(&self) -> Result<Option<HttpSource>, super::http::PresetError> {
        if let Some(http) = &self.http {
            return Ok(Some(http.clone()));
        }
        super::http::preset(&self.driver)
    }
}

impl From<&DatasourceSpec> for Schema {
    fn from(spec: &DatasourceSpec) -> Schema {
        spec.schema()
    }
}

/// A Secret by name (and namespace: the operator's own when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The `push` driver's settings: its tables are `spec.tables`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSource {
    /// Who may push: `bearer` (the `token` key of the credentials Secret) or
    /// `serviceAccount` (a Kubernetes ServiceAccount token, checked with a TokenReview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(bearer|serviceAccount)$"))]
    pub auth: Option<String>,
    /// For `serviceAccount`: the accounts allowed (`system:serviceaccount:NS:NAME`); none
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_users: Vec<String>,
    /// The largest body accepted, in bytes (default 8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
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
    /// Polls (or pushes) that failed since the driver started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
    /// Failures in a row since the last success (0 once it recovers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u64>,
    /// Seconds the last successful poll took (fetch, translate, diff, commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_seconds: Option<String>,
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
        // The shipped nova configuration adds the tables `tables` does not declare.
        assert_eq!(schema["flavors"].len(), 7);
        assert_eq!(schema["servers.addresses"][0], "server_id");
        let conflicts = spec.conflicting_tables();
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].starts_with("`servers` (id, status; the driver fills id, name, host_id"), "{conflicts:?}");
    }
}
