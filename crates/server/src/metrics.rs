//! Prometheus metrics (prometheus-client), served as text at `GET /metrics`.
//!
//! [`Metrics`] owns the registry and one typed method per thing worth counting, so callers never
//! build label sets by hand. Names:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `flowbot_messages_in_total` | `type`, `outcome` (accepted, duplicate, rejected) | webhook messages |
//! | `flowbot_messages_out_total` | `type`, `outcome` (sent, failed, held, retried) | replies |
//! | `flowbot_turn_duration_seconds` | — | histogram of one turn, load to commit |
//! | `flowbot_turns_total` | `outcome` (done, retried, failed) | turns |
//! | `flowbot_outside_call_duration_seconds` | `kind` (api_request, zoho_search), `status` | outside calls, from traces |
//! | `flowbot_queue_depth` | `queue` (worker, sender) | items waiting or in progress |
//! | `flowbot_zoho_token_refreshes_total` | — | Zoho token endpoint calls seen in traces |
//! | `flowbot_delivery_statuses_total` | `status` | status notifications received |
//! | `flowbot_conversations_flagged_total` | `reason` (outside_window, send_failed) | conversations needing a person |
//! | `flowbot_flow_reloads_total` | `outcome` (ok, error) | flow reloads |
//!
//! It does not decide anything; it only counts.

use std::time::Duration;

use flowbot_engine::TraceEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// All of the server's metrics. Share one per process (`Arc<Metrics>`).
pub struct Metrics {
    registry: Registry,
    messages_in: Family<TypeOutcome, Counter>,
    messages_out: Family<TypeOutcome, Counter>,
    turn_duration: Histogram,
    turns: Family<Outcome, Counter>,
    outside_calls: Family<CallLabels, Histogram, fn() -> Histogram>,
    queue_depth: Family<QueueLabels, Gauge>,
    token_refreshes: Counter,
    delivery_statuses: Family<StatusLabels, Counter>,
    conversations_flagged: Family<ReasonLabels, Counter>,
    flow_reloads: Family<Outcome, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeOutcome {
    r#type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// What happened to an inbound message at the webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InOutcome {
    Accepted,
    Duplicate,
    Rejected,
}

/// What happened to an outbound message at the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOutcome {
    Sent,
    Failed,
    Held,
    Retried,
}

/// Which queue a depth is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Worker,
    Sender,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let messages_in = Family::<TypeOutcome, Counter>::default();
        registry.register(
            "flowbot_messages_in",
            "Inbound webhook messages by type and outcome (accepted, duplicate, rejected)",
            messages_in.clone(),
        );
        let messages_out = Family::<TypeOutcome, Counter>::default();
        registry.register(
            "flowbot_messages_out",
            "Outbound messages by type and outcome (sent, failed, held, retried)",
            messages_out.clone(),
        );
        let turn_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "flowbot_turn_duration_seconds",
            "Time of one turn, from loading the conversation to the commit",
            turn_duration.clone(),
        );
        let turns = Family::<Outcome, Counter>::default();
        registry.register(
            "flowbot_turns",
            "Turns by outcome (done, retried, failed)",
            turns.clone(),
        );
        let outside_calls: Family<CallLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        registry.register(
            "flowbot_outside_call_duration_seconds",
            "Outside calls of flows by step kind and HTTP status",
            outside_calls.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "flowbot_queue_depth",
            "Items waiting or in progress, by queue (worker, sender)",
            queue_depth.clone(),
        );
        let token_refreshes = Counter::default();
        registry.register(
            "flowbot_zoho_token_refreshes",
            "Zoho token endpoint calls seen in turn traces",
            token_refreshes.clone(),
        );
        let delivery_statuses = Family::<StatusLabels, Counter>::default();
        registry.register(
            "flowbot_delivery_statuses",
            "Status notifications about sent messages, by status",
            delivery_statuses.clone(),
        );
        let conversations_flagged = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "flowbot_conversations_flagged",
            "Conversations that need a person, by reason",
            conversations_flagged.clone(),
        );
        let flow_reloads = Family::<Outcome, Counter>::default();
        registry.register(
            "flowbot_flow_reloads",
            "Flow reloads by outcome (ok, error)",
            flow_reloads.clone(),
        );
        // Make the gauges show up at 0 before anything is queued.
        for queue in [Queue::Worker, Queue::Sender] {
            queue_depth.get_or_create(&queue.labels()).set(0);
        }
        Metrics {
            registry,
            messages_in,
            messages_out,
            turn_duration,
            turns,
            outside_calls,
            queue_depth,
            token_refreshes,
            delivery_statuses,
            conversations_flagged,
            flow_reloads,
        }
    }

    /// The registry as Prometheus / OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub fn message_in(&self, kind: &str, outcome: InOutcome) {
        let outcome = match outcome {
            InOutcome::Accepted => "accepted",
            InOutcome::Duplicate => "duplicate",
            InOutcome::Rejected => "rejected",
        };
        self.messages_in
            .get_or_create(&TypeOutcome {
                r#type: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn message_out(&self, kind: &str, outcome: OutOutcome) {
        let outcome = match outcome {
            OutOutcome::Sent => "sent",
            OutOutcome::Failed => "failed",
            OutOutcome::Held => "held",
            OutOutcome::Retried => "retried",
        };
        self.messages_out
            .get_or_create(&TypeOutcome {
                r#type: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A finished turn: its duration, and the outside calls and token refreshes of its trace.
    pub fn turn_done(&self, duration: Duration, trace: &[TraceEvent]) {
        self.turn_duration.observe(duration.as_secs_f64());
        self.turn_outcome("done");
        for event in trace {
            match event {
                TraceEvent::Http(http) => {
                    let status = match (&http.status, &http.error) {
                        (Some(status), _) => status.to_string(),
                        (None, Some(error)) if error.to_ascii_lowercase().contains("timeout") => {
                            "timeout".to_owned()
                        }
                        (None, _) => "error".to_owned(),
                    };
                    self.outside_call("api_request", &status, http.duration_ms);
                }
                TraceEvent::Zoho(zoho) => {
                    for call in &zoho.calls {
                        let status = call
                            .status
                            .map_or_else(|| "error".to_owned(), |s| s.to_string());
                        self.outside_call("zoho_search", &status, call.duration_ms);
                        if call.url.ends_with("/oauth/v2/token") {
                            self.token_refreshes.inc();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `retried` or `failed` turns (`done` is counted by [`Metrics::turn_done`]).
    pub fn turn_outcome(&self, outcome: &str) {
        self.turns
            .get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    fn outside_call(&self, kind: &str, status: &str, duration_ms: u64) {
        self.outside_calls
            .get_or_create(&CallLabels {
                kind: kind.to_owned(),
                status: status.to_owned(),
            })
            .observe(duration_ms as f64 / 1000.0);
    }

    pub fn queue_add(&self, queue: Queue, delta: i64) {
        self.queue_depth
            .get_or_create(&queue.labels())
            .inc_by(delta);
    }

    pub fn delivery_status(&self, status: &str) {
        self.delivery_statuses
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    pub fn conversation_flagged(&self, reason: &str) {
        self.conversations_flagged
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn flow_reload(&self, ok: bool) {
        self.flow_reloads
            .get_or_create(&Outcome {
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }
}

impl Queue {
    fn labels(self) -> QueueLabels {
        QueueLabels {
            queue: match self {
                Queue::Worker => "worker",
                Queue::Sender => "sender",
            }
            .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use flowbot_engine::trace::ZohoTrace;
    use flowbot_engine::CallRecord;

    use super::*;

    #[test]
    fn counts_show_in_the_text_with_their_labels() {
        let metrics = Metrics::new();
        metrics.message_in("text", InOutcome::Accepted);
        metrics.message_out("text", OutOutcome::Sent);
        metrics.queue_add(Queue::Worker, 2);
        let call = |url: &str| CallRecord {
            method: "POST".into(),
            url: url.into(),
            status: Some(200),
            duration_ms: 12,
            note: None,
        };
        let trace = vec![TraceEvent::Zoho(Box::new(ZohoTrace {
            step: "lookup".into(),
            connection: "zoho".into(),
            module: "Contacts".into(),
            by: "phone".into(),
            value: "919820000001".into(),
            outcome: "found".into(),
            calls: vec![
                call("https://accounts.zoho.in/oauth/v2/token"),
                call("https://www.zohoapis.in/crm/v8/Contacts/search"),
            ],
            body: None,
            error: None,
        }))];
        metrics.turn_done(Duration::from_millis(5), &trace);
        let text = metrics.encode();
        assert!(
            text.contains(r#"flowbot_messages_in_total{type="text",outcome="accepted"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"flowbot_messages_out_total{type="text",outcome="sent"} 1"#));
        assert!(text.contains(r#"flowbot_queue_depth{queue="worker"} 2"#));
        assert!(text.contains("flowbot_zoho_token_refreshes_total 1"));
        assert!(text.contains(
            r#"flowbot_outside_call_duration_seconds_count{kind="zoho_search",status="200"} 2"#
        ));
        assert!(text.contains("flowbot_turn_duration_seconds_count 1"));
    }
}
