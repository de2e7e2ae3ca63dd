//! The `ValidatingWebhookConfiguration`, generated from the policies: the webhook is called
//! only for the kinds whose Datasource tables a `proactive` Policy reads (through the
//! policies it reads), for CREATE, UPDATE and DELETE; never for the operator's namespace or
//! the excluded ones (checked again by the handler, since v1.20 namespaces carry no name
//! label to select on), nor for a namespace labelled `congress.dev/admission: disabled`.
//! Written by the leader with server-side apply, only when it changed; removed when no
//! proactive policy reads a watched kind.

use super::super::Context;
use congress_drivers::translate::Translator;
use congress_model::engine_name;
use congress_model::resources::{Enforcement, KubernetesSource};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use std::collections::BTreeSet;

/// The label that takes a namespace out of admission.
pub const OPT_OUT_LABEL: &str = "congress.dev/admission";

/// Where the API server reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `https://...` (tests, or a webhook outside the cluster).
    Url(String),
    /// The operator's Service.
    Service { namespace: String, name: String, port: i32 },
}

/// How the configuration is written.
#[derive(Clone, Debug)]
pub struct ConfigSettings {
    /// The configuration's name, and the webhook's (`validate.congress.dev`).
    pub name: String,
    pub endpoint: Endpoint,
    /// `Fail` or `Ignore`.
    pub failure_policy: String,
    /// 1..=30.
    pub timeout_seconds: i32,
    /// Namespaces not sent to the webhook where the API server labels namespaces with their
    /// name (`kubernetes.io/metadata.name`, v1.21 and later; the handler skips them anyway).
    pub excluded_namespaces: Vec<String>,
}

/// A watched kind as a webhook rule wants it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kind {
    pub group: String,
    pub version: String,
    pub plural: String,
}

/// The resources (by index in `source.resources`) of a `kubernetes` Datasource with a table
/// in `read` (their own table or a child table's).
pub fn resources_read(source: &KubernetesSource, read: &BTreeSet<String>) -> Vec<usize> {
    source
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| Translator::new(&r.table).is_ok_and(|t| t.tables().iter().any(|table| read.contains(table))))
        .map(|(i, _)| i)
        .collect()
}

/// The kinds proactive policies read, resolved to their plural names (by discovery unless
/// the Datasource names it).
pub async fn kinds(ctx: &Context) -> Vec<Kind> {
    let Some(policies) = ctx.actions.policies.get() else { return Vec::new() };
    let proactive: Vec<String> = policies
        .state()
        .iter()
        .filter(|p| p.spec.enforcement == Enforcement::Proactive)
        .map(|p| engine_name(&p.name_any()))
        .collect();
    if proactive.is_empty() {
        return Vec::new();
    }
    let Some(datasources) = ctx.datasource_store.get() else { return Vec::new() };
    let sources: Vec<(String, KubernetesSource)> = datasources
        .state()
        .iter()
        .filter(|d| d.spec.driver == "kubernetes")
        .filter_map(|d| Some((engine_name(&d.name_any()), d.spec.kubernetes.clone()?)))
        .collect();
    let names: Vec<String> = sources.iter().map(|(n, _)| n.clone()).collect();
    // Per datasource a proactive policy reads: the tables of it that are read.
    let read = ctx
        .engine
        .run(move |e| {
            let mut read: Vec<(String, BTreeSet<String>)> = Vec::new();
            let wanted: BTreeSet<String> =
                proactive.iter().filter_map(|p| e.datasources_read(p).ok()).flatten().collect();
            for d in names.into_iter().filter(|d| wanted.contains(d)) {
                let tables = e.schema(&d).map(|s| s.keys().filter(|t| e.is_read(&d, t)).cloned().collect());
                read.push((d, tables.unwrap_or_default()));
            }
            read
        })
        .await
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for (d, tables) in read {
        let Some((_, source)) = sources.iter().find(|(n, _)| *n == d) else { continue };
        for i in resources_read(source, &tables) {
            let r = &source.resources[i];
            match congress_drivers::kubernetes::api_resource(&ctx.client, r).await {
                Ok(ar) => {
                    out.insert(Kind { group: ar.group, version: ar.version, plural: ar.plural });
                }
                Err(e) => tracing::warn!(kind = %r.kind, error = %e, "a watched kind is left out of the webhook"),
            }
        }
    }
    out.into_iter().collect()
}

/// The configuration for `kinds`, with `ca_bundle` (PEM).
pub fn configuration(
    settings: &ConfigSettings,
    kinds: &[Kind],
    ca_bundle: &str,
    namespace: &str,
) -> ValidatingWebhookConfiguration {
    let client_config = match &settings.endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(url.clone()),
            ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
            service: None,
        },
        Endpoint::Service { namespace, name, port } => WebhookClientConfig {
            url: None,
            ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some("/validate".into()),
                port: Some(*port),
            }),
        },
    };
    let rules = kinds
        .iter()
        .map(|k| RuleWithOperations {
            api_groups: Some(vec![k.group.clone()]),
            api_versions: Some(vec![k.version.clone()]),
            resources: Some(vec![k.plural.clone()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into(), "DELETE".into()]),
            scope: Some("*".into()),
        })
        .collect();
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(settings.name.clone()),
            labels: Some([("app.kubernetes.io/managed-by".to_string(), "congress".to_string())].into()),
            // Cluster-scoped: the operator's namespace (excluded by the handler) is recorded.
            annotations: Some([("congress.dev/operator-namespace".to_string(), namespace.to_string())].into()),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: format!("validate.{}", settings.name),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some(settings.failure_policy.clone()),
            side_effects: "None".into(),
            timeout_seconds: Some(settings.timeout_seconds),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(
                    [
                        Some(LabelSelectorRequirement {
                            key: OPT_OUT_LABEL.into(),
                            operator: "NotIn".into(),
                            values: Some(vec!["disabled".into()]),
                        }),
                        (!settings.excluded_namespaces.is_empty()).then(|| LabelSelectorRequirement {
                            key: "kubernetes.io/metadata.name".into(),
                            operator: "NotIn".into(),
                            values: Some(settings.excluded_namespaces.clone()),
                        }),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                ),
                match_labels: None,
            }),
            rules: Some(rules),
            object_selector: None,
            match_conditions: None,
        }]),
    }
}

/// Write (or remove) the configuration when it differs from `last`; returns what was written.
pub async fn apply(
    ctx: &Context,
    desired: Option<ValidatingWebhookConfiguration>,
    name: &str,
    last: Option<&ValidatingWebhookConfiguration>,
) -> Result<Option<ValidatingWebhookConfiguration>, kube::Error> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
    match desired {
        None => {
            if last.is_some() || api.get_opt(name).await?.is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        }
        Some(d) if last.is_some_and(|l| l.webhooks == d.webhooks) => Ok(Some(d)),
        Some(d) => {
            let mut body = serde_json::to_value(&d).unwrap_or_default();
            body["apiVersion"] = "admissionregistration.k8s.io/v1".into();
            body["kind"] = "ValidatingWebhookConfiguration".into();
            api.patch(name, &PatchParams::apply(super::super::reports::MANAGER).force(), &Patch::Apply(&body)).await?;
            Ok(Some(d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_resources_with_a_read_table_are_intercepted() {
        let source: KubernetesSource = serde_json::from_value(json!({"resources": [
            {"apiVersion": "v1", "kind": "Pod", "table": "pods", "columns": [{"name": "n", "path": "metadata.name"}],
             "children": [{"path": "spec.containers", "table": "containers", "columns": [{"name": "i", "path": "image"}]}]},
            {"apiVersion": "v1", "kind": "Namespace", "table": "namespaces", "columns": [{"name": "n", "path": "metadata.name"}]}
        ]}))
        .unwrap();
        let read = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(resources_read(&source, &read(&["containers"])), [0], "a child table counts");
        assert_eq!(resources_read(&source, &read(&["namespaces", "pods"])), [0, 1]);
        assert!(resources_read(&source, &read(&[])).is_empty());
    }

    #[test]
    fn the_configuration_carries_the_rules_the_ca_and_the_settings() {
        let settings = ConfigSettings {
            name: "congress.dev".into(),
            endpoint: Endpoint::Url("https://127.0.0.1:9443/validate".into()),
            failure_policy: "Ignore".into(),
            timeout_seconds: 3,
            excluded_namespaces: vec!["kube-system".into(), "congress-system".into()],
        };
        let kinds = [Kind { group: "networking.k8s.io".into(), version: "v1".into(), plural: "ingresses".into() }];
        let c = configuration(&settings, &kinds, "PEM", "congress-system");
        let v = serde_json::to_value(&c).unwrap();
        let w = &v["webhooks"][0];
        assert_eq!(w["name"], "validate.congress.dev");
        assert_eq!(w["failurePolicy"], "Ignore");
        assert_eq!(w["timeoutSeconds"], 3);
        assert_eq!(w["sideEffects"], "None");
        assert_eq!(w["rules"][0]["resources"][0], "ingresses");
        assert_eq!(w["rules"][0]["operations"], json!(["CREATE", "UPDATE", "DELETE"]));
        assert_eq!(w["clientConfig"]["url"], "https://127.0.0.1:9443/validate");
        assert_eq!(w["clientConfig"]["caBundle"], "UEVN", "base64 of the PEM");
        assert_eq!(w["namespaceSelector"]["matchExpressions"][0]["key"], OPT_OUT_LABEL);
        assert_eq!(w["namespaceSelector"]["matchExpressions"][1]["values"], json!(["kube-system", "congress-system"]));
    }
}
