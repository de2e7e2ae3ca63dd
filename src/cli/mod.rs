//! The command line: one binary, one subcommand per job.
//!
//! Each subcommand is one variant of [`Command`] carrying its module's clap `Args`
//! struct, and [`run`] dispatches it to that module's `run(args)`. To add one: a module
//! here, a variant below, a match arm in [`run`].

pub mod bench;
pub mod conformance;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `congress`: cloud policy in Datalog.
#[derive(Debug, Parser)]
#[command(name = "congress", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a file of recorded Congress conformance cases against this engine and
    /// compare (documented deviations: docs/deviations.md).
    Conformance(conformance::ConformanceArgs),
    /// Time the engine on the shared bench workloads (C, a, b, d) and print RESULT lines.
    Bench(bench::BenchArgs),
}

/// Parse the command line and run the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conformance(args) => conformance::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn conformance_takes_a_file_and_verbose() {
        let cli = Cli::try_parse_from(["congress", "conformance", "cases.json", "--verbose"]);
        match cli.map(|c| c.command) {
            Ok(Command::Conformance(args)) => {
                assert_eq!(args.file, std::path::PathBuf::from("cases.json"));
                assert!(args.verbose);
            }
            other => panic!("unexpected parse: {other:?}"),
        }
    }
}
