//! `congress explain`: why a row holds, as a proof tree: the rule instance that derives
//! it, and below it the proof of each body literal (facts, absent rows, builtins).

use crate::cli::input_args::{InputArgs, pick_policy};
use crate::cli::simulate::print_engine_error;
use congress_engine::EngineError;
use congress_engine::Proof;
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  # Why is vm-4 a violation?
  congress explain -f examples/cloud --data examples/cloud 'error(\"vm-4\")'

  # A row of another policy's table, as JSON
  congress explain -f examples/cloud --data examples/cloud 'execute[nova:servers.pause(\"vm-4\")]' \\
    --policy reactive -o json

Exit status: 0 when the row holds (its proof is printed), 1 when it does not, 2 on bad input.";

/// `congress explain`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The policy the row is in, by manifest or engine name (default: the row's `policy:`
    /// prefix, else the policy defining its table, else `classification`).
    #[arg(long, short = 'p')]
    pub policy: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// The ground row to explain, e.g. `error("vm-4")`.
    #[arg(value_name = "ROW")]
    pub row: String,
}

/// How the proof is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// An indented tree.
    Text,
    /// `{"literal", "how", "children": [...]}`, recursively.
    Json,
}

/// Run the subcommand.
pub fn run(args: ExplainArgs) -> ExitCode {
    let mut loaded = match args.inputs.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let policy = match pick_policy(&loaded.engine, &loaded.policies, args.policy.as_deref(), &args.row) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match loaded.engine.explain(&policy, &args.row) {
        Ok(proof) => {
            match args.output {
                Output::Text => print!("{}", render_tree(&proof)),
                Output::Json => println!("{}", serde_json::to_string_pretty(&proof_json(&proof)).unwrap_or_default()),
            }
            ExitCode::SUCCESS
        }
        Err(EngineError::NoProof(msg)) => {
            eprintln!("{msg} (in policy {policy})");
            ExitCode::FAILURE
        }
        Err(e) => {
            print_engine_error("explain", &e, "ROW");
            ExitCode::from(2)
        }
    }
}

/// A proof as a tree drawn with box characters:
///
/// ```text
/// classification:error("vm-4")  ⇐ error(vm) :- ...
/// ├─ nova:servers("vm-4", ...)  (fact of nova)
/// └─ not classification:connected("vm-4")  (absent)
/// ```
pub fn render_tree(p: &Proof) -> String {
    fn line(p: &Proof) -> String {
        match p.how.strip_prefix("rule: ") {
            Some(rule) => format!("{}  ⇐ {rule}", p.literal),
            None => format!("{}  ({})", p.literal, p.how),
        }
    }
    fn go(p: &Proof, prefix: &str, out: &mut String) {
        for (i, c) in p.children.iter().enumerate() {
            let last = i + 1 == p.children.len();
            let _ = writeln!(out, "{prefix}{}{}", if last { "└─ " } else { "├─ " }, line(c));
            go(c, &format!("{prefix}{}", if last { "   " } else { "│  " }), out);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(p));
    go(p, "", &mut out);
    out
}

/// A proof as JSON.
pub fn proof_json(p: &Proof) -> serde_json::Value {
    json!({
        "literal": p.literal,
        "how": p.how,
        "children": p.children.iter().map(proof_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(l: &str, how: &str) -> Proof {
        Proof { literal: l.into(), how: how.into(), children: vec![] }
    }

    #[test]
    fn tree_shape() {
        let p = Proof {
            literal: "a(1)".into(),
            how: "rule: a(x) :- b(x), not c(x)".into(),
            children: vec![
                Proof {
                    literal: "b(1)".into(),
                    how: "rule: b(x) :- d(x)".into(),
                    children: vec![leaf("d(1)", "fact of p")],
                },
                leaf("not c(1)", "absent"),
            ],
        };
        assert_eq!(
            render_tree(&p),
            "a(1)  ⇐ a(x) :- b(x), not c(x)\n├─ b(1)  ⇐ b(x) :- d(x)\n│  └─ d(1)  (fact of p)\n└─ not c(1)  (absent)\n"
        );
    }
}
