//! The swarmlab command: parses arguments, runs one command of the library,
//! prints an error once on one line, and exits with that error's code.

mod cli;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGPIPE stays ignored (see cli/signals.rs): output to a reader that
    // went away is dropped, `swarmlab ls | head` ends quietly.
    cli::install_panic_hook();
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let line = swarmlab::error::one_line(&error.to_string());
            let _ = writeln!(std::io::stderr(), "swarmlab: error: {line}");
            ExitCode::from(error.exit_code())
        }
    }
}
