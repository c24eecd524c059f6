//! Issue 9, crash safety of the real `flowbot serve` on a file database: signed messages from many
//! contacts, `kill -9` mid-way (during ingest, during turns, while sends are in flight), restart,
//! let it finish. Then: every message's turn committed exactly once (the transcript holds each
//! inbound message once, no inbox row is unfinished, no outbox row unsent), every message answered
//! at the fake Graph API, and each contact's answers in sequence order with no gaps, and none
//! twice (effectively once out). The fake Graph API POSTs a signed `sent` status for each send,
//! as Meta does, echoing the send's `biz_opaque_callback_data` and retrying until it gets a 200,
//! so a send accepted just before a kill is confirmed by its status after the restart; the server
//! waits a short grace (`FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS`) for that before sending again.
//!
//! CI runs 300 messages from 30 contacts per scenario; `FLOWBOT_LONG_CRASH_TEST=1` runs 2,000
//! from 200 with more kills.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use flowbot_store::{Store, StoreOptions, TranscriptEntry};
use flowbot_testkit::fake_graph::{FakeGraph, DEFAULT_TOKEN};
use flowbot_testkit::webhook::{signature_header, text_notification, APP_SECRET};

struct Scenario {
    name: &'static str,
    contacts: usize,
    per_contact: usize,
    /// Kill when this share of all messages has been acknowledged.
    kill_at: Vec<f64>,
    /// Every turn first calls a service that answers after this long.
    turn_delay: Option<Duration>,
    /// The fake Graph API records a send, then answers after this long.
    graph_reply_delay: Option<Duration>,
}

/// How long a restarted server waits for a status to confirm a send in flight at the kill.
const UNCERTAIN_GRACE: Duration = Duration::from_secs(2);

fn long() -> bool {
    std::env::var("FLOWBOT_LONG_CRASH_TEST").is_ok_and(|v| v == "1")
}

fn size() -> (usize, usize) {
    if long() {
        (200, 10)
    } else {
        (30, 10)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_nothing_and_answers_once_in_order() {
    let (contacts, per_contact) = size();
    run(Scenario {
        name: "ingest",
        contacts,
        per_contact,
        kill_at: if long() {
            vec![0.1, 0.3, 0.5]
        } else {
            vec![0.3]
        },
        turn_delay: None,
        graph_reply_delay: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_turns_loses_nothing_and_answers_once_in_order() {
    let (contacts, per_contact) = size();
    run(Scenario {
        name: "turns",
        contacts,
        per_contact,
        kill_at: if long() { vec![0.2, 0.6] } else { vec![0.5] },
        turn_delay: Some(Duration::from_millis(40)),
        graph_reply_delay: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sends_are_in_flight_loses_nothing_and_keeps_order() {
    let (contacts, per_contact) = size();
    run(Scenario {
        name: "sending",
        contacts,
        per_contact,
        kill_at: if long() { vec![0.4, 0.8] } else { vec![0.7] },
        turn_delay: None,
        graph_reply_delay: Some(Duration::from_millis(150)),
    })
    .await;
}

async fn run(scenario: Scenario) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let graph = FakeGraph::start().await;
    graph.set_reply_delay(scenario.graph_reply_delay);
    let flow = match scenario.turn_delay {
        Some(delay) => slow_echo_flow(&slow_service(delay).await),
        None => ECHO_FLOW.to_string(),
    };
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).expect("flows folder");
    std::fs::write(flows.join("echo.yaml"), flow).expect("flow file");
    let database = dir.path().join("flowbot.db");
    let addr = free_address();
    let log = dir.path().join("serve.log");
    // Meta's status webhooks, to the current server.
    graph.send_statuses_to(&format!("http://{addr}/webhooks/whatsapp"), APP_SECRET);
    let mut server = Server::start(addr, &database, &flows, graph.url(), &log).await;
    let mut last_start = Instant::now();

    let total = scenario.contacts * scenario.per_contact;
    let acked = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for contact in 0..scenario.contacts {
        let acked = acked.clone();
        let per_contact = scenario.per_contact;
        clients.push(tokio::spawn(async move {
            send_contact(addr, contact, per_contact, &acked).await
        }));
    }

    // Kill -9 at each point, restart at once on the same database and port.
    let mut sends_before_kill = Vec::new();
    for share in &scenario.kill_at {
        let point = (total as f64 * share) as usize;
        while acked.load(Ordering::Relaxed) < point {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill9();
        sends_before_kill.push(graph.messages().len());
        println!(
            "[{}] kill -9 after {} acks, {} sends at Graph",
            scenario.name,
            acked.load(Ordering::Relaxed),
            graph.messages().len()
        );
        server = Server::start(addr, &database, &flows, graph.url(), &log).await;
        // A restarted server could listen elsewhere; this one reuses the address.
        graph.set_status_url(&format!("http://{addr}/webhooks/whatsapp"));
        last_start = Instant::now();
    }
    let mut retries = 0;
    for client in clients {
        retries += client.await.expect("a client task");
    }
    let acked_in = started.elapsed();

    // Let it finish: every message answered (duplicates would make more).
    let deadline = Instant::now() + Duration::from_secs(if long() { 120 } else { 60 });
    loop {
        if answered(&graph.messages(), scenario.per_contact) == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{}] not all answered: {} of {total}",
            scenario.name,
            answered(&graph.messages(), scenario.per_contact)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered_in = started.elapsed();
    // Give a stray second send time to show up (an unconfirmed send in flight at the last kill
    // goes out again only after the grace), then stop.
    let settle = (last_start + UNCERTAIN_GRACE + Duration::from_secs(1))
        .max(Instant::now() + Duration::from_millis(500));
    tokio::time::sleep_until(settle.into()).await;
    server.kill9();

    // At the fake Graph API: per contact, in order, no gaps, no duplicates.
    let sends = graph.messages();
    let mut per_contact: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for (arrival, send) in sends.iter().enumerate() {
        let text = send["text"]["body"].as_str().expect("a text reply");
        let (contact, seq) =
            parse_reply(text).unwrap_or_else(|| panic!("unexpected reply {text:?}"));
        per_contact.entry(contact).or_default().push((seq, arrival));
    }
    let mut duplicates = 0;
    let mut duplicated = Vec::new();
    for (contact, replies) in &per_contact {
        let mut expected = 1;
        let mut previous: Option<(usize, usize)> = None;
        for &(seq, arrival) in replies {
            if let Some((last_seq, last_arrival)) = previous {
                if seq == last_seq {
                    duplicates += 1;
                    let across_kill = sends_before_kill
                        .iter()
                        .any(|&n| last_arrival < n && arrival >= n);
                    duplicated.push(format!(
                        "{contact} #{seq} (arrivals {last_arrival} and {arrival}, across a kill: {across_kill})"
                    ));
                    continue;
                }
            }
            assert_eq!(
                seq, expected,
                "[{}] {contact}: answers {replies:?}",
                scenario.name
            );
            expected += 1;
            previous = Some((seq, arrival));
        }
        assert_eq!(
            expected - 1,
            scenario.per_contact,
            "[{}] {contact}",
            scenario.name
        );
    }

    assert_eq!(
        duplicates, 0,
        "[{}] answers sent twice: {duplicated:?}",
        scenario.name
    );

    // In the database: each turn committed once, nothing left over.
    let store = Store::open(
        database.to_str().expect("utf-8 path"),
        StoreOptions::default(),
    )
    .await
    .expect("the database opens");
    assert!(
        store.unfinished_inbox().await.expect("inbox").is_empty(),
        "unfinished inbox rows"
    );
    assert!(
        store.unsent_outbox().await.expect("outbox").is_empty(),
        "unsent outbox rows"
    );
    for contact in 0..scenario.contacts {
        let phone = phone(contact);
        let transcript = store.transcript(&phone, None).await.expect("transcript");
        let inbound: Vec<String> = transcript
            .iter()
            .filter_map(|event| match &event.entry {
                TranscriptEntry::Inbound { message, .. } => Some(message.id.clone()),
                _ => None,
            })
            .collect();
        let mut unique = inbound.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            inbound.len(),
            scenario.per_contact,
            "[{}] {phone}: turns {inbound:?}",
            scenario.name
        );
        assert_eq!(
            unique.len(),
            inbound.len(),
            "[{}] {phone}: a turn ran twice",
            scenario.name
        );
    }
    store.close().await;
    println!(
        "[{}] {total} messages from {} contacts, {} kill(s): all acknowledged after {} ms ({retries} webhook retries), all answered after {} ms; {} sends at Graph, {duplicates} duplicate(s), {} status webhooks delivered; 0 lost, 0 out of order, every turn committed once",
        scenario.name,
        scenario.contacts,
        scenario.kill_at.len(),
        acked_in.as_millis(),
        answered_in.as_millis(),
        sends.len(),
        graph.statuses_delivered()
    );
}

const ECHO_FLOW: &str = r#"flow: echo
triggers:
  default: true
steps:
  - id: echo
    ask: "You said: {{message.text}}"
    save: reply
    next: echo
"#;

fn slow_echo_flow(slow_url: &str) -> String {
    format!(
        "flow: echo\ntriggers:\n  default: true\nsteps:\n  - id: call\n    api_request:\n      url: \"{slow_url}/slow\"\n      response: text\n    on:\n      error: echo\n  - id: echo\n    ask: \"You said: {{{{message.text}}}}\"\n    save: reply\n    next: call\n"
    )
}

async fn slow_service(delay: Duration) -> String {
    let app = Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(delay).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn phone(contact: usize) -> String {
    format!("9198{contact:08}")
}

/// `You said: c0007 #00003` → ("919800000007", 3).
fn parse_reply(text: &str) -> Option<(String, usize)> {
    let rest = text.strip_prefix("You said: c")?;
    let (contact, seq) = rest.split_once(" #")?;
    Some((phone(contact.parse().ok()?), seq.parse().ok()?))
}

/// Contacts with all of their answers at Graph (duplicates not counted).
fn answered(sends: &[serde_json::Value], per_contact: usize) -> usize {
    let mut seen: BTreeMap<String, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for send in sends {
        if let Some((contact, seq)) = send["text"]["body"].as_str().and_then(parse_reply) {
            seen.entry(contact).or_default().insert(seq);
        }
    }
    seen.values().map(|seqs| seqs.len().min(per_contact)).sum()
}

/// Sends one contact's messages in order, each until it is acknowledged (as Meta redelivers).
/// Returns the number of retries.
async fn send_contact(
    addr: SocketAddr,
    contact: usize,
    count: usize,
    acked: &AtomicUsize,
) -> usize {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let phone = phone(contact);
    let base = chrono::Utc::now().timestamp();
    let mut retries = 0;
    for seq in 1..=count {
        let wamid = format!("wamid.CRASH{contact:05}{seq:05}");
        let text = format!("c{contact:04} #{seq:05}");
        let body = text_notification(&phone, "Crash Test", &text, &wamid, base + seq as i64);
        let signature = signature_header(APP_SECRET, &body);
        loop {
            let answer = client
                .post(format!("http://{addr}/webhooks/whatsapp"))
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                break;
            }
            retries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acked.fetch_add(1, Ordering::Relaxed);
    }
    retries
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

struct Server {
    child: Child,
}

impl Server {
    async fn start(
        addr: SocketAddr,
        database: &Path,
        flows: &Path,
        graph: &str,
        log: &PathBuf,
    ) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
            .args(["serve", "--listen", &addr.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FLOWBOT_DATABASE_URL", database)
            .env("FLOWBOT_FLOWS", flows)
            .env("FLOWBOT_WHATSAPP_API_BASE", graph)
            .env("FLOWBOT_WHATSAPP_ACCESS_TOKEN", DEFAULT_TOKEN)
            .env("FLOWBOT_WHATSAPP_APP_SECRET", APP_SECRET)
            .env("FLOWBOT_SECRET_KEY", "crash test passphrase")
            .env(
                "FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS",
                UNCERTAIN_GRACE.as_secs_f64().to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("flowbot serve starts");
        let server = Server { child };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("http://{addr}/healthz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "flowbot serve did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
