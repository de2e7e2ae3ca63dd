//! `congress serve`: Congress's v1 REST API and the dashboard without Kubernetes, over one
//! SQLite file (`--db`), with the drivers in-process. For OpenStack clouds and for trying
//! the product on a laptop: `congress serve --no-auth -f examples/cloud --data
//! examples/cloud` serves the walk-through with no database at all.

use crate::api::auth::{Authenticator, KeystoneAuth, KeystoneAuthConfig, NoAuth};
use crate::api::standalone::{Options, Seed, Standalone, store::Store};
use crate::api::{self, Api};
use crate::cli::input_args::{load_all, report_load_errors};
use congress_drivers::credentials::SecretValue;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXAMPLES: &str = "\
Examples:
  # The walk-through, nothing stored, no authentication (loopback only)
  congress serve --no-auth -f examples/cloud --data examples/cloud
  # A server that keeps its state, the library initialised from ./library on first start
  congress serve --db congress.db --keystone-url http://keystone:5000/v3 --listen 0.0.0.0:1789
  # Then, with python-congressclient:
  openstack --os-auth-type none --os-endpoint http://127.0.0.1:1789 congress policy list
";

/// Arguments of `congress serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed when ready).
    #[arg(long, default_value = "127.0.0.1:1789")]
    pub listen: SocketAddr,
    /// The database file (created on first start, migrated on upgrade). Without it, the
    /// state lives in memory and goes with the process.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Policy sources to serve (Policy/LibraryPolicy manifests, .congress files), put in the
    /// state at start. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Data: Datasource manifests and table fixtures, put in the state at start. Repeatable.
    #[arg(long = "data", value_name = "FILE|DIR")]
    pub data: Vec<PathBuf>,
    /// Where the library is initialised from when the database is created.
    #[arg(long, value_name = "DIR", default_value = "library")]
    pub library: PathBuf,
    /// Accept every caller as an admin, without a token. Only on a loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// Validate callers' Keystone tokens against this Keystone (v3 URL), as keystonemiddleware
    /// does: admin roles may do everything, reader roles may read.
    #[arg(long, value_name = "URL")]
    pub keystone_url: Option<String>,
    /// The service user that validates tokens (it needs the `service` or `admin` role).
    #[arg(long, default_value = "congress")]
    pub keystone_user: String,
    /// The service user's password (read from the environment, never from the command line).
    #[arg(long = "keystone-password-env", value_name = "VAR", default_value = "CONGRESS_KEYSTONE_PASSWORD")]
    pub keystone_password_env: String,
    /// The project the service user's token is scoped to.
    #[arg(long, default_value = "service")]
    pub keystone_project: String,
    /// Keystone roles that may change things (repeatable).
    #[arg(long = "admin-role", default_values_t = vec!["admin".to_string()])]
    pub admin_roles: Vec<String>,
    /// Keystone roles that may read (repeatable).
    #[arg(long = "reader-role", default_values_t = vec!["reader".to_string(), "member".to_string()])]
    pub reader_roles: Vec<String>,
    /// Seconds a validated token is trusted before Keystone is asked again (0: always ask).
    #[arg(long, default_value_t = 300)]
    pub token_cache_seconds: u64,
    /// Every ActionRequest waits for a person's approval (the dashboard, or
    /// `POST /v1/action-requests/ID?action=approve`), whatever its policy says.
    #[arg(long)]
    pub manual_approval: bool,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = api::DEFAULT_MAX_BODY)]
    pub max_body_bytes: usize,
    /// Serve the dashboard's files from this folder instead of the compiled-in ones.
    #[arg(long, value_name = "DIR", hide = true)]
    pub ui_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::cli::operator::LogFormat,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("--no-auth is only allowed on a loopback address, not {0}")]
    NoAuthOffLoopback(SocketAddr),
    #[error("choose how callers are checked: --no-auth (loopback only) or --keystone-url")]
    NoAuthenticator,
    #[error(transparent)]
    Store(#[from] api::standalone::store::StoreError),
    #[error("{0}")]
    Start(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

pub fn run(args: ServeArgs) -> ExitCode {
    crate::cli::operator::init_logs(args.log_format);
    // Check the files first: every problem at its file:line:col.
    let seed = if args.files.is_empty() && args.data.is_empty() {
        None
    } else {
        match seed(&args) {
            Ok(s) => Some(s),
            Err(code) => return code,
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args, seed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn seed(args: &ServeArgs) -> Result<Seed, ExitCode> {
    let loaded = load_all(&args.files, &args.data).map_err(|errors| {
        report_load_errors(&errors);
        ExitCode::from(2)
    })?;
    let mut paths = args.files.clone();
    paths.extend(args.data.iter().cloned());
    let objects = congress_model::load::load_objects(&paths).map_err(|errors| {
        report_load_errors(&errors);
        ExitCode::from(2)
    })?;
    let fixtures = congress_model::load::load_fixtures(&args.data).map_err(|errors| {
        report_load_errors(&errors);
        ExitCode::from(2)
    })?;
    drop(loaded);
    let mut rows = std::collections::BTreeMap::new();
    for t in fixtures.tables {
        rows.entry((t.datasource, t.table)).or_insert_with(Vec::new).extend(t.rows);
    }
    Ok(Seed { objects, rows })
}

async fn serve(args: ServeArgs, seed: Option<Seed>) -> Result<(), ServeError> {
    let auth: Arc<dyn Authenticator> = if args.no_auth {
        if !args.listen.ip().is_loopback() {
            return Err(ServeError::NoAuthOffLoopback(args.listen));
        }
        Arc::new(NoAuth)
    } else if let Some(url) = &args.keystone_url {
        let password = std::env::var(&args.keystone_password_env).map_err(|_| {
            ServeError::Start(format!(
                "--keystone-url: set the service user's password in ${}",
                args.keystone_password_env
            ))
        })?;
        let config = KeystoneAuthConfig {
            auth_url: url.clone(),
            username: args.keystone_user.clone(),
            password: SecretValue::new(password),
            project: args.keystone_project.clone(),
            admin_roles: args.admin_roles.clone(),
            reader_roles: args.reader_roles.clone(),
            cache_ttl: std::time::Duration::from_secs(args.token_cache_seconds),
            ..KeystoneAuthConfig::default()
        };
        Arc::new(KeystoneAuth::new(config).map_err(|e| ServeError::Start(format!("--keystone-url: {e}")))?)
    } else {
        return Err(ServeError::NoAuthenticator);
    };
    let store = match &args.db {
        Some(path) => Store::open(path)?,
        None => Store::in_memory()?,
    };
    let options =
        Options { store, library_dir: Some(args.library.clone()), seed, manual_approval: args.manual_approval };
    let backend = Standalone::start(options).await.map_err(ServeError::Start)?;
    let api = Arc::new(Api::new(backend, auth, api::ui::Assets { dir: args.ui_dir.clone() }));
    let router = api::router(api, args.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen { addr: args.listen, source })?;
    tracing::info!(%addr, db = ?args.db, "serving the API");
    eprintln!("congress serve: listening on http://{addr}");
    api::serve(listener, router, crate::controllers::wait_for_signal())
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    Ok(())
}
