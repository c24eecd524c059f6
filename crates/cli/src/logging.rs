//! Log set-up: human-readable by default, JSON lines with `--log-format json`; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

pub fn init(cli: &Cli) {
    let default_level = match cli.command {
        Command::Serve(_) => "info,sqlx=warn",
        _ => "error",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
