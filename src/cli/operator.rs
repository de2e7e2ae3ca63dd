//! `congress operator`: run the Kubernetes operator (the reconcilers in
//! [`crate::controllers`]) against the cluster of the current kubeconfig or the in-cluster
//! service account.

use crate::controllers::{self, OperatorConfig, leader::LeaseConfig};
use std::net::SocketAddr;
use std::process::ExitCode;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Arguments of `congress operator`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  congress operator\n  KUBECONFIG=./kubeconfig congress operator --leader-election=false --log-format text\n\nThe kubeconfig is $KUBECONFIG, ~/.kube/config, or the in-cluster service account.\nRUST_LOG sets the log filter (default: info)."
)]
pub struct OperatorArgs {
    /// Address of /metrics, /healthz, /readyz, the pushes of `push` datasources and the API.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Elect one acting replica through a Lease (the others keep a warm engine).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// The operator's namespace: of the Lease, and of credentials Secrets named without one.
    #[arg(long, env = "POD_NAMESPACE", default_value = "congress-system")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "congress-operator")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the pod name, else host name and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// The kill switch: create no ActionRequest and run none (reactive policies only report).
    #[arg(long, env = "CONGRESS_DISABLE_ACTIONS", default_value_t = false, action = clap::ArgAction::Set)]
    pub disable_actions: bool,
    /// Seconds a finished ActionRequest is kept once its row is gone (then deleted).
    #[arg(long, default_value_t = 86_400)]
    pub action_retention_seconds: u64,
    /// Install the shipped policy library as LibraryPolicies, never overwriting one an
    /// administrator changed: `configmap:NAMESPACE/NAME` (the chart's) or `dir:PATH`.
    #[arg(long, value_name = "SOURCE")]
    pub library: Option<controllers::library::LibrarySource>,
    /// Serve the admission webhook (proactive policies) over HTTPS on this address.
    #[arg(long, value_name = "ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// Where the API server reaches the webhook: an `https://` URL (a webhook outside the
    /// cluster, tests) ...
    #[arg(long, value_name = "URL", conflicts_with = "webhook_service")]
    pub webhook_url: Option<String>,
    /// ... or the operator's Service, `NAMESPACE/NAME:PORT`.
    #[arg(long, value_name = "NS/NAME:PORT")]
    pub webhook_service: Option<String>,
    /// What the API server does when the webhook cannot answer.
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub webhook_failure_policy: String,
    /// How long the API server waits for an answer (1 to 30).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub webhook_timeout_seconds: i32,
    /// Serve the certificate of this Secret, `NAMESPACE/NAME` (`tls.crt`, `tls.key`,
    /// `ca.crt`: cert-manager's); default: a CA and certificate the operator generates and
    /// keeps in the Secret `congress-webhook-tls` of its namespace.
    #[arg(long, value_name = "NS/NAME")]
    pub webhook_cert_secret: Option<String>,
    /// Lifetime of a generated serving certificate; it is re-issued when a third is left.
    #[arg(long, default_value_t = 90 * 24 * 3600)]
    pub webhook_cert_validity_seconds: u64,
    /// Extra DNS names for a generated certificate (the Service's are added).
    #[arg(long = "webhook-dns", value_name = "NAME")]
    pub webhook_dns: Vec<String>,
    /// IP addresses for a generated certificate (`127.0.0.1` for a local API server).
    #[arg(long = "webhook-ip", value_name = "IP")]
    pub webhook_ips: Vec<std::net::IpAddr>,
    /// Namespaces never checked (the operator's own always is).
    #[arg(long = "webhook-exclude-namespace", value_name = "NS", default_values_t = ["kube-system".to_string()])]
    pub webhook_exclude_namespaces: Vec<String>,
    /// Serve Congress's REST API (`/v1`) and the dashboard on `--http-addr`, callers
    /// authenticated by the API server (TokenReview, then RBAC on `policies.congress.dev`:
    /// `get` reads, `create` writes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub api: bool,
    /// The largest API request body, in bytes.
    #[arg(long, default_value_t = crate::api::DEFAULT_MAX_BODY)]
    pub api_max_body_bytes: usize,
    /// Name of the ValidatingWebhookConfiguration (its webhook is `validate.NAME`).
    #[arg(long, default_value = "congress.dev")]
    pub webhook_name: String,
}

/// The webhook's settings from the flags (`None` without `--webhook-addr`).
fn webhook(args: &OperatorArgs) -> Result<Option<controllers::webhook::server::WebhookSettings>, String> {
    use controllers::webhook::config::{ConfigSettings, Endpoint};
    use controllers::webhook::review::ReviewSettings;
    use controllers::webhook::server::{CertSource, WebhookSettings};
    let Some(addr) = args.webhook_addr else { return Ok(None) };
    let mut dns_names = args.webhook_dns.clone();
    let endpoint = match (&args.webhook_url, &args.webhook_service) {
        (Some(url), _) if url.starts_with("https://") => Endpoint::Url(url.clone()),
        (Some(url), _) => return Err(format!("--webhook-url `{url}`: the API server calls only https:// URLs")),
        (None, Some(s)) => {
            let parsed = s.split_once('/').and_then(|(ns, rest)| {
                let (name, port) = rest.split_once(':')?;
                Some((ns.to_string(), name.to_string(), port.parse::<i32>().ok()?))
            });
            let Some((namespace, name, port)) = parsed else {
                return Err(format!("--webhook-service `{s}`: expected NAMESPACE/NAME:PORT"));
            };
            dns_names.push(format!("{name}.{namespace}.svc"));
            dns_names.push(format!("{name}.{namespace}.svc.cluster.local"));
            Endpoint::Service { namespace, name, port }
        }
        (None, None) => return Err("--webhook-addr needs --webhook-url or --webhook-service".into()),
    };
    let certs = match &args.webhook_cert_secret {
        Some(s) => match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                CertSource::Secret { namespace: ns.into(), name: name.into() }
            }
            _ => return Err(format!("--webhook-cert-secret `{s}`: expected NAMESPACE/NAME")),
        },
        None => CertSource::Generated {
            namespace: args.lease_namespace.clone(),
            name: "congress-webhook-tls".into(),
            valid_for: std::time::Duration::from_secs(args.webhook_cert_validity_seconds.max(3)),
        },
    };
    let mut excluded: std::collections::BTreeSet<String> = args.webhook_exclude_namespaces.iter().cloned().collect();
    excluded.insert(args.lease_namespace.clone());
    Ok(Some(WebhookSettings {
        addr,
        certs,
        dns_names,
        ips: args.webhook_ips.clone(),
        config: ConfigSettings {
            name: args.webhook_name.clone(),
            endpoint,
            failure_policy: args.webhook_failure_policy.clone(),
            timeout_seconds: args.webhook_timeout_seconds,
            excluded_namespaces: excluded.iter().cloned().collect(),
        },
        review: ReviewSettings { excluded_namespaces: excluded },
    }))
}

pub fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}-{}", if host.is_empty() { "congress" } else { &host }, std::process::id())
}

/// Run the operator until SIGTERM/SIGINT.
pub fn run(args: OperatorArgs) -> ExitCode {
    init_logs(args.log_format);
    let lease = args.leader_election.then(|| LeaseConfig {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: args.identity.clone().unwrap_or_else(default_identity),
    });
    let webhook = match webhook(&args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = OperatorConfig {
        http_addr: args.http_addr,
        lease,
        namespace: args.lease_namespace.clone(),
        actions_enabled: !args.disable_actions,
        action_retention: std::time::Duration::from_secs(args.action_retention_seconds),
        library: args.library.clone(),
        webhook,
        api: args.api.then_some(controllers::ApiSettings { max_body: args.api_max_body_bytes, ui_dir: None }),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(controllers::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator failed");
            ExitCode::from(2)
        }
    }
}
