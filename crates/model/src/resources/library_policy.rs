//! `LibraryPolicy`: a reusable policy, inactive until a `Policy` activates it by name.

use super::{Condition, PolicyKindSpec, RuleEntry};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec of a [`LibraryPolicy`]: exactly one of `rules`, `text`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "congress.dev",
    version = "v1alpha1",
    kind = "LibraryPolicy",
    plural = "librarypolicies",
    shortname = "clib",
    status = "LibraryPolicyStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct LibraryPolicySpec {
    /// What the policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The policy kind once activated (default `nonrecursive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PolicyKindSpec>,
    /// The statements, one per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleEntry>>,
    /// The statements as one multi-line block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other library policies this one reads from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl LibraryPolicySpec {
    /// Exactly one of `rules`, `text` must be given.
    pub fn validate(&self) -> Result<(), String> {
        match (self.rules.is_some(), self.text.is_some()) {
            (true, false) | (false, true) => Ok(()),
            (false, false) => Err("spec must have one of `rules` or `text`".into()),
            (true, true) => Err("spec must have only one of `rules` or `text`".into()),
        }
    }
}

impl LibraryPolicy {
    /// See [`LibraryPolicySpec::validate`].
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()
    }
}

/// What the operator last saw of a [`LibraryPolicy`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryPolicyStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Policies that activate this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activated_by: Vec<String>,
}
