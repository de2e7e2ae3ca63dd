//! What `simulate`, `explain` and `test` share: `-f`/`--data` arguments, loading them
//! into an engine (errors printed with `file:line:col`, exit 2), and picking the policy a
//! query or row is about when `--policy` is not given.

use congress_engine::Engine;
use congress_model::engine_name;
use congress_model::load::{self, FixtureSet, LoadError, Loaded, PolicySource};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Policy and fixture paths.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Policy sources: Policy/LibraryPolicy manifests (YAML, multi-document) or `.congress`
    /// files; a directory is read recursively. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Data: Datasource manifests, schema files and table fixtures (YAML or JSON); a
    /// directory is read recursively. Repeatable.
    #[arg(long = "data", value_name = "FILE|DIR")]
    pub data: Vec<PathBuf>,
}

/// Print the load errors to stderr (at most
/// [`MAX_ERRORS_PER_FILE`](crate::cli::check::MAX_ERRORS_PER_FILE) per file).
pub fn report_load_errors(errors: &[LoadError]) {
    eprint!("{}", crate::cli::check::format_errors(errors));
    let n = errors.len();
    eprintln!("error: could not load the inputs ({n} error{})", if n == 1 { "" } else { "s" });
}

/// Load policies and fixtures and build the engine.
pub fn load_all(policies: &[PathBuf], data: &[PathBuf]) -> Result<Loaded, Vec<LoadError>> {
    let sources = load::load_policies(policies);
    let fixtures = load::load_fixtures(data);
    let (sources, fixtures) = match (sources, fixtures) {
        (Ok(s), Ok(f)) => (s, f),
        (s, f) => {
            let mut errors = s.err().unwrap_or_default();
            errors.extend(f.err().unwrap_or_default());
            return Err(errors);
        }
    };
    build(&sources, &fixtures)
}

/// Build an engine from loaded sources, with a progress bar when stderr is a terminal.
pub fn build(sources: &[PolicySource], fixtures: &FixtureSet) -> Result<Loaded, Vec<LoadError>> {
    load::build(sources, fixtures, std::io::stderr().is_terminal())
}

impl InputArgs {
    /// Load everything, or print the errors and return exit code 2.
    pub fn load(&self) -> Result<Loaded, ExitCode> {
        if self.files.is_empty() {
            eprintln!("error: no policy sources: pass -f FILE|DIR");
            return Err(ExitCode::from(2));
        }
        load_all(&self.files, &self.data).map_err(|errors| {
            report_load_errors(&errors);
            ExitCode::from(2)
        })
    }
}

/// The table a query literal or row names, with its policy prefix if written:
/// `classification:error("vm-1")` -> (Some("classification"), "error");
/// `execute[nova:servers.pause(x)]` -> (None, "nova:servers.pause") with `execute` set.
pub fn literal_table(text: &str) -> (Option<String>, String, bool) {
    let t = text.trim();
    let (t, execute) = match t.strip_prefix("execute[") {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    let name = t.split('(').next().unwrap_or(t).trim().trim_end_matches(['+', '-']);
    if execute {
        return (None, name.to_string(), true);
    }
    match name.split_once(':') {
        Some((p, table)) => (Some(p.trim().to_string()), table.trim().to_string(), false),
        None => (None, name.to_string(), false),
    }
}

/// The policy a query or row is evaluated in: `--policy` when given (a manifest name or
/// an engine name: `pod-security` and `pod_security` are the same policy), else the literal's
/// own `policy:` prefix, else the one loaded policy that defines (or mentions) the table
/// (when several do: the one where the literal has answers, else `classification`), else
/// `classification`.
pub fn pick_policy(
    engine: &Engine,
    loaded: &[PolicySource],
    explicit: Option<&str>,
    text: &str,
) -> Result<String, String> {
    if let Some(given) = explicit {
        let p = engine_name(given);
        return if engine.policy_kind(&p).is_some() {
            Ok(p)
        } else {
            Err(format!("no policy `{given}` (policies: {})", user_policies(engine, loaded).join(", ")))
        };
    }
    let (prefix, table, execute) = literal_table(text);
    if let Some(p) = prefix
        && engine.policy_kind(&p).is_some()
    {
        return Ok(p);
    }
    let candidates: Vec<String> = user_policies(engine, loaded)
        .into_iter()
        .filter(|p| {
            if execute {
                engine.rules(p).is_ok_and(|rules| rules.iter().any(|r| r.contains(&format!("execute[{table}("))))
            } else {
                engine.tables(p).is_ok_and(|t| t.contains(&table))
            }
        })
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Ok("classification".to_string()),
        many => {
            // Prefer the policy that defines the table over those that only read it, then
            // the one where the literal has answers, then Congress's default policy.
            let defining: Vec<&String> = many
                .iter()
                .filter(|p| engine.rules(p).is_ok_and(|rules| rules.iter().any(|r| defines(r, &table))))
                .collect();
            let answering: Vec<&String> =
                many.iter().filter(|p| engine.query_values(p, text).is_ok_and(|r| !r.is_empty())).collect();
            match (defining.as_slice(), answering.as_slice()) {
                ([one], _) | (_, [one]) => Ok((*one).clone()),
                _ if many.iter().any(|p| p == "classification") => Ok("classification".to_string()),
                _ => Err(format!("`{table}` is in several policies ({}): choose one with --policy", many.join(", "))),
            }
        }
    }
}

/// Whether a statement's head is `table(...)`.
fn defines(rule: &str, table: &str) -> bool {
    let head = rule.split(":-").next().unwrap_or(rule);
    head.split(',').any(|h| h.trim().split('(').next().is_some_and(|n| n.trim() == table))
}

/// Policies loaded from the sources (not datasources), by engine name, in name order.
fn user_policies(engine: &Engine, loaded: &[PolicySource]) -> Vec<String> {
    let mut names: Vec<String> =
        loaded.iter().filter(|p| !p.library && engine.policy_kind(&p.name).is_some()).map(|p| p.name.clone()).collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_tables() {
        assert_eq!(literal_table("error(x)"), (None, "error".into(), false));
        assert_eq!(
            literal_table(" classification:error(\"vm-1\")"),
            (Some("classification".into()), "error".into(), false)
        );
        assert_eq!(literal_table("execute[nova:servers.pause(x)]"), (None, "nova:servers.pause".into(), true));
        assert_eq!(literal_table("p+(1)"), (None, "p".into(), false));
    }

    #[test]
    fn heads() {
        assert!(defines("error(vm) :- nova:servers(id=vm)", "error"));
        assert!(!defines("connected(vm) :- error(vm)", "error"));
    }
}
