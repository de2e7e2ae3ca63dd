//! The `http` executor against real parts: a real Keystone (tokens, catalog, another user's
//! credentials in `os.auth`) and the fake nova/neutron on 127.0.0.1, which answers actions as
//! the real APIs do and records every request with its headers. Covers the shipped nova and
//! neutronv2 actions, a generic webhook, dry runs, faults, hostile arguments, and that no
//! secret reaches an error, an outcome or a Debug output.

#[path = "support/keystone.rs"]
mod keystone;
#[path = "support/openstack.rs"]
mod openstack;

use congress_drivers::credentials::{Credentials, SecretValue};
use congress_drivers::execute::{ActionCall, ExecContext, ExecError, Executor};
use congress_drivers::http::{HttpDriver, PollState};
use congress_drivers::http_actions::HttpExecutor;
use congress_engine::Value as Cell;
use congress_model::resources::{DatasourceSpec, HttpSource};
use keystone::{ADMIN_PASSWORD, Keystone, region};
use openstack::{ActionSeen, FakeCloud, Fault, TokenCheck, small_cloud};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Secret values the tests use: none may appear in an error, an outcome or a Debug output.
const CANARIES: &[&str] = &[
    "canary-corr-77",
    "canary-os-1",
    "canary-os-2",
    "canary-os-3",
    "canary-hdr-4",
    "canary-bearer-9",
    "canary-pw-actor",
    "canary-pw-nobody",
];

fn clean(text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "`{c}` leaked: {text}");
    }
}

/// An error, checked for secrets in its message and its Debug output.
fn checked(e: ExecError) -> ExecError {
    clean(&format!("{e} {e:?}"));
    e
}

fn call(action: &str, positional: &[&str]) -> ActionCall {
    ActionCall {
        action: action.into(),
        positional: positional.iter().map(|a| json!(a)).collect(),
        ..Default::default()
    }
}

fn context(pairs: &[(&str, &str)]) -> ExecContext {
    ExecContext::new(pairs.iter().map(|(k, v)| (k.to_string(), SecretValue::new(*v))).collect())
}

fn with(mut c: ActionCall, ctx: ExecContext) -> ActionCall {
    c.context = ctx;
    c
}

async fn run(exec: &HttpExecutor, c: ActionCall) -> Result<String, ExecError> {
    match exec.execute(c).await {
        Ok(outcome) => {
            clean(&format!("{outcome:?}"));
            Ok(outcome.summary)
        }
        Err(e) => Err(checked(e)),
    }
}

/// A shipped configuration pointed at `url`, without auth, 1 s timeout.
fn preset_at(driver: &str, url: &str) -> HttpSource {
    let mut source: HttpSource = congress_model::resources::http::preset(driver).unwrap().unwrap();
    source.catalog = None;
    source.auth = Default::default();
    source.base_url = Some(url.to_string());
    source.timeout_seconds = Some(1);
    source
}

fn executor(source: &HttpSource, config: &[(&str, &str)], credentials: &Credentials, name: &str) -> HttpExecutor {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let exec = HttpExecutor::new(source, &config, credentials).expect("the executor starts").with_name(name);
    clean(&format!("{exec:?}"));
    exec
}

fn password(user: &str, password: &str) -> Credentials {
    Credentials::from_strings([
        ("username".to_string(), user.to_string()),
        ("password".to_string(), password.to_string()),
    ])
}

fn actions(cloud: &FakeCloud) -> Vec<ActionSeen> {
    cloud.state().actions.clone()
}

/// The rows of `table` after one full poll of `source`.
async fn poll(source: &HttpSource, table: &str) -> Vec<Vec<Cell>> {
    let driver = HttpDriver::new(source, &BTreeMap::new(), &Credentials::default()).expect("the driver starts");
    let mut state = PollState::default();
    let pending = driver.poll(&|_| true, &state).await.expect("a poll");
    state.commit(pending);
    driver.rows(&state).into_iter().find(|(t, _)| t == table).map(|(_, rows)| rows).unwrap_or_default()
}

fn status_of(rows: &[Vec<Cell>], id: &str) -> Option<Cell> {
    rows.iter().find(|r| r[0] == Cell::str(id)).map(|r| r[3].clone())
}

// ---- With a real Keystone ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_through_keystone_reaches_nova_once_with_the_context_header_and_pausing_again_succeeds() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(small_cloud(2), check, "p1").await;
    let region = region("act-pause");
    ks.register(&region, &cloud.endpoints()).await;
    let nova = congress_model::resources::http::preset("nova").unwrap().unwrap();
    let config = [("auth_url", ks.url.as_str()), ("region", region.as_str()), ("project_name", "admin")];
    let exec = executor(&nova, &config, &password("admin", ADMIN_PASSWORD), "nova");

    // A dry run resolves the token and the catalog endpoint, and sends nothing.
    let mut dry = call("servers.pause", &["srv-000000"]);
    dry.dry_run = true;
    assert_eq!(run(&exec, dry.clone()).await.unwrap(), "dry run: would POST servers/srv-000000/action");
    assert!(actions(&cloud).is_empty());
    let nowhere = [("auth_url", ks.url.as_str()), ("region", "nowhere"), ("project_name", "admin")];
    let lost = executor(&nova, &nowhere, &password("admin", ADMIN_PASSWORD), "nova");
    let e = run(&lost, dry).await.expect_err("no compute endpoint in region `nowhere`");
    assert!(matches!(e, ExecError::Unavailable(_)) && e.to_string().contains("`nowhere`"), "{e}");

    let pause = with(call("servers.pause", &["srv-000000"]), context(&[("header.X-Correlation-ID", "canary-corr-77")]));
    let summary = run(&exec, pause.clone()).await.expect("paused");
    assert_eq!(summary, "POST servers/srv-000000/action: 202 Accepted");
    let seen = actions(&cloud);
    assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "compute/v2.1/servers/srv-000000/action");
    assert_eq!(seen[0].body, json!({"pause": null}));
    assert_eq!(seen[0].header("X-Correlation-ID"), Some("canary-corr-77"));
    assert_eq!(seen[0].header("X-OpenStack-Nova-API-Version"), Some("2.26"));
    let token = seen[0].header("x-auth-token").expect("a token").to_string();
    assert_eq!(cloud.state().object("compute/servers/detail", "srv-000000")["status"], "PAUSED");

    // Pausing a paused server: nova says 409, which is success.
    let again = run(&exec, pause.clone()).await.expect("already paused");
    assert_eq!(again, "POST servers/srv-000000/action: 409 Conflict (already in that state)");
    assert_eq!(actions(&cloud).len(), 2);
    assert_eq!(actions(&cloud)[1].header("x-auth-token"), Some(token.as_str()), "the token is reused");

    // A token the service forgot: one fresh token, and the call goes through.
    cloud.set_fault("compute", Some(Fault::Unauthorized(1)));
    run(&exec, call("servers.unpause", &["srv-000000"])).await.expect("after one fresh token");
    let seen = actions(&cloud);
    assert_eq!(seen.len(), 4, "the refused request and its one retry");
    assert_ne!(seen[3].header("x-auth-token"), Some(token.as_str()));
    assert_eq!(cloud.state().object("compute/servers/detail", "srv-000000")["status"], "ACTIVE");
    // A service that keeps saying 401: one fresh token, then Unauthorized.
    cloud.set_fault("compute", Some(Fault::Unauthorized(2)));
    let e = run(&exec, call("servers.stop", &["srv-000001"])).await.expect_err("401 twice");
    assert!(matches!(e, ExecError::Unauthorized(_)) && !e.retryable(), "{e}");
    assert!(e.to_string().contains("after a fresh token"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_auth_replaces_the_credentials_for_one_call_only() {
    let Some(ks) = Keystone::start_or_skip().await else { return };
    let check = TokenCheck::Keystone { url: ks.url.clone(), admin_password: ADMIN_PASSWORD.into() };
    let cloud = FakeCloud::start(small_cloud(1), check, "p1").await;
    let region = region("act-os-auth");
    ks.register(&region, &cloud.endpoints()).await;
    let actor = region.clone();
    ks.user(&actor, "canary-pw-actor").await;
    let nova = congress_model::resources::http::preset("nova").unwrap().unwrap();
    let config = [("auth_url", ks.url.as_str()), ("region", region.as_str()), ("project_name", "admin")];
    let exec = executor(&nova, &config, &password("admin", ADMIN_PASSWORD), "nova");
    let token_of = |i: usize| actions(&cloud)[i].header("x-auth-token").map(str::to_string).expect("a token");

    run(&exec, call("servers.lock", &["srv-000000"])).await.expect("the driver's credentials");
    let own = token_of(0);
    let auth = json!({"username": actor, "password": "canary-pw-actor", "project_name": "admin"}).to_string();
    let as_actor = with(call("servers.unlock", &["srv-000000"]), context(&[("os.auth", &auth)]));
    run(&exec, as_actor).await.expect("the actor's credentials");
    let actors = token_of(1);
    assert_ne!(actors, own, "os.auth's token");
    run(&exec, call("servers.lock", &["srv-000000"])).await.expect("the driver's again");
    assert_eq!(token_of(2), own, "os.auth is for one call only");

    // A ready token: sent as it is (Keystone gives its catalog).
    let ready = ks.token(&actor, "canary-pw-actor", "admin").await.expect("the actor's token");
    let auth = json!({"token": ready}).to_string();
    run(&exec, with(call("servers.unlock", &["srv-000000"]), context(&[("os.auth", &auth)]))).await.expect("a token");
    assert_eq!(token_of(3), ready);
    assert_eq!(cloud.state().object("compute/servers/detail", "srv-000000")["locked"], false);

    // Credentials Keystone refuses: Unauthorized, nothing sent, the password nowhere.
    let auth = json!({"username": keystone::region("nobody"), "password": "canary-pw-nobody"}).to_string();
    let e = run(&exec, with(call("servers.lock", &["srv-000000"]), context(&[("os.auth", &auth)])))
        .await
        .expect_err("an unknown user");
    assert!(matches!(e, ExecError::Unauthorized(_)), "{e}");
    assert!(e.to_string().contains("os.auth") && e.to_string().contains("401"), "{e}");
    assert_eq!(actions(&cloud).len(), 4);
}

// ---- Without Keystone ----

#[tokio::test]
async fn every_nova_action_sends_the_documented_request_and_the_next_poll_sees_it() {
    let cloud = FakeCloud::start(small_cloud(3), TokenCheck::None, "p1").await;
    let nova = preset_at("nova", &format!("{}/compute/v2.1", cloud.url));
    let exec = executor(&nova, &[], &Credentials::default(), "nova");
    let expect = [
        ("servers.pause", "srv-000000", json!({"pause": null}), "PAUSED"),
        ("servers.unpause", "srv-000000", json!({"unpause": null}), "ACTIVE"),
        ("servers.stop", "srv-000000", json!({"os-stop": null}), "SHUTOFF"),
        ("servers.start", "srv-000000", json!({"os-start": null}), "ACTIVE"),
        ("servers.suspend", "srv-000001", json!({"suspend": null}), "SUSPENDED"),
        ("servers.resume", "srv-000001", json!({"resume": null}), "ACTIVE"),
        ("servers.lock", "srv-000001", json!({"lock": null}), "ACTIVE"),
        ("servers.unlock", "srv-000001", json!({"unlock": null}), "ACTIVE"),
        // Congress's generic form: servers.ACTION(id) posts {"ACTION": null}.
        ("servers.reboot", "srv-000002", json!({"reboot": null}), "ACTIVE"),
    ];
    for (i, (action, server, body, status)) in expect.iter().enumerate() {
        let summary = run(&exec, call(action, &[server])).await.unwrap_or_else(|e| panic!("{action}: {e}"));
        assert_eq!(summary, format!("POST servers/{server}/action: 202 Accepted"));
        let seen = &actions(&cloud)[i];
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", format!("compute/v2.1/servers/{server}/action").as_str())
        );
        assert_eq!(&seen.body, body, "{action}");
        assert_eq!(status_of(&poll(&nova, "servers").await, server), Some(Cell::str(status)), "{action}");
    }
    // Every state action is idempotent; the generic family is not (a 409 is a refusal).
    run(&exec, call("servers.pause", &["srv-000002"])).await.expect("paused");
    let e = run(&exec, call("servers.reboot", &["srv-000002"])).await.expect_err("nova refuses");
    assert!(matches!(e, ExecError::Refused { status: 409, .. }) && !e.retryable(), "{e}");
    assert!(e.to_string().contains("Cannot 'reboot' instance srv-000002 while it is in vm_state paused"), "{e}");

    for action in ["servers.set_meta", "servers_set_meta"] {
        let summary = run(&exec, call(action, &["srv-000001", "owner", action])).await.expect("metadata");
        assert_eq!(summary, "POST servers/srv-000001/metadata: 200 OK");
        assert_eq!(actions(&cloud).last().unwrap().body, json!({"metadata": {"owner": action}}));
    }
    assert_eq!(cloud.state().object("compute/servers/detail", "srv-000001")["metadata"]["owner"], "servers_set_meta");

    let summary = run(&exec, call("servers.delete", &["srv-000002"])).await.expect("deleted");
    assert_eq!(summary, "DELETE servers/srv-000002: 204 No Content");
    let last = actions(&cloud).last().cloned().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), &last.body),
        ("DELETE", "compute/v2.1/servers/srv-000002", &Value::Null)
    );
    assert_eq!(status_of(&poll(&nova, "servers").await, "srv-000002"), None);

    // A dry run sends nothing.
    let before = actions(&cloud).len();
    for action in ["servers.delete", "servers.pause", "servers.reboot"] {
        let mut dry = call(action, &["srv-000000"]);
        dry.dry_run = true;
        assert!(run(&exec, dry).await.expect("a dry run").starts_with("dry run: would "), "{action}");
    }
    assert_eq!(actions(&cloud).len(), before);
    assert_eq!(status_of(&poll(&nova, "servers").await, "srv-000000"), Some(Cell::str("ACTIVE")));
}

#[tokio::test]
async fn unknown_actions_and_bad_arguments_fail_before_any_request() {
    let cloud = FakeCloud::start(small_cloud(1), TokenCheck::None, "p1").await;
    let exec =
        executor(&preset_at("nova", &format!("{}/compute/v2.1", cloud.url)), &[], &Credentials::default(), "nova");
    let offered: Vec<String> = exec.actions().into_iter().map(|a| a.name).collect();
    for name in ["servers.pause", "servers.stop", "servers_set_meta", "servers.delete", "servers.*"] {
        assert!(offered.iter().any(|o| o == name), "{name} in {offered:?}");
    }
    assert!(exec.offers("servers.pause") && exec.offers("servers.rebuild"));
    assert!(!exec.offers("flavors.delete") && !exec.offers("servers."));
    let e = run(&exec, call("flavors.delete", &["m1"])).await.expect_err("not offered");
    assert!(matches!(&e, ExecError::UnknownAction { service, .. } if service == "nova"), "{e}");

    for (c, why) in [
        (call("servers.pause", &[]), "takes 1 argument (server), got 0"),
        (call("servers.pause", &["a", "b"]), "got 2"),
        (call("servers.set_meta", &["srv-000000", "k"]), "takes 3 arguments (server, key, value)"),
        (call("servers.pause", &[".."]), "cannot be part of a path"),
        (call("servers.pause", &[""]), "cannot be part of a path"),
        (call("servers.x/../y", &["srv-000000"]), "is not an action name"),
    ] {
        let e = run(&exec, c).await.expect_err(why);
        assert!(matches!(e, ExecError::BadArguments { .. }) && !e.retryable(), "{e}");
        assert!(e.to_string().contains(why), "{e} (expected {why})");
    }
    let mut object = call("servers.pause", &[]);
    object.positional = vec![json!({"id": "srv-000000"})];
    assert!(run(&exec, object).await.expect_err("an object").to_string().contains("is an object"));
    assert!(actions(&cloud).is_empty(), "no request was sent");
}

#[tokio::test]
async fn bad_context_is_refused_by_key_without_its_value_and_before_any_request() {
    let cloud = FakeCloud::start(small_cloud(1), TokenCheck::None, "p1").await;
    let exec =
        executor(&preset_at("nova", &format!("{}/compute/v2.1", cloud.url)), &[], &Credentials::default(), "nova");
    let pause = || call("servers.pause", &["srv-000000"]);
    for (key, value, why) in [
        ("os.auth", "not json canary-os-1", "not a JSON object"),
        ("os.auth", r#"{"username": "u", "password": "canary-os-2"}"#, "no `auth_url`"),
        ("os.auth", r#"{"auth_url": "http://127.0.0.1:1/v3", "username": "u"}"#, "`password`"),
        ("os.auth", r#"{"auth_url": "http://u:canary-os-3@h/v3", "username": "u", "password": "p"}"#, "user info"),
        ("os.auth", r#"{"canary-os-1": "x"}"#, "a key is not one of"),
        ("os.auth", r#"{"password": ["canary-os-2"]}"#, "`password` is not a string"),
        ("os.auth", r#"{"token": "canary-os-3", "username": "u"}"#, "alone"),
        ("header.Bad Name", "canary-hdr-4", "not a valid header name"),
        ("header.X-Note", "canary-hdr-4\nInjected: yes", "not a valid header value"),
        ("header.Authorization", "Bearer canary-hdr-4", "set by the driver"),
        ("header.X-Auth-Token", "canary-hdr-4", "set by the driver"),
    ] {
        let e = run(&exec, with(pause(), context(&[(key, value)]))).await.expect_err(why);
        let ExecError::BadContext { key: k, message } = &e else { panic!("{key}: {e}") };
        assert_eq!(k, key);
        assert!(message.contains(why), "{key}: {message} (expected {why})");
        assert!(!e.retryable());
    }
    // A ready token with a fixed base URL is sent as it is; other context keys are ignored.
    let ctx = context(&[("os.auth", r#"{"token": "canary-os-3"}"#), ("other", "x")]);
    run(&exec, with(pause(), ctx)).await.expect("a ready token");
    let seen = actions(&cloud);
    assert_eq!(seen.len(), 1, "only the last call was sent");
    assert_eq!(seen[0].header("x-auth-token"), Some("canary-os-3"));
    assert_eq!(seen[0].header("other"), None);
}

#[tokio::test]
async fn refusals_are_final_and_server_failures_and_timeouts_are_transient() {
    let cloud = FakeCloud::start(small_cloud(1), TokenCheck::None, "p1").await;
    let exec =
        executor(&preset_at("nova", &format!("{}/compute/v2.1", cloud.url)), &[], &Credentials::default(), "nova");
    let pause = || call("servers.pause", &["srv-000000"]);

    let e = run(&exec, call("servers.pause", &["nope"])).await.expect_err("no such server");
    assert!(matches!(e, ExecError::Refused { status: 404, .. }) && !e.retryable(), "{e}");
    assert_eq!(
        e.to_string(),
        "POST servers/nope/action: the service refused it (404): Instance nope could not be found."
    );

    for (code, reason) in [
        (503, "Transient"),
        (500, "Transient"),
        (429, "Transient"),
        (408, "Transient"),
        (403, "Unauthorized"),
        (400, "Refused"),
    ] {
        cloud.set_fault("compute", Some(Fault::Status(code)));
        let e = run(&exec, pause()).await.expect_err("a fault");
        assert_eq!(e.reason(), reason, "{code}: {e}");
        assert_eq!(e.retryable(), reason == "Transient", "{code}");
        assert!(e.to_string().contains("injected"), "the service's message: {e}");
    }
    cloud.set_fault("compute", Some(Fault::Slow(Duration::from_secs(3))));
    let e = run(&exec, pause()).await.expect_err("a timeout");
    assert!(matches!(e, ExecError::Transient { .. }) && e.retryable(), "{e}");
    assert!(e.to_string().contains("no answer within 1 s"), "{e}");
    cloud.set_fault("compute", None);

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone =
        executor(&preset_at("nova", &format!("http://{closed}/compute/v2.1")), &[], &Credentials::default(), "nova");
    let e = run(&gone, pause()).await.expect_err("connection refused");
    assert!(matches!(e, ExecError::Transient { .. }) && e.retryable(), "{e}");

    // After the faults the server is still ACTIVE: no faulty call paused it.
    run(&exec, pause()).await.expect("paused at last");
}

#[tokio::test]
async fn neutron_security_groups_are_read_modified_and_written_only_when_they_change() {
    let cloud = FakeCloud::start(small_cloud(2), TokenCheck::None, "p1").await;
    let neutron = preset_at("neutronv2", &format!("{}/network", cloud.url));
    let exec = executor(&neutron, &[], &Credentials::default(), "neutronv2");
    let gets =
        |c: &FakeCloud| c.state().requests.iter().filter(|r| r.starts_with("network v2.0/ports/port-000000")).count();
    let groups = |c: &FakeCloud| c.state().object("network/v2.0/ports", "port-000000")["security_groups"].clone();

    let summary = run(&exec, call("attach_port_security_group", &["port-000000", "sg-web"])).await.expect("attached");
    assert_eq!(summary, "PUT v2.0/ports/port-000000: 200 OK");
    assert_eq!(gets(&cloud), 1);
    let seen = actions(&cloud);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("PUT", "network/v2.0/ports/port-000000"));
    assert_eq!(seen[0].body, json!({"port": {"security_groups": ["sg-default", "sg-web"]}}));
    assert_eq!(groups(&cloud), json!(["sg-default", "sg-web"]));

    // Attaching an attached group reads, and writes nothing.
    let summary = run(&exec, call("attach_port_security_group", &["port-000000", "sg-web"])).await.expect("again");
    assert_eq!(summary, "GET v2.0/ports/port-000000: sg-web already in port.security_groups, nothing to change");
    assert_eq!((gets(&cloud), actions(&cloud).len()), (2, 1));

    run(&exec, call("detach_port_security_group", &["port-000000", "sg-default"])).await.expect("detached");
    assert_eq!(actions(&cloud)[1].body, json!({"port": {"security_groups": ["sg-web"]}}));
    let summary = run(&exec, call("detach_port_security_group", &["port-000000", "sg-default"])).await.expect("again");
    assert!(summary.ends_with("sg-default not in port.security_groups, nothing to change"), "{summary}");
    assert_eq!(actions(&cloud).len(), 2);
    let bindings = poll(&neutron, "security_group_port_bindings").await;
    let of_port: Vec<_> = bindings.iter().filter(|r| r[0] == Cell::str("port-000000")).collect();
    assert_eq!(of_port, vec![&vec![Cell::str("port-000000"), Cell::str("sg-web")]]);

    // A dry run neither reads nor writes.
    let mut dry = call("attach_port_security_group", &["port-000000", "sg-x"]);
    dry.dry_run = true;
    let summary = run(&exec, dry).await.expect("a dry run");
    assert_eq!(
        summary,
        "dry run: would GET v2.0/ports/port-000000 and PUT it back, adding sg-x to port.security_groups"
    );
    assert_eq!((gets(&cloud), actions(&cloud).len()), (4, 2));

    let e = run(&exec, call("attach_port_security_group", &["port-nope", "sg-web"])).await.expect_err("no port");
    assert!(matches!(e, ExecError::Refused { status: 404, .. }), "{e}");
    assert!(e.to_string().starts_with("GET v2.0/ports/port-nope"), "{e}");

    // update_port: the body as JSON text (a Datalog rule passes strings) or as an object.
    let body = r#"{"port": {"admin_state_up": false, "name": "quarantined"}}"#;
    run(&exec, call("update_port", &["port-000001", body])).await.expect("updated");
    assert_eq!(actions(&cloud)[2].body, json!({"port": {"admin_state_up": false, "name": "quarantined"}}));
    let ports = poll(&neutron, "ports").await;
    let port = ports.iter().find(|r| r[0] == Cell::str("port-000001")).expect("the port");
    assert_eq!((port[2].clone(), port[5].clone()), (Cell::str("quarantined"), Cell::str("False")));
    let e = run(&exec, call("update_port", &["port-000001", "admin_state_up: false"])).await.expect_err("not JSON");
    assert!(matches!(e, ExecError::BadArguments { .. }) && e.to_string().contains("not JSON"), "{e}");
    assert_eq!(actions(&cloud).len(), 3);

    // create_security_group (the security-zone library policy's action): the body as JSON text.
    let body = r#"{"security_group": {"name": "production_zone", "project_id": "admin-id"}}"#;
    let summary = run(&exec, call("create_security_group", &[body])).await.expect("created");
    assert_eq!(summary, "POST v2.0/security-groups: 201 Created");
    assert_eq!(
        actions(&cloud)[3].body,
        json!({"security_group": {"name": "production_zone", "project_id": "admin-id"}})
    );
    let groups = poll(&neutron, "security_groups").await;
    assert!(groups.iter().any(|r| r.contains(&Cell::str("production_zone"))), "{groups:?}");
}

const WEBHOOK: &str = r#"
driver: http
http:
  baseUrl: URL/hooks/v1
  auth: {type: bearer}
  headers: {X-Source: congress}
  actions:
  - name: notify
    path: alerts/{0}
    query: {severity: "{level}"}
    body: {text: "server {0} violates {1}", server: "{0}", labels: {"{1}": true}, count: "{count}"}
    args: [server, rule]
    description: Tell the on-call channel
  - name: elsewhere
    path: http://attacker.invalid/x
  - name: same_origin
    method: PUT
    path: URL/hooks/other/{0}
    args: [id]
"#;

#[tokio::test]
async fn a_generic_webhook_with_bearer_auth_and_a_body_template_that_arguments_cannot_reshape() {
    let cloud = FakeCloud::start(small_cloud(0), TokenCheck::Bearer("canary-bearer-9".into()), "p1").await;
    let spec: DatasourceSpec = serde_norway::from_str(&WEBHOOK.replace("URL", &cloud.url)).expect("a Datasource spec");
    let source = spec.http_source().expect("valid").expect("an http driver");
    let token = Credentials::from_strings([("token".to_string(), "canary-bearer-9".to_string())]);
    let exec = executor(&source, &[], &token, "alerts");
    let info = exec.actions().into_iter().find(|a| a.name == "notify").expect("notify");
    assert_eq!(
        (info.args, info.description.as_str()),
        (vec!["server".to_string(), "rule".to_string()], "Tell the on-call channel")
    );

    let mut notify = call("notify", &["vm1", "no-public-ip"]);
    notify.named = BTreeMap::from([("level".to_string(), json!("high")), ("count".to_string(), json!(3))]);
    assert_eq!(run(&exec, notify.clone()).await.expect("sent"), "POST alerts/vm1: 200 OK");
    let seen = &actions(&cloud)[0];
    assert_eq!(seen.path, "hooks/v1/alerts/vm1");
    assert_eq!(seen.query.as_deref(), Some("severity=high"));
    assert_eq!(
        seen.body,
        json!({"text": "server vm1 violates no-public-ip", "server": "vm1", "labels": {"no-public-ip": true}, "count": 3})
    );
    assert_eq!(seen.header("authorization"), Some("Bearer canary-bearer-9"));
    assert_eq!(seen.header("x-source"), Some("congress"));
    assert_eq!(seen.header("content-type"), Some("application/json"));

    // A hostile argument stays one path segment and one JSON string.
    let hostile = r#"x"}, "evil": {"a": "/../../admin?severity=none#f"#;
    let mut attack = call("notify", &[hostile, hostile]);
    attack.named = BTreeMap::from([("level".to_string(), json!("low&admin=1")), ("count".to_string(), json!(1))]);
    run(&exec, attack).await.expect("sent, harmlessly");
    let seen = &actions(&cloud)[1];
    let segments: Vec<&str> = seen.path.split('/').collect();
    assert_eq!(segments.len(), 4, "{}", seen.path);
    assert_eq!(&segments[..3], ["hooks", "v1", "alerts"]);
    assert!(!segments[3].contains(['"', '?', '#', ' ']), "{}", seen.path);
    assert_eq!(seen.query.as_deref(), Some("severity=low%26admin%3D1"));
    let body = seen.body.as_object().expect("an object");
    assert_eq!(body.len(), 4, "the same keys: {body:?}");
    assert_eq!(body["server"], json!(hostile));
    assert_eq!(body["labels"], json!({ hostile: true }));
    assert_eq!(body["text"], json!(format!("server {hostile} violates {hostile}")));

    // Absolute URLs stay on the service's origin.
    let e = run(&exec, call("elsewhere", &[])).await.expect_err("another host");
    assert!(matches!(e, ExecError::BadArguments { .. }) && e.to_string().contains("is not on"), "{e}");
    assert_eq!(run(&exec, call("same_origin", &["7"])).await.expect("same origin"), "PUT /hooks/other/7: 200 OK");
    assert_eq!(actions(&cloud).len(), 3);

    // A wrong token: Unauthorized, and the service's answer is the only message.
    let wrong = Credentials::from_strings([("token".to_string(), "canary-os-1".to_string())]);
    let e = run(&executor(&source, &[], &wrong, "alerts"), notify).await.expect_err("a wrong token");
    assert!(matches!(e, ExecError::Unauthorized(_)) && !e.retryable(), "{e}");
    assert!(e.to_string().contains("HTTP 401: The request you have made requires authentication."), "{e}");
}
