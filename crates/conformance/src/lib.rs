//! The conformance replay behind `congress conformance FILE`: recorded Congress cases,
//! replayed on this engine and compared.
//!
//! A cases file (format: `shared/conformance/README.md`) holds cases recorded by running
//! OpenStack Congress. Each case is replayed on a fresh
//! [`Engine::with_default_policies`]: datasources, policies, rule inserts (one rule per
//! insert, or one all-or-nothing transaction for a `"batch"` policy), data pushes,
//! queries, then steps. Rule acceptance, query answers (as sets), table lists, rows,
//! simulate results and fired actions (as multisets) are compared with the recording.
//!
//! A case that differs is a failure unless `docs/deviations.md` lists it under a
//! deliberate deviation; then it is reported as `deviates (documented)`. That file is
//! embedded in the binary, so the command works anywhere.

mod cases;
mod compare;
mod deviations;
mod replay;

pub use deviations::{Deviation, Deviations};

use cases::Case;
use replay::CaseOutcome;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// The deviations document, as built into the binary.
pub const DEVIATIONS_MD: &str = include_str!("../../../docs/deviations.md");

/// Why a cases file could not be replayed at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: expected a JSON list of cases (or an object with a \"cases\" list)", .path.display())]
    NotCases { path: PathBuf },
    #[error("docs/deviations.md, line {line}: {message}")]
    Deviations { line: usize, message: String },
}

/// The result of replaying a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The output, line by line, closing with the totals (`N passed, M failed` last).
    pub lines: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    /// Cases that differ from the recording as a documented deviation.
    pub deviated: usize,
}

/// Replay a cases file against the deviations built into the binary, printing first
/// mismatches only.
pub fn run_file(path: &Path) -> Result<Report, Error> {
    replay_file(path, &Deviations::parse(DEVIATIONS_MD)?, false)
}

/// Replay a cases file; `verbose` lists every mismatch of a non-passing case.
pub fn replay_file(path: &Path, deviations: &Deviations, verbose: bool) -> Result<Report, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    let json: Json = serde_json::from_str(&text).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
    let items = match json {
        Json::Array(items) => items,
        Json::Object(mut obj) => match obj.remove("cases") {
            Some(Json::Array(items)) => items,
            _ => {
                return Err(Error::NotCases { path: path.to_path_buf() });
            }
        },
        _ => {
            return Err(Error::NotCases { path: path.to_path_buf() });
        }
    };
    Ok(replay_cases(items, deviations, verbose))
}

/// Replay already-loaded cases (each a JSON object in the cases format).
pub fn replay_cases(items: Vec<Json>, deviations: &Deviations, verbose: bool) -> Report {
    let mut report = Report::default();
    let mut seen = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("case #{}", index + 1));
        let outcome = match serde_json::from_value::<Case>(item) {
            Ok(case) => replay::run_isolated(case),
            Err(e) => CaseOutcome::broken(format!("malformed case: {e}")),
        };
        classify(&mut report, &name, outcome, deviations, verbose);
        seen.push(name);
    }
    // A deviation some of whose cases are in this file was written for it: a listed name
    // the file lacks is a typo or a removed case. (Deviations about another file, such
    // as the project's own cases, say nothing.)
    for d in &deviations.list {
        if d.cases.iter().any(|c| seen.contains(c)) {
            for case in d.cases.iter().filter(|c| !seen.contains(c)) {
                report.lines.push(format!(
                    "note: docs/deviations.md lists {case} under {}, but this file has no such case",
                    d.id
                ));
            }
        }
    }
    report.lines.push(format!("{} deviate (documented)", report.deviated));
    report.lines.push(format!("{} passed, {} failed", report.passed, report.failed));
    report
}

fn classify(report: &mut Report, name: &str, outcome: CaseOutcome, deviations: &Deviations, verbose: bool) {
    let listed = deviations.ids_for(name);
    let first_hard = outcome.mismatches.iter().find(|m| m.hard);
    let details = |report: &mut Report| {
        if verbose {
            for m in &outcome.mismatches {
                let tag = if m.hard { " [not excused by a listing]" } else { "" };
                report.lines.push(format!("    - {}{tag}", m.text));
            }
        }
    };
    if outcome.mismatches.is_empty() {
        report.passed += 1;
        report.lines.push(format!("pass {name}"));
        if !listed.is_empty() {
            report.lines.push(format!(
                "note: {name} matches Congress but docs/deviations.md lists it under {}: the listing is stale",
                listed.join(", ")
            ));
        }
    } else if first_hard.is_none() && (!listed.is_empty() || outcome.mismatches.iter().all(|m| m.intended)) {
        // Listed, or differing only where the case's intended_* value says Congress is
        // wrong.
        let mut why = listed;
        if why.is_empty() {
            why.push("matches intended_executed_actions_after_setup".to_string());
        }
        report.deviated += 1;
        report.lines.push(format!("deviates (documented) {name}: {}", why.join(", ")));
        details(report);
    } else {
        report.failed += 1;
        let first = first_hard.unwrap_or(&outcome.mismatches[0]);
        report.lines.push(format!("FAIL {name}: {}", first.text));
        details(report);
    }
}
