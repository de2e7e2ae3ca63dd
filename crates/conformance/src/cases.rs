//! The cases file format (`shared/conformance/README.md`); unknown fields are ignored.

use congress_engine::Schema;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// One recorded case: setup (datasources, policies, rules, data), queries, steps.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Case {
    #[serde(default)]
    pub(super) datasources: BTreeMap<String, Schema>,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, PolicySpec>,
    #[serde(default)]
    pub(super) policy_order: Vec<String>,
    #[serde(default)]
    pub(super) data: BTreeMap<String, Vec<Vec<Json>>>,
    #[serde(default)]
    pub(super) data_order: Vec<String>,
    #[serde(default)]
    pub(super) rule_results: Vec<RuleResult>,
    #[serde(default)]
    pub(super) executed_actions_after_setup: Option<Vec<ActionRecord>>,
    #[serde(default)]
    pub(super) intended_executed_actions_after_setup: Option<Vec<ActionRecord>>,
    #[serde(default)]
    pub(super) queries: Vec<Query>,
    #[serde(default)]
    pub(super) steps: Vec<Step>,
}

/// A policy to create, with its rules in insert order.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct PolicySpec {
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) rules: Vec<String>,
    #[serde(default)]
    pub(super) batch: bool,
}

/// The recorded outcome of one insert (or of one batch, with `rules`).
#[derive(Clone, Debug, Deserialize)]
pub(super) struct RuleResult {
    #[serde(default)]
    pub(super) policy: Option<String>,
    #[serde(default)]
    pub(super) rule: Option<String>,
    #[serde(default)]
    pub(super) rules: Option<Vec<String>>,
    pub(super) accepted: bool,
    #[serde(default)]
    pub(super) congress_message: String,
}

/// An action Congress sent: `execute_action(service, action, {positional, named})`.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct ActionRecord {
    pub(super) service: String,
    pub(super) action: String,
    #[serde(default)]
    pub(super) positional: Vec<Json>,
    #[serde(default)]
    pub(super) named: BTreeMap<String, Json>,
}

/// A query asked after setup.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Query {
    pub(super) policy: String,
    pub(super) query: String,
    #[serde(default)]
    pub(super) expected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) expected_rows: Option<Vec<Vec<Json>>>,
    #[serde(default)]
    pub(super) expected_error: Option<String>,
}

/// One step; which fields matter depends on `op`.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Step {
    pub(super) op: String,
    #[serde(default)]
    pub(super) policy: Option<String>,
    #[serde(default)]
    pub(super) table: Option<String>,
    #[serde(default)]
    pub(super) rows: Option<Vec<Vec<Json>>>,
    #[serde(default)]
    pub(super) add: Vec<Vec<Json>>,
    #[serde(default)]
    pub(super) delete: Vec<Vec<Json>>,
    #[serde(default)]
    pub(super) rule: Option<String>,
    #[serde(default)]
    pub(super) rules: Option<Vec<String>>,
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) sequence: Option<String>,
    #[serde(default)]
    pub(super) action_policy: Option<String>,
    #[serde(default)]
    pub(super) delta: bool,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) accepted: Option<bool>,
    #[serde(default)]
    pub(super) expected: Option<Vec<String>>,
    #[serde(default)]
    pub(super) expected_rows: Option<Vec<Vec<Json>>>,
    #[serde(default)]
    pub(super) expected_error: Option<String>,
    #[serde(default)]
    pub(super) executed_actions: Option<Vec<ActionRecord>>,
}
