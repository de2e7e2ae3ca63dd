//! `LibraryPolicy`: a reusable, versioned policy with parameters, inactive until a `Policy`
//! activates it (`libraryRef: {name, version, parameters}`). The project's library
//! (`library/`, one manifest per policy) is installed as LibraryPolicy objects by the
//! operator's library sync, which never overwrites one an administrator changed.

use super::policy::{ActionSettings, Enforcement, ReportSpec};
use super::{Condition, PolicyKindSpec, RuleEntry};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Annotation holding the digest of the spec the library sync last wrote, as the API server
/// stored it: a LibraryPolicy whose spec no longer has that digest was customised and is
/// never overwritten.
pub const SHIPPED_DIGEST_ANNOTATION: &str = "congress.dev/library-digest";
/// Annotation holding the digest of the shipped spec the library sync installed (which
/// shipped version the object holds).
pub const SOURCE_DIGEST_ANNOTATION: &str = "congress.dev/library-source-digest";
/// Annotation asking the library sync to put the shipped version back (re-initialise),
/// discarding an administrator's changes (`congress library reset NAME`).
pub const REINITIALIZE_ANNOTATION: &str = "congress.dev/reinitialize";
/// Label of an archived version (`NAME.vVERSION`): the name of the policy it is a version of.
pub const ARCHIVE_OF_LABEL: &str = "congress.dev/library-of";
/// Label of an archived version: its version.
pub const ARCHIVE_VERSION_LABEL: &str = "congress.dev/library-version";

/// How bad a violation of a policy is: the values of a PolicyReport result's `severity`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The type of a parameter column: what each value of a parameter row must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// A string (dates are strings, read by the date builtins).
    #[default]
    String,
    /// A whole number (not negative: the language has no negative literals).
    Integer,
    /// Any number.
    Number,
}

/// One column of a parameter table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterColumn {
    pub name: String,
    #[serde(default, rename = "type")]
    pub type_: ParameterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A parameter: a fact table of the policy, with named, typed columns and default rows that
/// an activating `Policy` may replace (`libraryRef.parameters.TABLE`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    /// The table the rules read, e.g. `permitted_flavor`.
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The columns, in order.
    pub columns: Vec<ParameterColumn>,
    /// The rows used when the activating Policy gives none for this table: each a list of
    /// values (a single value is a one-column row), or an object by column name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default: Vec<serde_json::Value>,
}

/// The spec of a [`LibraryPolicy`]: exactly one of `rules`, `text`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "congress.dev",
    version = "v1alpha1",
    kind = "LibraryPolicy",
    plural = "librarypolicies",
    shortname = "clib",
    status = "LibraryPolicyStatus",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Category","type":"string","jsonPath":".spec.category"}"#,
    printcolumn = r#"{"name":"Severity","type":"string","jsonPath":".spec.severity"}"#,
    printcolumn = r#"{"name":"Customized","type":"string","jsonPath":".status.conditions[?(@.type==\"Customized\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LibraryPolicySpec {
    /// The policy's version (Semantic Versioning): a `Policy` activates one version and keeps
    /// it until it asks for another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A group of policies (`Pod Security`, `OpenStack Networking`, ...), carried into
    /// PolicyReport results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// How bad a violation is, carried into PolicyReport results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// An example of a violation: the data that causes it and the row it gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// Datasource tables the rules read (`nova:servers`), checked against the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
    /// The Datasources the policy needs, by `metadata.name` (manifests in `library/datasources/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasources: Vec<String>,
    /// The policy kind once activated (default `nonrecursive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PolicyKindSpec>,
    /// The enforcement an activation gets unless the Policy says otherwise (default `monitor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// Action settings an activation gets unless the Policy has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<ActionSettings>,
    /// How `error` rows map to Kubernetes objects, unless the Policy has its own mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSpec>,
    /// Fact tables an activation may fill with its own rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
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
    /// Exactly one of `rules`, `text` must be given; parameter tables are distinct, each
    /// with columns, and their default rows fit them.
    pub fn validate(&self) -> Result<(), String> {
        match (self.rules.is_some(), self.text.is_some()) {
            (true, false) | (false, true) => {}
            (false, false) => return Err("spec must have one of `rules` or `text`".into()),
            (true, true) => return Err("spec must have only one of `rules` or `text`".into()),
        }
        if let Some(v) = &self.version {
            let ok = v.len() <= 63
                && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
            if !ok {
                return Err(format!(
                    "version `{v}`: at most 63 letters, digits, `.`, `-` and `+`, starting and ending with a letter or digit (e.g. 1.2.0)"
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.parameters {
            if !seen.insert(p.table.as_str()) {
                return Err(format!("parameter table `{}` is declared twice", p.table));
            }
            crate::loader::parameter_facts(p, &p.default, "").map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The version, `0.0.0` when none is given.
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or("0.0.0")
    }

    /// A digest of the spec (hex MD5 of its JSON, keys in a fixed order): whether two specs
    /// are the same, for the library sync's no-overwrite rule.
    pub fn digest(&self) -> String {
        use md5::{Digest, Md5};
        let json = serde_json::to_value(self).unwrap_or_default();
        let hash = Md5::digest(canonical_json(&json).as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// JSON text with object keys sorted, so equal values give equal text.
fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap_or_default(), canonical_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

impl LibraryPolicy {
    /// See [`LibraryPolicySpec::validate`].
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()
    }
}

/// The name of the archived copy of version `version` of library policy `name`: a DNS
/// subdomain (`bad-flavors.v1.2.0`).
pub fn archive_name(name: &str, version: &str) -> String {
    format!("{name}.v{}", version_label(version).to_ascii_lowercase())
}

/// `version` as a label value: letters, digits, `.`, `-` and `_` (others become `-`), starting
/// and ending with a letter or digit, at most 63 characters.
pub fn version_label(version: &str) -> String {
    let v: String =
        version.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    let v: String = v.chars().take(63).collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// What the operator last saw of a [`LibraryPolicy`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryPolicyStatus {
    /// `Customized` (the spec differs from the shipped one, so upgrades leave it alone) and
    /// `UpdateAvailable` (the shipped library has another version of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The version the shipped library has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_key_order_and_sees_changes() {
        let a: LibraryPolicySpec = serde_json::from_str(r#"{"version":"1.0.0","text":"p(1)"}"#).unwrap();
        let b: LibraryPolicySpec = serde_json::from_str(r#"{"text":"p(1)","version":"1.0.0"}"#).unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = LibraryPolicySpec { text: Some("p(2)".into()), ..a.clone() };
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn archive_names_are_dns_subdomains() {
        assert_eq!(archive_name("bad-flavors", "1.2.0"), "bad-flavors.v1.2.0");
        assert_eq!(archive_name("x", "1.0.0+Build_7"), "x.v1.0.0-build-7");
        assert_eq!(version_label("1.0.0+build.7"), "1.0.0-build.7");
        assert_eq!(version_label("1.0.0-rc-"), "1.0.0-rc");
        assert_eq!(version_label(&"9".repeat(80)).len(), 63);
    }

    #[test]
    fn versions_are_checked_and_typos_in_parameters_refused() {
        for bad in ["", "1.0.0-", "v 1", "1.0/2"] {
            let spec = LibraryPolicySpec { version: Some(bad.into()), text: Some("p(1)".into()), ..Default::default() };
            assert!(spec.validate().unwrap_err().contains("version"), "{bad}");
        }
        let spec = LibraryPolicySpec {
            version: Some("1.2.0-rc.1+b7".into()),
            text: Some("p(1)".into()),
            ..Default::default()
        };
        assert!(spec.validate().is_ok());
        let e = serde_norway::from_str::<LibraryPolicySpec>(
            "text: p(1)\nparameters:\n- table: t\n  columns: [{name: a}]\n  defaults: [[x]]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("defaults"), "{e}");
    }

    #[test]
    fn parameters_are_checked() {
        let spec: LibraryPolicySpec = serde_norway::from_str(
            "text: p(1)\nparameters:\n- table: t\n  columns: [{name: a}, {name: n, type: integer}]\n  default: [[x, 1], [y, z]]\n",
        )
        .unwrap();
        let e = spec.validate().unwrap_err();
        assert!(e.contains("parameters.t[1]") && e.contains("whole number"), "{e}");
    }
}
