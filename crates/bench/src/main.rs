//! `flowbot-bench`: flowbot's load generator, in the spirit of redis-benchmark and pgbench.
//!
//! The default mode starts a fake Zoho and a fake Graph API (real HTTP on 127.0.0.1, optional added
//! latency) and a real flowbot server on a temporary SQLite file (in this process, or the `flowbot
//! serve` binary as a child with `--server-bin`), sends signed Cloud API notifications and waits for
//! every reply at the fake Graph API. It prints a readable table and one JSON line. Nothing here
//! asserts a timing: the exit code says only whether every message was acknowledged and answered
//! exactly once.
//!
//! Layout, one job per module:
//! - [`load`]: one load run (set-up, sending, waiting, counting) and its [`load::LoadOptions`].
//! - [`fakes`]: the benchmark's fake Zoho and fake Graph API (cheap per request, timestamped replies).
//! - [`target`]: the server under test, in-process or as a child process, and its memory figures.
//! - [`http`]: a minimal keep-alive HTTP/1.1 client, so the load generator costs little CPU.
//! - [`stats`]: percentiles. [`report`]: the table and the JSON line.
//! - [`micro`]: micro-benchmarks of the hot parts (`flowbot-bench micro`).
//! - [`storage`]: disk size of 100,000 stored conversations and start-up over them.
//! - [`startup`]: start-up to ready with 1,000 flows.

mod fakes;
mod http;
mod load;
mod micro;
mod report;
mod startup;
mod stats;
mod storage;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// flowbot's load generator and micro-benchmarks.
#[derive(Parser, Debug)]
#[command(name = "flowbot-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Micro-benchmarks of the hot parts: ns/op, median of several runs.
    Micro {
        /// Runs per benchmark (the median is reported).
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Target duration of one run, in milliseconds.
        #[arg(long, default_value_t = 100)]
        run_ms: u64,
    },
    /// Seeds conversations through the store's `commit_turn`, reports the size on disk and the
    /// server's start-up time over that database.
    Storage {
        /// Conversations to store.
        #[arg(long, default_value_t = 100_000)]
        conversations: usize,
        /// Keep the database in this folder (default: a temporary folder, removed afterwards).
        #[arg(long)]
        keep_in: Option<PathBuf>,
    },
    /// Start-up to the first 200 from /readyz with many small flows.
    Startup {
        /// Flow files to generate.
        #[arg(long, default_value_t = 1_000)]
        flows: usize,
        /// Also time `FLOWBOT serve` as a child process (path of the `flowbot` binary).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Start-ups to time (the median and the worst are reported).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
}

/// Options of the load run (the default mode).
#[derive(Args, Debug)]
struct LoadArgs {
    /// A short run for CI: a few hundred messages, in-process server; exits non-zero on any error,
    /// duplicate or missing reply.
    #[arg(long)]
    smoke: bool,
    /// Messages to send.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    messages: usize,
    /// Distinct contacts (WhatsApp numbers) the messages come from, round robin.
    #[arg(long, short = 'm', default_value_t = 1_000)]
    contacts: usize,
    /// Webhooks in flight at once (closed loop), or connections used for `--rate`.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// Offered rate in messages per second (open loop) instead of as fast as acknowledged.
    #[arg(long)]
    rate: Option<f64>,
    /// Only fire webhooks and measure durable acceptance; do not wait for replies.
    #[arg(long)]
    acks_only: bool,
    /// Latency the fake Zoho adds to every search, e.g. `300ms`.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    zoho_latency: Duration,
    /// Latency the fake Graph API adds to every request, e.g. `50ms`.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    graph_latency: Duration,
    /// Extra `set` steps in the benchmark flow per turn (flow length).
    #[arg(long, default_value_t = 0)]
    extra_steps: usize,
    /// Run `flowbot serve` from this binary as a child process (its own memory figures) instead of
    /// the server in this process.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Worker queues of the server (`FLOWBOT_WORKERS`; 0 = its default, 64).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Give up waiting for replies after this long without a new one.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    reply_timeout: Duration,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{text:?}: {error}"))
}

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flowbot-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Micro { runs, run_ms }) => {
            micro::run(runs.max(1), Duration::from_millis(run_ms.max(1)));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Storage {
            conversations,
            keep_in,
        }) => runtime()?.block_on(storage::run(conversations, keep_in)),
        Some(Command::Startup {
            flows,
            server_bin,
            repeat,
        }) => runtime()?.block_on(startup::run(flows, server_bin, repeat.max(1))),
        None => {
            let options = load::LoadOptions::from_args(cli.load);
            let json_only = options.json_only;
            let report = runtime()?.block_on(load::run(options))?;
            report::print(&report, json_only);
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
