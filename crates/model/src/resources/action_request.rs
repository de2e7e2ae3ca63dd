//! `ActionRequest`: one `service:action(args)` asked for by a reactive policy.

use super::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The arguments of an action, as Congress's `execute` API takes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positional: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named: BTreeMap<String, serde_json::Value>,
}

/// The spec of an [`ActionRequest`].
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "congress.dev",
    version = "v1alpha1",
    kind = "ActionRequest",
    plural = "actionrequests",
    shortname = "car",
    status = "ActionRequestStatus",
    printcolumn = r#"{"name":"Action","type":"string","jsonPath":".spec.name"}"#,
    printcolumn = r#"{"name":"Approved","type":"boolean","jsonPath":".spec.approved"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequestSpec {
    /// `service:action`, e.g. `nova:servers.pause`.
    pub name: String,
    #[serde(default)]
    pub args: ActionArgs,
    /// Options passed to the driver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Run only once approved.
    #[serde(default)]
    pub approved: bool,
}

/// What happened to an [`ActionRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequestStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The policy whose rule asked for the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}
