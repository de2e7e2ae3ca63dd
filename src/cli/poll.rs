//! `congress poll`: run a polled driver once, from a `Datasource` manifest, and print its
//! tables: how a user checks a mapping (or credentials) before deploying them. Credentials
//! come from a Secret manifest (`--secret`, or a Secret document in the same file), then
//! from the environment: the OpenStack `OS_*` variables and `CONGRESS_CREDENTIAL_<KEY>`.

use congress_drivers::credentials::Credentials;
use congress_drivers::http::{HttpDriver, PollState, Polled};
use congress_engine::{Schema, Value};
use congress_model::resources::Datasource;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `congress poll`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 polled, 1 the poll failed (the service, the network or the credentials), 2 bad input.

Credentials, by precedence: --secret FILE (a v1 Secret, `data` or `stringData`), a Secret in the
Datasource's file, then the environment: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE,
OS_APPLICATION_CREDENTIAL_ID, OS_APPLICATION_CREDENTIAL_SECRET, OS_TOKEN, OS_CACERT (a CA bundle file), and
CONGRESS_CREDENTIAL_<KEY> for any key (CONGRESS_CREDENTIAL_TOKEN -> `token`).

Examples:
  congress poll -f nova.yaml --secret openstack-credentials.yaml
  OS_AUTH_URL=https://keystone:5000/v3 OS_USERNAME=admin OS_PASSWORD=... congress poll -f nova.yaml -o json
  congress poll -f my-api.yaml --table servers")]
pub struct PollArgs {
    /// The Datasource manifest (YAML; other documents in it are ignored, but a Secret).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// A Secret manifest holding the credentials.
    #[arg(long, value_name = "FILE")]
    pub secret: Option<PathBuf>,
    /// Print only this table (repeatable).
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = super::eval::Output::Table)]
    pub output: super::eval::Output,
}

/// What a manifest file holds for a poll.
struct Manifests {
    datasource: Option<Datasource>,
    secret: Option<Credentials>,
}

/// A v1 Secret as written in a manifest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretManifest {
    #[serde(default)]
    data: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    string_data: BTreeMap<String, serde_json::Value>,
}

/// A Secret value as text: YAML may have read `123456` as a number. Anything else is an
/// error that names the key only (the value is a secret).
fn secret_text(key: &str, v: serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("Secret key `{key}`: not a string")),
    }
}

fn read_manifests(path: &Path) -> Result<Manifests, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Manifests { datasource: None, secret: None };
    for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = serde_json::Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
        let where_ = || format!("{} (document {})", path.display(), i + 1);
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("Datasource") if out.datasource.is_none() => {
                let ds: Datasource = serde_json::from_value(value).map_err(|e| format!("{}: {e}", where_()))?;
                out.datasource = Some(ds);
            }
            Some("Secret") => {
                let s: SecretManifest = serde_json::from_value(value)
                    .map_err(|_| format!("{}: a Secret's `data` and `stringData` are maps of strings", where_()))?;
                out.secret = Some(secret_credentials(s).map_err(|e| format!("{}: {e}", where_()))?);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn secret_credentials(s: SecretManifest) -> Result<Credentials, String> {
    use base64::Engine as _;
    let mut data = Vec::new();
    for (k, v) in s.data {
        let v = secret_text(&k, v)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|_| format!("Secret key `{k}`: `data` values are base64 (use `stringData` for plain text)"))?;
        data.push((k, bytes));
    }
    for (k, v) in s.string_data {
        let v = secret_text(&k, v)?;
        data.push((k, v.into_bytes()));
    }
    Credentials::from_bytes(data).map_err(|e| e.to_string())
}

/// Credentials from the environment (`OS_*`, `CONGRESS_CREDENTIAL_*`).
fn env_credentials() -> Credentials {
    const OS: &[(&str, &str)] = &[
        ("OS_AUTH_URL", "auth_url"),
        ("OS_USERNAME", "username"),
        ("OS_PASSWORD", "password"),
        ("OS_PROJECT_NAME", "project_name"),
        ("OS_USER_DOMAIN_NAME", "user_domain_name"),
        ("OS_PROJECT_DOMAIN_NAME", "project_domain_name"),
        ("OS_APPLICATION_CREDENTIAL_ID", "application_credential_id"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "application_credential_secret"),
        ("OS_TOKEN", "token"),
    ];
    let mut pairs: Vec<(String, String)> =
        OS.iter().filter_map(|(var, key)| Some((key.to_string(), std::env::var(var).ok()?))).collect();
    for (var, value) in std::env::vars() {
        if let Some(key) = var.strip_prefix("CONGRESS_CREDENTIAL_") {
            pairs.push((key.to_ascii_lowercase(), value));
        }
    }
    // The OpenStack clients' CA bundle: a file name.
    if let Some(ca) = std::env::var_os("OS_CACERT").and_then(|path| std::fs::read_to_string(path).ok()) {
        pairs.push(("ca.crt".to_string(), ca));
    }
    Credentials::from_strings(pairs)
}

/// `OS_REGION_NAME` and `OS_INTERFACE` fill `config.region` and `config.interface` when unset.
fn env_config(config: &mut BTreeMap<String, String>) {
    for (var, key) in [("OS_REGION_NAME", "region"), ("OS_INTERFACE", "interface")] {
        if let Ok(v) = std::env::var(var) {
            config.entry(key.to_string()).or_insert(v);
        }
    }
}

/// What one poll of a Datasource manifest gave.
pub struct PolledFile {
    /// The datasource's engine name.
    pub name: String,
    pub schema: Schema,
    pub tables: Polled,
}

/// One poll of the Datasource in `file`.
pub fn poll_file(file: &Path, secret: Option<&Path>) -> Result<PolledFile, PollFileError> {
    let manifests = read_manifests(file).map_err(PollFileError::Input)?;
    let ds = manifests
        .datasource
        .ok_or_else(|| PollFileError::Input(format!("{}: no Datasource manifest", file.display())))?;
    let credentials = match secret {
        Some(path) => read_manifests(path)
            .map_err(PollFileError::Input)?
            .secret
            .ok_or_else(|| PollFileError::Input(format!("{}: no Secret manifest", path.display())))?,
        None => manifests.secret.unwrap_or_else(env_credentials),
    };
    let name = congress_model::engine_name(&kube::ResourceExt::name_any(&ds));
    let source = match ds.spec.http_source() {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(PollFileError::Input(format!(
                "driver `{}` is not polled (congress poll runs `http` and the OpenStack drivers)",
                ds.spec.driver
            )));
        }
        Err(e) => return Err(PollFileError::Input(e.to_string())),
    };
    let mut config = ds.spec.config.clone();
    env_config(&mut config);
    let driver = HttpDriver::new(&source, &config, &credentials).map_err(|e| PollFileError::Input(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PollFileError::Input(format!("cannot start the async runtime: {e}")))?;
    let mut state = PollState::default();
    let pending =
        runtime.block_on(driver.poll(&|_| true, &state)).map_err(|e| PollFileError::Poll(e.reason(), e.to_string()))?;
    state.commit(pending);
    let polled = driver.rows(&state);
    Ok(PolledFile { name, schema: ds.spec.schema(), tables: polled })
}

/// Why `congress poll` (or `eval --live`) could not poll.
#[derive(Debug)]
pub enum PollFileError {
    /// The manifest, the Secret or the configuration.
    Input(String),
    /// The poll itself: the cause and the message.
    Poll(&'static str, String),
}

/// Run `congress poll`.
pub fn run(args: PollArgs) -> ExitCode {
    let PolledFile { name, schema, tables: polled } = match poll_file(&args.file, args.secret.as_deref()) {
        Ok(p) => p,
        Err(PollFileError::Input(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(PollFileError::Poll(reason, e)) => {
            eprintln!("error: the poll failed ({reason}): {e}");
            return ExitCode::from(1);
        }
    };
    let mut polled: Vec<(String, Vec<Vec<Value>>)> =
        polled.into_iter().filter(|(t, _)| args.tables.is_empty() || args.tables.contains(t)).collect();
    for (_, rows) in &mut polled {
        rows.sort();
        rows.dedup();
    }
    match args.output {
        super::eval::Output::Table => {
            for (table, rows) in &polled {
                let columns = schema.get(table).map(|c| c.join(", ")).unwrap_or_default();
                println!("{name}:{table}({columns}): {} row{}", rows.len(), if rows.len() == 1 { "" } else { "s" });
                print!("{}", super::eval::table(rows));
            }
        }
        out => {
            let tables: serde_json::Map<String, serde_json::Value> = polled
                .iter()
                .map(|(t, rows)| {
                    let rows: Vec<Vec<serde_json::Value>> =
                        rows.iter().map(|r| r.iter().map(Value::to_json).collect()).collect();
                    (t.clone(), json!({"columns": schema.get(t), "rows": rows}))
                })
                .collect();
            super::eval::emit(&json!({"datasource": name, "tables": tables}), out);
        }
    }
    ExitCode::SUCCESS
}
