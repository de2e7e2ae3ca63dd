//! OpenStack datasources end to end: the operator (a real process) against a real
//! kube-apiserver and a real Keystone, polling a fake nova and neutron registered in
//! Keystone's catalog, with Congress's classification policy.

use crate::harness::{Cluster, Operator, eventually};
use crate::keystone;
use crate::openstack_fake as openstack;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use openstack::{FakeCloud, Fault, TokenCheck};
use serde_json::json;

/// Every ACTIVE server is connected to an ACTIVE network (Congress's classification example).
const POLICY: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: classification}
spec:
  rules:
  - name: active-server-on-inactive-network
    rule: |
      error(vm, net) :- nova:servers(id=vm, status="ACTIVE"), neutronv2:ports(device_id=vm, network_id=net),
                        neutronv2:networks(id=net, status=s), not equal(s, "ACTIVE")
"#;

fn datasource(name: &str, keystone: &str, region: &str, credential: &str, interval: u32) -> String {
    format!(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {{name: {name}}}
spec:
  driver: {name}
  pollIntervalSeconds: {interval}
  credentialsSecretRef: {{name: openstack, namespace: congress-system}}
  config:
    auth_url: {keystone}
    region: {region}
    application_credential_id: {credential}
"#
    )
}

async fn datasource_status(cluster: &Cluster, name: &str) -> serde_json::Value {
    let api: Api<congress_model::resources::Datasource> = Api::all(cluster.client().await);
    match api.get_opt(name).await {
        Ok(Some(d)) => serde_json::to_value(d.status).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

fn ready(status: &serde_json::Value) -> (String, String) {
    let c = status["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).cloned();
    let c = c.unwrap_or_default();
    (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string())
}

async fn violations(cluster: &Cluster) -> Option<u64> {
    let api: Api<congress_model::resources::Policy> = Api::all(cluster.client().await);
    let s = serde_json::to_value(api.get_opt("classification").await.ok()??.status).ok()?;
    s.get("observedGeneration")?;
    s.get("violations").and_then(serde_json::Value::as_u64)
}

async fn cluster_reports(cluster: &Cluster) -> Vec<DynamicObject> {
    let gvk = GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "ClusterPolicyReport");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "clusterpolicyreports");
    let api: Api<DynamicObject> = Api::all_with(cluster.client().await, &ar);
    api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_and_neutron_behind_keystone_feed_the_classification_policy_and_faults_keep_the_data() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let Some(ks) = keystone::Keystone::start_or_skip().await else { return };
    // Two servers; the second's port is on `net-2`, which is DOWN: one violation.
    let mut state = openstack::small_cloud(2);
    state.collection("network/v2.0/networks").items.push(openstack::network("net-2", "broken", "DOWN"));
    state.object("network/v2.0/ports", "port-000001")["network_id"] = "net-2".into();
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: keystone::ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(state, check, "p1").await;
    let region = keystone::region("e2e");
    ks.register(&region, &cloud.endpoints()).await;
    let (credential, secret) = ks.application_credential(&format!("congress-{region}")).await;

    cluster.create_namespace("congress-system").await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client().await, "congress-system");
    let body: Secret = serde_json::from_value(json!({
        "metadata": {"name": "openstack", "annotations": {"congress.dev/datasources": "nova, neutronv2"}},
        "stringData": {"application_credential_secret": secret}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &body).await.expect("the Secret");
    // nova polls only on request (the refresh annotation); neutron every 2 s.
    cluster.apply(&datasource("nova", &ks.url, &region, &credential, 0));
    cluster.apply(&datasource("neutronv2", &ks.url, &region, &credential, 2));
    // glancev2 names the Secret too, but the Secret does not list it: its credentials stay put.
    cluster.apply(&datasource("glancev2", &ks.url, &region, &credential, 2));
    cluster.apply(POLICY);
    let op = Operator::start(&cluster, "only", false);

    eventually("one violation", &op, || async { violations(&cluster).await == Some(1) }).await;
    let report = eventually("the ClusterPolicyReport", &op, || async {
        cluster_reports(&cluster).await.into_iter().find(|r| r.data["results"].as_array().is_some_and(|a| a.len() == 1))
    })
    .await;
    assert!(report.data["results"][0]["message"].to_string().contains("srv-000001"), "{:?}", report.data);
    let nova = datasource_status(&cluster, "nova").await;
    assert_eq!(ready(&nova), ("True".into(), "Synced".into()), "{nova}");
    let glance = eventually("glancev2 refused the Secret", &op, || async {
        let s = datasource_status(&cluster, "glancev2").await;
        (ready(&s).1 == "SecretNotAllowed").then_some(s)
    })
    .await;
    assert!(glance.to_string().contains("congress.dev/datasources"), "{glance}");
    assert!(!cloud.state().requests.iter().any(|r| r.starts_with("image")), "glance was never asked");
    let servers = nova["tables"].as_array().unwrap().iter().find(|t| t["name"] == "servers").cloned().unwrap();
    assert_eq!(servers["rows"], 2, "{nova}");

    // neutron fails: its condition says why, the tables keep their rows, the violation stays.
    cloud.set_fault("network", Some(Fault::Status(503)));
    eventually("neutronv2 Ready=False ServerError", &op, || async {
        ready(&datasource_status(&cluster, "neutronv2").await) == ("False".into(), "ServerError".into())
    })
    .await;
    let neutron = datasource_status(&cluster, "neutronv2").await;
    assert!(neutron["lastError"].as_str().unwrap().contains("HTTP 503"), "{neutron}");
    assert!(neutron["failures"].as_u64().unwrap() >= 1, "{neutron}");
    assert_eq!(violations(&cluster).await, Some(1), "a failed poll empties nothing");
    let metrics = op.get("/metrics").await;
    assert!(
        metrics.contains(r#"congress_datasource_poll_failures_total{datasource="neutronv2",reason="ServerError"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"congress_datasource_poll_seconds_count{datasource="nova"}"#), "{metrics}");
    cloud.set_fault("network", None);
    eventually("neutronv2 recovers", &op, || async {
        ready(&datasource_status(&cluster, "neutronv2").await) == ("True".into(), "Synced".into())
    })
    .await;

    // nova stops the server; nova polls only when asked: the refresh annotation asks.
    cloud.state().object("compute/servers/detail", "srv-000001")["status"] = "SHUTOFF".into();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(violations(&cluster).await, Some(1), "nova was not polled yet");
    let api: Api<congress_model::resources::Datasource> = Api::all(cluster.client().await);
    let patch = json!({"metadata": {"annotations": {"congress.dev/refresh": "1"}}});
    api.patch("nova", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("annotate");
    eventually("the violation clears", &op, || async { violations(&cluster).await == Some(0) }).await;

    // The application credential's secret appears in no output of the run.
    let log = std::fs::read_to_string(cluster.dir().join("operator-only.log")).unwrap_or_default();
    assert!(log.contains("poll failed"), "the log tells of the fault");
    let events: Api<Event> = Api::all(cluster.client().await);
    let events = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
    let statuses = format!(
        "{}{}{}",
        datasource_status(&cluster, "nova").await,
        datasource_status(&cluster, "neutronv2").await,
        serde_json::to_string(&cluster_reports(&cluster).await).unwrap()
    );
    let metrics = op.get("/metrics").await;
    for (what, text) in
        [("the log", &log), ("events", &events), ("statuses and reports", &statuses), ("metrics", &metrics)]
    {
        assert!(!text.contains(&secret), "the credential leaked into {what}");
    }
}
