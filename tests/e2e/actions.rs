//! Reactive enforcement end to end: `execute[...]` rows of reactive policies become
//! ActionRequests on a real kube-apiserver, once per appearance of a row, run (or refused
//! with a reason) by the one Datasource that owns the action; the per-commit cap pauses a
//! policy; the kill switch stops everything; restarts and a second replica create nothing
//! twice.

use crate::harness::{Cluster, DATASOURCE, Operator, eventually, pod};
use crate::keystone;
use crate::openstack_fake::{self as openstack, FakeCloud, TokenCheck};
use congress_model::resources::{ActionRequest, Policy};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// A push datasource of alarms, and policies that act on them.
const ALARMS: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: alarms}
spec:
  driver: push
  credentialsSecretRef: {name: alarms-push, namespace: congress-system}
  tables:
  - {name: alarms, columns: [name, state, resource]}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: to-nowhere}
spec:
  enforcement: reactive
  rules:
  - rule: execute[nowhere:servers.pause(r)] :- alarms:alarms(n, "ACTIVE", r)
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: to-push}
spec:
  enforcement: reactive
  rules:
  - rule: execute[alarms:reset(r)] :- alarms:alarms(n, "ACTIVE", r), equal(n, "disk")
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: only-watching}
spec:
  rules:
  - rule: execute[nowhere:servers.pause(r)] :- alarms:alarms(n, "ACTIVE", r)
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: capped}
spec:
  enforcement: reactive
  actions: {approval: manual, maxPerCommit: 2}
  rules:
  - rule: execute[kube:label("v1", "Pod", "default", r, "alarm", "true")] :- alarms:alarms(n, "ACTIVE", r)
"#;

const TOKEN: &str = "alarm-push-token";

async fn push(op: &Operator, rows: &[(&str, &str, &str)]) -> u16 {
    let body: Vec<serde_json::Value> = rows.iter().map(|(a, b, c)| json!([a, b, c])).collect();
    let url = format!("http://{}/v1/data-sources/alarms/tables/alarms/rows", op.addr);
    let answer = reqwest::Client::new().put(url).bearer_auth(TOKEN).json(&body).send().await;
    answer.map(|r| r.status().as_u16()).unwrap_or(0)
}

pub async fn requests(client: &Client) -> Vec<ActionRequest> {
    let api: Api<ActionRequest> = Api::all(client.clone());
    let mut items = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    items.sort_by_key(|r| r.name_any());
    items
}

pub fn of_policy<'a>(all: &'a [ActionRequest], policy: &str) -> Vec<&'a ActionRequest> {
    all.iter().filter(|r| r.spec.policy.as_deref() == Some(policy)).collect()
}

pub fn phase(r: &ActionRequest) -> String {
    r.status.as_ref().and_then(|s| s.phase).map(|p| p.as_str().to_string()).unwrap_or_default()
}

pub async fn policy_condition(client: &Client, policy: &str, type_: &str) -> Option<(String, String, String)> {
    let api: Api<Policy> = Api::all(client.clone());
    let p = api.get_opt(policy).await.ok()??;
    let c = p.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

async fn push_secret(client: &Client) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "alarms-push", "annotations": {"congress.dev/datasources": "alarms"}},
        "stringData": {"token": TOKEN}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "congress-system").create(&PostParams::default(), &secret).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_rows_become_requests_once_per_appearance_and_unowned_actions_fail_with_a_reason() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    cluster.create_namespace("congress-system").await;
    push_secret(&client).await;
    cluster.apply(DATASOURCE);
    cluster.apply(ALARMS);
    let mut op = Operator::start(&cluster, "first", false);
    eventually("the push endpoint", &op, || async { push(&op, &[]).await == 200 }).await;
    assert_eq!(push(&op, &[("disk", "ACTIVE", "vm-1")]).await, 200);

    // to-nowhere: the service `nowhere` is no Datasource: Failed, with the reason.
    let all = eventually("to-nowhere's request fails", &op, || async {
        let all = requests(&client).await;
        of_policy(&all, "to-nowhere").first().is_some_and(|r| phase(r) == "Failed").then_some(all)
    })
    .await;
    let nowhere = of_policy(&all, "to-nowhere");
    assert_eq!(nowhere.len(), 1, "{all:?}");
    let r = nowhere[0];
    assert_eq!(r.spec.name, "nowhere:servers.pause");
    assert_eq!(r.spec.args.positional, vec![json!("vm-1")]);
    assert!(r.spec.approved, "automatic approval creates approved requests");
    let status = r.status.clone().unwrap();
    assert!(
        status.last_error.as_deref().unwrap().starts_with("UnknownService: no Datasource named `nowhere`"),
        "{status:?}"
    );
    let explanation = status.explanation.unwrap_or_default();
    assert!(explanation.contains("alarms:alarms(\"disk\", \"ACTIVE\", \"vm-1\")"), "{explanation}");
    let owner = &r.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Policy", "to-nowhere"));
    // to-push: its service is a push datasource, which cannot act.
    let to_push = eventually("to-push's request fails", &op, || async {
        let all = requests(&client).await;
        of_policy(&all, "to-push").first().filter(|r| phase(r) == "Failed").map(|r| (*r).clone())
    })
    .await;
    let error = to_push.status.unwrap().last_error.unwrap();
    assert!(error.starts_with("NotExecutable: driver `push` offers no actions"), "{error}");
    // A monitoring policy asks for nothing; capped (manual) waits for approval.
    assert!(of_policy(&all, "only-watching").is_empty());
    let capped = eventually("capped's request is pending", &op, || async {
        let all = requests(&client).await;
        of_policy(&all, "capped").first().filter(|r| phase(r) == "Pending").map(|r| (*r).clone())
    })
    .await;
    assert!(!capped.spec.approved);

    // Three more rows in one push: more than capped's cap of 2: none created, paused.
    let rows =
        [("disk", "ACTIVE", "vm-1"), ("cpu", "ACTIVE", "vm-2"), ("cpu", "ACTIVE", "vm-3"), ("cpu", "ACTIVE", "vm-4")];
    assert_eq!(push(&op, &rows).await, 200);
    let (_, reason, message) = eventually("capped is paused", &op, || async {
        policy_condition(&client, "capped", "ActionsPaused").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(reason, "TooManyActions");
    assert!(message.contains("asked for 3 actions") && message.contains("maxPerCommit"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(of_policy(&requests(&client).await, "capped").len(), 1, "a paused policy creates nothing");
    // Raising the cap (a new generation) resumes: the three rows get their requests.
    let policies: Api<Policy> = Api::all(client.clone());
    let patch = json!({"spec": {"actions": {"approval": "manual", "maxPerCommit": 10}}});
    policies.patch("capped", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually("capped resumes", &op, || async { of_policy(&requests(&client).await, "capped").len() == 4 }).await;
    assert_eq!(policy_condition(&client, "capped", "ActionsPaused").await.unwrap().0, "False");

    // vm-1's row (the only disk alarm) goes and comes back: to-push asks again.
    assert_eq!(push(&op, &rows[1..]).await, 200);
    let first = of_policy(&requests(&client).await, "to-push")[0].name_any();
    eventually("the first appearance ends", &op, || async {
        let all = requests(&client).await;
        all.iter().any(|r| {
            r.name_any() == first && r.labels().get("congress.dev/row-present").map(String::as_str) == Some("false")
        })
    })
    .await;
    assert_eq!(push(&op, &rows).await, 200);
    let again = eventually("a second appearance", &op, || async {
        let all = requests(&client).await;
        let mine: Vec<ActionRequest> = of_policy(&all, "to-push").into_iter().cloned().collect();
        (mine.len() == 2).then_some(mine)
    })
    .await;
    let appearances: Vec<u32> = again.iter().map(|r| r.spec.trigger.as_ref().unwrap().appearance).collect();
    assert_eq!(appearances, vec![1, 2]);
    assert!(again[1].name_any().ends_with("-2"));

    // capped: vm-1 twice (it went and came back), vm-2..vm-4 once.
    let metrics = op.get("/metrics").await;
    assert!(metrics.contains(r#"congress_actions_created_total{policy="capped"} 5"#), "{metrics}");
    // A restart reads the same rows again: nothing is created twice.
    let before = requests(&client).await.len();
    op.kill();
    let op = Operator::start(&cluster, "second", false);
    eventually("the push endpoint again", &op, || async { push(&op, &rows).await == 200 }).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = requests(&client).await;
    assert_eq!(after.len(), before, "{:?}", after.iter().map(|r| r.name_any()).collect::<Vec<_>>());

    // A request made by hand for a service that does not exist fails the same way; one
    // naming a policy that does not exist fails with that reason.
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: by-hand}
spec: {name: "nosuch:servers.pause", args: {positional: ["vm-9"]}, approved: true}
---
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: as-ghost}
spec: {name: "alarms:reset", policy: ghost, approved: true}
"#,
    );
    let api: Api<ActionRequest> = Api::all(client.clone());
    for (name, reason) in [("by-hand", "UnknownService"), ("as-ghost", "UnknownPolicy")] {
        let error = eventually(&format!("{name} fails"), &op, || async {
            let r = api.get_opt(name).await.ok()??;
            (phase(&r) == "Failed").then(|| r.status.and_then(|s| s.last_error).unwrap_or_default())
        })
        .await;
        assert!(error.starts_with(reason), "{name}: {error}");
    }
    assert!(op.get("/metrics").await.contains("congress_actions_enabled 1"));
    // Nothing ran: capped's requests wait for approval.
    let all = requests(&client).await;
    assert!(of_policy(&all, "capped").iter().all(|r| phase(r) == "Pending"), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_creates_and_runs_nothing() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    cluster.create_namespace("congress-system").await;
    push_secret(&client).await;
    cluster.apply(ALARMS);
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: by-hand}
spec: {name: "nosuch:servers.pause", approved: true}
"#,
    );
    let op = Operator::start_with(&cluster, "only", false, &["--disable-actions=true"]);
    eventually("the push endpoint", &op, || async { push(&op, &[("disk", "ACTIVE", "vm-1")]).await == 200 }).await;
    let (_, reason, _) = eventually("to-nowhere says actions are off", &op, || async {
        policy_condition(&client, "to-nowhere", "ActionsPaused").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(reason, "KillSwitch");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = requests(&client).await;
    assert_eq!(all.len(), 1, "only the request made by hand");
    assert_eq!(phase(&all[0]), "", "and it was not run");
    assert!(op.get("/metrics").await.contains("congress_actions_enabled 0"));
}

const CANARY: &str = "canary-ctx-7f3e91";

/// Servers of flavor m1.huge are paused (Congress's BadFlavors library policy, acting).
const BAD_FLAVORS: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: bad-flavors}
spec:
  enforcement: reactive
  actions: {approval: manual}
  contextSecretRef: {name: pause-context, namespace: congress-system}
  rules:
  - rule: error(id) :- nova:servers(id=id, flavor_id="m1.huge", status="ACTIVE")
  - rule: execute[nova:servers.pause(id)] :- error(id)
"#;

fn nova(keystone: &str, region: &str, credential: &str) -> String {
    format!(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {{name: nova}}
spec:
  driver: nova
  pollIntervalSeconds: 1
  credentialsSecretRef: {{name: openstack, namespace: congress-system}}
  config: {{auth_url: "{keystone}", region: {region}, application_credential_id: {credential}}}
"#
    )
}

async fn violations(client: &Client, policy: &str) -> Option<u64> {
    let api: Api<Policy> = Api::all(client.clone());
    let status = api.get_opt(policy).await.ok()??.status?;
    status.observed_generation?;
    Some(status.violations)
}

/// The whole reactive loop on a real kube-apiserver and Keystone: a forbidden flavor is a
/// violation, its pause waits for approval, survives the operator's death and a second
/// replica, reaches nova exactly once with the context's correlation header, and the next
/// poll clears the violation; the context's value appears in no log, event, status or metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_flavor_is_paused_exactly_once_after_approval_with_the_context_and_clears() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let Some(ks) = keystone::Keystone::start_or_skip().await else { return };
    let client = cluster.client().await;
    let mut state = openstack::small_cloud(2);
    state.object("compute/servers/detail", "srv-000001")["flavor"]["id"] = "m1.huge".into();
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: keystone::ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(state, check, "p1").await;
    let region = keystone::region("e2e-actions");
    ks.register(&region, &cloud.endpoints()).await;
    let (credential, secret) = ks.application_credential(&format!("congress-{region}")).await;
    cluster.create_namespace("congress-system").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "congress-system");
    for body in [
        json!({"metadata": {"name": "openstack", "annotations": {"congress.dev/datasources": "nova"}},
               "stringData": {"application_credential_secret": secret}}),
        json!({"metadata": {"name": "pause-context", "annotations": {"congress.dev/action-context": "bad-flavors"}},
               "stringData": {"header.X-Correlation-ID": CANARY}}),
    ] {
        secrets.create(&PostParams::default(), &serde_json::from_value(body).unwrap()).await.unwrap();
    }
    cluster.apply(&nova(&ks.url, &region, &credential));
    cluster.apply(BAD_FLAVORS);
    let mut first = Operator::start(&cluster, "a", true);
    eventually("one violation", &first, || async { violations(&client, "bad-flavors").await == Some(1) }).await;
    let pending = eventually("the pause waits for approval", &first, || async {
        let all = requests(&client).await;
        of_policy(&all, "bad-flavors").first().filter(|r| phase(r) == "Pending").map(|r| (*r).clone())
    })
    .await;
    assert_eq!(pending.spec.name, "nova:servers.pause");
    assert_eq!(pending.spec.args.positional, vec![json!("srv-000001")]);
    assert!(pending.spec.context.is_empty() && pending.spec.context_secret_ref.is_none(), "the context stays out");
    let explanation = pending.status.clone().unwrap().explanation.unwrap_or_default();
    assert!(explanation.contains("nova:servers(\"srv-000001\""), "{explanation}");

    // The operator dies before the request is approved; it is approved with `congress
    // approve`; two replicas start: exactly one call.
    first.kill();
    let name = pending.name_any();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congress"))
        .args(["approve", &name])
        .env("KUBECONFIG", cluster.dir().join("kubeconfig"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("actionrequest/{name} approved"));
    let b = Operator::start(&cluster, "b", true);
    let c = Operator::start(&cluster, "c", true);
    let api: Api<ActionRequest> = Api::all(client.clone());
    let done = eventually("the pause succeeds", &b, || async {
        api.get_opt(&name).await.ok()?.filter(|r| phase(r) == "Succeeded")
    })
    .await;
    let status = done.status.clone().unwrap();
    let retried: Vec<String> = ["b", "c"]
        .iter()
        .flat_map(|i| {
            let log = std::fs::read_to_string(cluster.dir().join(format!("operator-{i}.log"))).unwrap_or_default();
            log.lines().filter(|l| l.contains("will retry")).map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(status.attempts, 1, "{retried:?}");
    assert!(status.result.as_deref().unwrap_or_default().contains("202"), "{status:?}");
    eventually("the violation clears", &b, || async { violations(&client, "bad-flavors").await == Some(0) }).await;
    eventually("the row's appearance ends", &b, || async {
        let r = api.get_opt(&name).await.ok()??;
        (r.labels().get("congress.dev/row-present").map(String::as_str) == Some("false")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls: Vec<_> = cloud.state().actions.iter().filter(|a| a.method == "POST").cloned().collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].path, "compute/v2.1/servers/srv-000001/action");
    assert_eq!(calls[0].body, json!({"pause": null}));
    assert_eq!(calls[0].headers.get("x-correlation-id").map(String::as_str), Some(CANARY));
    let all = requests(&client).await;
    let requested: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|i| {
            let log = std::fs::read_to_string(cluster.dir().join(format!("operator-{i}.log"))).unwrap_or_default();
            log.lines()
                .filter(|l| {
                    l.contains("action requested")
                        || l.contains("leader")
                        || l.contains("is gone")
                        || l.contains("driver started")
                        || l.contains("loaded")
                        || l.contains("succeeded")
                })
                .map(|l| format!("{i}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(of_policy(&all, "bad-flavors").len(), 1, "{all:#?}\n{requested:#?}");

    // A request made by hand "as if bad-flavors dictated it" does not get the policy's Secret:
    // anyone who may create ActionRequests could otherwise send it anywhere.
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: unpause-by-hand}
spec: {name: "nova:servers.unpause", policy: bad-flavors, args: {positional: ["srv-000001"]}, approved: true}
"#,
    );
    eventually("the unpause by hand succeeds", &b, || async {
        api.get_opt("unpause-by-hand").await.ok()?.filter(|r| phase(r) == "Succeeded")
    })
    .await;
    let unpause = cloud.state().actions.iter().find(|a| a.body == json!({"unpause": null})).cloned().unwrap();
    assert!(!unpause.headers.contains_key("x-correlation-id"), "{unpause:?}");

    // The context's value is in no log, event, status or metric.
    let logs: String = ["a", "b", "c"]
        .iter()
        .map(|i| std::fs::read_to_string(cluster.dir().join(format!("operator-{i}.log"))).unwrap_or_default())
        .collect();
    assert!(logs.contains("action succeeded"), "the logs tell of the action");
    let events: Api<Event> = Api::all(client.clone());
    let events = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
    let objects = format!(
        "{}{}",
        serde_json::to_string(&requests(&client).await).unwrap(),
        serde_json::to_string(&Api::<Policy>::all(client.clone()).list(&ListParams::default()).await.unwrap().items)
            .unwrap()
    );
    let metrics = format!("{}{}", b.get("/metrics").await, c.get("/metrics").await);
    assert!(metrics.contains("congress_action_executions_total{service=\"nova\",result=\"Succeeded\"} 2"), "{metrics}");
    for (what, text) in [("logs", &logs), ("events", &events), ("objects", &objects), ("metrics", &metrics)] {
        assert!(!text.contains(CANARY), "the context leaked into {what}");
        assert!(!text.contains(&secret), "the credential leaked into {what}");
    }
}

/// A Kubernetes action with `dryRun`: validated by the server, recorded, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_label_in_dry_run_is_recorded_and_changes_nothing() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    cluster.create_namespace("congress-system").await;
    cluster.create_namespace("apps").await;
    cluster.apply(DATASOURCE);
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: quarantine}
spec:
  enforcement: reactive
  actions: {dryRun: true}
  rules:
  - rule: |
      execute[kube:label("v1", "Pod", ns, name, "congress.dev/quarantine", "true")] :-
          kube:pods(uid, ns, name), kube:containers(uid, c, "evil:latest")
"#,
    );
    let op = Operator::start(&cluster, "only", false);
    cluster.create_pod(pod("apps", "web", "evil:latest")).await;
    let done = eventually("the dry run succeeds", &op, || async {
        let all = requests(&client).await;
        of_policy(&all, "quarantine").first().filter(|r| phase(r) == "Succeeded").map(|r| (*r).clone())
    })
    .await;
    assert!(done.spec.dry_run);
    let result = done.status.unwrap().result.unwrap_or_default();
    assert!(result.contains("(server dry run)") && result.contains("apps/web"), "{result}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    let labels = pods.get("web").await.unwrap().metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("congress.dev/quarantine"), "{labels:?}");
}

fn hooks(url: &str) -> String {
    format!(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {{name: hooks}}
spec:
  driver: http
  actionsPerMinute: 600
  http:
    baseUrl: {url}/compute/v2.1
    actions:
    - {{name: servers.pause, path: "servers/{{0}}/action", body: {{pause: {{}}}}, args: [server], conflictIsSuccess: true}}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {{name: hook-on-alarm}}
spec:
  enforcement: reactive
  rules:
  - rule: execute[hooks:servers.pause(x)] :- alarms:alarms(n, "ACTIVE", x)
"#
    )
}

/// A generic `http` service: a transient failure (503) is tried again with backoff and then
/// succeeds; a refusal (404) fails at once; a request made by hand runs like one a policy
/// made; finished requests whose rows are gone are deleted after the retention period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_refusals_are_not_and_finished_requests_are_collected() {
    let Some(cluster) = Cluster::up_or_skip().await else { return };
    let client = cluster.client().await;
    let cloud = FakeCloud::start(openstack::small_cloud(1), TokenCheck::None, "p1").await;
    cluster.create_namespace("congress-system").await;
    push_secret(&client).await;
    cluster.apply(&ALARMS.replace("capped", "capped-unused"));
    cluster.apply(&hooks(&cloud.url));
    // A service that never answers: the policy reading it waits; the others act.
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: down}
spec:
  driver: http
  pollIntervalSeconds: 1
  http:
    baseUrl: http://127.0.0.1:9/
    requests:
    - {path: things, table: things, columns: [{name: id, path: id}]}
---
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: waits}
spec:
  enforcement: reactive
  rules:
  - rule: execute[hooks:servers.pause(x)] :- alarms:alarms(n, "ACTIVE", x), not down:things(x)
"#,
    );
    let op = Operator::start_with(&cluster, "only", false, &["--action-retention-seconds=3"]);
    eventually("the push endpoint", &op, || async { push(&op, &[]).await == 200 }).await;
    // The service fails the first attempt with 503 (only that one: the retry, a second
    // later, must not depend on how fast this test comes back to clear it).
    cloud.set_fault("compute", Some(openstack::Fault::StatusTimes(503, 1)));
    assert_eq!(push(&op, &[("cpu", "ACTIVE", "srv-000000")]).await, 200);
    let api: Api<ActionRequest> = Api::all(client.clone());
    let retrying = eventually("the first attempt fails", &op, || async {
        let all = requests(&client).await;
        of_policy(&all, "hook-on-alarm")
            .first()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.attempts == 1 && s.next_attempt_time.is_some()))
            .map(|r| (*r).clone())
    })
    .await;
    let status = retrying.status.clone().unwrap();
    assert_eq!(phase(&retrying), "Approved");
    let (_, reason, message) = eventually("waits says what it waits for", &op, || async {
        policy_condition(&client, "waits", "ActionsPaused").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(reason, "WaitingForDatasources");
    assert!(message.ends_with(": down"), "{message}");
    assert!(of_policy(&requests(&client).await, "waits").is_empty());
    assert!(status.last_error.as_deref().unwrap_or_default().starts_with("Transient"), "{status:?}");
    let name = retrying.name_any();
    let done = eventually("the retry succeeds", &op, || async {
        api.get_opt(&name).await.ok()?.filter(|r| phase(r) == "Succeeded")
    })
    .await;
    assert_eq!(done.status.as_ref().unwrap().attempts, 2);
    assert!(done.status.as_ref().unwrap().last_error.is_none());

    // A server nova does not know: 404, a refusal, not tried again.
    assert_eq!(push(&op, &[("cpu", "ACTIVE", "srv-000000"), ("cpu", "ACTIVE", "srv-missing")]).await, 200);
    let refused = eventually("the refusal fails", &op, || async {
        let all = requests(&client).await;
        all.into_iter().find(|r| r.spec.args.positional == vec![json!("srv-missing")] && phase(r) == "Failed")
    })
    .await;
    let status = refused.status.unwrap();
    assert_eq!(status.attempts, 1);
    assert!(status.last_error.as_deref().unwrap_or_default().starts_with("Refused"), "{status:?}");

    // By hand, as if hook-on-alarm asked: it runs the same way.
    cluster.apply(
        r#"
apiVersion: congress.dev/v1alpha1
kind: ActionRequest
metadata: {name: pause-by-hand}
spec: {name: "hooks:servers.pause", policy: hook-on-alarm, args: {positional: ["srv-000000"]}, approved: true}
"#,
    );
    eventually("the request by hand succeeds", &op, || async {
        api.get_opt("pause-by-hand").await.ok()?.filter(|r| phase(r) == "Succeeded")
    })
    .await;
    let pauses = cloud.state().actions.iter().filter(|a| a.path == "compute/v2.1/servers/srv-000000/action").count();
    assert_eq!(pauses, 3, "503, the retry, and the request by hand");

    // The rows go: the finished requests are deleted once the retention (3 s) is over; the
    // one made by hand (no row) too.
    assert_eq!(push(&op, &[]).await, 200);
    eventually("finished requests are collected", &op, || async { requests(&client).await.is_empty() }).await;
}
