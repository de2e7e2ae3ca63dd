//! The command line: one binary, one subcommand per job.
//!
//! Each subcommand is one variant of [`Command`] carrying its module's clap `Args`
//! struct, and [`run`] dispatches it to that module's `run(args)`. To add one: a module
//! here, a variant below, a match arm in [`run`].

pub mod admit;
pub mod approve;
#[cfg(feature = "bench")]
pub mod bench;
pub mod check;
pub mod completions;
pub mod conformance;
pub mod crds;
pub mod eval;
pub mod explain;
pub mod fmt;
pub mod input_args;
pub mod library;
pub mod operator;
pub mod poll;
pub mod serve;
pub mod simulate;
pub mod test;

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
    #[cfg(feature = "bench")]
    Bench(bench::BenchArgs),
    /// Run policy unit tests (congress-test.yaml, *.test.yaml): expected rows and actions.
    Test(test::TestArgs),
    /// Simulate a sequence of changes (Congress's simulate) and print a query's answers.
    Simulate(simulate::SimulateArgs),
    /// Print the proof tree of a derived row: the rules and facts that make it hold.
    Explain(explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Evaluate policies over fixtures: print every policy's violations (the `error`
    /// table) or a query's answers, and the actions that would fire (never executed).
    Eval(eval::EvalArgs),
    /// Parse and analyse policy sources only; print every diagnostic with its snippet.
    Check(check::CheckArgs),
    /// Rewrite rule text in canonical form (`.congress` files and Policy manifests).
    Fmt(fmt::FmtArgs),
    /// Run a polled driver (http, nova, neutronv2, ...) once from a Datasource manifest and
    /// print its tables: check a mapping and credentials before deploying them.
    Poll(poll::PollArgs),
    /// Print the CustomResourceDefinitions of every congress kind (or --write them).
    Crds(crds::CrdsArgs),
    /// Approve ActionRequests that wait for a person (manual approval), in the current cluster.
    Approve(approve::ApproveArgs),
    /// The policy library: list, show and activate library policies, diff a newer library
    /// against the installed one, reset customised ones (from ./library, --dir or --cluster).
    Library(library::LibraryArgs),
    /// Serve Congress's REST API and the dashboard without Kubernetes (state in SQLite).
    Serve(Box<serve::ServeArgs>),
    /// Run the Kubernetes operator: reconcile Policies and Datasources, write status,
    /// PolicyReports and events, serve /metrics.
    Operator(Box<operator::OperatorArgs>),
}

/// Parse the command line and run the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conformance(args) => conformance::run(args),
        #[cfg(feature = "bench")]
        Command::Bench(args) => bench::run(args),
        Command::Test(args) => test::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Check(args) => check::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Crds(args) => crds::run(args),
        Command::Poll(args) => poll::run(args),
        Command::Approve(args) => approve::run(args),
        Command::Library(args) => library::run(args),
        Command::Operator(args) => operator::run(*args),
        Command::Serve(args) => serve::run(*args),
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
