//! The step trace of a turn: what each step did, written as data so that `chat --verbose`, the
//! transcript store and `conversations export` all read the same thing. Secrets are redacted
//! before an event is created.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::effect::CallRecord;

/// One thing that happened during a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    FlowStarted {
        flow: String,
        reason: String,
    },
    SessionExpired {
        flow: String,
    },
    Step {
        step: String,
        kind: String,
    },
    Branch {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
        target: String,
    },
    Saved {
        step: String,
        var: String,
        value: Value,
    },
    Answer {
        step: String,
        valid: bool,
        attempt: u32,
    },
    Http(Box<HttpTrace>),
    Zoho(Box<ZohoTrace>),
    Outcome {
        step: String,
        outcome: String,
        target: String,
    },
    Ended {
        reason: String,
    },
    Handoff {
        step: String,
    },
    Silent {
        reason: String,
    },
    Warning {
        message: String,
    },
}

/// An outside HTTP call of an `api_request` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpTrace {
    pub step: String,
    pub attempt: u32,
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default)]
    pub response_headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A Zoho search of a `zoho_search` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZohoTrace {
    pub step: String,
    pub connection: String,
    pub module: String,
    pub by: String,
    pub value: String,
    pub outcome: String,
    pub calls: Vec<CallRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How much of a response body a trace keeps.
pub const TRACE_BODY_LIMIT: usize = 4096;

/// Cuts text to at most `limit` bytes at a character boundary, marking the cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &text[..end], text.len())
}

impl TraceEvent {
    /// One line for `chat --verbose` and `conversations show`.
    pub fn describe(&self) -> String {
        match self {
            TraceEvent::FlowStarted { flow, reason } => format!("flow {flow} started ({reason})"),
            TraceEvent::SessionExpired { flow } => format!("conversation in {flow} had expired"),
            TraceEvent::Step { step, kind } => format!("step {step} ({kind})"),
            TraceEvent::Branch {
                step,
                condition,
                target,
            } => match condition {
                Some(c) => format!("{step}: {c} → {target}"),
                None => format!("{step}: else → {target}"),
            },
            TraceEvent::Saved { step, var, value } => format!("{step}: saved {var} = {value}"),
            TraceEvent::Answer {
                step,
                valid,
                attempt,
            } => {
                format!(
                    "{step}: answer {} (try {attempt})",
                    if *valid { "accepted" } else { "refused" }
                )
            }
            TraceEvent::Http(http) => format!(
                "{}: {} {} → {}{} ({} ms)",
                http.step,
                http.method,
                http.url,
                http.status
                    .map_or("no answer".to_string(), |s| s.to_string()),
                http.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" [{e}]")),
                http.duration_ms
            ),
            TraceEvent::Zoho(zoho) => format!(
                "{}: zoho {} {}={} → {}{}",
                zoho.step,
                zoho.module,
                zoho.by,
                zoho.value,
                zoho.outcome,
                zoho.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" [{e}]"))
            ),
            TraceEvent::Outcome {
                step,
                outcome,
                target,
            } => format!("{step}: outcome {outcome} → {target}"),
            TraceEvent::Ended { reason } => format!("conversation ended ({reason})"),
            TraceEvent::Handoff { step } => format!("{step}: handed to a person"),
            TraceEvent::Silent { reason } => format!("no reply ({reason})"),
            TraceEvent::Warning { message } => format!("warning: {message}"),
        }
    }
}
