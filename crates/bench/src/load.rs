//! One load run: start the fakes and the server, send signed notifications (closed loop at a
//! concurrency, or open loop at an offered rate), wait for every reply, and count.
//!
//! Message `i` comes from contact `i % contacts` and says `ping #m<i>`; the benchmark flow looks the
//! contact up in Zoho by phone, branches on the lead status and replies
//! `Hi Bench, you said: ping #m<i>` (an `ask`, so every message answers the last question and the
//! conversation state is written on every turn). A reply reaches the fake Graph API only after the
//! turn committed, so a reply's arrival is the end of a full round trip.
//!
//! Latencies are measured from the moment a webhook's bytes start to go out. With `--rate`, how
//! late each send was against its schedule is reported apart (`send_lag`), so a load generator
//! that cannot keep up is visible instead of hidden.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use flowbot_testkit::webhook::{signature_header, text_notification, APP_SECRET};

use crate::fakes::{BenchGraph, BenchZoho, TOKEN_MARK};
use crate::http::Connection;
use crate::report::Report;
use crate::stats::Summary;
use crate::target::{Target, TargetOptions};
use crate::LoadArgs;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub smoke: bool,
    pub messages: usize,
    pub contacts: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub acks_only: bool,
    pub zoho_latency: Duration,
    pub graph_latency: Duration,
    pub extra_steps: usize,
    pub server_bin: Option<PathBuf>,
    pub workers: usize,
    pub reply_timeout: Duration,
    pub json_only: bool,
}

impl LoadOptions {
    pub(crate) fn from_args(args: LoadArgs) -> LoadOptions {
        let mut options = LoadOptions {
            smoke: args.smoke,
            messages: args.messages.max(1),
            contacts: args.contacts.max(1),
            concurrency: args.concurrency.max(1),
            rate: args.rate.filter(|rate| *rate > 0.0),
            acks_only: args.acks_only,
            zoho_latency: args.zoho_latency,
            graph_latency: args.graph_latency,
            extra_steps: args.extra_steps.min(90),
            server_bin: args.server_bin,
            workers: args.workers,
            reply_timeout: args.reply_timeout,
            json_only: args.json,
        };
        if options.smoke {
            options.messages = 300;
            options.contacts = 30;
            options.concurrency = 16;
            options.rate = None;
            options.acks_only = false;
            options.reply_timeout = Duration::from_secs(20);
        }
        options
    }

    /// Latency the fakes add to one round trip: one Zoho search, and the mark-as-read the sender
    /// sends before the reply on the same per-recipient lane (the reply is timed on arrival, so
    /// its own added latency does not count).
    pub fn added_latency(&self) -> Duration {
        self.zoho_latency + self.graph_latency
    }
}

/// The benchmark flow, with `extra_steps` `set` steps between the lookup and the branch.
pub fn bench_flow(extra_steps: usize) -> String {
    let mut text = String::from(
        r#"flow: bench
description: The benchmark flow - a Zoho lookup by phone, a branch, a reply that quotes the message.
triggers:
  default: true
session_timeout: 24h
steps:
  - id: lookup
    zoho_search:
      connection: zoho
      module: Contacts
      phone: "{{contact.phone}}"
      fields: [First_Name, Last_Name, Lead_Status]
    save:
      first_name: data[0].First_Name
      lead_status: data[0].Lead_Status
    on:
      empty: unknown
      error: crm_down
"#,
    );
    for step in 0..extra_steps {
        text.push_str(&format!(
            "  - id: extra_{step}\n    set:\n      extra_{step}: \"{{{{first_name}}}} {{{{lead_status}}}} {step}\"\n"
        ));
    }
    text.push_str(
        r#"  - id: route
    branch:
      - when: { var: lead_status, equals: contacted, ignore_case: true }
        goto: known
    else: unknown
  - id: known
    ask: "Hi {{first_name}}, you said: {{message.text}}"
    save: reply
    next: lookup
  - id: unknown
    ask: "Hi there, you said: {{message.text}}"
    save: reply
    next: lookup
  - id: crm_down
    ask: "Sorry, we cannot look you up right now. You said: {{message.text}}"
    save: reply
    next: lookup
"#,
    );
    text
}

/// The phone number of contact `index`.
pub fn phone(index: usize) -> String {
    format!("9198{index:08}")
}

/// One prepared webhook.
struct Webhook {
    body: Vec<u8>,
    signature: String,
}

/// What the senders measured.
#[derive(Default)]
struct Sent {
    /// Per message: nanoseconds after the epoch (+1; 0 = not acknowledged with 200).
    sent_at: Vec<AtomicU64>,
    acks: Mutex<Vec<u64>>,
    lags: Mutex<Vec<u64>>,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
    last_ack: AtomicU64,
}

pub async fn run(options: LoadOptions) -> Result<Report> {
    let epoch = Instant::now();
    let phones: Vec<String> = (0..options.contacts).map(phone).collect();
    let zoho = BenchZoho::start(&phones, options.zoho_latency).await?;
    let graph = BenchGraph::start(options.messages, options.graph_latency, epoch).await?;
    let target = Target::start(TargetOptions {
        flows: vec![("bench.yaml".to_owned(), bench_flow(options.extra_steps))],
        graph_url: &graph.url,
        zoho_url: Some(&zoho.url),
        workers: options.workers,
        // Acks only: let every message wait in the queues, so acceptance is not held back by the
        // turns (back-pressure starts when a worker queue is full).
        queue_capacity: options
            .acks_only
            .then_some(options.messages.saturating_add(1024)),
        server_bin: options.server_bin.as_deref(),
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = target.memory();

    let webhooks = Arc::new(prepare(&options, &phones));
    let sent = Arc::new(Sent {
        sent_at: (0..options.messages).map(|_| AtomicU64::new(0)).collect(),
        ..Sent::default()
    });
    let started = epoch.elapsed();
    let mut tasks = Vec::with_capacity(options.concurrency);
    let next = Arc::new(AtomicUsize::new(0));
    for lane in 0..options.concurrency {
        let webhooks = webhooks.clone();
        let sent = sent.clone();
        let next = next.clone();
        let addr = target.addr;
        let rate = options.rate;
        let lanes = options.concurrency;
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::new(addr);
            let mut acks = Vec::new();
            let mut lags = Vec::new();
            let mut index = lane;
            loop {
                let i = match rate {
                    None => next.fetch_add(1, Ordering::Relaxed),
                    Some(_) => {
                        let i = index;
                        index += lanes;
                        i
                    }
                };
                let Some(webhook) = webhooks.get(i) else {
                    break;
                };
                if let Some(rate) = rate {
                    let due = epoch + started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    lags.push(Instant::now().saturating_duration_since(due).as_nanos() as u64);
                }
                let at = epoch.elapsed();
                let headers = [
                    ("Content-Type", "application/json"),
                    ("X-Hub-Signature-256", webhook.signature.as_str()),
                ];
                let outcome = connection
                    .post("/webhooks/whatsapp", &headers, &webhook.body)
                    .await;
                let done = epoch.elapsed();
                match outcome {
                    Ok(200) => {
                        sent.sent_at[i].store(at.as_nanos() as u64 + 1, Ordering::Relaxed);
                        acks.push((done - at).as_nanos() as u64);
                        sent.last_ack
                            .fetch_max(done.as_nanos() as u64, Ordering::Relaxed);
                    }
                    other => {
                        sent.errors.fetch_add(1, Ordering::Relaxed);
                        let text = match other {
                            Ok(status) => format!("webhook answered HTTP {status}"),
                            Err(error) => format!("webhook failed: {error:#}"),
                        };
                        if let Ok(mut samples) = sent.error_samples.lock() {
                            if samples.len() < 3 {
                                samples.push(text);
                            }
                        }
                    }
                }
            }
            if let Ok(mut all) = sent.acks.lock() {
                all.extend(acks);
            }
            if let Ok(mut all) = sent.lags.lock() {
                all.extend(lags);
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let acked = sent
        .sent_at
        .iter()
        .filter(|at| at.load(Ordering::Relaxed) != 0)
        .count();
    if !options.acks_only {
        // Missing replies are counted below; the wait only ends early when all are in.
        graph
            .wait_for_replies(acked as u64, options.reply_timeout)
            .await;
    }
    let peak = target.memory();
    let in_process = target.in_process();
    let database_bytes = target.database_bytes();
    target.stop().await?;

    // Round trips: every acknowledged message's first reply, against when it was sent.
    let mut round_trips = Vec::with_capacity(acked);
    let mut missing = 0u64;
    let mut first_send = u64::MAX;
    let mut last_reply = 0u64;
    for (i, at) in sent.sent_at.iter().enumerate() {
        let at = at.load(Ordering::Relaxed);
        if at == 0 {
            continue;
        }
        let at = at - 1;
        first_send = first_send.min(at);
        match graph.reply_time(i) {
            Some(reply) => {
                let reply = reply.as_nanos() as u64;
                last_reply = last_reply.max(reply);
                round_trips.push(reply.saturating_sub(at));
            }
            None if !options.acks_only => missing += 1,
            None => {}
        }
    }
    let ack_window = Duration::from_nanos(
        sent.last_ack
            .load(Ordering::Relaxed)
            .saturating_sub(started.as_nanos() as u64),
    );
    let reply_window = Duration::from_nanos(last_reply.saturating_sub(first_send));
    let replies = round_trips.len();
    let graph_counts = graph.counts();
    let zoho_counts = zoho.counts();
    let acks = std::mem::take(&mut *sent.acks.lock().unwrap_or_else(|p| p.into_inner()));
    let lags = std::mem::take(&mut *sent.lags.lock().unwrap_or_else(|p| p.into_inner()));
    let error_samples = sent
        .error_samples
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let round_trip = Summary::of(round_trips);
    Ok(Report {
        mode: if options.smoke {
            "smoke"
        } else if options.acks_only {
            "acks_only"
        } else if options.rate.is_some() {
            "rate"
        } else {
            "closed_loop"
        },
        messages: options.messages,
        contacts: options.contacts,
        concurrency: options.concurrency,
        rate: options.rate,
        zoho_latency: options.zoho_latency,
        graph_latency: options.graph_latency,
        extra_steps: options.extra_steps,
        workers: options.workers,
        server: if in_process {
            "in-process"
        } else {
            "child process"
        },
        acked,
        acks_per_s: acked as f64 / ack_window.as_secs_f64().max(1e-9),
        replies,
        round_trips_per_s: if options.acks_only {
            0.0
        } else {
            replies as f64 / reply_window.as_secs_f64().max(1e-9)
        },
        ack: Summary::of(acks),
        round_trip,
        overhead: round_trip.minus(options.added_latency()),
        send_lag: Summary::of(lags),
        idle,
        peak,
        rss_includes_load_generator: in_process,
        database_bytes,
        webhook_errors: sent.errors.load(Ordering::Relaxed),
        unexpected_replies: graph_counts.unexpected,
        graph_refused: graph_counts.refused,
        duplicates: graph_counts.duplicates,
        missing,
        read_receipts: graph_counts.read_receipts,
        zoho: zoho_counts,
        samples: error_samples
            .into_iter()
            .chain(graph_counts.samples)
            .collect(),
    })
}

/// Builds every webhook before the clock starts (signing is the sender's cost, not the server's).
fn prepare(options: &LoadOptions, phones: &[String]) -> Vec<Webhook> {
    let now = chrono::Utc::now().timestamp();
    let run = std::process::id();
    (0..options.messages)
        .map(|i| {
            let from = &phones[i % phones.len()];
            let text = format!("ping {TOKEN_MARK}{i}");
            let wamid = format!("wamid.BENCH{run:08X}{i:012}");
            let body = text_notification(from, "Bench Customer", &text, &wamid, now);
            let signature = signature_header(APP_SECRET, &body);
            Webhook { body, signature }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_flow_validates_at_every_length() {
        for extra in [0, 1, 10] {
            let text = bench_flow(extra);
            let loaded = flowbot_flow::load_flow("bench.yaml", &text);
            let errors: Vec<_> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == flowbot_flow::Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
            assert!(loaded.flow.is_some());
        }
    }
}
