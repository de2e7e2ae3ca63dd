//! `ActionRequest`: one `service:action(args)` to run on the one service that owns it, asked
//! for by a reactive policy's `execute[...]` row or created by hand (`kubectl apply`).

use super::Condition;
use super::datasource::SecretRef;
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
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policy"}"#,
    printcolumn = r#"{"name":"Approved","type":"boolean","jsonPath":".spec.approved"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequestSpec {
    /// `service:action`, e.g. `nova:servers.pause`: the service is the Datasource of that name.
    #[schemars(length(min = 3), regex(pattern = r"^[A-Za-z0-9_.\-]+:[A-Za-z_][A-Za-z0-9_.\-]*$"))]
    pub name: String,
    #[serde(default)]
    pub args: ActionArgs,
    /// Options passed to the driver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Run only once approved (needed when the policy's approval is `manual`, or for a
    /// request made by hand; requests of `automatic` policies are created approved).
    #[serde(default)]
    pub approved: bool,
    /// Refused by a person: the request is never run (its phase becomes `Denied`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
    /// The policy that asked for the action, or (made by hand) as if it had: its inline
    /// `context` applies (its `contextSecretRef` only to requests the policy made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub policy: Option<String>,
    /// Validate and record, change nothing (Kubernetes actions use the server's dry-run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Values (not secrets) for the executor; `header.NAME` keys are sent as headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// A Secret whose keys join the context (see `Policy.spec.contextSecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_secret_ref: Option<SecretRef>,
    /// Tries when failures are transient (default: the policy's, else 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: Option<u32>,
    /// The `execute[...]` row that asked for it (absent for a request made by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<ActionTrigger>,
}

/// The row of an `execute[...]` table that asked for an action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionTrigger {
    /// The row as Congress prints it: `execute[nova:servers.pause("vm1")]`.
    pub row: String,
    /// A digest of the policy, table and row (the label `congress.dev/row`).
    pub row_hash: String,
    /// 1 for the row's first appearance, 2 after it went away and came back, ...
    pub appearance: u32,
}

/// Where an [`ActionRequest`] is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Waiting for approval.
    Pending,
    /// Approved, waiting for its turn (the service's rate limit, a retry's backoff).
    Approved,
    /// Being executed.
    Running,
    Succeeded,
    Failed,
    /// Refused by a person (`spec.denied`): not run.
    Denied,
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Denied)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Approved => "Approved",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Denied => "Denied",
        }
    }
}

/// What happened to an [`ActionRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequestStatus {
    /// `Ready` (finished), with the reason of a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The policy whose rule asked for the action (or that it runs as).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Executions tried so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, with its cause (CamelCase) first: `Timeout: ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// RFC 3339 time the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time it succeeded or failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// RFC 3339 time of the next try after a transient failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<String>,
    /// What the service answered (`POST servers/vm1/action: 202 Accepted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why the `execute[...]` row holds: its proof, as `congress explain` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
