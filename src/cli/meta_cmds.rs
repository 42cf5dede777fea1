//! config init, completions, man: things about swarmlab itself.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use swarmlab::config::EXAMPLE;
use swarmlab::error::{Error, Result};

use super::Cli;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Write a commented example cluster file with every key (to stdout without FILE)
    Init {
        file: Option<PathBuf>,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
}

pub fn config(command: ConfigCommand) -> Result<()> {
    let ConfigCommand::Init { file, force } = command;
    let Some(file) = file else {
        outln!("{}", EXAMPLE.strip_suffix('\n').unwrap_or(EXAMPLE));
        return Ok(());
    };
    if file.exists() && !force {
        return Err(Error::invalid(format!(
            "{} exists: choose another file or add --force",
            file.display()
        )));
    }
    std::fs::write(&file, EXAMPLE).map_err(|e| Error::Other(format!("cannot write {}: {e}", file.display())))?;
    errln!(
        "Wrote {}; create the cluster with: swarmlab create --config {}",
        file.display(),
        file.display()
    );
    Ok(())
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swarmlab completions bash > /etc/bash_completion.d/swarmlab\n  swarmlab completions zsh > \"${fpath[1]}/_swarmlab\"\n  swarmlab completions fish > ~/.config/fish/completions/swarmlab.fish"
)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: Shell,
}

pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    // Made in memory first: clap_complete panics on a failed write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "swarmlab", &mut script);
    super::output::write_all(&script).map_err(|e| Error::Other(format!("cannot write the completions: {e}")))
}

/// Prints the man page (roff), generated from the command-line definition.
pub fn man() -> Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .and_then(|()| super::output::write_all(&page))
        .map_err(|e| Error::Other(format!("cannot write the man page: {e}")))
}
