//! `congress check`: parse and analyse policy sources only, reporting every diagnostic.

use congress_model::load::{self, FixtureSet, LoadError, PolicySource};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `congress check`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  congress check -f policies/\n  congress check -f policy.yaml -f rules.congress")]
pub struct CheckArgs {
    /// Policy sources: Policy/LibraryPolicy manifests or `.congress` files; directories
    /// are read recursively. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// More policy sources (same as -f).
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// At most this many errors are printed per file; the rest are counted.
pub const MAX_ERRORS_PER_FILE: usize = 20;

/// Load errors as printed: each (`error: ...`, with its snippet), at most
/// [`MAX_ERRORS_PER_FILE`] per file, then a line per file saying how many more were cut.
pub fn format_errors(errors: &[LoadError]) -> String {
    let file = |e: &LoadError| match e {
        LoadError::Io { path, .. } => path.clone(),
        _ => e.origin().map(|o| o.file.clone()).unwrap_or_default(),
    };
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    let mut out = String::new();
    for e in errors {
        let f = file(e);
        let n = match seen.iter_mut().find(|(p, _)| *p == f) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((f, 1));
                1
            }
        };
        if n <= MAX_ERRORS_PER_FILE {
            out.push_str(&format!("error: {e}\n"));
        }
    }
    for (f, n) in seen.into_iter().filter(|(_, n)| *n > MAX_ERRORS_PER_FILE) {
        let more = n - MAX_ERRORS_PER_FILE;
        let errors = if more == 1 { "error" } else { "errors" };
        if f.as_os_str().is_empty() {
            out.push_str(&format!("error: {more} more {errors} not shown\n"));
        } else {
            out.push_str(&format!("error: {more} more {errors} in {} not shown\n", f.display()));
        }
    }
    out
}

/// Print load errors (see [`format_errors`]) and a count.
pub fn print_errors(errors: &[LoadError]) {
    eprint!("{}", format_errors(errors));
    let n = errors.len();
    eprintln!("error: {n} problem{} found", if n == 1 { "" } else { "s" });
}

/// Check the sources: exit 0 when clean, 2 on any error.
pub fn run(args: CheckArgs) -> ExitCode {
    let mut paths = args.files;
    paths.extend(args.paths);
    if paths.is_empty() {
        eprintln!("error: no policy sources: pass -f FILE|DIR");
        return ExitCode::from(2);
    }
    match check(&paths) {
        Ok((policies, warnings)) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            let statements: usize = policies.iter().map(|p| p.statements.len()).sum();
            println!("ok: {} policies, {statements} statements", policies.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_errors(&errors);
            ExitCode::from(2)
        }
    }
}

/// Load and analyse; library policies no Policy activates are checked on their own.
pub fn check(paths: &[PathBuf]) -> Result<(Vec<PolicySource>, Vec<String>), Vec<LoadError>> {
    let policies = load::load_policies(paths)?;
    let schemas = load::load_schemas(paths)?;
    let fixtures = FixtureSet { schemas, tables: Vec::new() };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    match load::build(&policies, &fixtures, false) {
        Ok(loaded) => {
            warnings.extend(loaded.engine.warnings().into_iter().map(|w| format!("policy {}: {}", w.policy, w.message)))
        }
        Err(e) => errors.extend(e),
    }
    let used: Vec<&str> = policies.iter().filter_map(|p| p.library_ref.as_deref()).collect();
    let inactive: Vec<PolicySource> = policies
        .iter()
        .filter(|p| p.library && !used.contains(&p.resource.as_str()))
        .map(|p| PolicySource { library: false, ..p.clone() })
        .collect();
    if !inactive.is_empty()
        && let Err(e) = load::build(&inactive, &fixtures, false)
    {
        errors.extend(e);
    }
    if errors.is_empty() { Ok((policies, warnings)) } else { Err(errors) }
}
