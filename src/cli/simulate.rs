//! `congress simulate`: Congress's simulate on loaded policies and fixtures. The sequence
//! (data updates `ds:t+(..)`, rule updates, action invocations) is applied, the query
//! answered, and everything undone; nothing is executed.

use crate::cli::input_args::{InputArgs, pick_policy};
use congress_engine::SimulateRequest;
use congress_engine::syntax::diag::render_all;
use congress_engine::{EngineError, PolicyKind};
use congress_model::engine_name;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  # Would adding a port for vm-3 on an ACTIVE network clear its violation? (--delta: q+/q- rows)
  congress simulate -f examples/cloud --data examples/cloud -q 'error(x)' --delta \\
    --sequence 'neutronv2:ports+(\"port-3\", \"tenant-a\", \"\", \"net-1\", \"fa:16:3e:00:00:0c\", \"True\", \"ACTIVE\", \"vm-3\", \"compute:nova\")'

  # Several updates, one per line or separated by whitespace; JSON output as Congress's API
  congress simulate -f policy.yaml --data data/ -q 'error(x)' -o json \\
    --sequence 'nova:servers-(\"vm-1\", ...) nova:servers+(\"vm-1\", ...)'

  # Invoke an action described by an action policy's rules
  congress simulate -f policies/ --data data/ -q 'p(x)' --sequence 'a(1)' --action-policy action

  # Admission offline, for CI: would these objects add violations to proactive policies?
  congress simulate -f policies/ --data cluster/ --manifest deploy/app.yaml
  (exit 0: every object admitted; 1: one denied, with the rows it would add and their proof)";

/// `congress simulate`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The sequence of updates and actions, in Congress syntax (`ds:t+(...)`, `p-(...)`,
    /// `p+(x) :- q(x)`, `action(args)`).
    #[arg(long, short = 's', required_unless_present = "manifest", conflicts_with = "manifest")]
    pub sequence: Option<String>,
    /// The query literal whose answers are printed, e.g. `error(x)`.
    #[arg(long, short = 'q', required_unless_present = "manifest", conflicts_with = "manifest")]
    pub query: Option<String>,
    /// Admission, offline: would creating the objects of these Kubernetes manifests (in
    /// order, each admitted one kept for the next) add violations to `proactive` policies?
    /// They become rows through the `kubernetes` Datasources among `--data`. Exit 1 when
    /// one is denied.
    #[arg(long, value_name = "FILE|DIR")]
    pub manifest: Vec<std::path::PathBuf>,
    /// The policy the query and unprefixed updates refer to, by manifest or engine name
    /// (default: the literal's `policy:` prefix, else the policy defining its table, else
    /// `classification`).
    #[arg(long, short = 'p')]
    pub policy: Option<String>,
    /// The action policy describing the effects of actions (manifest or engine name).
    #[arg(long, default_value = "action")]
    pub action_policy: String,
    /// Print the change in the answer (`q+(..)`, `q-(..)`) instead of the answer.
    #[arg(long)]
    pub delta: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One answer per line, in Congress's printing.
    Text,
    /// `{"result": [...]}`, as Congress's `?action=simulate` responds.
    Json,
}

/// Run the subcommand: exit 0 with the answers, 2 on bad input.
pub fn run(args: SimulateArgs) -> ExitCode {
    let mut loaded = match args.inputs.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    if !args.manifest.is_empty() {
        return super::admit::run(&args.manifest, &args.inputs.data, &mut loaded, args.output == Output::Json);
    }
    let (Some(query), Some(sequence)) = (args.query.as_deref(), args.sequence.as_deref()) else {
        eprintln!("error: simulate needs --query and --sequence, or --manifest");
        return ExitCode::from(2);
    };
    let engine = &mut loaded.engine;
    let policy = match pick_policy(engine, &loaded.policies, args.policy.as_deref(), query) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let action_policy = engine_name(&args.action_policy);
    // Congress always has an `action` policy; an empty one means "no actions defined".
    if engine.policy_kind(&action_policy).is_none() && action_policy == "action" {
        let _ = engine.create_policy("action", PolicyKind::Action);
    }
    let req = SimulateRequest { policy: &policy, query, sequence, action_policy: &action_policy, delta: args.delta };
    match engine.simulate(&req) {
        Ok(answers) => {
            match args.output {
                Output::Text => {
                    for a in &answers {
                        println!("{a}");
                    }
                }
                Output::Json => {
                    println!("{}", serde_json::json!({ "result": answers }));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_engine_error("simulate", &e, "--sequence");
            ExitCode::from(2)
        }
    }
}

/// An engine error; syntax and analysis errors with a snippet and caret into `name`.
pub fn print_engine_error(what: &str, e: &EngineError, name: &str) {
    match e.diagnostics() {
        Some((src, diags)) if !diags.is_empty() => {
            eprintln!("error: {what}:");
            eprint!("{}", render_all(diags, name, src));
        }
        _ => eprintln!("error: {what}: {e}"),
    }
}
