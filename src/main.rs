//! The swarmlab command: parses arguments, runs one command of the library,
//! prints an error once on one line, and exits with that error's code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::install_panic_hook();
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("swarmlab: error: {}", swarmlab::error::one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}
