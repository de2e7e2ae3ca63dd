//! `Datasource`: a driver and the schema of the tables it reports.

use super::Condition;
use crate::datalog::engine::Schema;
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
    status = "DatasourceStatus"
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
}

impl DatasourceSpec {
    /// The engine schema: table name -> columns.
    pub fn schema(&self) -> Schema {
        self.tables.iter().map(|t| (t.name.clone(), t.columns.clone())).collect()
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
    /// RFC 3339 time of the last successful poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_time: Option<String>,
    /// Rows per table after the last poll.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rows: BTreeMap<String, u64>,
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
