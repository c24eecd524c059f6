//! Throughput of the store on a file database: inbox inserts per second (one message per call and
//! ten per call, from many concurrent callers, so the writer's group commit can batch them) and
//! committed turns per second. One caller inserting one message at a time is measured too: it
//! cannot be batched, so it shows what a commit per row costs.
//!
//! Run: `cargo run --release -p flowbot-store --example store_bench [folder]`
//! The database goes in a temporary folder inside `folder` (default: the system's temporary
//! folder); put it on the disk you want to measure, since WAL commits are fsync-bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use flowbot_engine::{Contact, Conversation, Inbound, Outbound, Status, TraceEvent};
use flowbot_store::{InsertOutcome, NewInbound, Store, StoreOptions, TurnCommit};
use serde_json::{Map, Value};

const CALLERS: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parent = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(parent)?;
    let path = dir.path().join("bench.db");
    let store = Store::open(
        path.to_str().ok_or("non-UTF-8 path")?,
        StoreOptions::default(),
    )
    .await?;
    println!("database: {} (synchronous=NORMAL, WAL)", path.display());

    let ids = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let (count, elapsed) = insert_messages(&store, &ids, 1, 1, 3_000).await?;
    report(
        "inbox inserts, 1 message per call, 1 caller",
        count,
        elapsed,
    );

    let (count, elapsed) = insert_messages(&store, &ids, CALLERS, 1, 40_000).await?;
    report(
        &format!("inbox inserts, 1 message per call, {CALLERS} callers"),
        count,
        elapsed,
    );

    let (count, elapsed) = insert_messages(&store, &ids, CALLERS, 10, 100_000).await?;
    report(
        &format!("inbox inserts, 10 messages per call, {CALLERS} callers"),
        count,
        elapsed,
    );

    let (count, elapsed) = commit_turns(&store, &ids, CALLERS, 20_000).await?;
    report(
        &format!(
            "committed turns (conversation, 2 outbox rows, 4 transcript events), {CALLERS} callers"
        ),
        count,
        elapsed,
    );

    store.close().await;
    Ok(())
}

fn report(what: &str, count: usize, elapsed: Duration) {
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "{what}: {count} in {:.2} s = {per_second:.0}/s",
        elapsed.as_secs_f64()
    );
}

fn message(ids: &std::sync::atomic::AtomicU64) -> NewInbound {
    let n = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    NewInbound {
        channel: "whatsapp".into(),
        business_id: "106540352242922".into(),
        contact: Contact {
            phone: format!("9198{:08}", n % 10_000),
            name: Some("Asha Rao".into()),
        },
        message: Inbound::text(
            format!("wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgg{n:012}"),
            "status",
            Utc::now(),
        ),
    }
}

/// `total` messages from `callers` concurrent tasks, `per_call` messages per call.
async fn insert_messages(
    store: &Store,
    ids: &Arc<std::sync::atomic::AtomicU64>,
    callers: usize,
    per_call: usize,
    total: usize,
) -> Result<(usize, Duration), Box<dyn std::error::Error>> {
    let calls_per_caller = total / callers / per_call;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let store = store.clone();
        let ids = Arc::clone(ids);
        tasks.push(tokio::spawn(async move {
            for _ in 0..calls_per_caller {
                let batch = (0..per_call).map(|_| message(&ids)).collect();
                store.insert_inbound(batch).await?;
            }
            Ok::<(), flowbot_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((calls_per_caller * callers * per_call, started.elapsed()))
}

/// Inserts `total` messages (not timed), then commits a turn for each from `callers` tasks.
async fn commit_turns(
    store: &Store,
    ids: &Arc<std::sync::atomic::AtomicU64>,
    callers: usize,
    total: usize,
) -> Result<(usize, Duration), Box<dyn std::error::Error>> {
    let mut work = Vec::with_capacity(total);
    for _ in 0..total / 100 {
        let batch: Vec<NewInbound> = (0..100).map(|_| message(ids)).collect();
        let contacts: Vec<Contact> = batch
            .iter()
            .map(|inbound| inbound.contact.clone())
            .collect();
        let outcomes = store.insert_inbound(batch).await?;
        for (outcome, contact) in outcomes.into_iter().zip(contacts) {
            if let InsertOutcome::Inserted(inbox_id) = outcome {
                work.push((inbox_id, contact));
            }
        }
    }
    let count = work.len();
    let queue = Arc::new(tokio::sync::Mutex::new(work));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let store = store.clone();
        let queue = Arc::clone(&queue);
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().await.pop();
                let Some((inbox_id, contact)) = next else {
                    return Ok::<(), flowbot_store::StoreError>(());
                };
                store.commit_turn(turn(inbox_id, contact)).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((count, started.elapsed()))
}

fn turn(inbox_id: i64, contact: Contact) -> TurnCommit {
    let now = Utc::now();
    let mut vars = Map::new();
    vars.insert("first_name".into(), Value::String("Asha".into()));
    vars.insert("lead_status".into(), Value::String("Contacted".into()));
    vars.insert("company".into(), Value::String("Rao Textiles".into()));
    TurnCommit {
        inbox_id,
        channel: "whatsapp".into(),
        business_id: "106540352242922".into(),
        contact,
        conversation: Some(Conversation {
            flow: "zoho_lead_status".into(),
            step: Some("offer_callback".into()),
            status: Status::Waiting,
            vars,
            attempts: 0,
            started_at: now,
            updated_at: now,
            expires_at: now + chrono::Duration::hours(4),
        }),
        outbound: vec![
            Outbound::Text {
                body: "Hi Asha, good to hear from you. Your account status: Contacted.".into(),
            },
            Outbound::Text {
                body: "Reply CALLBACK to request a call back.".into(),
            },
        ],
        trace: vec![TraceEvent::Step {
            step: "greet".into(),
            kind: "say".into(),
        }],
        now,
    }
}
