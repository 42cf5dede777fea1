//! The swarmlab command: parses arguments, runs one command of the library,
//! prints an error once on one line, and exits with that error's code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our
    // output goes away (`swarmlab ls | head`) instead of failing to print.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::install_panic_hook();
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("swarmlab: error: {}", swarmlab::error::one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}
