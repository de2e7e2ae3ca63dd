//! `congress completions SHELL`: a completion script for the shell, on stdout.

use clap::CommandFactory;
use clap_complete::Shell;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  # bash: load now, or install for every session
  source <(congress completions bash)
  congress completions bash > ~/.local/share/bash-completion/completions/congress

  # zsh: a file named _congress in a directory of $fpath
  congress completions zsh > ~/.zfunc/_congress

  # fish
  congress completions fish > ~/.config/fish/completions/congress.fish";

/// `congress completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print the completion script.
pub fn run(args: CompletionsArgs) -> ExitCode {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "congress", &mut std::io::stdout());
    ExitCode::SUCCESS
}
