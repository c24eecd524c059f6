//! `flowbot serve`: the webhook service. Configuration comes from `--config` (optional), then
//! `FLOWBOT_*` environment variables, then the flags; it stops gracefully on SIGTERM or Ctrl-C.

use std::process::ExitCode;

use anyhow::{Context, Result};
use flowbot_server::ServerConfig;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let mut config = ServerConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(flows) = args.flows {
        config.flows = flows;
    }
    if let Some(database) = args.database {
        config.database_url = database;
    }
    if args.check {
        let report = match flowbot_server::check(&config) {
            Ok(report) => report,
            // Flows with errors are findings (exit 1); a missing or empty folder means the check
            // could not run (exit 2, like `serve` itself).
            Err(flowbot_server::ServerError::Flows(
                error @ flowbot_server::FlowsError::Invalid { .. },
            )) => {
                println!("{error}");
                return Ok(ExitCode::from(1));
            }
            Err(error) => return Err(error.into()),
        };
        for warning in &report.warnings {
            println!("{warning}");
        }
        println!(
            "configuration and {} flow(s) in {} file(s) are valid",
            report.flows, report.files
        );
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    flowbot_server::run(config, listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing turns in flight and flushing the sender");
}
