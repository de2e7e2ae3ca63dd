//! A real Keystone for driver tests: the one `scripts/test.sh` started (its URL in
//! `CONGRESS_TEST_KEYSTONE`), else one started for this test process by `scripts/keystone.sh`
//! (about 10 s) and stopped when dropped. Without Keystone installed a test is skipped, with a
//! line on stderr saying why, unless `CONGRESS_E2E=require` (then it fails).
//!
//! Tests share one Keystone, so each works in a region (and with users) of its own.

#![allow(dead_code)] // each test binary that includes this uses part of it

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// The admin's password, as `scripts/keystone.sh` bootstraps it.
pub const ADMIN_PASSWORD: &str = "s3cret";

pub struct Keystone {
    /// `http://127.0.0.1:PORT/v3`.
    pub url: String,
    own: Option<(tempfile::TempDir, u32)>,
    client: reqwest::Client,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        if let Some((_, pid)) = &self.own {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Keystone {
    /// The shared Keystone, or a new one; `None` (skip) when Keystone is not installed.
    pub async fn start_or_skip() -> Option<Keystone> {
        if let Ok(url) = std::env::var("CONGRESS_TEST_KEYSTONE") {
            return Some(Keystone { url, own: None, client: reqwest::Client::new() });
        }
        Keystone::installed_or_skip()?;
        Some(Keystone::start_own(3600).await)
    }

    /// A Keystone of this test alone, whose tokens live `token_seconds`; `None` (skip) when
    /// Keystone is not installed.
    pub async fn start_own_or_skip(token_seconds: u32) -> Option<Keystone> {
        Keystone::installed_or_skip()?;
        Some(Keystone::start_own(token_seconds).await)
    }

    fn installed_or_skip() -> Option<()> {
        let installed =
            Command::new("sh").args(["-c", "command -v keystone-manage"]).output().is_ok_and(|o| o.status.success());
        if installed {
            return Some(());
        }
        let why = "Keystone is not installed (python3-keystone; `bash e2e/install.sh` installs it)";
        if std::env::var("CONGRESS_E2E").is_ok_and(|v| v == "require") {
            panic!("{why}, and CONGRESS_E2E=require");
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
        None
    }

    async fn start_own(token_seconds: u32) -> Keystone {
        let dir = tempfile::Builder::new().prefix("congress-keystone-").tempdir().expect("a temporary directory");
        let port = free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/keystone.sh");
        let out = tokio::task::spawn_blocking({
            let dir = dir.path().to_path_buf();
            move || {
                Command::new("bash").arg(script).arg(dir).arg(port.to_string()).arg(token_seconds.to_string()).output()
            }
        })
        .await
        .expect("join")
        .expect("run scripts/keystone.sh");
        assert!(out.status.success(), "scripts/keystone.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        let pid: u32 =
            std::fs::read_to_string(dir.path().join("keystone.pid")).expect("pid").trim().parse().expect("pid");
        Keystone { url: format!("http://127.0.0.1:{port}/v3"), own: Some((dir, pid)), client: reqwest::Client::new() }
    }

    /// An admin token (project-scoped).
    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD, "admin").await.expect("admin token")
    }

    /// A project-scoped token for `user`, or the status Keystone answered.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> Result<String, u16> {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r =
            self.client.post(format!("{}/auth/tokens", self.url)).json(&body).send().await.expect("keystone answers");
        if r.status().as_u16() != 201 {
            return Err(r.status().as_u16());
        }
        Ok(r.headers()["x-subject-token"].to_str().expect("token").to_string())
    }

    /// Hold Keystone's write lock: its sqlite database refuses a second writer at once (a
    /// 500), and after that can hold a stale lock for 30 s; so the tests sharing it (threads
    /// and processes) write one at a time, serialised by a lock file.
    pub fn write_lock(&self) -> std::fs::File {
        let port = self.url.rsplit(':').next().unwrap_or("0").trim_end_matches("/v3").to_string();
        let path = std::env::temp_dir().join(format!("congress-keystone-{port}.lock"));
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).expect("lock file");
        file.lock().expect("lock the Keystone lock file");
        file
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let _lock = self.write_lock();
        let token = self.admin_token().await;
        let r = self
            .client
            .post(format!("{}/{path}", self.url))
            .header("X-Auth-Token", token)
            .json(&body)
            .send()
            .await
            .expect("keystone answers");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    /// Register a region and, in it, each `(service type, URL)` as a public endpoint.
    pub async fn register(&self, region: &str, endpoints: &[(&str, String)]) {
        self.post("regions", json!({"region": {"id": region}})).await;
        for (service_type, url) in endpoints {
            let service = self.post("services", json!({"service": {"type": service_type, "name": service_type}})).await;
            let id = service["service"]["id"].as_str().expect("service id").to_string();
            for interface in ["public", "internal"] {
                self.post(
                    "endpoints",
                    json!({"endpoint": {"service_id": id, "interface": interface, "url": url, "region_id": region}}),
                )
                .await;
            }
        }
    }

    /// The id of the admin user.
    pub async fn admin_id(&self) -> String {
        let token = self.admin_token().await;
        let r: Value = self
            .client
            .get(format!("{}/users?name=admin", self.url))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("keystone answers")
            .json()
            .await
            .expect("json");
        r["users"][0]["id"].as_str().expect("admin id").to_string()
    }

    /// A new application credential of the admin user: (id, secret).
    pub async fn application_credential(&self, name: &str) -> (String, String) {
        let user = self.admin_id().await;
        let r = self
            .post(&format!("users/{user}/application_credentials"), json!({"application_credential": {"name": name}}))
            .await;
        let c = &r["application_credential"];
        (c["id"].as_str().expect("id").to_string(), c["secret"].as_str().expect("secret").to_string())
    }

    /// A new user of domain `Default` with the `member` role in project `admin`: another
    /// identity than the admin's.
    pub async fn user(&self, name: &str, password: &str) {
        let user =
            self.post("users", json!({"user": {"name": name, "password": password, "domain_id": "default"}})).await;
        let user = user["user"]["id"].as_str().expect("user id").to_string();
        let project = self.first_id("projects?name=admin", "projects").await;
        let role = self.first_id("roles?name=member", "roles").await;
        let _lock = self.write_lock();
        let token = self.admin_token().await;
        let r = self
            .client
            .put(format!("{}/projects/{project}/users/{user}/roles/{role}", self.url))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("keystone answers");
        assert!(r.status().is_success(), "grant member: {}", r.status());
    }

    /// The id of the first of `list` that `GET path` gives.
    async fn first_id(&self, path: &str, list: &str) -> String {
        let token = self.admin_token().await;
        let r: Value = self
            .client
            .get(format!("{}/{path}", self.url))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("keystone answers")
            .json()
            .await
            .expect("json");
        r[list][0]["id"].as_str().unwrap_or_else(|| panic!("no {path}: {r}")).to_string()
    }

    /// Revoke `token` (services validating it get 404 from Keystone from now on).
    pub async fn revoke(&self, token: &str) {
        let _lock = self.write_lock();
        let admin = self.admin_token().await;
        let r = self
            .client
            .delete(format!("{}/auth/tokens", self.url))
            .header("X-Auth-Token", admin)
            .header("X-Subject-Token", token)
            .send()
            .await
            .expect("keystone answers");
        assert!(r.status().is_success(), "revoke: {}", r.status());
    }
}

/// A region name of this test alone.
pub fn region(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}
