//! The polled drivers against real parts: a real Keystone (tokens, catalog, revocation,
//! application credentials) and a fake nova/neutron/glance/cinder on 127.0.0.1 serving their
//! documented shapes, with every fault a poll must survive. Rows land in a real engine.

#[path = "support/keystone.rs"]
mod keystone;
#[path = "support/openstack.rs"]
mod openstack;
#[path = "support/sink.rs"]
mod sink;

use congress_drivers::credentials::Credentials;
use congress_drivers::http::HttpDriver;
use congress_drivers::http::PollState;
use congress_drivers::poll::{PollFailure, poll_once};
use congress_engine::Value;
use congress_model::resources::{DatasourceSpec, HttpSource};
use keystone::{ADMIN_PASSWORD, Keystone, region};
use openstack::{FakeCloud, Fault, TokenCheck, small_cloud};
use sink::EngineSink;
use std::collections::{BTreeMap, HashSet};

/// Every table of a datasource read by one rule each, so none is lazy.
fn read_all(ds: &str, spec: &DatasourceSpec) -> String {
    spec.schema()
        .iter()
        .map(|(t, cols)| {
            let vars: Vec<String> = (0..cols.len()).map(|i| format!("x{i}")).collect();
            format!("seen_{}({}) :- {ds}:{t}({})\n", t.replace('.', "_"), vars.join(", "), vars.join(", "))
        })
        .collect()
}

fn spec(driver: &str, config: &[(&str, &str)]) -> DatasourceSpec {
    DatasourceSpec {
        driver: driver.into(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn password(user: &str, password: &str) -> Credentials {
    Credentials::from_strings([
        ("username".to_string(), user.to_string()),
        ("password".to_string(), password.to_string()),
    ])
}

fn driver(spec: &DatasourceSpec, credentials: &Credentials) -> HttpDriver {
    let source = spec.http_source().expect("a valid configuration").expect("an http driver");
    HttpDriver::new(&source, &spec.config, credentials).expect("the driver starts")
}

/// The shipped nova mapping, pointed at `url` without auth (for tests that need no Keystone).
fn nova_without_auth(url: &str) -> (DatasourceSpec, HttpDriver) {
    preset_without_auth("nova", url)
}

/// A shipped mapping, pointed at `url` without auth.
fn preset_without_auth(driver: &str, url: &str) -> (DatasourceSpec, HttpDriver) {
    let mut source: HttpSource = congress_model::resources::http::preset(driver).unwrap().unwrap();
    source.catalog = None;
    source.auth = Default::default();
    source.base_url = Some(url.to_string());
    source.timeout_seconds = Some(1);
    source.max_response_bytes = Some(1 << 20);
    let spec = DatasourceSpec { driver: "http".into(), http: Some(source.clone()), ..Default::default() };
    let driver = HttpDriver::new(&source, &BTreeMap::new(), &Credentials::default()).expect("the driver starts");
    (spec, driver)
}

fn s(v: &str) -> Value {
    Value::str(v)
}

#[tokio::test]
async fn one_poll_is_one_transaction_of_every_page_and_table_and_the_same_data_commits_nothing() {
    let mut state = small_cloud(5);
    state.page_size = 2;
    let cloud = FakeCloud::start(state, TokenCheck::None, "p1").await;
    let (spec, driver) = nova_without_auth(&format!("{}/compute/v2.1", cloud.url));
    let sink = EngineSink::new("nova", spec.schema(), &read_all("nova", &spec));
    let mut tables = PollState::default();

    let first = poll_once(&driver, "nova", &sink, &mut tables).await.expect("the first poll");
    assert_eq!(sink.batch_count(), 1, "one transaction for the whole poll");
    let batch_tables: HashSet<String> = sink.batches.lock().unwrap()[0].iter().map(|c| c.table.clone()).collect();
    for t in ["servers", "servers.addresses", "tags", "flavors", "hypervisors", "services", "availability_zones"] {
        assert!(batch_tables.contains(t), "{t} missing from the poll's transaction: {batch_tables:?}");
    }
    // Five servers over three pages (2 + 2 + 1), each followed by its `servers_links`.
    let pages = cloud.state().requests.iter().filter(|r| r.starts_with("compute v2.1/servers/detail")).count();
    assert_eq!(pages, 3);
    let servers = sink.rows("nova", "servers");
    assert_eq!(servers.len(), 5);
    assert_eq!(
        servers[0],
        vec![
            s("srv-000000"),
            s("vm-0"),
            s("h1"),
            s("ACTIVE"),
            s("p1"),
            s("u1"),
            s("img-1"),
            s("m1.small"),
            s("nova"),
            s("compute-1"),
            s("2026-11-30T10:00:00Z")
        ]
    );
    assert_eq!(
        sink.rows("nova", "servers.addresses")[0],
        vec![s("srv-000000"), s("net-1"), s("10.0.0.0"), Value::Int(4), s("fa:16:3e:00:00:01"), s("fixed")]
    );
    assert_eq!(sink.rows("nova", "tags")[0], vec![s("srv-000000"), s("web")]);
    assert_eq!(sink.rows("nova", "availability_zones"), vec![vec![s("nova"), s("True")]]);
    assert!(first.changed > 0);

    // The same data: nothing is committed.
    let same = poll_once(&driver, "nova", &sink, &mut tables).await.expect("the second poll");
    assert_eq!(same.changed, 0);
    assert_eq!(sink.batch_count(), 1);

    // One server changes: one transaction with just its difference.
    cloud.state().object("compute/servers/detail", "srv-000003")["status"] = "SHUTOFF".into();
    let one = poll_once(&driver, "nova", &sink, &mut tables).await.expect("the third poll");
    assert_eq!(one.changed, 2);
    let batches = sink.batches.lock().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[1].len(), 1);
    assert_eq!(batches[1][0].table, "servers");
    assert_eq!(batches[1][0].added[0][3], s("SHUTOFF"));
    assert_eq!(batches[1][0].removed[0][3], s("ACTIVE"));
}

#[tokio::test]
async fn tables_no_policy_reads_are_not_fetched() {
    let cloud = FakeCloud::start(small_cloud(2), TokenCheck::None, "p1").await;
    let (spec, driver) = nova_without_auth(&format!("{}/compute/v2.1", cloud.url));
    // Only `servers.addresses` is read: its request (servers/detail) runs, no other.
    let sink = EngineSink::new("nova", spec.schema(), "ip(a) :- nova:servers.addresses(s, n, a, v, m, t)");
    let mut tables = PollState::default();
    poll_once(&driver, "nova", &sink, &mut tables).await.expect("a poll");
    let requests = cloud.state().requests.clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("compute v2.1/servers/detail"), "{requests:?}");
    assert_eq!(sink.engine().query_strings("policy", "ip(x)").unwrap().len(), 2);
    // A policy that starts reading flavors makes the next poll fetch them.
    sink.engine().insert_rules("policy", "f(i) :- nova:flavors(i, n, c, r, d, e, x)").unwrap();
    poll_once(&driver, "nova", &sink, &mut tables).await.expect("a poll");
    assert!(cloud.state().requests.iter().any(|r| r.starts_with("compute v2.1/flavors/detail")));
    assert_eq!(sink.rows("nova", "flavors").len(), 1);
}

#[tokio::test]
async fn every_fault_fails_the_poll_keeps_the_last_good_rows_and_recovery_clears_it() {
    let cloud = FakeCloud::start(small_cloud(3), TokenCheck::None, "p1").await;
    let (spec, driver) = nova_without_auth(&format!("{}/compute/v2.1", cloud.url));
    let sink = EngineSink::new("nova", spec.schema(), &read_all("nova", &spec));
    let mut tables = PollState::default();
    poll_once(&driver, "nova", &sink, &mut tables).await.expect("a good poll");
    let good = sink.rows("nova", "servers");
    // Objects change behind each fault: a failed poll must not commit half of them.
    cloud.state().collection("compute/servers/detail").items.clear();
    let faults = [
        (Fault::Slow(std::time::Duration::from_secs(3)), "Timeout", "no answer within 1 s"),
        (Fault::Status(503), "ServerError", "HTTP 503"),
        (Fault::Status(404), "RequestRefused", "HTTP 404"),
        (Fault::Unauthorized(1), "Unauthorized", "HTTP 401"),
        (Fault::NotJson, "NotJson", "line 1, column 1"),
        (Fault::WrongShape, "WrongShape", "`servers` is an object, not a list"),
        (Fault::Huge(2 << 20), "TooLarge", "larger than 1048576 bytes"),
    ];
    for (fault, reason, words) in faults {
        cloud.set_fault("compute", Some(fault.clone()));
        let e = poll_once(&driver, "nova", &sink, &mut tables).await.expect_err("the fault fails the poll");
        assert_eq!(e.reason(), reason, "{fault:?}: {e}");
        assert!(e.to_string().contains(words), "{fault:?}: {e}");
        assert_eq!(sink.rows("nova", "servers"), good, "{fault:?} changed the tables");
        cloud.set_fault("compute", None);
    }
    // A refused connection: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (_, refused) = nova_without_auth(&format!("http://{closed}/compute/v2.1"));
    let e = poll_once(&refused, "nova", &sink, &mut tables).await.expect_err("nobody listens");
    assert_eq!(e.reason(), "ConnectionFailed", "{e}");
    assert_eq!(sink.rows("nova", "servers"), good);
    // Recovery: the next good poll commits what the service now says.
    poll_once(&driver, "nova", &sink, &mut tables).await.expect("recovered");
    assert!(sink.rows("nova", "servers").is_empty());
}

#[tokio::test]
async fn a_rejected_batch_is_a_failure_that_changes_nothing() {
    let cloud = FakeCloud::start(small_cloud(1), TokenCheck::None, "p1").await;
    let (spec, driver) = nova_without_auth(&format!("{}/compute/v2.1", cloud.url));
    // The engine's `servers` is narrower than what the driver fills.
    let mut schema = spec.schema();
    schema.insert("servers".into(), vec!["id".into()]);
    let sink = EngineSink::new("nova", schema, "x(i) :- nova:servers(i)\ny(s) :- nova:tags(s, t)");
    let mut tables = PollState::default();
    let e = poll_once(&driver, "nova", &sink, &mut tables).await.expect_err("rows of the wrong width");
    assert!(matches!(e, PollFailure::Sink(_)), "{e}");
    assert_eq!(e.reason(), "Rejected");
    assert!(sink.rows("nova", "tags").is_empty(), "nothing of the poll was committed");
}

#[tokio::test]
async fn generic_http_with_bearer_auth_and_marker_pages() {
    let mut state = small_cloud(5);
    state.page_size = 100;
    let cloud = FakeCloud::start(state, TokenCheck::Bearer("tok-123".into()), "p1").await;
    let yaml = format!(
        r#"
driver: http
http:
  baseUrl: {}/compute/v2.1
  auth: {{type: bearer}}
  requests:
  - path: servers/detail
    items: servers
    pagination: {{marker: marker, limit: 2}}
    table: vms
    columns:
    - {{name: id, path: id}}
    - {{name: meta, path: metadata.owner}}
    - {{name: ram_ok, path: status, type: boolean}}
    children:
    - path: metadata.*
      table: vm_metadata
      columns:
      - {{name: vm, path: $parent.id}}
      - {{name: key, path: $key}}
      - {{name: value, path: $value}}
"#,
        cloud.url
    );
    let spec: DatasourceSpec = serde_norway::from_str(&yaml).expect("a spec");
    let token = Credentials::from_strings([("token".to_string(), "tok-123".to_string())]);
    let d = driver(&spec, &token);
    let sink = EngineSink::new("api", spec.schema(), &read_all("api", &spec));
    let mut tables = PollState::default();
    poll_once(&d, "api", &sink, &mut tables).await.expect("a poll");
    assert_eq!(sink.rows("api", "vms").len(), 5);
    assert_eq!(sink.rows("api", "vm_metadata")[0], vec![s("srv-000000"), s("owner"), s("team-a")]);
    // `ACTIVE` is no boolean: the column's default.
    assert_eq!(sink.rows("api", "vms")[0][2], s("None"));
    let pages: Vec<String> = cloud.state().requests.iter().filter(|r| r.contains("servers/detail")).cloned().collect();
    // 2 + 2 + 1, then an empty page ends the listing (a short page does not: services cap
    // `limit` silently).
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages[1].contains("limit=2") && pages[1].contains("marker=srv-000001"), "{pages:?}");

    // A wrong token: 401, not retried (only Keystone tokens are renewed).
    let wrong = Credentials::from_strings([("token".to_string(), "canary-bearer-77".to_string())]);
    let d = driver(&spec, &wrong);
    let e = poll_once(&d, "api", &sink, &mut tables).await.expect_err("a wrong token");
    assert_eq!(e.reason(), "Unauthorized");
    assert!(!e.to_string().contains("canary") && !format!("{e:?}{d:?}").contains("canary"), "{e:?}");
}

// ---- With a real Keystone ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nova_and_neutron_through_a_real_keystone_catalog_with_token_reuse_and_one_reauth() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let mut state = small_cloud(3);
    state.page_size = 2;
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(state, check, "p1").await;
    let region = region("nova-neutron");
    ks.register(&region, &cloud.endpoints()).await;
    let config =
        [("auth_url", ks.url.as_str()), ("region", region.as_str()), ("project_name", "admin"), ("all_tenants", "1")];
    let creds = password("admin", ADMIN_PASSWORD);
    let nova = spec("nova", &config);
    let neutron = spec("neutronv2", &config);
    let (nova_driver, neutron_driver) = (driver(&nova, &creds), driver(&neutron, &creds));
    let nova_sink = EngineSink::new("nova", nova.schema(), &read_all("nova", &nova));
    let neutron_sink = EngineSink::new("neutronv2", neutron.schema(), &read_all("neutronv2", &neutron));
    let (mut nova_tables, mut neutron_tables) = (PollState::default(), PollState::default());

    poll_once(&nova_driver, "nova", &nova_sink, &mut nova_tables).await.expect("nova polls");
    poll_once(&neutron_driver, "neutronv2", &neutron_sink, &mut neutron_tables).await.expect("neutron polls");
    assert_eq!(nova_sink.rows("nova", "servers").len(), 3);
    assert!(cloud.state().requests.iter().any(|r| r.contains("all_tenants=1")), "admin listing");
    assert_eq!(neutron_sink.rows("neutronv2", "ports").len(), 3);
    assert_eq!(neutron_sink.rows("neutronv2", "fixed_ips")[0], vec![s("port-000000"), s("10.0.0.0"), s("s1")]);
    assert_eq!(
        neutron_sink.rows("neutronv2", "security_group_port_bindings")[0],
        vec![s("port-000000"), s("sg-default")]
    );
    assert_eq!(neutron_sink.rows("neutronv2", "networks")[0][3], s("ACTIVE"));

    // The token is reused: a second poll sends the same one.
    poll_once(&nova_driver, "nova", &nova_sink, &mut nova_tables).await.expect("nova polls again");
    let nova_tokens = |c: &FakeCloud| -> Vec<String> {
        let st = c.state();
        st.requests
            .iter()
            .zip(&st.tokens_seen)
            .filter(|(r, _)| r.starts_with("compute"))
            .map(|(_, t)| t.clone())
            .collect()
    };
    let seen: HashSet<String> = nova_tokens(&cloud).into_iter().collect();
    assert_eq!(seen.len(), 1, "one token for every request of both polls");

    // Keystone revokes it: the service says 401, the driver authenticates once more and goes on.
    let old = seen.into_iter().next().unwrap();
    ks.revoke(&old).await;
    openstack::forget_tokens(&cloud);
    cloud.state().object("compute/servers/detail", "srv-000001")["status"] = "ERROR".into();
    poll_once(&nova_driver, "nova", &nova_sink, &mut nova_tables).await.expect("re-authenticated");
    assert!(nova_sink.rows("nova", "servers").iter().any(|r| r[3] == s("ERROR")));
    let now: HashSet<String> = nova_tokens(&cloud).into_iter().collect();
    assert_eq!(now.len(), 2, "exactly one new token");

    // A service that keeps saying 401: one fresh token, then the poll fails; rows stay.
    cloud.set_fault("compute", Some(Fault::Unauthorized(2)));
    let before = nova_sink.rows("nova", "servers");
    let e = poll_once(&nova_driver, "nova", &nova_sink, &mut nova_tables).await.expect_err("401 twice");
    assert_eq!(e.reason(), "Unauthorized", "{e}");
    assert!(e.to_string().contains("after a fresh token"), "{e}");
    assert_eq!(nova_sink.rows("nova", "servers"), before);
    poll_once(&nova_driver, "nova", &nova_sink, &mut nova_tables).await.expect("recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glance_cinder_and_keystonev3_with_an_application_credential() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let mut state = small_cloud(2);
    state.page_size = 1;
    state.collection("image/v2/images").items.push(openstack::image("img-2", "ubuntu"));
    let cloud = FakeCloud::start(state, check, "p1").await;
    let region = region("glance-cinder");
    ks.register(&region, &cloud.endpoints()).await;
    let (id, secret) = ks.application_credential(&format!("congress-{region}")).await;
    let creds = Credentials::from_strings([("application_credential_secret".to_string(), secret)]);
    let config =
        [("auth_url", ks.url.as_str()), ("region", region.as_str()), ("application_credential_id", id.as_str())];

    let glance = spec("glancev2", &config);
    let sink = EngineSink::new("glancev2", glance.schema(), &read_all("glancev2", &glance));
    poll_once(&driver(&glance, &creds), "glancev2", &sink, &mut PollState::default()).await.expect("glance polls");
    // Two pages, the second from glance's `next` path under the endpoint's `/image` prefix.
    let images = sink.rows("glancev2", "images");
    assert_eq!(images.len(), 2, "{images:?}");
    assert_eq!(sink.rows("glancev2", "tags")[0], vec![s("img-1"), s("base")]);

    let cinder = spec("cinder", &config);
    let sink = EngineSink::new("cinder", cinder.schema(), &read_all("cinder", &cinder));
    poll_once(&driver(&cinder, &creds), "cinder", &sink, &mut PollState::default()).await.expect("cinder polls");
    let attachments = sink.rows("cinder", "attachments");
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0][0], s("vol-1"));
    assert_eq!(attachments[0][1], s("srv-000000"));

    // keystonev3 reads Keystone itself, found in its own catalog (region RegionOne).
    let ksv3 = spec("keystonev3", &[("auth_url", ks.url.as_str()), ("project_name", "admin")]);
    let sink = EngineSink::new("keystonev3", ksv3.schema(), &read_all("keystonev3", &ksv3));
    poll_once(&driver(&ksv3, &password("admin", ADMIN_PASSWORD)), "keystonev3", &sink, &mut PollState::default())
        .await
        .expect("keystonev3 polls");
    assert!(sink.rows("keystonev3", "projects").iter().any(|r| r[2] == s("admin")));
    assert!(sink.rows("keystonev3", "users").iter().any(|r| r[1] == s("admin")));
    assert!(sink.rows("keystonev3", "roles").iter().any(|r| r[1] == s("admin")));
    assert!(!sink.rows("keystonev3", "role_assignments").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_a_missing_endpoint_say_why_without_the_secret() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let config = [("auth_url", ks.url.as_str()), ("project_name", "admin")];
    let canary = "canary-pw-5b1e";
    let nova = spec("nova", &config);
    // A user Keystone does not know: a wrong password for a known one makes Keystone write
    // a failed-login count into its sqlite database, which the other tests write to as well.
    let d = driver(&nova, &password(&region("nobody"), canary));
    let sink = EngineSink::new("nova", nova.schema(), &read_all("nova", &nova));
    let e = poll_once(&d, "nova", &sink, &mut PollState::default()).await.expect_err("a wrong password");
    assert_eq!(e.reason(), "Unauthorized", "{e}");
    assert!(e.to_string().contains("refused the credentials (HTTP 401)"), "{e}");
    assert!(!format!("{e} {e:?} {d:?}").contains(canary));

    // Right password, but no compute endpoint in region `nowhere`.
    let nova = spec("nova", &[("auth_url", ks.url.as_str()), ("project_name", "admin"), ("region", "nowhere")]);
    let e = poll_once(&driver(&nova, &password("admin", ADMIN_PASSWORD)), "nova", &sink, &mut PollState::default())
        .await
        .expect_err("no endpoint");
    assert_eq!(e.reason(), "NoEndpoint", "{e}");
    assert!(e.to_string().contains("`compute`") && e.to_string().contains("`nowhere`"), "{e}");
}

// ---- `congress poll` ----

fn congress(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_congress"));
    cmd.args(args).env_remove("OS_PASSWORD").env_remove("OS_AUTH_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run congress")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn congress_poll_prints_the_tables_and_says_why_a_poll_failed() {
    let cloud = FakeCloud::start(small_cloud(2), TokenCheck::Bearer("tok-9".into()), "p1").await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("api.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: congress.dev/v1alpha1\nkind: Datasource\nmetadata: {{name: my-api}}\nspec:\n  driver: http\n  http:\n    baseUrl: {}/compute/v2.1\n    auth: {{type: bearer}}\n    requests:\n    - {{path: servers/detail, items: servers, table: vms, columns: [{{name: id, path: id}}, {{name: status, path: status}}]}}\n",
            cloud.url
        ),
    )
    .unwrap();
    let path = manifest.display().to_string();
    let run = |env: Vec<(&'static str, String)>, extra: &'static [&'static str]| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut args = vec!["poll", "-f", path.as_str()];
            args.extend_from_slice(extra);
            congress(&args, &env)
        })
    };
    let out = run(vec![("CONGRESS_CREDENTIAL_TOKEN", "tok-9".into())], &[]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("my_api:vms(id, status): 2 rows"), "{stdout}");
    assert!(stdout.contains("srv-000001  ACTIVE"), "{stdout}");

    let out = run(vec![("CONGRESS_CREDENTIAL_TOKEN", "tok-9".into())], &["-o", "json"]).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(json["tables"]["vms"]["rows"][0], serde_json::json!(["srv-000000", "ACTIVE"]));

    cloud.set_fault("compute", Some(Fault::Status(503)));
    let out = run(vec![("CONGRESS_CREDENTIAL_TOKEN", "canary-cli-31".into())], &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the poll failed (ServerError)") && stderr.contains("HTTP 503"), "{stderr}");
    assert!(!stderr.contains("canary") && !String::from_utf8_lossy(&out.stdout).contains("canary"));

    // No token at all: bad input, said before anything is sent.
    let out = run(vec![], &[]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `token`"), "{}", String::from_utf8_lossy(&out.stderr));

    // A manifest that is not YAML: where and why.
    std::fs::write(&manifest, "kind: Datasource\nspec: [unclosed\n").unwrap();
    let out = run(vec![], &[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("api.yaml") && stderr.contains("line"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn congress_poll_runs_the_nova_driver_with_os_variables() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(small_cloud(2), check, "p1").await;
    let region = region("cli-nova");
    ks.register(&region, &cloud.endpoints()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("nova.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: congress.dev/v1alpha1\nkind: Datasource\nmetadata: {name: nova}\nspec: {driver: nova}\n",
    )
    .unwrap();
    let path = manifest.display().to_string();
    let url = ks.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        congress(
            &["poll", "-f", &path, "--table", "servers", "--table", "servers.addresses"],
            &[
                ("OS_AUTH_URL", &url),
                ("OS_USERNAME", "admin"),
                ("OS_PASSWORD", ADMIN_PASSWORD),
                ("OS_PROJECT_NAME", "admin"),
                ("OS_REGION_NAME", &region),
            ],
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("nova:servers(id, name, host_id, status"), "{stdout}");
    assert!(stdout.contains("nova:servers.addresses(server_id, network_name, address"), "{stdout}");
    assert!(stdout.contains("srv-000001  vm-1"), "{stdout}");
    assert!(!stdout.contains("flavors"), "only the tables asked for: {stdout}");
}

#[tokio::test]
async fn objects_moving_between_pages_commit_only_what_changed() {
    let mut state = small_cloud(5);
    state.page_size = 2;
    let cloud = FakeCloud::start(state, TokenCheck::None, "p1").await;
    let (spec, driver) = nova_without_auth(&format!("{}/compute/v2.1", cloud.url));
    let sink = EngineSink::new("nova", spec.schema(), &read_all("nova", &spec));
    let mut state = PollState::default();
    poll_once(&driver, "nova", &sink, &mut state).await.expect("a poll");
    // A server listed first shifts every other one a page on: one server is new, no other changed.
    let new = openstack::server("srv-new", "vm-new", "ACTIVE", "net-1", "10.9.9.9");
    cloud.state().collection("compute/servers/detail").items.insert(0, new);
    let outcome = poll_once(&driver, "nova", &sink, &mut state).await.expect("a poll");
    assert_eq!(outcome.changed, 3, "the server, its address and its tag");
    assert_eq!(sink.rows("nova", "servers").len(), 6);
    let last = sink.batches.lock().unwrap().last().cloned().unwrap();
    assert!(last.iter().all(|c| c.removed.is_empty()), "{last:?}");
    // The first server goes again.
    cloud.state().collection("compute/servers/detail").items.remove(0);
    let outcome = poll_once(&driver, "nova", &sink, &mut state).await.expect("a poll");
    assert_eq!(outcome.changed, 3);
    assert_eq!(sink.rows("nova", "servers").len(), 5);
    // Unchanged pages are reused whole: nothing to commit.
    let outcome = poll_once(&driver, "nova", &sink, &mut state).await.expect("a poll");
    assert_eq!(outcome.changed, 0);
}

#[tokio::test]
async fn a_row_two_pages_give_stays_until_neither_does() {
    let mut state = small_cloud(2);
    state.page_size = 1;
    let cloud = FakeCloud::start(state, TokenCheck::None, "p1").await;
    // A table of server statuses only: both servers (one per page) give the row `ACTIVE`.
    let yaml = format!(
        "driver: http\nhttp:\n  baseUrl: {}/compute/v2.1\n  requests:\n  - {{path: servers/detail, items: servers, pagination: {{next: servers_links}}, table: statuses, columns: [{{name: status, path: status}}]}}\n",
        cloud.url
    );
    let spec: DatasourceSpec = serde_norway::from_str(&yaml).unwrap();
    let d = driver(&spec, &Credentials::default());
    let sink = EngineSink::new("api", spec.schema(), &read_all("api", &spec));
    let mut state = PollState::default();
    poll_once(&d, "api", &sink, &mut state).await.expect("a poll");
    assert_eq!(sink.rows("api", "statuses"), vec![vec![s("ACTIVE")]]);
    cloud.state().collection("compute/servers/detail").items.remove(0);
    let outcome = poll_once(&d, "api", &sink, &mut state).await.expect("a poll");
    assert_eq!(outcome.changed, 0, "the other page still gives the row");
    assert_eq!(sink.rows("api", "statuses"), vec![vec![s("ACTIVE")]]);
    cloud.state().object("compute/servers/detail", "srv-000001")["status"] = "SHUTOFF".into();
    poll_once(&d, "api", &sink, &mut state).await.expect("a poll");
    assert_eq!(sink.rows("api", "statuses"), vec![vec![s("SHUTOFF")]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_congress_eval_over_a_live_datasource() {
    let cloud =
        FakeCloud::start(small_cloud(3), TokenCheck::Basic("reader".into(), "canary-basic-8".into()), "p1").await;
    cloud.state().object("compute/servers/detail", "srv-000002")["OS-EXT-AZ:availability_zone"] = "rogue".into();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("nova.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: congress.dev/v1alpha1\nkind: Datasource\nmetadata: {{name: nova}}\nspec:\n  driver: nova\n  config: {{username: reader}}\n  http:\n    baseUrl: {}/compute/v2.1\n    auth: {{type: basic}}\n    requests:\n    - path: servers/detail\n      items: servers\n      pagination: {{next: servers_links}}\n      table: servers\n      columns: [{{name: id, path: id}}, {{name: zone, path: '[\"OS-EXT-AZ:availability_zone\"]'}}]\n",
            cloud.url
        ),
    )
    .unwrap();
    let policy = dir.path().join("zones.yaml");
    std::fs::write(
        &policy,
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: zones}\nspec:\n  rules:\n  - rule: allowed(\"nova\")\n  - rule: error(vm, z) :- nova:servers(id=vm, zone=z), not allowed(z)\n",
    )
    .unwrap();
    let secret = dir.path().join("secret.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: canary-basic-8}\n",
    )
    .unwrap();
    let (m, p, s2) = (manifest.display().to_string(), policy.display().to_string(), secret.display().to_string());
    let out = tokio::task::spawn_blocking(move || congress(&["eval", "-f", &p, "--live", &m, "--secret", &s2], &[]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "violations: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("zones: 1 violation") && stdout.contains("srv-000002  rogue"), "{stdout}");

    // A wrong password: the poll fails, nothing is evaluated, the password is not printed.
    std::fs::write(&secret, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: d3Jvbmc=}\n").unwrap();
    let (m, p, s2) = (manifest.display().to_string(), policy.display().to_string(), secret.display().to_string());
    let out = tokio::task::spawn_blocking(move || congress(&["eval", "-f", &p, "--live", &m, "--secret", &s2], &[]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the poll failed (Unauthorized)") && !stderr.contains("wrong"), "{stderr}");
}

#[tokio::test]
async fn every_neutron_and_cinder_table_of_congress_fills_from_the_documented_shapes() {
    let cloud = FakeCloud::start(small_cloud(1), TokenCheck::None, "p1").await;
    let (spec, driver) = preset_without_auth("neutronv2", &format!("{}/network", cloud.url));
    let sink = EngineSink::new("neutronv2", spec.schema(), &read_all("neutronv2", &spec));
    poll_once(&driver, "neutronv2", &sink, &mut PollState::default()).await.expect("neutron polls");
    let rows = |t: &str| sink.rows("neutronv2", t);
    let t = s("True");
    let n = s("None");
    assert_eq!(
        rows("subnets"),
        vec![vec![
            s("s1"),
            s("p1"),
            s("private-subnet"),
            s("net-1"),
            Value::Int(4),
            s("10.0.0.0/8"),
            s("10.0.0.1"),
            t.clone(),
            n.clone(),
            n.clone()
        ]]
    );
    assert_eq!(rows("allocation_pools"), vec![vec![s("s1"), s("10.0.0.2"), s("10.255.255.254")]]);
    assert_eq!(rows("dns_nameservers"), vec![vec![s("s1"), s("8.8.4.4")], vec![s("s1"), s("8.8.8.8")]]);
    assert_eq!(rows("host_routes"), vec![vec![s("s1"), s("0.0.0.0/0"), s("10.0.0.1")]]);
    assert_eq!(rows("routers").len(), 2);
    assert_eq!(rows("external_gateway_infos"), vec![vec![s("r1"), s("public"), t.clone()]], "r2 has none");
    assert_eq!(rows("external_fixed_ips"), vec![vec![s("r1"), s("public-subnet"), s("172.24.4.10")]]);
    assert_eq!(
        rows("security_groups"),
        vec![vec![s("sg-default"), s("p1"), s("default"), s("Default security group")]]
    );
    let rules = rows("security_group_rules");
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0],
        vec![
            s("sg-default"),
            s("rule-1"),
            s("p1"),
            n.clone(),
            s("ingress"),
            s("IPv4"),
            s("tcp"),
            Value::Int(22),
            Value::Int(22),
            s("0.0.0.0/0")
        ]
    );
    assert_eq!(rules[1][7], n, "a null port range is None");
    assert_eq!(
        rows("floating_ips"),
        vec![vec![
            s("fip-1"),
            s("r1"),
            s("p1"),
            s("public"),
            s("10.0.0.0"),
            s("172.24.4.20"),
            s("port-000000"),
            s("ACTIVE")
        ]]
    );

    let (spec, driver) = preset_without_auth("cinder", &format!("{}/volume/v3/p1", cloud.url));
    let sink = EngineSink::new("cinder", spec.schema(), &read_all("cinder", &spec));
    poll_once(&driver, "cinder", &sink, &mut PollState::default()).await.expect("cinder polls");
    let volume = &sink.rows("cinder", "volumes")[0];
    assert_eq!(volume.len(), 17);
    assert_eq!((&volume[0], &volume[3]), (&s("vol-1"), &s("in-use")));
    assert_eq!(sink.rows("cinder", "snapshots")[0][0], s("snap-1"));
    assert_eq!(sink.rows("cinder", "services").len(), 1);
}

/// Token expiry is Keystone's: with 20-second tokens, the driver reuses its token for 18 s,
/// then takes a new one before the old one expires (no 401 on the way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_before_keystone_expires_them() {
    let Some(ks) = Keystone::start_own_or_skip(20).await else { return };
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(small_cloud(1), check, "p1").await;
    ks.register("expiry", &cloud.endpoints()).await;
    let config = [("auth_url", ks.url.as_str()), ("region", "expiry"), ("project_name", "admin")];
    let nova = spec("nova", &config);
    let d = driver(&nova, &password("admin", ADMIN_PASSWORD));
    let sink = EngineSink::new("nova", nova.schema(), "up(x) :- nova:servers(id=x)");
    let mut state = PollState::default();
    let tokens = |c: &FakeCloud| c.state().tokens_seen.iter().cloned().collect::<HashSet<String>>();
    poll_once(&d, "nova", &sink, &mut state).await.expect("a poll");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    poll_once(&d, "nova", &sink, &mut state).await.expect("a poll");
    assert_eq!(tokens(&cloud).len(), 1, "reused while far from expiry");
    tokio::time::sleep(std::time::Duration::from_secs(14)).await;
    poll_once(&d, "nova", &sink, &mut state).await.expect("a poll with a fresh token");
    assert_eq!(tokens(&cloud).len(), 2, "renewed before expiry");
    assert!(!cloud.state().requests.is_empty());
}

#[tokio::test]
async fn a_next_link_to_another_host_fails_the_poll_before_any_credential_leaves() {
    let mut state = small_cloud(2);
    state.page_size = 1;
    let cloud = FakeCloud::start(state, TokenCheck::Bearer("tok-1".into()), "p1").await;
    cloud.set_fault("compute", Some(Fault::ForeignNextLink));
    let yaml = format!(
        "driver: http\nhttp:\n  baseUrl: {}/compute/v2.1\n  auth: {{type: bearer}}\n  requests:\n  - {{path: servers/detail, items: servers, pagination: {{next: servers_links}}, table: vms, columns: [{{name: id, path: id}}]}}\n",
        cloud.url
    );
    let spec: DatasourceSpec = serde_norway::from_str(&yaml).unwrap();
    let d = driver(&spec, &Credentials::from_strings([("token".to_string(), "tok-1".to_string())]));
    let sink = EngineSink::new("api", spec.schema(), &read_all("api", &spec));
    let e = poll_once(&d, "api", &sink, &mut PollState::default()).await.expect_err("a foreign next link");
    assert_eq!(e.reason(), "WrongShape", "{e}");
    assert!(e.to_string().contains("attacker.invalid") && e.to_string().contains("is not on http://127.0.0.1"), "{e}");
    assert!(sink.rows("api", "vms").is_empty(), "nothing of the poll is committed");
    assert_eq!(cloud.state().requests.len(), 1, "the second page was never asked for");

    // A next link back to the page itself: the poll fails at once instead of looping.
    cloud.set_fault("compute", Some(Fault::LoopingNextLink));
    let e = poll_once(&d, "api", &sink, &mut PollState::default()).await.expect_err("a looping next link");
    assert!(e.to_string().contains("link back"), "{e}");
    assert_eq!(cloud.state().requests.len(), 3, "two requests: the page, and the page again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_from_the_secret() {
    let (cloud, ca) = FakeCloud::start_tls(small_cloud(2), TokenCheck::Bearer("tok-tls".into()), "p1").await;
    let yaml = format!(
        "driver: http\nhttp:\n  baseUrl: {}/compute/v2.1\n  auth: {{type: bearer}}\n  requests:\n  - {{path: servers/detail, items: servers, table: vms, columns: [{{name: id, path: id}}]}}\n",
        cloud.url
    );
    let spec: DatasourceSpec = serde_norway::from_str(&yaml).unwrap();
    let sink = EngineSink::new("api", spec.schema(), &read_all("api", &spec));
    // Without the CA: the certificate is not trusted, the poll fails and says so.
    let token = ("token".to_string(), "tok-tls".to_string());
    let d = driver(&spec, &Credentials::from_strings([token.clone()]));
    let e = poll_once(&d, "api", &sink, &mut PollState::default()).await.expect_err("an untrusted certificate");
    assert_eq!(e.reason(), "ConnectionFailed", "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // With the Secret's `ca.crt`: trusted.
    let d = driver(&spec, &Credentials::from_strings([token.clone(), ("ca.crt".to_string(), ca)]));
    poll_once(&d, "api", &sink, &mut PollState::default()).await.expect("a poll over TLS");
    assert_eq!(sink.rows("api", "vms").len(), 2);
    // A `ca.crt` that is not PEM: the driver does not start, and says why.
    let source = spec.http_source().unwrap().unwrap();
    let bad = Credentials::from_strings([token, ("ca.crt".to_string(), "not a certificate".to_string())]);
    let e = HttpDriver::new(&source, &spec.config, &bad).unwrap_err();
    assert!(e.to_string().contains("`ca.crt`"), "{e}");
}
