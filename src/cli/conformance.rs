//! `congress conformance FILE`: replay recorded Congress cases on this engine and compare
//! (the replay itself is the `congress-conformance` crate).

use congress_conformance::{DEVIATIONS_MD, Deviations, replay_file};
use std::path::PathBuf;
use std::process::ExitCode;

/// `congress conformance FILE [--verbose]`.
#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// A cases file in the format of shared/conformance/cases.json.
    pub file: PathBuf,
    /// Print every mismatch of a failing or deviating case, not just the first.
    #[arg(long)]
    pub verbose: bool,
}

/// Run the subcommand: print one line per case and the totals; exit 1 on any failure,
/// 2 when the file or the deviations document cannot be read.
pub fn run(args: ConformanceArgs) -> ExitCode {
    let deviations = match Deviations::parse(DEVIATIONS_MD) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match replay_file(&args.file, &deviations, args.verbose) {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
