//! `Policy`: rules that are evaluated (monitor) and enforced (proactive, reactive).

use super::Condition;
use super::datasource::SecretRef;
use super::library_policy::Severity;
use congress_engine::PolicyKind;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One rule of a policy, optionally named and commented.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleEntry {
    /// A name for diagnostics and explanations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text about the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// One statement (rule or fact) in Congress's policy language.
    pub rule: String,
}

/// The kind of a policy (Congress's kinds, minus `datasource`, which is a `Datasource`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKindSpec {
    #[default]
    Nonrecursive,
    Action,
    Database,
    Materialized,
    Z3,
}

impl From<PolicyKindSpec> for PolicyKind {
    fn from(k: PolicyKindSpec) -> PolicyKind {
        match k {
            PolicyKindSpec::Nonrecursive => PolicyKind::Nonrecursive,
            PolicyKindSpec::Action => PolicyKind::Action,
            PolicyKindSpec::Database => PolicyKind::Database,
            PolicyKindSpec::Materialized => PolicyKind::Materialized,
            PolicyKindSpec::Z3 => PolicyKind::Z3,
        }
    }
}

/// How a policy is enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Report violations (the `error` table) only.
    #[default]
    Monitor,
    /// Check changes before they happen (simulate).
    Proactive,
    /// Run the actions of `execute[...]` rules to correct violations.
    Reactive,
}

/// The spec of a [`Policy`]: exactly one of `rules`, `text`, `libraryRef`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "congress.dev",
    version = "v1alpha1",
    kind = "Policy",
    plural = "policies",
    shortname = "cpol",
    status = "PolicyStatus",
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.kind"}"#,
    printcolumn = r#"{"name":"Enforcement","type":"string","jsonPath":".spec.enforcement"}"#,
    printcolumn = r#"{"name":"Violations","type":"integer","jsonPath":".status.violations"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// The statements, one per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleEntry>>,
    /// The statements as one multi-line block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The policy kind (default `nonrecursive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PolicyKindSpec>,
    /// `monitor` (default), `proactive` or `reactive`.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Activate a `LibraryPolicy`: its rules, with its parameters' rows replaced by the ones
    /// given here, become this policy's, loaded all or nothing.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "library_ref_or_name")]
    pub library_ref: Option<LibraryRef>,
    /// A group of policies, carried into PolicyReport results (default: the library's, else
    /// `congress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// How bad a violation is, carried into PolicyReport results (default: the library's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// What the policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How violation rows map to Kubernetes objects in PolicyReports (rows holding the `uid`
    /// of a watched object are mapped without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSpec>,
    /// How a `reactive` policy's `execute[...]` rows become ActionRequests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<ActionSettings>,
    /// What a `proactive` policy does with a change that would add a violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionSettings>,
    /// Values (not secrets) given to every action this policy asks for: `header.NAME` keys
    /// are sent as HTTP headers (a correlation id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// A Secret whose keys are added to the context of every action this policy asks for;
    /// `os.auth` (JSON: Keystone credentials) replaces the service's credentials for the
    /// call. Never copied into an ActionRequest, a log, an event or a status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_secret_ref: Option<SecretRef>,
}

/// Which library policy a `Policy` activates, which version, with which parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryRef {
    /// The `LibraryPolicy`'s `metadata.name`.
    pub name: String,
    /// The version to activate. Absent: the version active when the Policy was first
    /// loaded (`status.library.version`), else the LibraryPolicy's current one. A Policy keeps
    /// its version when the library is upgraded (`UpdateAvailable=True`) until this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Rows for the library's parameter tables, by table: they replace that table's default
    /// rows. Each row is a list of values, a single value (one column), or an object by
    /// column name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "rows_by_table")]
    pub parameters: BTreeMap<String, Vec<serde_json::Value>>,
}

/// The schema of `parameters`: lists of rows of any shape, by table (the operator checks
/// each row against its table's columns).
fn rows_by_table(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": "array", "items": {}}
    })
}

/// `libraryRef` as an object, or as the bare name it was before versions and parameters
/// (objects stored then still read).
fn library_ref_or_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<LibraryRef>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Name(String),
        Ref(LibraryRef),
    }
    Ok(Option::<Repr>::deserialize(d)?.map(|r| match r {
        Repr::Name(name) => LibraryRef::named(name),
        Repr::Ref(r) => r,
    }))
}

impl LibraryRef {
    pub fn named(name: impl Into<String>) -> LibraryRef {
        LibraryRef { name: name.into(), ..Default::default() }
    }
}

/// What a `proactive` policy does at admission with a change that would add rows to its
/// `error` table (Gatekeeper's `enforcementAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionAction {
    /// Refuse the change, saying which rows it would add and why.
    #[default]
    Deny,
    /// Allow it, with a warning per new row (kubectl prints them).
    Warn,
    /// Allow it; the new rows are only recorded.
    Audit,
}

impl AdmissionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionAction::Deny => "deny",
            AdmissionAction::Warn => "warn",
            AdmissionAction::Audit => "audit",
        }
    }
}

/// How a `proactive` policy acts at admission.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionSettings {
    /// `deny` (default), `warn` or `audit`.
    #[serde(default)]
    pub action: AdmissionAction,
}

/// Whether an ActionRequest runs without a person saying so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Run as soon as it is created (Congress's behaviour).
    #[default]
    Automatic,
    /// Wait for `spec.approved: true` (`congress approve NAME`).
    Manual,
}

/// How a `reactive` policy's `execute[...]` rows become ActionRequests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionSettings {
    /// `automatic` (default) or `manual`.
    #[serde(default)]
    pub approval: Approval,
    /// Create and validate ActionRequests (Kubernetes actions run with the server's
    /// dry-run) but change nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// At most this many ActionRequests from one evaluation (default 100): more pauses the
    /// policy's actions (condition `ActionsPaused`) until its spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_per_commit: Option<u32>,
    /// Tries of an action whose failure is transient (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: Option<u32>,
}

impl ActionSettings {
    pub const DEFAULT_MAX_PER_COMMIT: u32 = 100;
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    pub fn max_per_commit(&self) -> u32 {
        self.max_per_commit.unwrap_or(Self::DEFAULT_MAX_PER_COMMIT).max(1)
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(Self::DEFAULT_MAX_ATTEMPTS).clamp(1, 100)
    }
}

/// Which columns of an `error` row name a Kubernetes object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportSpec {
    /// `apiVersion` of the object (e.g. `v1`).
    pub api_version: String,
    /// `kind` of the object (e.g. `Pod`).
    pub kind: String,
    /// The 0-based column holding the object's name.
    #[schemars(range(min = 0, max = 1023))]
    pub name_column: u32,
    /// The 0-based column holding the object's namespace (absent: cluster-scoped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1023))]
    pub namespace_column: Option<u32>,
}

impl PolicySpec {
    /// Exactly one of `rules`, `text`, `libraryRef` must be given.
    pub fn validate(&self) -> Result<(), String> {
        let given = [self.rules.is_some(), self.text.is_some(), self.library_ref.is_some()];
        match given.iter().filter(|g| **g).count() {
            1 => Ok(()),
            0 => Err("spec must have one of `rules`, `text` or `libraryRef`".into()),
            _ => Err("spec must have only one of `rules`, `text` or `libraryRef`".into()),
        }
    }

    /// The policy's own kind for the engine (`kind`, else `nonrecursive`). With a
    /// `libraryRef`, the loader (`congress_model::loader`) falls back on the library's kind.
    pub fn policy_kind(&self) -> PolicyKind {
        self.kind.unwrap_or_default().into()
    }
}

impl Policy {
    /// See [`PolicySpec::validate`].
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()
    }
}

/// What the operator last saw of a [`Policy`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// `Accepted` (the rules loaded) and `Ready` (loaded and evaluated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Rows in the policy's `error` table.
    #[serde(default)]
    pub violations: u64,
    /// Up to 20 violation rows, oldest first, each with the time it was first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violation_sample: Vec<ViolationSample>,
    /// Why the last version was not accepted: one entry per diagnostic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<PolicyDiagnostic>,
    /// Builtin failures and unknown policy references in the loaded rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// RFC 3339 time of the evaluation that last changed the violations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<String>,
    /// The `metadata.generation` last loaded into the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The library version this policy runs, for a `libraryRef` (see `UpdateAvailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<ActiveLibrary>,
}

/// The library policy version a Policy runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveLibrary {
    pub name: String,
    /// The version loaded.
    pub version: String,
    /// The LibraryPolicy's current version, when it differs from `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<String>,
}

/// One violation row and when it was first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViolationSample {
    /// The row, as `error(...)` prints.
    pub row: String,
    /// RFC 3339 time the row first appeared.
    pub first_seen: String,
}

/// A parse or analysis error in a policy's rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDiagnostic {
    /// The rule's `name` (or `rules[i]`, or `text` for a statement of a text block),
    /// prefixed `LIB/` when the statement is taken from LibraryPolicy `LIB`.
    pub rule: String,
    /// 1-based line within that rule entry or text block.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_wants_exactly_one_source() {
        let mut s = PolicySpec::default();
        assert!(s.validate().is_err());
        s.text = Some("p(1)".into());
        assert!(s.validate().is_ok());
        s.library_ref = Some(LibraryRef::named("lib"));
        assert!(s.validate().is_err());
    }

    #[test]
    fn library_ref_reads_the_bare_name_form_too() {
        let s: PolicySpec = serde_json::from_str(r#"{"libraryRef": "lib"}"#).unwrap();
        assert_eq!(s.library_ref, Some(LibraryRef::named("lib")));
        let s: PolicySpec = serde_json::from_str(r#"{"libraryRef": {"name": "lib", "version": "1.0.0"}}"#).unwrap();
        assert_eq!(s.library_ref.and_then(|l| l.version).as_deref(), Some("1.0.0"));
        assert!(serde_json::from_str::<PolicySpec>(r#"{"libraryRef": 3}"#).is_err());
    }

    #[test]
    fn kind_converts() {
        assert_eq!(PolicyKind::from(PolicyKindSpec::Z3), PolicyKind::Z3);
        assert_eq!(PolicySpec::default().policy_kind(), PolicyKind::Nonrecursive);
    }
}
