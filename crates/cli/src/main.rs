//! The `flowbot` command-line tool. `main` parses arguments and reports errors; each command lives
//! in its own module under `commands/` and returns an exit code.
//!
//! Exit codes: 0 success; 1 the command ran and found problems (validation errors, failed replays);
//! 2 the command could not run (bad arguments, unreadable files, a server that cannot start).

mod cli;
mod commands;
mod flow_files;
mod logging;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = cli::Cli::parse();
    logging::init(&cli);
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `flowbot conversations show PHONE | head` should end quietly when `head` closes the pipe, as
/// command-line tools do, instead of failing on a write to a closed pipe.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
