//! Effects: what a turn needs from the outside world, returned as values (sans-I/O).
//!
//! The driver performs an [`Effect`] and resumes the turn with an [`EffectResult`]: the server with
//! reqwest and the Zoho client, the replay runner with `http:` fakes on a virtual clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Something the turn waits for.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Perform one HTTP request (no retries: the engine decides those).
    Http(HttpRequest),
    /// Wait (between retries). Replays advance their virtual clock.
    Sleep(Duration),
    /// Search Zoho CRM through a connection (the Zoho client owns tokens, retries and phone forms).
    ZohoSearch(ZohoSearchRequest),
}

/// An HTTP request, fully rendered and escaped.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The whole exchange must finish within this.
    pub timeout: Duration,
    /// Reading stops after this many bytes (the answer is then `TooLarge`).
    pub max_response: u64,
}

/// What came back.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpResult {
    Response(HttpResponse),
    /// No complete answer within the timeout.
    Timeout,
    /// The body exceeded `max_response`.
    TooLarge,
    /// Could not connect, or the connection broke; or a refused destination.
    Connection(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long it took (for the trace; virtual in replays).
    pub duration: Duration,
}

/// A Zoho CRM search to perform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZohoSearchRequest {
    pub connection: String,
    pub module: String,
    /// phone, email, word or criteria.
    pub by: String,
    pub value: String,
    pub fields: Vec<String>,
}

/// The answer of a Zoho search.
#[derive(Clone, Debug, PartialEq)]
pub struct ZohoSearchResult {
    pub outcome: ZohoOutcome,
    /// Every HTTP call made (token refreshes included), without secrets.
    pub calls: Vec<CallRecord>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ZohoOutcome {
    /// The response body (`data` holds the matches, best first).
    Found(Value),
    Empty,
    /// The cause and the fix, for the log; the customer never sees it.
    Error(String),
    Timeout,
}

/// One outside HTTP call, as the trace shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The driver's answer to an effect.
#[derive(Clone, Debug, PartialEq)]
pub enum EffectResult {
    Http(HttpResult),
    Slept,
    Zoho(ZohoSearchResult),
}
