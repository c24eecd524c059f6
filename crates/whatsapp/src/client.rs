//! The Cloud API client: sends [`OutboundMessage`]s and read receipts, and classifies failures.
//!
//! [`CloudApiClient`] POSTs to `{api_base}/{api_version}/{phone_number_id}/messages` with
//! `Authorization: Bearer <token>` over one kept-alive reqwest client (timeout set, redirects never
//! followed). A Graph error body is classified by its `error.code` into a [`SendError`] that says what
//! the caller should do: retry with backoff, pace this recipient, switch to a template, pause sending
//! and alert, or give up. The access token is a [`SecretString`]: it is never in a `Debug` or `Display`
//! output, and is scrubbed from any error text Graph echoes back.
//!
//! This module does not retry, pace or queue by itself (the server's sender does, using
//! [`SendError::is_retryable`] and [`SendError::retry_after`]), and does not track the 24-hour window.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::outbound::{mark_read_json, mark_read_with_typing_json, OutboundError, OutboundMessage};

/// The public Graph API host.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
/// The pinned Graph API version (samples in protocols.md range from v21.0 to v25.0).
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// How long one request may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most error-body characters kept in an error, so a large HTML error page cannot flood a log.
const MAX_ERROR_TEXT: usize = 500;

/// Where and how to reach the Cloud API.
#[derive(Debug, Clone)]
pub struct CloudApiConfig {
    /// Scheme and host, no version (`https://graph.facebook.com`, or a local fake in tests).
    pub api_base: String,
    /// `v21.0` style.
    pub api_version: String,
    /// A system-user access token. `Debug` shows it as redacted.
    pub access_token: SecretString,
    pub timeout: Duration,
}

/// A client for one WhatsApp Business account token; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct CloudApiClient {
    http: reqwest::Client,
    /// `{api_base}/{api_version}`, without a trailing slash.
    versioned_base: String,
    access_token: SecretString,
}

/// What Graph answered to a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The wamid of our message; later `statuses[]` webhooks refer to it. Accepted is not delivered.
    pub message_id: String,
    /// The recipient's `wa_id` as Graph resolved it, when given.
    pub wa_id: Option<String>,
    /// `accepted` or `held_for_quality_assessment` for paced templates, when given.
    pub message_status: Option<String>,
}

/// The Graph error object, with the token scrubbed from its texts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphError {
    pub http_status: u16,
    /// `error.code`; 0 when the body had none.
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    /// `error.error_data.details`: the most specific text; build logic on `code`, show this.
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
    /// The `Retry-After` header, when the answer had one.
    pub retry_after: Option<Duration>,
}

/// Why a send or mark-as-read failed, classified by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The message breaks a WhatsApp limit; it was not sent. Never retry.
    #[error("message not sent, it breaks a WhatsApp limit: {0}")]
    Invalid(#[from] OutboundError),
    /// The business phone number id is not a plain id (it goes into the URL path). Never retry.
    #[error("phone number id {phone_number_id:?} is not a Graph id (letters and digits only)")]
    BadPhoneNumberId { phone_number_id: String },
    /// 131047: more than 24 hours since the customer's last message. Send a template instead.
    #[error("outside the 24-hour customer service window: {0}")]
    OutsideWindow(GraphError),
    /// 130429: the business number's throughput is used up. Retry with backoff.
    #[error("Cloud API throughput reached: {0}")]
    Throughput(GraphError),
    /// 131056: too many messages to this recipient too fast. Pace this recipient and retry.
    #[error("pair rate limit for this recipient: {0}")]
    PairRateLimit(GraphError),
    /// 190 (or 0): the access token expired or is invalid. Pause sending and alert; not refreshable.
    #[error("access token rejected, sending must pause until it is replaced: {0}")]
    AuthExpired(GraphError),
    /// 100: a bad parameter. A bug on our side: never retry.
    #[error("invalid parameter: {0}")]
    InvalidParameter(GraphError),
    /// A 5xx answer or a temporary Graph error (1, 2, 131000, 131016). Retry with backoff.
    #[error("Cloud API server error: {0}")]
    Server(GraphError),
    /// No answer: connection refused, reset or timed out. Retry with backoff.
    #[error("could not reach the Cloud API{}: {reason}", if *.timed_out { " (timed out)" } else { "" })]
    Transport { timed_out: bool, reason: String },
    /// A 2xx answer without the expected body. Not retried: the message may have been accepted.
    #[error("unexpected Cloud API answer (HTTP {http_status}): {reason}")]
    UnexpectedResponse { http_status: u16, reason: String },
    /// Any other Graph error (permissions, templates, policy blocks, ...).
    #[error("Cloud API error: {0}")]
    Other(GraphError),
}

/// The HTTP client could not be built (TLS initialisation failed).
#[derive(Debug, thiserror::Error)]
#[error("could not build the Cloud API HTTP client: {0}")]
pub struct ClientBuildError(String);

impl CloudApiConfig {
    /// The public Graph API, [`DEFAULT_API_VERSION`] and [`DEFAULT_TIMEOUT`], with this token.
    pub fn new(access_token: impl Into<String>) -> Self {
        CloudApiConfig {
            api_base: DEFAULT_API_BASE.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            access_token: SecretString::from(access_token.into()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same, against another base URL (a local fake in tests).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }
}

impl CloudApiClient {
    pub fn new(config: CloudApiConfig) -> Result<Self, ClientBuildError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ClientBuildError(error.to_string()))?;
        let versioned_base = format!(
            "{}/{}",
            config.api_base.trim_end_matches('/'),
            config.api_version.trim_matches('/')
        );
        Ok(CloudApiClient {
            http,
            versioned_base,
            access_token: config.access_token,
        })
    }

    /// Sends `message` from the business number `phone_number_id` to `to`, quoting `reply_to`.
    ///
    /// The message is validated first; an `Ok` means Graph accepted it, not that it was delivered
    /// (late failures arrive as `failed` status webhooks).
    pub async fn send(
        &self,
        phone_number_id: &str,
        to: &str,
        message: &OutboundMessage,
        reply_to: Option<&str>,
    ) -> Result<SentMessage, SendError> {
        self.send_with_callback_data(phone_number_id, to, message, reply_to, None)
            .await
    }

    /// [`CloudApiClient::send`] carrying `biz_opaque_callback_data`, which Graph echoes in the
    /// message's status webhooks (sent, delivered, read, failed). Longer than
    /// [`crate::outbound::MAX_CALLBACK_DATA`] characters is refused before sending.
    pub async fn send_with_callback_data(
        &self,
        phone_number_id: &str,
        to: &str,
        message: &OutboundMessage,
        reply_to: Option<&str>,
        biz_opaque_callback_data: Option<&str>,
    ) -> Result<SentMessage, SendError> {
        message.validate()?;
        if let Some(data) = biz_opaque_callback_data {
            let actual = data.chars().count();
            if actual > crate::outbound::MAX_CALLBACK_DATA {
                return Err(OutboundError::TooLong {
                    what: "biz_opaque_callback_data".into(),
                    actual,
                    limit: crate::outbound::MAX_CALLBACK_DATA,
                }
                .into());
            }
        }
        let body =
            message.to_request_json_with_callback_data(to, reply_to, biz_opaque_callback_data);
        let (http_status, answer) = self.post(phone_number_id, &body).await?;
        let accepted: Accepted =
            serde_json::from_slice(&answer).map_err(|error| SendError::UnexpectedResponse {
                http_status,
                reason: format!("the body is not a send result: {error}"),
            })?;
        let first =
            accepted
                .messages
                .into_iter()
                .next()
                .ok_or_else(|| SendError::UnexpectedResponse {
                    http_status,
                    reason: "the answer has no messages[0].id".to_owned(),
                })?;
        tracing::debug!(phone_number_id, kind = message.kind(), message_id = %first.id, "message accepted by the Cloud API");
        Ok(SentMessage {
            message_id: first.id,
            wa_id: accepted
                .contacts
                .into_iter()
                .next()
                .and_then(|contact| contact.wa_id),
            message_status: first.message_status,
        })
    }

    /// Marks `message_id` (and everything before it in that chat) as read.
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
    ) -> Result<(), SendError> {
        self.post(phone_number_id, &mark_read_json(message_id))
            .await
            .map(|_| ())
    }

    /// Marks `message_id` as read and shows a typing indicator until the next reply (at most 25 s).
    pub async fn mark_read_and_type(
        &self,
        phone_number_id: &str,
        message_id: &str,
    ) -> Result<(), SendError> {
        self.post(phone_number_id, &mark_read_with_typing_json(message_id))
            .await
            .map(|_| ())
    }

    /// POSTs `body` to the messages endpoint; returns the status and body of a 2xx answer.
    async fn post(&self, phone_number_id: &str, body: &Value) -> Result<(u16, Vec<u8>), SendError> {
        check_path_segment(phone_number_id)?;
        let url = format!("{}/{}/messages", self.versioned_base, phone_number_id);
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.access_token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let http_status = response.status();
        let retry_after = retry_after_header(response.headers());
        let answer = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(&error))?;
        if http_status.is_success() {
            return Ok((http_status.as_u16(), answer.to_vec()));
        }
        let error = self.graph_error(http_status.as_u16(), &answer, retry_after);
        tracing::warn!(
            phone_number_id,
            http_status = error.http_status,
            code = error.code,
            fbtrace_id = error.fbtrace_id.as_deref().unwrap_or_default(),
            "Cloud API refused the request"
        );
        Err(SendError::classify(error))
    }

    fn transport_error(&self, error: &reqwest::Error) -> SendError {
        // `without_url` keeps the phone number id out; the token is never part of the error, but
        // scrub anyway in case a proxy or TLS layer ever echoes a header.
        let reason = self.scrub(&strip_url(error).to_string());
        SendError::Transport {
            timed_out: error.is_timeout(),
            reason,
        }
    }

    fn graph_error(
        &self,
        http_status: u16,
        answer: &[u8],
        retry_after: Option<Duration>,
    ) -> GraphError {
        let Ok(GraphErrorBody { error: Some(body) }) =
            serde_json::from_slice::<GraphErrorBody>(answer)
        else {
            let text = String::from_utf8_lossy(answer);
            return GraphError {
                http_status,
                message: self.scrub(&truncate(&text)),
                retry_after,
                ..GraphError::default()
            };
        };
        GraphError {
            http_status,
            code: body.code.unwrap_or_default(),
            subcode: body.error_subcode,
            message: self.scrub(&truncate(body.message.as_deref().unwrap_or_default())),
            details: body
                .error_data
                .and_then(|data| data.details)
                .map(|details| self.scrub(&truncate(&details))),
            fbtrace_id: body.fbtrace_id,
            retry_after,
        }
    }

    fn scrub(&self, text: &str) -> String {
        let token = self.access_token.expose_secret();
        if token.is_empty() {
            return text.to_owned();
        }
        text.replace(token, "[REDACTED]")
    }
}

impl std::fmt::Debug for CloudApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudApiClient")
            .field("versioned_base", &self.versioned_base)
            .finish_non_exhaustive()
    }
}

impl SendError {
    /// Maps a Graph error to what the caller should do, on `error.code` first (as Meta advises),
    /// then on the HTTP status.
    pub fn classify(error: GraphError) -> SendError {
        match error.code {
            131047 => SendError::OutsideWindow(error),
            130429 => SendError::Throughput(error),
            131056 => SendError::PairRateLimit(error),
            190 => SendError::AuthExpired(error),
            0 if error.http_status == 401 => SendError::AuthExpired(error),
            100 => SendError::InvalidParameter(error),
            1 | 2 | 131000 | 131016 => SendError::Server(error),
            _ if error.http_status >= 500 => SendError::Server(error),
            _ if error.http_status == 429 => SendError::Throughput(error),
            _ => SendError::Other(error),
        }
    }

    /// Whether sending the same message again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::Throughput(_)
                | SendError::PairRateLimit(_)
                | SendError::Server(_)
                | SendError::Transport { .. }
        )
    }

    /// How long to wait before the first retry: Graph's `Retry-After` when it sent one, else a
    /// default per kind (pair limit: Meta allows about one message per 6 s per recipient). `None`
    /// when the error is not retryable.
    pub fn retry_after(&self) -> Option<Duration> {
        let default = match self {
            SendError::Throughput(_) => Duration::from_secs(1),
            SendError::PairRateLimit(_) => Duration::from_secs(6),
            SendError::Server(_) => Duration::from_secs(2),
            SendError::Transport { .. } => Duration::from_secs(1),
            _ => return None,
        };
        Some(
            self.graph_error()
                .and_then(|error| error.retry_after)
                .unwrap_or(default),
        )
    }

    /// The delay before retry number `attempt` (0-based): [`retry_after`](Self::retry_after) times
    /// 4^attempt, as Meta advises for rate limits, capped at 15 minutes.
    pub fn backoff(&self, attempt: u32) -> Option<Duration> {
        let base = self.retry_after()?;
        let factor = 4u32.saturating_pow(attempt.min(10));
        Some(
            base.saturating_mul(factor)
                .min(Duration::from_secs(15 * 60)),
        )
    }

    /// The Graph error behind this failure, when Graph answered.
    pub fn graph_error(&self) -> Option<&GraphError> {
        match self {
            SendError::OutsideWindow(error)
            | SendError::Throughput(error)
            | SendError::PairRateLimit(error)
            | SendError::AuthExpired(error)
            | SendError::InvalidParameter(error)
            | SendError::Server(error)
            | SendError::Other(error) => Some(error),
            SendError::Invalid(_)
            | SendError::BadPhoneNumberId { .. }
            | SendError::Transport { .. }
            | SendError::UnexpectedResponse { .. } => None,
        }
    }
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}, code {}", self.http_status, self.code)?;
        if let Some(subcode) = self.subcode {
            write!(f, " (subcode {subcode})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(details) = &self.details {
            write!(f, " ({details})")?;
        }
        if let Some(fbtrace_id) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {fbtrace_id}]")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Accepted {
    #[serde(default)]
    contacts: Vec<AcceptedContact>,
    #[serde(default)]
    messages: Vec<AcceptedMessage>,
}

#[derive(Deserialize)]
struct AcceptedContact {
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct AcceptedMessage {
    id: String,
    message_status: Option<String>,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: Option<GraphErrorFields>,
}

#[derive(Deserialize)]
struct GraphErrorFields {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    error_data: Option<GraphErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct GraphErrorData {
    details: Option<String>,
}

/// A phone number id goes into the URL path: allow only what real ids look like.
fn check_path_segment(phone_number_id: &str) -> Result<(), SendError> {
    if phone_number_id.is_empty() || !phone_number_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SendError::BadPhoneNumberId {
            phone_number_id: phone_number_id.to_owned(),
        });
    }
    Ok(())
}

fn strip_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<messages endpoint>");
    }
    text
}

fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
