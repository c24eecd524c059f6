//! `flowbot-bench storage`: how much disk 100,000 stored conversations take, and whether start-up
//! notices them.
//!
//! Each conversation is what the benchmark flow leaves after one real turn (the engine runs it with
//! a canned Zoho answer): the inbox row, the contact, the waiting conversation with its variables,
//! one outbox row (then marked sent, as the sender would) and the turn's transcript events. They go
//! in through the store's own API (`insert_inbound`, `commit_turn`, `mark_sent`), many at once so
//! the writer's group commit batches them. Start-up (`Server::build` to the first 200 from
//! `/readyz`, in this process) is timed on an empty database and on the seeded one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use flowbot_engine::{Contact, EffectResult, Inbound, ZohoOutcome, ZohoSearchResult};
use flowbot_store::{InsertOutcome, NewInbound, Store, StoreOptions, TurnCommit};
use serde_json::json;

use crate::fakes::BenchGraph;
use crate::load::{bench_flow, phone};
use crate::micro::{bench_engine, engine_turn, zoho_answer};
use crate::target::{database_bytes, Target, TargetOptions};

const CHUNK: usize = 1_000;
const STARTS: usize = 3;

pub async fn run(conversations: usize, keep_in: Option<PathBuf>) -> Result<ExitCode> {
    let graph = BenchGraph::start(0, Duration::ZERO, Instant::now()).await?;
    let empty_startup = median_startup(None, &graph.url).await?;

    let dir = match &keep_in {
        Some(parent) => tempfile::Builder::new()
            .prefix("flowbot-bench-storage")
            .disable_cleanup(true)
            .tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let database = dir.path().join("flowbot.db");
    let started = Instant::now();
    seed(&database.display().to_string(), conversations).await?;
    let seeding = started.elapsed();
    let bytes = database_bytes(&database);
    let main_bytes = std::fs::metadata(&database).map(|m| m.len()).unwrap_or(0);

    let (seeded_startup, dir) = median_startup(Some(dir), &graph.url).await?;
    let after_start_bytes = database_bytes(&dir.path().join("flowbot.db"));

    let mib = |b: u64| b as f64 / 1048576.0;
    println!("flowbot-bench storage: {conversations} conversations stored through commit_turn in {:.1} s ({:.0}/s)",
        seeding.as_secs_f64(), conversations as f64 / seeding.as_secs_f64());
    println!(
        "  database on disk (file + wal + shm)  {:>10.1} MiB   (main file {:.1} MiB; {:.0} bytes per conversation)   target <= 50 MB",
        mib(bytes),
        mib(main_bytes),
        bytes as f64 / conversations.max(1) as f64
    );
    println!(
        "  start-up to ready, empty database    {:>10.1} ms",
        empty_startup.0.as_secs_f64() * 1e3
    );
    println!(
        "  start-up to ready, seeded database   {:>10.1} ms   target: unaffected",
        seeded_startup.as_secs_f64() * 1e3
    );
    println!(
        "  database after the start-ups         {:>10.1} MiB",
        mib(after_start_bytes)
    );
    println!(
        "{}",
        json!({
            "conversations": conversations,
            "seconds_to_seed": seeding.as_secs_f64(),
            "database_bytes": bytes,
            "main_file_bytes": main_bytes,
            "bytes_per_conversation": bytes as f64 / conversations.max(1) as f64,
            "startup_empty_ms": empty_startup.0.as_secs_f64() * 1e3,
            "startup_seeded_ms": seeded_startup.as_secs_f64() * 1e3,
        })
    );
    if let Some(_parent) = keep_in {
        println!("  kept: {}", dir.path().display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Median of a few start-ups over the database in `dir` (a fresh one when `None`).
async fn median_startup(
    dir: Option<tempfile::TempDir>,
    graph_url: &str,
) -> Result<(Duration, tempfile::TempDir)> {
    let mut dir = match dir {
        Some(dir) => dir,
        None => tempfile::tempdir()?,
    };
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let target = Target::start_in(
            dir,
            TargetOptions {
                flows: vec![("bench.yaml".to_owned(), bench_flow(0))],
                graph_url,
                zoho_url: None,
                workers: 0,
                queue_capacity: None,
                server_bin: None,
            },
        )
        .await?;
        times.push(target.startup);
        dir = target.stop().await?;
    }
    times.sort();
    Ok((times[times.len() / 2], dir))
}

/// Stores `count` conversations of one turn each, one per contact.
async fn seed(database: &str, count: usize) -> Result<()> {
    let store = Store::open(database, StoreOptions::default()).await?;
    let engine = bench_engine();
    let answer = EffectResult::Zoho(ZohoSearchResult {
        outcome: ZohoOutcome::Found(zoho_answer()),
        calls: Vec::new(),
    });
    let mut next = 0usize;
    while next < count {
        let end = (next + CHUNK).min(count);
        let now = Utc::now();
        let batch: Vec<NewInbound> = (next..end)
            .map(|i| NewInbound {
                channel: "whatsapp".into(),
                business_id: "123456789012345".into(),
                contact: Contact {
                    phone: phone(i),
                    name: Some(format!("Customer {i}")),
                },
                message: Inbound::text(format!("wamid.SEED{i:012}"), format!("ping #m{i}"), now),
            })
            .collect();
        let outcomes = store.insert_inbound(batch.clone()).await?;
        let mut commits = Vec::with_capacity(batch.len());
        for (outcome, inbound) in outcomes.into_iter().zip(batch) {
            let InsertOutcome::Inserted(inbox_id) = outcome else {
                continue;
            };
            let result = engine_turn(&engine, None, &inbound.contact, &inbound.message, &answer);
            let commit = TurnCommit {
                inbox_id,
                channel: inbound.channel,
                business_id: inbound.business_id,
                contact: inbound.contact,
                conversation: result.conversation,
                outbound: result.outbound,
                trace: result.trace,
                now,
            };
            let store = store.clone();
            commits.push(tokio::spawn(async move { store.commit_turn(commit).await }));
        }
        let mut sent = Vec::new();
        for commit in commits {
            for row in commit.await.context("a commit task")?? {
                let store = store.clone();
                sent.push(tokio::spawn(async move {
                    store
                        .mark_sent(row.id, &format!("wamid.SENT{:012}", row.id))
                        .await
                }));
            }
        }
        for task in sent {
            task.await.context("a mark_sent task")??;
        }
        next = end;
    }
    store.close().await;
    Ok(())
}
