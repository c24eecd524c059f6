//! The benchmark's fakes: a Zoho CRM (token endpoint and phone search) and a WhatsApp Graph API,
//! real axum servers on `127.0.0.1:0`, each with an optional added latency.
//!
//! Why not `flowbot-testkit`'s fakes: they are built for assertions, so they record every request
//! (path, headers, body) in memory forever, and the fake Zoho scans every record under one lock for
//! each search. At ten thousand messages a second that would measure the fakes, on the same two
//! cores as the server. These answer in the same shapes (the same `criteria`, the same auth
//! headers, the same JSON the clients parse), look a number up in a map, and keep only counters and
//! one arrival time per benchmark message.
//!
//! Each message text carries a token, `#m<index>`; the flow quotes the text in its reply, so the
//! fake Graph API knows which message a reply answers, when it arrived, and whether it is a second
//! answer (a duplicate).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// The access token the fake Zoho accepts (seeded into the server's token store).
pub const ZOHO_TOKEN: &str = "1000.benchaccesstoken000000000000.00000000000000000000000000000000";
/// The access token the fake Graph API accepts.
pub const GRAPH_TOKEN: &str = "bench-graph-access-token-not-real";
/// The first name every Zoho record has; a reply that greets anyone else took the wrong branch.
pub const FIRST_NAME: &str = "Bench";
/// Marks a message's index inside its text: `ping #m42`.
pub const TOKEN_MARK: &str = "#m";

/// Starts an axum app on 127.0.0.1:0 and returns its base URL.
async fn serve(app: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a port for a fake")?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{address}"))
}

// ---------------------------------------------------------------------------------------------
// Zoho

/// A running fake Zoho.
pub struct BenchZoho {
    pub url: String,
    state: Arc<ZohoState>,
}

struct ZohoState {
    latency: Duration,
    /// Digits of a phone number → the search answer's body.
    answers: HashMap<String, Bytes>,
    searches: AtomicU64,
    refused: AtomicU64,
    not_found: AtomicU64,
    refreshes: AtomicU64,
}

/// What the fake Zoho saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZohoCounts {
    pub searches: u64,
    pub refused: u64,
    pub not_found: u64,
    pub refreshes: u64,
}

impl BenchZoho {
    /// A fake knowing one Contacts record per phone number.
    pub async fn start(phones: &[String], latency: Duration) -> Result<BenchZoho> {
        let answers = phones
            .iter()
            .enumerate()
            .map(|(index, phone)| {
                let body = json!({
                    "data": [{
                        "Owner": { "name": "Ravi Kumar", "id": "4876876000000315001" },
                        "First_Name": FIRST_NAME,
                        "Last_Name": format!("Customer{index}"),
                        "Mobile": phone,
                        "Phone": null,
                        "Lead_Status": "Contacted",
                        "Modified_Time": "2026-11-28T16:02:11+05:30",
                        "id": format!("48768760000{index:08}")
                    }],
                    "info": { "per_page": 200, "count": 1, "page": 1, "more_records": false }
                });
                (digits(phone), Bytes::from(body.to_string()))
            })
            .collect();
        let state = Arc::new(ZohoState {
            latency,
            answers,
            searches: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/oauth/v2/token", post(zoho_token))
            .route("/crm/v8/{module}/search", get(zoho_search))
            .with_state(state.clone());
        let url = serve(app).await?;
        Ok(BenchZoho { url, state })
    }

    pub fn counts(&self) -> ZohoCounts {
        ZohoCounts {
            searches: self.state.searches.load(Ordering::Relaxed),
            refused: self.state.refused.load(Ordering::Relaxed),
            not_found: self.state.not_found.load(Ordering::Relaxed),
            refreshes: self.state.refreshes.load(Ordering::Relaxed),
        }
    }
}

/// A refresh (it should not happen: the seeded token is valid for a day). Answers Zoho's shape.
async fn zoho_token(State(state): State<Arc<ZohoState>>, headers: HeaderMap) -> Response {
    state.refreshes.fetch_add(1, Ordering::Relaxed);
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    axum::Json(json!({
        "access_token": ZOHO_TOKEN,
        "api_domain": format!("http://{host}"),
        "token_type": "Bearer",
        "expires_in": 86_400
    }))
    .into_response()
}

async fn zoho_search(
    State(state): State<Arc<ZohoState>>,
    Path(_module): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    state.searches.fetch_add(1, Ordering::Relaxed);
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Zoho-oauthtoken "))
        == Some(ZOHO_TOKEN);
    if !authorized {
        state.refused.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#;
        return (StatusCode::UNAUTHORIZED, body).into_response();
    }
    let criteria = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("criteria="))
        .map(form_decode)
        .unwrap_or_default();
    // `((Phone:equals:919820000001)or(Mobile:equals:+919820000001)or…)`: any form will do.
    let answer = criteria
        .split(":equals:")
        .skip(1)
        .map(|rest| digits(rest.split(')').next().unwrap_or("")))
        .find_map(|number| state.answers.get(&number));
    match answer {
        Some(body) => (
            [("content-type", "application/json;charset=UTF-8")],
            body.clone(),
        )
            .into_response(),
        None => {
            state.not_found.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Graph

/// A running fake Graph API that timestamps the first reply to each benchmark message.
pub struct BenchGraph {
    pub url: String,
    state: Arc<GraphState>,
}

struct GraphState {
    latency: Duration,
    epoch: Instant,
    /// Nanoseconds after `epoch` (+1, so 0 means "no reply yet") of the first reply to message i.
    first_reply: Vec<AtomicU64>,
    replies: AtomicU64,
    duplicates: AtomicU64,
    unexpected: AtomicU64,
    read_receipts: AtomicU64,
    refused: AtomicU64,
    next_id: AtomicU64,
    /// A few unexpected reply texts, to say what went wrong.
    samples: Mutex<Vec<String>>,
    arrived: Notify,
}

/// What the fake Graph API saw.
#[derive(Clone, Debug, Default)]
pub struct GraphCounts {
    /// Second (or later) replies to the same message.
    pub duplicates: u64,
    /// Replies that quote no benchmark message, or greet the wrong name (a wrong branch).
    pub unexpected: u64,
    pub read_receipts: u64,
    /// Requests refused (wrong token, not JSON).
    pub refused: u64,
    pub samples: Vec<String>,
}

impl BenchGraph {
    /// A fake expecting replies to `messages` benchmark messages; times count from `epoch`.
    pub async fn start(messages: usize, latency: Duration, epoch: Instant) -> Result<BenchGraph> {
        let state = Arc::new(GraphState {
            latency,
            epoch,
            first_reply: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            replies: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            read_receipts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            samples: Mutex::default(),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route(
                "/{version}/{phone_number_id}/messages",
                post(graph_messages),
            )
            .with_state(state.clone());
        let url = serve(app).await?;
        Ok(BenchGraph { url, state })
    }

    pub fn counts(&self) -> GraphCounts {
        let state = &self.state;
        GraphCounts {
            duplicates: state.duplicates.load(Ordering::Relaxed),
            unexpected: state.unexpected.load(Ordering::Relaxed),
            read_receipts: state.read_receipts.load(Ordering::Relaxed),
            refused: state.refused.load(Ordering::Relaxed),
            samples: state.samples.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// When the first reply to message `index` arrived (after `epoch`), if it did.
    pub fn reply_time(&self, index: usize) -> Option<Duration> {
        match self.state.first_reply.get(index)?.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos - 1)),
        }
    }

    /// Waits until `count` first replies arrived, or `idle` passed without a new one. Returns
    /// whether all arrived.
    pub async fn wait_for_replies(&self, count: u64, idle: Duration) -> bool {
        loop {
            let arrived = self.state.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let seen = self.state.replies.load(Ordering::Relaxed);
            if seen >= count {
                return true;
            }
            if tokio::time::timeout(idle, arrived).await.is_err()
                && self.state.replies.load(Ordering::Relaxed) == seen
            {
                return false;
            }
        }
    }
}

async fn graph_messages(
    State(state): State<Arc<GraphState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived_at = state.epoch.elapsed();
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        == Some(GRAPH_TOKEN);
    let message: Option<Value> = serde_json::from_slice(&body).ok();
    let Some(message) = message.filter(|_| authorized) else {
        state.refused.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190,"fbtrace_id":"bench"}}"#;
        return (StatusCode::UNAUTHORIZED, body).into_response();
    };
    if message.get("status").and_then(Value::as_str) == Some("read") {
        state.read_receipts.fetch_add(1, Ordering::Relaxed);
        if !state.latency.is_zero() {
            tokio::time::sleep(state.latency).await;
        }
        return axum::Json(json!({ "success": true })).into_response();
    }
    let text = message
        .pointer("/text/body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    record_reply(&state, text, arrived_at);
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let number = state.next_id.fetch_add(1, Ordering::Relaxed);
    let to = message
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or_default();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": format!("wamid.BENCH{number:016X}") }]
    }))
    .into_response()
}

fn record_reply(state: &GraphState, text: &str, arrived_at: Duration) {
    let index = text
        .rfind(TOKEN_MARK)
        .and_then(|at| text[at + TOKEN_MARK.len()..].parse::<usize>().ok());
    let expected_greeting = text.starts_with(&format!("Hi {FIRST_NAME}, you said: "));
    let slot = index.and_then(|index| state.first_reply.get(index));
    let Some(slot) = slot.filter(|_| expected_greeting) else {
        state.unexpected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = state.samples.lock() {
            if samples.len() < 3 {
                samples.push(text.chars().take(200).collect());
            }
        }
        state.arrived.notify_waiters();
        return;
    };
    let stamp = arrived_at.as_nanos() as u64 + 1;
    if slot
        .compare_exchange(0, stamp, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        state.replies.fetch_add(1, Ordering::Relaxed);
    } else {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    state.arrived.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_values_decode() {
        assert_eq!(
            form_decode("%28%28Phone%3Aequals%3A%2B919820000001%29or"),
            "((Phone:equals:+919820000001)or"
        );
        assert_eq!(form_decode("a+b%"), "a b%");
    }
}
