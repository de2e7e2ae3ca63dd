//! `congress serve` as its users meet it: the real python-congressclient and `openstack
//! congress` against it, its database across restarts and a kill, its answers to bad input,
//! and the history of violations.

#[path = "support/keystone.rs"]
mod keystone;
#[path = "support/openstack.rs"]
mod openstack;
#[path = "support/serve.rs"]
mod serve;

use serde_json::{Value, json};
use serve::Server;
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = client().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(url: String) -> (u16, Value) {
    send(reqwest::Method::GET, url, None).await
}

async fn post(url: String, body: Value) -> (u16, Value) {
    send(reqwest::Method::POST, url, Some(body)).await
}

/// A Congress error body with this status and a message containing `part`.
fn assert_error(got: &(u16, Value), status: u16, part: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    let e = &got.1["error"];
    assert!(e["message"].as_str().is_some_and(|m| m.contains(part)), "wanted `{part}` in {e}");
    assert!(e.get("error_code").is_some() && e.get("error_data").is_some(), "{e}");
}

#[test]
fn the_real_python_clients_work_without_auth() {
    let Some(venv) = serve::venv_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let server = Server::start(&["--no-auth", "--db", db.to_str().unwrap()]);
    let (ok, out) = serve::run_client_checks(&venv, &server.url, &["none"]);
    assert!(ok, "client checks failed:\n{out}\nserver log:\n{}", server.log());
    assert!(out.contains("all client checks passed"), "{out}");
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let out = std::process::Command::new(serve::binary())
        .args(["serve", "--no-auth", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only allowed on a loopback address"), "{err}");
    let out = std::process::Command::new(serve::binary()).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose how callers are checked"));
}

#[test]
fn bad_files_are_refused_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: bad\nspec:\n  rules:\n    - rule: p(x) :- q(x\n",
    )
    .unwrap();
    let out = std::process::Command::new(serve::binary())
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:7:"), "{err}");
}

#[tokio::test]
async fn bad_requests_get_congress_errors_and_change_nothing() {
    let s = Server::start(&["--no-auth", "--max-body-bytes", "2000"]);
    let u = &s.url;
    assert_error(&post(format!("{u}/v1/policies"), json!({"name": "p", "rulez": []})).await, 400, "rulez");
    let (status, body) = {
        let r = client().post(format!("{u}/v1/policies")).body("{not json").send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 400);
    assert_eq!(body["error"]["error_data"]["line"], 1, "{body}");
    let big = json!({"name": "big", "description": "x".repeat(5000)});
    assert_error(&post(format!("{u}/v1/policies"), big).await, 413, "too large");
    assert_error(&get(format!("{u}/v1/policies/nobody")).await, 404, "nobody");
    assert_error(&get(format!("{u}/v1/policies/nobody/rules")).await, 404, "nobody");
    assert_error(&get(format!("{u}/v1/data-sources/nothing/status")).await, 404, "nothing");
    assert_error(&send(reqwest::Method::PUT, format!("{u}/v1/policies"), None).await, 501, "not supported");
    // A rule that does not parse: where and why; the policy is not created.
    let bad = json!({"name": "p", "rules": [{"rule": "ok(1)"}, {"rule": "error(x) :- ok(x), "}]});
    let got = post(format!("{u}/v1/policies"), bad).await;
    assert_error(&got, 400, "rules[1] 1:");
    assert_eq!(got.1["error"]["error_code"], 1002);
    assert_error(&get(format!("{u}/v1/policies/p")).await, 404, "p");
    // Unsafe rules (analysis) are refused too.
    let unsafe_rule = json!({"name": "p", "rules": [{"rule": "error(x) :- not q(x)"}]});
    assert_error(&post(format!("{u}/v1/policies"), unsafe_rule).await, 400, "rules[0]");
    // Simulate without its parameters, or with a bad sequence.
    let (_, created) = post(format!("{u}/v1/policies"), json!({"name": "p", "rules": [{"rule": "q(1)"}]})).await;
    assert_eq!(created["name"], "p");
    assert_error(&post(format!("{u}/v1/policies/p?action=simulate"), json!({"query": "q(x)"})).await, 400, "requires");
    let seq = json!({"query": "q(x)", "sequence": "q(((", "action_policy": "action"});
    assert_error(&post(format!("{u}/v1/policies/p?action=simulate"), seq).await, 400, "");
    // Hostile names and paths.
    assert_error(&post(format!("{u}/v1/policies"), json!({"name": "../etc"})).await, 400, "name");
    assert_eq!(get(format!("{u}/ui/..%2f..%2fCargo.toml")).await.0, 404);
    // The deletion of Congress's own policies is refused.
    assert_error(&send(reqwest::Method::DELETE, format!("{u}/v1/policies/action"), None).await, 400, "system");
    // The server still works.
    assert_eq!(get(format!("{u}/v1/policies/p/tables/q/rows")).await.1["results"], json!([{"data": [1]}]));
}

#[tokio::test]
async fn state_survives_a_restart_and_the_library_is_initialised_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::write(
        lib.join("one.yaml"),
        "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata:\n  name: one\nspec:\n  rules:\n    - rule: error(x) :- flagged(x)\n",
    )
    .unwrap();
    let args = ["--no-auth", "--db", db.to_str().unwrap(), "--library", lib.to_str().unwrap()];
    let s = Server::start(&args);
    let u = s.url.clone();
    let names = |v: &Value| -> Vec<String> {
        v["results"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&get(format!("{u}/v1/librarypolicies")).await.1), ["one"]);
    assert_eq!(post(format!("{u}/v1/policies"), json!({"name": "keep", "rules": [{"rule": "p(1)"}]})).await.0, 201);
    let ds = json!({"name": "inv", "driver": "push", "tables": [{"name": "t", "columns": ["x"]}]});
    assert_eq!(post(format!("{u}/v1/data-sources"), ds).await.0, 201);
    let put = client().put(format!("{u}/v1/data-sources/inv/tables/t/rows")).json(&json!([[1], [2]])).send().await;
    assert_eq!(put.unwrap().status().as_u16(), 200);
    assert_eq!(post(format!("{u}/v1/policies/keep/rules"), json!({"rule": "error(x) :- inv:t(x)"})).await.0, 201);
    assert_eq!(send(reqwest::Method::DELETE, format!("{u}/v1/librarypolicies/one"), None).await.0, 200);
    s.kill();
    let s = Server::start(&args);
    let u = s.url.clone();
    assert!(names(&get(format!("{u}/v1/librarypolicies")).await.1).is_empty(), "the library is not re-initialised");
    let rows = get(format!("{u}/v1/policies/keep/tables/error/rows")).await.1;
    assert_eq!(rows["results"], json!([{"data": [1]}, {"data": [2]}]), "policy, rules and pushed rows are back");
    assert!(names(&get(format!("{u}/v1/policies")).await.1).contains(&"keep".to_string()));
}

/// Policies are created one after another while the server is killed at some point: every
/// creation acknowledged before the kill is there, whole, after the restart.
#[tokio::test]
async fn a_kill_mid_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let args = ["--no-auth", "--db", db.to_str().unwrap(), "--library", "/nonexistent"];
    let s = Server::start(&args);
    let u = s.url.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for i in 0..100_000 {
                let rules: Vec<Value> = (0..5).map(|j| json!({"rule": format!("p{j}({i})")})).collect();
                match post(format!("{u}/v1/policies"), json!({"name": format!("p{i}"), "rules": rules})).await {
                    (201, _) => acked.lock().unwrap().push(i),
                    _ => break,
                }
            }
        })
    };
    // Kill once a good number is acknowledged, while requests are in flight.
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let acked = acked.lock().unwrap().clone();
    let s = Server::start(&args);
    let u = s.url.clone();
    for i in &acked {
        let (status, rules) = get(format!("{u}/v1/policies/p{i}/rules")).await;
        assert_eq!(status, 200, "acknowledged policy p{i} is lost");
        assert_eq!(rules["results"].as_array().unwrap().len(), 5, "p{i} is not whole: {rules}");
    }
    // The one in flight at the kill is there whole or not at all.
    let next = acked.iter().max().unwrap() + 1;
    let (status, rules) = get(format!("{u}/v1/policies/p{next}/rules")).await;
    assert!(status == 404 || rules["results"].as_array().unwrap().len() == 5, "{status} {rules}");
}

#[tokio::test]
async fn violations_have_a_history_with_causes_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let args = ["--no-auth", "--db", db.to_str().unwrap(), "--library", "/nonexistent"];
    let s = Server::start(&args);
    let u = s.url.clone();
    let ds = json!({"name": "inv", "driver": "push", "tables": [{"name": "hosts", "columns": ["id", "ok"]}]});
    assert_eq!(post(format!("{u}/v1/data-sources"), ds).await.0, 201);
    let p = json!({"name": "audit", "rules": [{"rule": "error(h) :- inv:hosts(h, \"no\")"}]});
    assert_eq!(post(format!("{u}/v1/policies"), p).await.0, 201);
    let push = |rows: Value| {
        let u = u.clone();
        async move {
            let r =
                client().put(format!("{u}/v1/data-sources/inv/tables/hosts/rows")).json(&rows).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    push(json!([["h1", "no"], ["h2", "yes"]])).await;
    push(json!([["h1", "yes"], ["h2", "no"]])).await;
    // The history is written just after the change: wait for it.
    let mut events = Value::Null;
    for _ in 0..100 {
        events = get(format!("{u}/v1/policies/audit/history")).await.1;
        if events["results"].as_array().is_some_and(|a| a.len() >= 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary: Vec<(String, String)> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_str().unwrap().to_string(), e["change"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            ("error(\"h1\")".to_string(), "appeared".to_string()),
            ("error(\"h1\")".to_string(), "cleared".to_string()),
            ("error(\"h2\")".to_string(), "appeared".to_string()),
        ]
    );
    assert!(events["results"][1]["cause"].as_str().unwrap().contains("datasource inv"), "{events}");
    // JSON lines, and a time range that excludes everything.
    let lines = client().get(format!("{u}/v1/policies/audit/history?format=jsonl")).send().await.unwrap();
    assert_eq!(lines.headers()["content-type"], "application/x-ndjson");
    assert_eq!(lines.text().await.unwrap().lines().count(), 3);
    let none = get(format!("{u}/v1/history?policy=audit&until=2000-01-01T00:00:00Z")).await.1;
    assert_eq!(none["results"], json!([]));
    assert_error(&get(format!("{u}/v1/history?since=yesterday")).await, 400, "RFC 3339");
    // First seen survives a restart.
    let first = get(format!("{u}/v1/policies/audit/violations")).await.1["results"][0]["first_seen"].clone();
    assert!(first.is_string(), "{first}");
    s.kill();
    let s = Server::start(&args);
    let again = get(format!("{}/v1/policies/audit/violations", s.url)).await.1;
    assert_eq!(again["results"][0]["first_seen"], first, "{again}");
    assert_eq!(get(format!("{}/v1/policies/audit/history", s.url)).await.1["results"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn violations_page_sort_and_filter_on_the_server() {
    let s = Server::start(&["--no-auth", "-f", "examples/cloud", "--data", "examples/cloud"]);
    let u = &s.url;
    let page = get(format!("{u}/v1/policies/classification/violations?limit=2&order=desc")).await.1;
    assert_eq!(page["total"], 4);
    let rows: Vec<&str> = page["results"].as_array().unwrap().iter().map(|r| r["row"].as_str().unwrap()).collect();
    assert_eq!(rows, ["error(\"vm-8\")", "error(\"vm-4\")"]);
    let page = get(format!("{u}/v1/policies/classification/violations?offset=2&limit=2&order=desc")).await.1;
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    let page = get(format!("{u}/v1/policies/classification/violations?filter=VM-1")).await.1;
    assert_eq!(page["total"], 1, "{page}");
    assert_error(&get(format!("{u}/v1/policies/classification/violations?sort=size")).await, 400, "sort");
    let proof = get(format!("{u}/v1/policies/classification/explain?row=error(%22vm-3%22)")).await.1;
    assert!(proof["proof"]["how"].as_str().unwrap().starts_with("rule:"), "{proof}");
    assert_error(&get(format!("{u}/v1/policies/classification/explain?row=error(%22vm-1%22)")).await, 404, "");
    // The walk-through's reactive policy asks for 4 pauses; the rows from files have no
    // driver, so approving one fails it with the reason; a pending one can be denied.
    let overview = get(format!("{u}/v1/overview")).await.1;
    assert_eq!(overview["datasources"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn action_requests_are_approved_or_denied() {
    let s = Server::start(&["--no-auth", "--manual-approval", "-f", "examples/cloud", "--data", "examples/cloud"]);
    let u = &s.url;
    let list = get(format!("{u}/v1/action-requests")).await.1;
    let pending: Vec<&Value> = list["results"].as_array().unwrap().iter().filter(|a| a["phase"] == "Pending").collect();
    assert_eq!(pending.len(), 4, "{list}");
    let (a, b) = (pending[0]["id"].as_str().unwrap(), pending[1]["id"].as_str().unwrap());
    let denied = post(format!("{u}/v1/action-requests/{a}?action=deny"), json!({})).await;
    assert_eq!(denied.1["phase"], "Denied", "{denied:?}");
    assert_error(&post(format!("{u}/v1/action-requests/{a}?action=approve"), json!({})).await, 409, "finished");
    let approved = post(format!("{u}/v1/action-requests/{b}?action=approve"), json!({})).await.1;
    assert_eq!(approved["phase"], "Failed", "{approved}");
    assert!(approved["message"].as_str().unwrap().contains("no driver running"), "{approved}");
    assert_error(&post(format!("{u}/v1/action-requests/nope?action=approve"), json!({})).await, 404, "nope");
    assert_error(&post(format!("{u}/v1/action-requests/{b}?action=maybe"), json!({})).await, 400, "approve");
}

mod keystone_auth {
    //! `congress serve --keystone-url` against the real Keystone.

    use super::serve::{self, Server};
    use super::*;
    use super::{keystone, openstack};
    use keystone::Keystone;

    async fn server(ks: &Keystone) -> Server {
        // SAFETY of the environment: the child process reads the password; set per process.
        let args = ["--keystone-url", &ks.url, "--keystone-user", "admin", "--keystone-project", "admin"];
        let mut cmd_args: Vec<&str> = args.to_vec();
        cmd_args.extend(["--keystone-password-env", "CONGRESS_TEST_KS_PASSWORD", "--token-cache-seconds", "2"]);
        Server::start_with_env(&cmd_args, &[("CONGRESS_TEST_KS_PASSWORD", keystone::ADMIN_PASSWORD)])
    }

    /// Every endpoint: 401 without a token and with a wrong one; 403 for a reader's write.
    #[tokio::test]
    async fn every_endpoint_wants_a_valid_token() {
        let Some(ks) = Keystone::start_or_skip().await else { return };
        let s = server(&ks).await;
        let u = &s.url;
        let reader = format!("api-reader-{}", std::process::id());
        ks.user(&reader, "pw-reader").await;
        let reader_token = ks.token(&reader, "pw-reader", "admin").await.unwrap();
        let admin_token = ks.admin_token().await;
        use reqwest::Method as M;
        let endpoints: &[(M, &str)] = &[
            (M::GET, "/v1"),
            (M::GET, "/v1/policies"),
            (M::POST, "/v1/policies"),
            (M::GET, "/v1/policies/classification"),
            (M::DELETE, "/v1/policies/classification"),
            (M::POST, "/v1/policies/classification?action=simulate"),
            (M::GET, "/v1/policies/classification/rules"),
            (M::POST, "/v1/policies/classification/rules"),
            (M::GET, "/v1/policies/classification/rules/x"),
            (M::DELETE, "/v1/policies/classification/rules/x"),
            (M::GET, "/v1/policies/classification/tables"),
            (M::GET, "/v1/policies/classification/tables/error"),
            (M::GET, "/v1/policies/classification/tables/error/rows"),
            (M::GET, "/v1/policies/classification/status"),
            (M::GET, "/v1/policies/classification/violations"),
            (M::GET, "/v1/policies/classification/explain?row=error(1)"),
            (M::GET, "/v1/policies/classification/history"),
            (M::GET, "/v1/history"),
            (M::GET, "/v1/librarypolicies"),
            (M::POST, "/v1/librarypolicies"),
            (M::GET, "/v1/librarypolicies/x"),
            (M::PUT, "/v1/librarypolicies/x"),
            (M::DELETE, "/v1/librarypolicies/x"),
            (M::GET, "/v1/data-sources"),
            (M::POST, "/v1/data-sources"),
            (M::GET, "/v1/data-sources/x"),
            (M::DELETE, "/v1/data-sources/x"),
            (M::POST, "/v1/data-sources/x?action=request-refresh"),
            (M::GET, "/v1/data-sources/x/schema"),
            (M::GET, "/v1/data-sources/x/status"),
            (M::GET, "/v1/data-sources/x/actions"),
            (M::GET, "/v1/data-sources/x/tables"),
            (M::GET, "/v1/data-sources/x/tables/t"),
            (M::GET, "/v1/data-sources/x/tables/t/spec"),
            (M::GET, "/v1/data-sources/x/tables/t/rows"),
            (M::PUT, "/v1/data-sources/x/tables/t/rows"),
            (M::GET, "/v1/system/drivers"),
            (M::GET, "/v1/system/drivers/nova"),
            (M::GET, "/v1/overview"),
            (M::GET, "/v1/action-requests"),
            (M::POST, "/v1/action-requests/x?action=approve"),
        ];
        for (method, path) in endpoints {
            let url = format!("{u}{path}");
            let none = client().request(method.clone(), &url).send().await.unwrap();
            assert_eq!(none.status().as_u16(), 401, "{method} {path} without a token");
            let body: Value = none.json().await.unwrap();
            assert!(body["error"]["message"].is_string(), "{method} {path}: {body}");
            let wrong =
                client().request(method.clone(), &url).header("X-Auth-Token", "gAAAAA-not-a-token").send().await;
            assert_eq!(wrong.unwrap().status().as_u16(), 401, "{method} {path} with a wrong token");
            let read =
                client().request(method.clone(), &url).header("X-Auth-Token", &reader_token).send().await.unwrap();
            if *method == M::GET {
                assert_ne!(read.status().as_u16(), 401, "{method} {path} as a reader");
                assert_ne!(read.status().as_u16(), 403, "{method} {path} as a reader");
            } else {
                assert_eq!(read.status().as_u16(), 403, "{method} {path} as a reader");
            }
        }
        // The admin may write; the version list and the dashboard need no token.
        let ok = client()
            .post(format!("{u}/v1/policies"))
            .header("X-Auth-Token", &admin_token)
            .json(&json!({"name": "by-admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 201);
        assert_eq!(client().get(format!("{u}/")).send().await.unwrap().status().as_u16(), 200);
        assert_eq!(client().get(format!("{u}/ui/")).send().await.unwrap().status().as_u16(), 200);
        // No token reaches the log.
        assert!(!s.log().contains(&admin_token) && !s.log().contains(&reader_token));
    }

    /// python-congressclient and `openstack congress` authenticated by the real Keystone,
    /// with the API found in its catalog, and an action executed on a nova (an HTTP server
    /// answering as nova, in the catalog too).
    #[tokio::test]
    async fn the_real_python_clients_work_with_keystone() {
        let Some(venv) = serve::venv_or_skip() else { return };
        let Some(ks) = Keystone::start_or_skip().await else { return };
        let cloud = openstack::FakeCloud::start(
            openstack::small_cloud(2),
            openstack::TokenCheck::Keystone { url: ks.url.clone(), admin_password: keystone::ADMIN_PASSWORD.into() },
            "admin",
        )
        .await;
        let region = keystone::region("api-clients");
        let s = server(&ks).await;
        let mut endpoints = cloud.endpoints();
        endpoints.push(("policy", s.url.clone()));
        ks.register(&region, &endpoints).await;
        let url = s.url.clone();
        let ks_url = ks.url.clone();
        let (ok, out) =
            tokio::task::spawn_blocking(move || serve::run_client_checks(&venv, &url, &["keystone", &ks_url, &region]))
                .await
                .unwrap();
        assert!(ok, "client checks failed:\n{out}\nserver log:\n{}", s.log());
        let seen = cloud.state().actions.clone();
        assert!(
            seen.iter().any(|a| a.method == "POST"
                && a.path.ends_with("servers/srv-000001/action")
                && a.body.get("pause").is_some()),
            "nova did not receive the pause: {:?}",
            seen.iter().map(|a| (&a.method, &a.path, &a.body)).collect::<Vec<_>>()
        );
        assert!(!s.log().contains(keystone::ADMIN_PASSWORD), "the password reached the log");
    }
}
