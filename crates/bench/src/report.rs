//! The result of a load run: a readable table (with the project's targets beside the figures, for
//! reading only; nothing is asserted) and one JSON line for scripts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fakes::ZohoCounts;
use crate::stats::Summary;
use crate::target::Memory;

/// Everything one load run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub mode: &'static str,
    pub messages: usize,
    pub contacts: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub zoho_latency: Duration,
    pub graph_latency: Duration,
    pub extra_steps: usize,
    pub workers: usize,
    pub server: &'static str,
    /// Webhooks answered 200.
    pub acked: usize,
    pub acks_per_s: f64,
    /// Messages whose reply arrived.
    pub replies: usize,
    pub round_trips_per_s: f64,
    pub ack: Summary,
    pub round_trip: Summary,
    /// Round trip minus the fakes' added latency.
    pub overhead: Summary,
    /// How late sends were against the `--rate` schedule.
    pub send_lag: Summary,
    pub idle: Memory,
    pub peak: Memory,
    pub rss_includes_load_generator: bool,
    pub database_bytes: u64,
    /// Webhooks not answered 200 (status or connection errors).
    pub webhook_errors: u64,
    /// Replies that answer no benchmark message or took the wrong branch.
    pub unexpected_replies: u64,
    /// Requests the fake Graph API refused.
    pub graph_refused: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub read_receipts: u64,
    pub zoho: ZohoCounts,
    pub samples: Vec<String>,
}

impl Report {
    /// Errors of every kind (webhook failures, unexpected replies, refused sends, Zoho refusals,
    /// lookups that found nothing).
    pub fn errors(&self) -> u64 {
        self.webhook_errors
            + self.unexpected_replies
            + self.graph_refused
            + self.zoho.refused
            + self.zoho.not_found
    }

    /// No error, no duplicate, no missing reply.
    pub fn is_clean(&self) -> bool {
        self.errors() == 0 && self.duplicates == 0 && self.missing == 0
    }

    pub fn to_json(&self) -> Value {
        let summary = |s: &Summary| {
            json!({
                "p50_ms": round(s.p50), "p90_ms": round(s.p90), "p99_ms": round(s.p99),
                "p999_ms": round(s.p999), "max_ms": round(s.max), "mean_ms": round(s.mean),
            })
        };
        json!({
            "mode": self.mode,
            "server": self.server,
            "messages": self.messages,
            "contacts": self.contacts,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "zoho_latency_ms": self.zoho_latency.as_millis() as u64,
            "graph_latency_ms": self.graph_latency.as_millis() as u64,
            "extra_steps": self.extra_steps,
            "workers": self.workers,
            "acked": self.acked,
            "acks_per_s": self.acks_per_s.round(),
            "replies": self.replies,
            "round_trips_per_s": self.round_trips_per_s.round(),
            "ack": summary(&self.ack),
            "round_trip": summary(&self.round_trip),
            "engine_overhead": summary(&self.overhead),
            "send_lag": summary(&self.send_lag),
            "rss_idle_mib": round(self.idle.rss_mib),
            "rss_now_mib": round(self.peak.rss_mib),
            "rss_peak_mib": round(self.peak.peak_rss_mib),
            "rss_includes_load_generator": self.rss_includes_load_generator,
            "database_bytes": self.database_bytes,
            "errors": self.errors(),
            "webhook_errors": self.webhook_errors,
            "unexpected_replies": self.unexpected_replies,
            "graph_refused": self.graph_refused,
            "zoho_refused": self.zoho.refused,
            "zoho_not_found": self.zoho.not_found,
            "zoho_searches": self.zoho.searches,
            "zoho_refreshes": self.zoho.refreshes,
            "read_receipts": self.read_receipts,
            "duplicates": self.duplicates,
            "missing": self.missing,
            "samples": self.samples,
        })
    }
}

/// Prints the table (unless `json_only`) and the JSON line.
pub fn print(report: &Report, json_only: bool) {
    if !json_only {
        print_table(report);
    }
    println!("{}", report.to_json());
}

fn print_table(r: &Report) {
    let offered = match r.rate {
        Some(rate) => format!("offered {rate:.0} msg/s"),
        None => format!("closed loop, concurrency {}", r.concurrency),
    };
    println!(
        "flowbot-bench {}: {} messages from {} contacts, {offered}; server {}; zoho +{}, graph +{}; {} extra steps",
        r.mode,
        r.messages,
        r.contacts,
        r.server,
        humantime::format_duration(r.zoho_latency),
        humantime::format_duration(r.graph_latency),
        r.extra_steps
    );
    let line = |name: &str, value: String, target: &str| {
        println!("  {name:<34} {value:>28}   {target}");
    };
    let pct = |s: &Summary| format!("{:.2} / {:.2} ms", s.p50, s.p99);
    line("", "measured".into(), "target");
    line(
        "webhook acks/s",
        format!("{:.0}", r.acks_per_s),
        ">= 20,000 (acks only)",
    );
    if r.mode != "acks_only" {
        line(
            "full round trips/s",
            format!("{:.0}", r.round_trips_per_s),
            ">= 8,000 (closed loop)",
        );
    }
    line("ack latency p50 / p99", pct(&r.ack), "");
    if r.mode != "acks_only" {
        let rt = &r.round_trip;
        line(
            "round trip p50 / p90",
            format!("{:.2} / {:.2} ms", rt.p50, rt.p90),
            "",
        );
        line(
            "round trip p99 / p99.9",
            format!("{:.2} / {:.2} ms", rt.p99, rt.p999),
            "p99 <= 20 ms at 1,000 msg/s",
        );
        line(
            "engine overhead p50 / p99",
            pct(&r.overhead),
            "<= 1 / 5 ms at half the peak",
        );
    }
    if r.rate.is_some() {
        line("send lag p50 / p99", pct(&r.send_lag), "(generator health)");
    }
    let whose = if r.rss_includes_load_generator {
        " (whole bench process)"
    } else {
        ""
    };
    line(
        &format!("RSS idle{whose}"),
        format!("{:.1} MiB", r.idle.rss_mib),
        "<= 20 MB",
    );
    line(
        &format!("RSS peak{whose}"),
        format!("{:.1} MiB", r.peak.peak_rss_mib),
        "<= 100 MB",
    );
    line(
        "database after the run",
        format!("{:.1} MiB", r.database_bytes as f64 / 1048576.0),
        "",
    );
    line("errors", r.errors().to_string(), "0");
    line("duplicates", r.duplicates.to_string(), "0");
    line("missing replies", r.missing.to_string(), "0");
    for sample in &r.samples {
        println!("  sample problem: {sample}");
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
