//! The e2e harness: a throwaway control plane per test (`e2e/cluster.sh up`, torn down by
//! its watchdog when the test process exits, whatever way it exits), the CRDs applied, and
//! the operator as a child process that is killed when dropped.
//!
//! # Writing an e2e test
//!
//! Every test in `tests/e2e/main.rs` starts like this, and a new one must too:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn what_it_checks() {
//!     let Some(cluster) = Cluster::up_or_skip().await else { return };
//!     // ...
//! }
//! ```
//!
//! [`Cluster::up_or_skip`] starts a control plane when its binaries are installed
//! (kube-apiserver and helm in `${CONGRESS_E2E_CACHE:-~/.cache/congress-e2e}`; etcd, kubectl,
//! openssl, curl, python3 and setsid on PATH; `bash e2e/install.sh` installs them). When one is
//! missing it prints to stderr that the test is skipped, why, and how to run it, and returns
//! `None`: the test returns early and passes, so a plain `cargo test` works on any machine.
//! With `CONGRESS_E2E=require` (which `scripts/test.sh` sets) a missing binary fails the test
//! instead, so CI never mistakes a skip for a pass. [`Cluster::up`] (used by
//! `benches/operator.rs`, which includes this file) always requires them.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ApiResource, GroupVersionKind, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cache() -> PathBuf {
    std::env::var_os("CONGRESS_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/congress-e2e"))
}

/// The environment variable that decides what a missing control plane means: `require`
/// fails the test; unset (or anything else) skips it.
pub const E2E_ENV: &str = "CONGRESS_E2E";

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// What the control plane needs and this machine lacks, one entry per missing binary.
pub fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    for name in ["kube-apiserver", "helm"] {
        let path = cache().join(name);
        if !path.is_file() {
            missing.push(path.display().to_string());
        }
    }
    for name in ["etcd", "kubectl", "openssl", "curl", "python3", "setsid"] {
        if !on_path(name) {
            missing.push(format!("{name} (not on PATH)"));
        }
    }
    missing
}

const HOW_TO_RUN: &str =
    "to run the e2e tests: `bash e2e/install.sh` (once; apt-get needs root), then `scripts/test.sh`";

/// A `kubernetes` Datasource over Pods (with their containers) and Namespaces.
pub const DATASOURCE: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Datasource
metadata: {name: kube}
spec:
  driver: kubernetes
  kubernetes:
    resources:
    - apiVersion: v1
      kind: Pod
      table: pods
      columns:
      - {name: uid, path: metadata.uid}
      - {name: namespace, path: metadata.namespace}
      - {name: name, path: metadata.name}
      children:
      - path: spec.containers
        table: containers
        columns:
        - {name: pod, path: $parent.uid}
        - {name: name, path: name}
        - {name: image, path: image}
    - apiVersion: v1
      kind: Namespace
      table: namespaces
      columns:
      - {name: name, path: metadata.name}
      - {name: registry, path: 'metadata.labels["congress.dev/registry"]'}
"#;

/// Pods whose image is not an approved one (the registry, the image and the tag, as an
/// allowlist of images; the language has no string prefix builtin).
pub const POLICY: &str = r#"
apiVersion: congress.dev/v1alpha1
kind: Policy
metadata: {name: approved-images}
spec:
  rules:
  - name: approved
    rule: approved("registry.example.com/app:1")
  - name: unapproved-image
    rule: error(uid, ns, name, image) :- kube:pods(uid, ns, name), kube:containers(uid, c, image), not approved(image)
"#;

/// A running control plane.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// The cluster of an e2e test: [`Cluster::up`] when the control plane is installed;
    /// otherwise `None` after telling stderr that the test is skipped, why and how to run it
    /// (or a panic when `CONGRESS_E2E=require`). See the top of this file.
    pub async fn up_or_skip() -> Option<Cluster> {
        Cluster::up_or_skip_with(true).await
    }

    /// [`Cluster::up_or_skip`], with or without the wgpolicyk8s.io PolicyReport CRDs.
    pub async fn up_or_skip_with(policy_report_crds: bool) -> Option<Cluster> {
        let missing = missing_prerequisites();
        if missing.is_empty() {
            return Some(Cluster::up_with(policy_report_crds).await);
        }
        let missing = missing.join(", ");
        if std::env::var(E2E_ENV).is_ok_and(|v| v == "require") {
            panic!("the e2e control plane is required ({E2E_ENV}=require) but missing: {missing}; {HOW_TO_RUN}");
        }
        let thread = std::thread::current();
        let test = thread.name().filter(|n| *n != "main").unwrap_or("this e2e test");
        // Straight to the process's stderr, past the test harness's output capture, so that a
        // plain `cargo test` shows why nothing ran.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{test}: SKIPPED, the e2e control plane is not installed (missing: {missing}); {HOW_TO_RUN} \
             ({E2E_ENV}=require turns this skip into a failure)"
        );
        None
    }

    /// Start etcd and kube-apiserver, apply the congress and policy-report CRDs; panics when
    /// the control plane is not installed.
    #[allow(dead_code)] // used by benches/operator.rs, which shares this file
    pub async fn up() -> Cluster {
        Cluster::up_with(true).await
    }

    /// [`Cluster::up`], with or without the PolicyReport CRDs.
    pub async fn up_with(with_report_crds: bool) -> Cluster {
        let missing = missing_prerequisites();
        assert!(missing.is_empty(), "the e2e control plane is missing: {}; {HOW_TO_RUN}", missing.join(", "));
        let dir = tempfile::Builder::new().prefix("congress-e2e-").tempdir().expect("a temporary directory");
        let out = Command::new("bash")
            .arg(repo().join("e2e/cluster.sh"))
            .args(["up"])
            .arg(dir.path())
            .args(["--owner", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("run e2e/cluster.sh");
        assert!(out.status.success(), "cluster.sh up failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let cluster = Cluster { kubeconfig: dir.path().join("kubeconfig"), dir };
        cluster.kubectl(&["apply", "-f", &repo().join("crds").display().to_string()]);
        if with_report_crds {
            cluster.apply(&policy_report_crds());
        }
        cluster.kubectl(&["wait", "--for", "condition=established", "--timeout=60s", "crd", "--all"]);
        cluster
    }

    /// Install the PolicyReport CRDs (as the chart renders them) and wait until they serve.
    #[allow(dead_code)] // not every file that includes the harness uses it
    pub fn install_policy_report_crds(&self) {
        self.apply(&policy_report_crds());
        self.kubectl(&["wait", "--for", "condition=established", "--timeout=60s", "crd", "--all"]);
    }

    /// A kubeconfig for the user `congress-operator`, who may do nothing until RBAC says so.
    #[allow(dead_code)] // not every file that includes the harness uses it
    pub fn operator_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("operator.kubeconfig")
    }

    /// Run kubectl against this cluster; panics with its output when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with(args, None)
    }

    fn kubectl_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run_kubectl(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(input.as_bytes()).expect("write to kubectl");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// `kubectl apply -f -` of `yaml`, expected to be refused: kubectl's stderr.
    pub fn apply_refused(&self, yaml: &str) -> String {
        let out = self.run_kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(!out.status.success(), "kubectl accepted:\n{yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) {
        self.kubectl_with(&["apply", "-f", "-"], Some(yaml));
    }

    pub async fn client(&self) -> Client {
        self.client_of(&self.kubeconfig).await
    }

    /// A client with the credentials of `kubeconfig` (e.g. [`Cluster::operator_kubeconfig`]).
    pub async fn client_of(&self, kubeconfig: &Path) -> Client {
        let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
        Client::try_from(config).expect("a client")
    }

    pub async fn create_pod(&self, p: Pod) {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client().await, &ns);
        api.create(&PostParams::default(), &p).await.expect("create a pod");
    }

    /// Create many pods, `parallel` requests at a time.
    pub async fn create_pods(&self, pods: Vec<Pod>, parallel: usize) {
        use futures::StreamExt;
        let client = self.client().await;
        futures::stream::iter(pods)
            .map(|p| {
                let api: Api<Pod> =
                    Api::namespaced(client.clone(), p.metadata.namespace.as_deref().unwrap_or_default());
                async move { api.create(&PostParams::default(), &p).await.map(|_| ()) }
            })
            .buffer_unordered(parallel)
            .for_each(|r| async move { r.expect("create a pod") })
            .await;
    }

    pub async fn create_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client().await);
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.expect("create a namespace");
    }

    /// Who holds the operator's lease.
    pub async fn lease_holder(&self) -> Option<String> {
        let api: Api<Lease> = Api::namespaced(self.client().await, "congress-system");
        api.get_opt("congress-operator").await.ok()??.spec?.holder_identity
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run the installed helm against this cluster (its cache and config kept in the
    /// cluster's directory); panics with its output when it fails.
    #[allow(dead_code)] // not every file that includes the harness uses it
    pub fn helm(&self, args: &[&str]) -> String {
        let home = self.dir.path().join("helm");
        let out = Command::new(cache().join("helm"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .expect("run helm");
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("e2e/cluster.sh")).arg("down").arg(self.dir.path()).output();
    }
}

/// The wgpolicyk8s.io CRDs as the chart renders them.
fn policy_report_crds() -> String {
    let helm = cache().join("helm");
    let out = Command::new(&helm)
        .args(["template", "congress"])
        .arg(repo().join("charts/congress"))
        .args(["--set", "policyReportCRDs.install=true", "--show-only", "templates/policyreport-crds.yaml"])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e} (run `bash e2e/install.sh`)", helm.display()));
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn policy_report() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"))
}

/// A pod with one container.
pub fn pod(namespace: &str, name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
    .expect("a pod")
}

/// The operator as a child process (killed when dropped).
pub struct Operator {
    child: Option<Child>,
    /// `127.0.0.1:PORT` of its HTTP server (metrics, push).
    pub addr: String,
    log: PathBuf,
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Operator {
    pub fn start(cluster: &Cluster, identity: &str, election: bool) -> Operator {
        Operator::start_as(cluster, identity, election, &cluster.kubeconfig)
    }

    /// [`Operator::start`] with more arguments (`--disable-actions=true`).
    #[allow(dead_code)] // benches/operator.rs shares this file
    pub fn start_with(cluster: &Cluster, identity: &str, election: bool, extra: &[&str]) -> Operator {
        Operator::start_full(cluster, identity, election, &cluster.kubeconfig, extra)
    }

    /// [`Operator::start`] with the credentials of `kubeconfig`.
    pub fn start_as(cluster: &Cluster, identity: &str, election: bool, kubeconfig: &Path) -> Operator {
        Operator::start_full(cluster, identity, election, kubeconfig, &[])
    }

    fn start_full(cluster: &Cluster, identity: &str, election: bool, kubeconfig: &Path, extra: &[&str]) -> Operator {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = cluster.dir().join(format!("operator-{identity}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_congress"))
            .args(["operator", "--http-addr", &addr, "--lease-namespace", "congress-system", "--identity", identity])
            .arg(format!("--leader-election={election}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", std::env::var("CONGRESS_E2E_RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the operator");
        Operator { child: Some(child), addr, log }
    }

    /// The operator's process id.
    #[allow(dead_code)] // used by benches/operator.rs, which shares this file
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: no chance to release the lease.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// GET a path of the operator's HTTP server ("" when it does not answer).
    pub async fn get(&self, path: &str) -> String {
        let addr = self.addr.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || http_get(&addr, &path).unwrap_or_default()).await.unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        // CONGRESS_E2E_LOG_LINES shows more of the log of a failed test (default 40).
        let keep = std::env::var("CONGRESS_E2E_LOG_LINES").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
        lines[lines.len().saturating_sub(keep)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first (graceful: releases the lease), then SIGKILL.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

/// A condition the test waits for: `Option<T>` (Some = met) or `bool`.
pub trait Met<T> {
    fn met(self) -> Option<T>;
}

impl<T> Met<T> for Option<T> {
    fn met(self) -> Option<T> {
        self
    }
}

impl Met<()> for bool {
    fn met(self) -> Option<()> {
        self.then_some(())
    }
}

/// Poll `check` until it is met (60 s at most), then return what it found; on timeout,
/// panic with the operator's log tail.
pub async fn eventually<T, M, F, Fut>(what: &str, op: &Operator, mut check: F) -> T
where
    M: Met<T>,
    F: FnMut() -> Fut,
    Fut: Future<Output = M>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = check().await.met() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; operator log:\n{}", op.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RBAC for the API's callers: ServiceAccount `reader` of namespace `default` may get
/// policies.congress.dev (read access), `admin` may create them (every right).
pub const API_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: congress-api-reader}
rules:
- apiGroups: ["congress.dev"]
  resources: ["policies"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: congress-api-admin}
rules:
- apiGroups: ["congress.dev"]
  resources: ["policies"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-api-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-api-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: congress-api-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: congress-api-admin}
subjects:
- {kind: ServiceAccount, name: admin, namespace: default}
"#;

/// A token of a new ServiceAccount `name` of namespace `default` (TokenRequest).
pub async fn service_account_token(cluster: &Cluster, name: &str) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, PostParams};
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client().await, "default");
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    accounts.create(&PostParams::default(), &sa).await.expect("create a ServiceAccount");
    let request =
        serde_json::from_value(serde_json::json!({"spec": {"audiences": ["https://kubernetes.default.svc"]}})).unwrap();
    let answer = accounts.create_token_request(name, &PostParams::default(), &request).await.expect("a token");
    answer.status.expect("a token").token
}
