//! The Kubernetes resources of congress: the same objects the CLI reads from files and the
//! operator reconciles. Group `congress.dev`, version `v1alpha1`, all cluster-scoped, each
//! with a status subresource.
//!
//! | kind | what it is |
//! |---|---|
//! | [`Policy`] | rules (a list or one `text` block, or a `libraryRef`), a kind, an enforcement mode |
//! | [`LibraryPolicy`] | a reusable policy, inactive until a `Policy` names it in `libraryRef` |
//! | [`Datasource`] | a driver and the schema (tables and columns) of what it reports |
//! | [`ActionRequest`] | one `service:action(args)` asked for by a reactive rule, run when approved |

pub mod action_request;
pub mod datasource;
pub mod library_policy;
pub mod policy;

pub use action_request::{ActionArgs, ActionRequest, ActionRequestSpec, ActionRequestStatus};
pub use datasource::{Datasource, DatasourceSpec, DatasourceStatus, TableSchema};
pub use library_policy::{LibraryPolicy, LibraryPolicySpec, LibraryPolicyStatus};
pub use policy::{Enforcement, Policy, PolicyKindSpec, PolicySpec, PolicyStatus, RuleEntry};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every congress resource.
pub const GROUP: &str = "congress.dev";
/// The version of every congress resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "congress.dev/v1alpha1";

/// A standard Kubernetes-style condition (`Ready`, `Valid`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase machine-readable reason.
    #[serde(default)]
    pub reason: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Every CRD, in a stable order, with the file name each is written to.
pub fn crds() -> Vec<(String, CustomResourceDefinition)> {
    [Policy::crd(), LibraryPolicy::crd(), Datasource::crd(), ActionRequest::crd()]
        .into_iter()
        .map(|crd| (format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default()), crd))
        .collect()
}

/// One CRD as YAML.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_norway::to_string(crd).expect("a CRD always serialises")
}

/// Every CRD as one multi-document YAML stream (`---` separated).
pub fn all_crds_yaml() -> String {
    crds().iter().map(|(_, crd)| format!("---\n{}", crd_yaml(crd))).collect()
}
