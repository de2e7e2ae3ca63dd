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
pub mod http;
pub mod library_policy;
pub mod policy;

pub use action_request::{ActionArgs, ActionRequest, ActionRequestSpec, ActionRequestStatus, ActionTrigger, Phase};
pub use datasource::{
    ChildTable, ColumnMapping, Datasource, DatasourceSpec, DatasourceStatus, KubernetesSource, PushSource, SecretRef,
    TableMapping, TableSchema, TableStatus, WatchedResource,
};
pub use http::{CatalogEndpoint, HttpAction, HttpAuth, HttpRequest, HttpSource, ListEdit, Pagination};
pub use library_policy::{
    LibraryPolicy, LibraryPolicySpec, LibraryPolicyStatus, Parameter, ParameterColumn, ParameterType, Severity,
};
pub use policy::{
    ActionSettings, ActiveLibrary, AdmissionAction, AdmissionSettings, Approval, Enforcement, LibraryRef, Policy,
    PolicyDiagnostic, PolicyKindSpec, PolicySpec, PolicyStatus, ReportSpec, RuleEntry, ViolationSample,
};

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
    // Omitted when empty, so the schema carries no `default: ""`: kube-apiserver v1.20 reads
    // an empty-string default as null and rejects the CRD.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
        .map(structural)
        .map(|crd| (format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default()), crd))
        .collect()
}

/// Rewrite each version's schema into what kube-apiserver accepts as a structural schema
/// (checked against v1.20.2); see [`structural_schema`].
fn structural(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(props) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            let mut value = serde_json::to_value(&*props).expect("a schema always serialises");
            structural_schema(&mut value);
            *props = serde_json::from_value(value).expect("a rewritten schema is still a schema");
        }
    }
    crd
}

/// Rewrite one schema, recursively, for kube-apiserver's structural-schema rules:
/// - `null` is dropped from `enum` (schemars lists it for `Option<enum>`; `nullable: true`
///   already allows null, kubectl's client-side validation rejects the CRD, and kube-apiserver
///   before 1.20.11 mishandles literal nulls in enums);
/// - a schema that accepts anything (`serde_json::Value`: `{}` as array items or map values,
///   `additionalProperties: true`) has no type, which a structural schema forbids, and its
///   content would be pruned: it becomes `x-kubernetes-preserve-unknown-fields: true`,
///   `nullable: true`.
pub fn structural_schema(schema: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(obj) = schema.as_object_mut() else {
        if *schema == Value::Bool(true) {
            *schema = any_value();
        }
        return;
    };
    if obj.contains_key("$ref") {
        // A recursive type (a child table's own children): structural schemas cannot
        // refer to themselves, so the third level is kept as written and checked by the
        // operator (its status says what is wrong).
        *schema = serde_json::json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "description": "Nested further: checked by the operator, not by the schema."
        });
        return;
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    const SHAPED: [&str; 9] =
        ["type", "properties", "items", "anyOf", "oneOf", "allOf", "not", "$ref", "x-kubernetes-int-or-string"];
    if !SHAPED.iter().any(|k| obj.contains_key(*k)) && !obj.contains_key("x-kubernetes-preserve-unknown-fields") {
        if let Value::Object(any) = any_value() {
            obj.extend(any);
        }
        return;
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            structural_schema(sub);
        }
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(structural_schema);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = obj.get_mut(key) {
            subs.iter_mut().for_each(structural_schema);
        }
    }
}

/// The schema of a value of any shape (`serde_json::Value`), kept as written.
fn any_value() -> serde_json::Value {
    serde_json::json!({"x-kubernetes-preserve-unknown-fields": true, "nullable": true})
}

/// One CRD as YAML.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_norway::to_string(crd).expect("a CRD always serialises")
}

/// Every CRD as one multi-document YAML stream (`---` separated).
pub fn all_crds_yaml() -> String {
    crds().iter().map(|(_, crd)| format!("---\n{}", crd_yaml(crd))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every schema node, depth first.
    fn nodes(schema: &Value, out: &mut Vec<Value>) {
        out.push(schema.clone());
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = schema.get(key).filter(|s| s.is_object()) {
                nodes(sub, out);
            }
        }
        if let Some(Value::Object(props)) = schema.get("properties") {
            props.values().for_each(|p| nodes(p, out));
        }
    }

    /// What kube-apiserver v1.20.2 rejected or pruned in the CRDs schemars generates.
    #[test]
    fn crd_schemas_are_structural_for_kube_1_20() {
        for (name, crd) in crds() {
            let schema = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
            let mut all = Vec::new();
            nodes(&serde_json::to_value(schema).unwrap(), &mut all);
            for node in all {
                let typed = node.get("type").is_some() || node.get("x-kubernetes-preserve-unknown-fields").is_some();
                assert!(typed, "{name}: untyped schema {node}");
                assert_ne!(node.get("default"), Some(&json!("")), "{name}: empty-string default in {node}");
                assert_ne!(node.get("additionalProperties"), Some(&json!(true)), "{name}: {node}");
                assert!(node.get("$ref").is_none(), "{name}: $ref in {node}");
                if let Some(Value::Array(values)) = node.get("enum") {
                    assert!(!values.contains(&Value::Null), "{name}: null in enum {node}");
                }
            }
        }
    }

    #[test]
    fn any_value_schemas_preserve_unknown_fields() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "list": {"type": "array", "items": {}},
                "map": {"type": "object", "additionalProperties": true},
                "kind": {"type": "string", "nullable": true, "enum": ["a", null]},
            }
        });
        structural_schema(&mut schema);
        let any = json!({"x-kubernetes-preserve-unknown-fields": true, "nullable": true});
        assert_eq!(schema["properties"]["list"]["items"], any);
        assert_eq!(schema["properties"]["map"]["additionalProperties"], any);
        assert_eq!(schema["properties"]["kind"]["enum"], json!(["a"]));
    }
}
