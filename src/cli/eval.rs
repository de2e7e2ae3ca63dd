//! `congress eval`: load policies and fixtures, evaluate, print every policy's `error`
//! table (or a query's answers) and the actions that would fire (never executed).

use crate::cli::check::print_errors;
use congress_engine::{ActionEvent, Value};
use congress_model::engine_name;
use congress_model::load::{self, LoadError, Loaded};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Arguments of `congress eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 no violations, 1 violations, 2 bad input.

Examples:
  congress eval -f policies/ --data fixtures/
  congress eval -f policy.yaml --data servers.yaml -o json
  congress eval -f classification.yaml --live nova.yaml --live neutron.yaml --secret openstack.yaml
  congress eval -f policies/ --data fixtures/ -q 'error(vm)' --policy classification")]
pub struct EvalArgs {
    /// Policy sources: Policy/LibraryPolicy manifests (YAML, multi-document) or `.congress`
    /// files; directories are read recursively. Datasource manifests among them give
    /// schemas. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Data: table fixtures, schema files and Datasource manifests (YAML or JSON);
    /// directories are read recursively. Repeatable.
    #[arg(long = "data", value_name = "FILE|DIR")]
    pub data: Vec<PathBuf>,
    /// A live datasource: a Datasource manifest of a polled driver (`http`, `nova`, ...),
    /// polled once, its tables used like fixtures (credentials as for `congress poll`).
    /// Repeatable.
    #[arg(long = "live", value_name = "DATASOURCE.yaml")]
    pub live: Vec<PathBuf>,
    /// A Secret manifest with the live datasources' credentials.
    #[arg(long, value_name = "FILE", requires = "live")]
    pub secret: Option<PathBuf>,
    /// Answer this query (a literal, e.g. `error(x)`) instead of listing violations.
    #[arg(short = 'q', long = "query", value_name = "QUERY")]
    pub query: Option<String>,
    /// The policy the query is asked in, by manifest or engine name (default: the only
    /// loaded policy, else `classification`).
    #[arg(long, value_name = "POLICY", requires = "query")]
    pub policy: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Load everything for `eval`: policies from `files`, fixtures from `data`, plus the
/// schemas of Datasource manifests among `files`; then the rows of live datasources, polled
/// beforehand (one transaction; the actions it fires are added to [`Loaded::actions`]).
pub fn load_with_live(
    files: &[PathBuf],
    data: &[PathBuf],
    live: &[super::poll::PolledFile],
) -> Result<Loaded, Vec<LoadError>> {
    let policies = load::load_policies(files);
    let fixtures = load::load_schemas(files).and_then(|mut s| {
        for l in live {
            s.insert(l.name.clone(), l.schema.clone());
        }
        load::load_fixtures_with_schemas(data, s)
    });
    let (policies, fixtures) = match (policies, fixtures) {
        (Ok(p), Ok(f)) => (p, f),
        (p, f) => {
            let mut errors = p.err().unwrap_or_default();
            errors.extend(f.err().unwrap_or_default());
            return Err(errors);
        }
    };
    let mut loaded = load::build(&policies, &fixtures, std::io::stderr().is_terminal())?;
    if !live.is_empty() {
        let mut txn = loaded.engine.transaction();
        for l in live {
            for (table, rows) in &l.tables {
                txn.insert_rows(&l.name, table, rows.clone());
            }
        }
        let commit = txn.commit().map_err(|e| {
            let origin = load::Origin::new("<live datasources>".to_string(), 0, 1, 1);
            vec![LoadError::Engine { origin, message: e.to_string() }]
        })?;
        loaded.actions.extend(commit.actions);
    }
    Ok(loaded)
}

/// Plain text of a value for the table output (strings unquoted).
fn cell(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn action_json(a: &ActionEvent) -> serde_json::Value {
    json!({"service": &*a.service, "action": &*a.action, "args": a.args.iter().map(Value::to_json).collect::<Vec<_>>(), "policy": &*a.policy})
}

fn action_text(a: &ActionEvent) -> String {
    let args: Vec<String> = a.args.iter().map(Value::to_string).collect();
    format!("{}:{}({})  [policy {}]", a.service, a.action, args.join(", "), a.policy)
}

/// Rows as aligned columns, indented.
pub fn table(rows: &[Vec<Value>]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let n = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| cells.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &cells {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str("  ");
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn emit(value: &serde_json::Value, output: Output) {
    match output {
        Output::Yaml => print!("{}", serde_norway::to_string(value).unwrap_or_default()),
        _ => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
    }
}

/// Run `congress eval`.
pub fn run(args: EvalArgs) -> ExitCode {
    if args.files.is_empty() {
        eprintln!("error: no policy sources: pass -f FILE|DIR");
        return ExitCode::from(2);
    }
    let mut live = Vec::new();
    for file in &args.live {
        match super::poll::poll_file(file, args.secret.as_deref()) {
            Ok(p) => live.push(p),
            Err(super::poll::PollFileError::Input(e)) => {
                eprintln!("error: --live {}: {e}", file.display());
                return ExitCode::from(2);
            }
            Err(super::poll::PollFileError::Poll(reason, e)) => {
                eprintln!("error: --live {}: the poll failed ({reason}): {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    let loaded = match load_with_live(&args.files, &args.data, &live) {
        Ok(l) => l,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::from(2);
        }
    };
    let engine = &loaded.engine;
    let active: Vec<&str> = loaded.policies.iter().filter(|p| !p.library).map(|p| p.name.as_str()).collect();
    for w in engine.warnings() {
        eprintln!("warning: policy {}: {}", w.policy, w.message);
    }
    for f in engine.builtin_failures() {
        eprintln!("warning: policy {}: builtin failed {} times in `{}`: {}", f.policy, f.count, f.rule, f.last_error);
    }

    if let Some(query) = &args.query {
        let policy = args.policy.as_deref().map(engine_name).unwrap_or_else(|| match active.as_slice() {
            [only] => only.to_string(),
            _ => "classification".to_string(),
        });
        let answers = match engine.query_values(&policy, query) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: query `{query}` in policy {policy}: {e}");
                return ExitCode::from(2);
            }
        };
        match args.output {
            Output::Table => {
                println!("{policy}: {} answer{} to {query}", answers.len(), if answers.len() == 1 { "" } else { "s" });
                print!("{}", table(&answers));
            }
            out => emit(
                &json!({
                    "policy": policy,
                    "query": query,
                    "answers": answers.iter().map(|r| r.iter().map(Value::to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
                }),
                out,
            ),
        }
        return ExitCode::SUCCESS;
    }

    let mut total = 0usize;
    let mut report = Vec::new();
    let mut text = String::new();
    for name in &active {
        let has_error = engine.tables(name).map(|t| t.iter().any(|t| t == "error")).unwrap_or(false);
        let mut rows = if has_error { engine.rows(name, "error").unwrap_or_default() } else { Vec::new() };
        rows.sort();
        total += rows.len();
        let warnings: Vec<serde_json::Value> = engine
            .warnings()
            .into_iter()
            .filter(|w| w.policy == *name)
            .map(|w| json!({"rule": w.rule, "message": w.message}))
            .collect();
        let failures: Vec<serde_json::Value> = engine
            .builtin_failures()
            .into_iter()
            .filter(|f| f.policy == *name)
            .map(|f| json!({"rule": f.rule, "count": f.count, "lastError": f.last_error}))
            .collect();
        match rows.len() {
            0 => text.push_str(&format!("{name}: no violations\n")),
            n => {
                text.push_str(&format!("{name}: {n} violation{}\n", if n == 1 { "" } else { "s" }));
                text.push_str(&table(&rows));
            }
        }
        report.push(json!({
            "name": name,
            "violations": rows.iter().map(|r| r.iter().map(Value::to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "warnings": warnings,
            "builtinFailures": failures,
        }));
    }
    let mut actions = loaded.actions.clone();
    actions.sort();
    actions.dedup();
    match args.output {
        Output::Table => {
            print!("{text}");
            if !actions.is_empty() {
                println!("actions that would fire (not executed):");
                for a in &actions {
                    println!("  {}", action_text(a));
                }
            }
        }
        out => emit(&json!({"policies": report, "actions": actions.iter().map(action_json).collect::<Vec<_>>()}), out),
    }
    if total > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
