//! A fake WhatsApp Cloud (Graph) API: a real axum server on `127.0.0.1:0`.
//!
//! It serves `POST /{version}/{phone_number_id}/messages` the way Graph does: it checks
//! `Authorization: Bearer <token>` (else 401 with the error-190 body), records every request (path,
//! headers, JSON body), and answers a send with the `success_response.json` shape carrying a fresh,
//! unique wamid, and a mark-as-read (`"status": "read"`) with `{"success": true}`. Read receipts are
//! recorded apart from sends. Tests can script failures (`fail_next`) with the Graph error fixtures,
//! or add latency, and wait for sends without sleeping (`wait_for_messages`).
//!
//! It does not validate message contents beyond "JSON object". Like Meta, it can POST a signed
//! `sent` status notification for each accepted send ([`FakeGraph::send_statuses_to`]), echoing the
//! send's `biz_opaque_callback_data` and retrying until it gets a 200; other webhooks are built with
//! [`crate::webhook`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The access token a [`FakeGraph`] accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "test-graph-access-token-not-real";

/// Graph error bodies, copied from `tests/fixtures/whatsapp-send/`.
pub mod bodies {
    pub const ERROR_100: &str =
        include_str!("../../../tests/fixtures/whatsapp-send/error_100_invalid_param_response.json");
    pub const ERROR_130429: &str =
        include_str!("../../../tests/fixtures/whatsapp-send/error_130429_response.json");
    pub const ERROR_131047: &str =
        include_str!("../../../tests/fixtures/whatsapp-send/error_131047_response.json");
    pub const ERROR_131056: &str =
        include_str!("../../../tests/fixtures/whatsapp-send/error_131056_response.json");
    pub const ERROR_190: &str =
        include_str!("../../../tests/fixtures/whatsapp-send/error_190_response.json");
    /// No fixture exists for a 5xx; this is Graph's generic "something went wrong" shape.
    pub const ERROR_500: &str = r#"{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"error_data":{"messaging_product":"whatsapp","details":"Something went wrong"},"fbtrace_id":"AbCdEfInvented500"}}"#;
}

/// A canned Graph failure, with the HTTP status Graph uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFailure {
    /// 400, code 131047: outside the 24-hour window.
    OutsideWindow,
    /// 400, code 130429: throughput reached.
    Throughput,
    /// 400, code 131056: pair rate limit.
    PairRateLimit,
    /// 401, code 190: access token expired.
    AuthExpired,
    /// 400, code 100: invalid parameter.
    InvalidParameter,
    /// 500, code 131000: server error.
    Server,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request path, e.g. `/v21.0/123456789012345/messages`.
    pub path: String,
    pub version: String,
    pub phone_number_id: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The wamid the fake answered with, for successful sends.
    pub answered_message_id: Option<String>,
    /// The HTTP status the fake answered with.
    pub answered_status: u16,
}

/// A running fake Graph API; stops when dropped.
pub struct FakeGraph {
    url: String,
    state: Arc<GraphState>,
    server: JoinHandle<()>,
}

struct GraphState {
    token: Mutex<String>,
    sends: Mutex<Vec<RecordedRequest>>,
    read_receipts: Mutex<Vec<RecordedRequest>>,
    rejected: Mutex<Vec<RecordedRequest>>,
    scripted: Mutex<VecDeque<(u16, Value)>>,
    latency: Mutex<Option<Duration>>,
    reply_delay: Mutex<Option<Duration>>,
    recorded: Notify,
    statuses: StatusCallbacks,
}

/// Where and how the fake POSTs status notifications (off until `send_statuses_to`).
#[derive(Default)]
struct StatusCallbacks {
    target: Mutex<Option<StatusTarget>>,
    client: Mutex<Option<reqwest::Client>>,
    /// Status notifications answered 200.
    delivered: AtomicUsize,
    /// Status notifications not yet answered 200 (still being retried).
    pending: AtomicUsize,
    /// Status notifications given up after [`STATUS_RETRY_FOR`].
    abandoned: AtomicUsize,
}

#[derive(Clone)]
struct StatusTarget {
    url: String,
    app_secret: String,
}

/// How often an unanswered status notification is POSTed again.
pub const STATUS_RETRY_EVERY: Duration = Duration::from_millis(200);
/// How long a status notification is retried before the fake gives up on it.
pub const STATUS_RETRY_FOR: Duration = Duration::from_secs(60);

/// Unique across every fake in the process, so wamids never collide between tests.
static NEXT_MESSAGE_NUMBER: AtomicU64 = AtomicU64::new(1);

impl FakeGraph {
    /// Starts a fake that accepts [`DEFAULT_TOKEN`].
    pub async fn start() -> FakeGraph {
        FakeGraph::start_with_token(DEFAULT_TOKEN).await
    }

    /// Starts a fake that accepts `token`.
    ///
    /// # Panics
    /// When no port on 127.0.0.1 can be bound (a broken test machine).
    pub async fn start_with_token(token: &str) -> FakeGraph {
        let state = Arc::new(GraphState {
            token: Mutex::new(token.to_owned()),
            sends: Mutex::default(),
            read_receipts: Mutex::default(),
            rejected: Mutex::default(),
            scripted: Mutex::default(),
            latency: Mutex::default(),
            reply_delay: Mutex::default(),
            recorded: Notify::new(),
            statuses: StatusCallbacks::default(),
        });
        let app = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(messages))
            .with_state(state.clone());
        #[allow(clippy::expect_used)]
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake Graph API");
        #[allow(clippy::expect_used)]
        let address = listener
            .local_addr()
            .expect("local address of the fake Graph API");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGraph {
            url: format!("http://{address}"),
            state,
            server,
        }
    }

    /// The API base to configure the client with (`http://127.0.0.1:PORT`, no version, no slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token the fake currently accepts.
    pub fn token(&self) -> String {
        lock(&self.state.token).clone()
    }

    /// Accept another token from now on (simulates rotating the system-user token).
    pub fn set_token(&self, token: &str) {
        *lock(&self.state.token) = token.to_owned();
    }

    /// Answer the next `count` sends with `failure` (read receipts are not affected).
    pub fn fail_next(&self, count: usize, failure: GraphFailure) {
        let (status, body) = failure.response();
        self.fail_next_with(count, status, body);
    }

    /// Answer the next `count` sends with this status and JSON body.
    pub fn fail_next_with(&self, count: usize, status: u16, body: Value) {
        let mut scripted = lock(&self.state.scripted);
        scripted.extend(std::iter::repeat_n((status, body), count));
    }

    /// Wait this long before answering every request from now on (`None`: answer at once).
    pub fn set_latency(&self, latency: Option<Duration>) {
        *lock(&self.state.latency) = latency;
    }

    /// Record each accepted send as it arrives (Graph has taken it), then wait this long before
    /// answering. A client that dies meanwhile never learns its message went out, which is how a
    /// send in flight at a crash can be sent twice. `None`: answer at once.
    pub fn set_reply_delay(&self, delay: Option<Duration>) {
        *lock(&self.state.reply_delay) = delay;
    }

    /// From now on, after each accepted send, POST a `sent` status notification to `url` (the
    /// webhook, e.g. `http://127.0.0.1:PORT/webhooks/whatsapp`) signed with `app_secret`, as Meta
    /// does: `id` is the wamid the send got, `recipient_id` its `to`, and the send's
    /// `biz_opaque_callback_data` is echoed when it had one. It is POSTed again every
    /// [`STATUS_RETRY_EVERY`] until it gets a 200, for at most [`STATUS_RETRY_FOR`]. The status is
    /// started when the send is recorded, before the answer (and its reply delay).
    ///
    /// # Panics
    /// When no HTTP client can be built (a broken test machine).
    pub fn send_statuses_to(&self, url: &str, app_secret: &str) {
        let mut client = lock(&self.state.statuses.client);
        if client.is_none() {
            #[allow(clippy::expect_used)]
            let built = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client for status callbacks");
            *client = Some(built);
        }
        *lock(&self.state.statuses.target) = Some(StatusTarget {
            url: url.to_owned(),
            app_secret: app_secret.to_owned(),
        });
    }

    /// Sends status notifications (new ones, and retries of unanswered ones) to another webhook
    /// URL from now on, e.g. a restarted server's. Does nothing unless [`FakeGraph::send_statuses_to`]
    /// was called.
    pub fn set_status_url(&self, url: &str) {
        if let Some(target) = lock(&self.state.statuses.target).as_mut() {
            target.url = url.to_owned();
        }
    }

    /// Stop sending status notifications for new sends (unanswered ones are still retried).
    pub fn stop_statuses(&self) {
        *lock(&self.state.statuses.target) = None;
    }

    /// Status notifications answered with a 200 so far.
    pub fn statuses_delivered(&self) -> usize {
        self.state.statuses.delivered.load(Ordering::SeqCst)
    }

    /// Status notifications still being retried.
    pub fn statuses_pending(&self) -> usize {
        self.state.statuses.pending.load(Ordering::SeqCst)
    }

    /// Status notifications given up (no 200 within [`STATUS_RETRY_FOR`]).
    pub fn statuses_abandoned(&self) -> usize {
        self.state.statuses.abandoned.load(Ordering::SeqCst)
    }

    /// The JSON bodies of accepted sends (not read receipts, not refused requests), in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.state.sends)
            .iter()
            .map(|request| request.body.clone())
            .collect()
    }

    /// Accepted sends with their path, headers and the wamid they were given.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.sends).clone()
    }

    /// The JSON bodies of accepted mark-as-read requests.
    pub fn read_receipts(&self) -> Vec<Value> {
        lock(&self.state.read_receipts)
            .iter()
            .map(|request| request.body.clone())
            .collect()
    }

    /// Requests the fake refused (bad token, scripted failure, body not JSON).
    pub fn rejected(&self) -> Vec<RecordedRequest> {
        lock(&self.state.rejected).clone()
    }

    /// Waits until at least `count` sends were accepted or `timeout` passed, and returns the bodies
    /// of all accepted sends so far (fewer than `count` on timeout; assert on the length).
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking, so a send between the check and the wait is seen.
            let recorded = self.state.recorded.notified();
            tokio::pin!(recorded);
            recorded.as_mut().enable();
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                return self.messages();
            }
        }
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GraphFailure {
    /// The HTTP status and body Graph answers with for this failure.
    pub fn response(self) -> (u16, Value) {
        let (status, text) = match self {
            GraphFailure::OutsideWindow => (400, bodies::ERROR_131047),
            GraphFailure::Throughput => (400, bodies::ERROR_130429),
            GraphFailure::PairRateLimit => (400, bodies::ERROR_131056),
            GraphFailure::AuthExpired => (401, bodies::ERROR_190),
            GraphFailure::InvalidParameter => (400, bodies::ERROR_100),
            GraphFailure::Server => (500, bodies::ERROR_500),
        };
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }
}

async fn messages(
    State(state): State<Arc<GraphState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *lock(&state.latency);
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut request = RecordedRequest {
        path: format!("/{version}/{phone_number_id}/messages"),
        version,
        phone_number_id,
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered_message_id: None,
        answered_status: 200,
    };

    let expected = format!("Bearer {}", lock(&state.token));
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(expected.as_str());
    let is_read_receipt = request.body.get("status").and_then(Value::as_str) == Some("read");
    let refusal = if !authorized {
        let (_, body) = GraphFailure::AuthExpired.response();
        Some((401, invalid_token_body(body)))
    } else if !request.body.is_object() {
        let (_, body) = GraphFailure::InvalidParameter.response();
        Some((400, body))
    } else if is_read_receipt {
        None
    } else {
        lock(&state.scripted).pop_front()
    };
    if let Some((status, body)) = refusal {
        request.answered_status = status;
        push(&state, &state.rejected, request);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, Json(body)).into_response();
    }

    if is_read_receipt {
        push(&state, &state.read_receipts, request);
        return Json(json!({ "success": true })).into_response();
    }

    let to = request
        .body
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
    let message_id = next_message_id();
    request.answered_message_id = Some(message_id.clone());
    let callback_data = request
        .body
        .get("biz_opaque_callback_data")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let phone_number_id = request.phone_number_id.clone();
    push(&state, &state.sends, request);
    if lock(&state.statuses.target).is_some() {
        let status = crate::webhook::status_notification(
            &phone_number_id,
            &message_id,
            "sent",
            &to,
            callback_data.as_deref(),
        );
        state.statuses.pending.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(post_status(state.clone(), status));
    }
    let reply_delay = *lock(&state.reply_delay);
    if let Some(delay) = reply_delay {
        tokio::time::sleep(delay).await;
    }
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": wa_id }],
        "messages": [{ "id": message_id }]
    }))
    .into_response()
}

/// POSTs one status notification to the current target until it is answered 200, every
/// [`STATUS_RETRY_EVERY`], for at most [`STATUS_RETRY_FOR`].
async fn post_status(state: Arc<GraphState>, body: Vec<u8>) {
    let deadline = tokio::time::Instant::now() + STATUS_RETRY_FOR;
    let statuses = &state.statuses;
    loop {
        let target = lock(&statuses.target).clone();
        let client = lock(&statuses.client).clone();
        if let (Some(target), Some(client)) = (target, client) {
            let answer = client
                .post(&target.url)
                .header("content-type", "application/json")
                .header(
                    "X-Hub-Signature-256",
                    crate::webhook::signature_header(&target.app_secret, &body),
                )
                .body(body.clone())
                .send()
                .await;
            if answer.is_ok_and(|answer| answer.status() == reqwest::StatusCode::OK) {
                statuses.delivered.fetch_add(1, Ordering::SeqCst);
                statuses.pending.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
        if tokio::time::Instant::now() + STATUS_RETRY_EVERY > deadline {
            statuses.abandoned.fetch_add(1, Ordering::SeqCst);
            statuses.pending.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        tokio::time::sleep(STATUS_RETRY_EVERY).await;
    }
}

/// The 190 body, reworded for a token that is wrong rather than expired.
fn invalid_token_body(mut body: Value) -> Value {
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        error.insert(
            "message".into(),
            json!("Invalid OAuth access token - Cannot parse access token"),
        );
        error.remove("error_subcode");
    }
    body
}

fn next_message_id() -> String {
    let number = NEXT_MESSAGE_NUMBER.fetch_add(1, Ordering::Relaxed);
    format!("wamid.HBgMRkFLRUdSQVBIMDAxFQIAERgS{number:016X}AA==")
}

fn push(state: &GraphState, list: &Mutex<Vec<RecordedRequest>>, request: RecordedRequest) {
    lock(list).push(request);
    state.recorded.notify_waiters();
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies and signature headers a test webhook received.
    type Received = Arc<Mutex<Vec<(Vec<u8>, String)>>>;

    /// A webhook that answers 500 to the first `failures` POSTs, then 200; records what it got.
    async fn receiver(failures: usize) -> (String, Received) {
        let got: Received = Arc::default();
        let seen = got.clone();
        let app = Router::new().route(
            "/webhooks/whatsapp",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let signature = headers
                        .get("x-hub-signature-256")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let mut seen = lock(&seen);
                    seen.push((body.to_vec(), signature));
                    if seen.len() <= failures {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/webhooks/whatsapp",
            listener.local_addr().expect("address")
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, got)
    }

    async fn send(graph: &FakeGraph, body: Value) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/v21.0/123456789012345/messages", graph.url()))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        answer["messages"][0]["id"]
            .as_str()
            .expect("a wamid")
            .to_owned()
    }

    async fn wait_delivered(graph: &FakeGraph, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while graph.statuses_delivered() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "statuses not delivered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_signed_sent_status_echoing_the_callback_data_is_retried_until_200() {
        let graph = FakeGraph::start().await;
        let (url, got) = receiver(2).await;
        graph.send_statuses_to(&url, "status-secret");
        let wamid = send(
            &graph,
            json!({ "messaging_product": "whatsapp", "to": "919820000001", "type": "text",
                    "text": { "body": "Hi" }, "biz_opaque_callback_data": "flowbot-outbox-5" }),
        )
        .await;
        wait_delivered(&graph, 1).await;
        assert_eq!(graph.statuses_pending(), 0);
        let got = lock(&got).clone();
        assert_eq!(got.len(), 3, "two 500s, then a 200");
        let (body, signature) = &got[2];
        assert!(
            flowbot_whatsapp::signature::verify(b"status-secret", body, Some(signature)).is_ok()
        );
        let parsed = flowbot_whatsapp::parse_notification(body).expect("a notification");
        let status = &parsed.statuses[0];
        assert_eq!(status.id, wamid);
        assert_eq!(status.status, flowbot_whatsapp::DeliveryStatus::Sent);
        assert_eq!(status.recipient_id.as_deref(), Some("919820000001"));
        assert_eq!(
            status.biz_opaque_callback_data.as_deref(),
            Some("flowbot-outbox-5")
        );
        assert_eq!(status.phone_number_id.as_deref(), Some("123456789012345"));
    }

    #[tokio::test]
    async fn statuses_follow_a_new_webhook_url_and_carry_no_callback_data_unless_sent() {
        let graph = FakeGraph::start().await;
        // Nothing listens here (a killed server).
        let gone = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!(
                "http://{}/webhooks/whatsapp",
                listener.local_addr().expect("address")
            )
        };
        graph.send_statuses_to(&gone, "status-secret");
        send(
            &graph,
            json!({ "messaging_product": "whatsapp", "to": "919820000002", "type": "text",
                    "text": { "body": "Hi" } }),
        )
        .await;
        tokio::time::sleep(STATUS_RETRY_EVERY * 2).await;
        assert_eq!(graph.statuses_delivered(), 0);
        assert_eq!(graph.statuses_pending(), 1);

        let (url, got) = receiver(0).await;
        graph.set_status_url(&url);
        wait_delivered(&graph, 1).await;
        let got = lock(&got).clone();
        let parsed = flowbot_whatsapp::parse_notification(&got[0].0).expect("a notification");
        assert_eq!(parsed.statuses[0].biz_opaque_callback_data, None);
    }
}
