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
    /// Address of /metrics, /healthz and /readyz.
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
}

fn init_logs(format: LogFormat) {
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
    let config = OperatorConfig {
        http_addr: args.http_addr,
        lease,
        namespace: args.lease_namespace.clone(),
        actions_enabled: !args.disable_actions,
        action_retention: std::time::Duration::from_secs(args.action_retention_seconds),
        library: args.library.clone(),
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
