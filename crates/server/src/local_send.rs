//! `flowbot send`: talk to a running server as a WhatsApp customer would, from a terminal.
//!
//! [`send_local`] builds a Cloud API text notification (the shape of
//! `tests/fixtures/whatsapp/text.json`, see [`text_notification`]), signs it with the app secret
//! when one is given (`X-Hub-Signature-256`, as Meta does), POSTs it to
//! `{url}/webhooks/whatsapp`, then polls `{url}/local/replies` until the turn is done or the
//! timeout passes, and returns the replies the bot gave. The CLI prints them with
//! [`Outbound::to_display`](flowbot_engine::Outbound::to_display).
//!
//! This is a client: it never touches the database and needs no server internals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use flowbot_engine::Outbound;
use flowbot_whatsapp::notification::{self, Business, Sender};
use secrecy::{ExposeSecret, SecretString};

use crate::local_replies::{RepliesAnswer, ReplyState};

/// The business account id in locally built notifications.
pub const LOCAL_WABA_ID: &str = "987654321098765";
/// The business number id in locally built notifications (replies go "from" it).
pub const LOCAL_PHONE_NUMBER_ID: &str = "123456789012345";
/// The business number in locally built notifications.
pub const LOCAL_DISPLAY_PHONE_NUMBER: &str = "15550100200";
/// How long [`send_local`] waits for the replies by default.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to send to a running server.
#[derive(Clone, Debug)]
pub struct LocalMessage {
    /// The server's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The customer's number: digits with country code (`919820000001`).
    pub from: String,
    /// The customer's WhatsApp profile name.
    pub name: Option<String>,
    pub text: String,
    /// Signs the notification (`FLOWBOT_WHATSAPP_APP_SECRET`); `None` sends it unsigned.
    pub app_secret: Option<SecretString>,
    /// The business number id the notification names.
    pub phone_number_id: String,
    /// How long to wait for the turn to finish.
    pub timeout: Duration,
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSendReport {
    /// The id given to the message.
    pub wamid: String,
    /// `Done` when the turn finished within the timeout.
    pub state: ReplyState,
    /// The bot's replies, in order.
    pub replies: Vec<Outbound>,
}

/// Why `flowbot send` could not do its job; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LocalSendError {
    #[error("could not reach the server at {url}: {reason} (is `flowbot serve` running there?)")]
    Unreachable { url: String, reason: String },
    #[error("the server refused the signature (401): set FLOWBOT_WHATSAPP_APP_SECRET to the server's app secret")]
    Unauthorized,
    #[error("the server answered {status} to the notification")]
    Refused { status: u16 },
    #[error("the server does not serve /local/replies (it has a Graph access token and does not listen on loopback); the message was delivered, see the server's log for the replies")]
    RepliesUnavailable,
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

impl LocalMessage {
    /// A message with no name, no signature, the local business number and a 10 s wait.
    pub fn new(url: impl Into<String>, from: impl Into<String>, text: impl Into<String>) -> Self {
        LocalMessage {
            url: url.into(),
            from: from.into(),
            name: None,
            text: text.into(),
            app_secret: None,
            phone_number_id: LOCAL_PHONE_NUMBER_ID.to_owned(),
            timeout: DEFAULT_REPLY_TIMEOUT,
        }
    }
}

/// The server's address as given, without a trailing slash; `127.0.0.1:8080` (no scheme, as the
/// server prints its listen address) means `http://127.0.0.1:8080`.
fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// Sends `message` and waits for the replies.
pub async fn send_local(message: &LocalMessage) -> Result<LocalSendReport, LocalSendError> {
    let base = base_url(&message.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| LocalSendError::Unreachable {
            url: base.clone(),
            reason: error.to_string(),
        })?;
    let wamid = new_wamid();
    let body = text_notification(
        &message.from,
        message.name.as_deref().unwrap_or(""),
        &message.text,
        &wamid,
        Utc::now().timestamp(),
        &message.phone_number_id,
    );
    let webhook = format!("{base}/webhooks/whatsapp");
    let mut request = client
        .post(&webhook)
        .header("content-type", "application/json");
    if let Some(secret) = &message.app_secret {
        let signature = flowbot_whatsapp::signature::sign(secret.expose_secret().as_bytes(), &body);
        request = request.header(flowbot_whatsapp::signature::SIGNATURE_HEADER, signature);
    }
    let response =
        request
            .body(body)
            .send()
            .await
            .map_err(|error| LocalSendError::Unreachable {
                url: base.clone(),
                reason: error.without_url().to_string(),
            })?;
    match response.status().as_u16() {
        200..=299 => {}
        401 => return Err(LocalSendError::Unauthorized),
        status => return Err(LocalSendError::Refused { status }),
    }

    let replies_url = format!("{base}/local/replies");
    let deadline = tokio::time::Instant::now() + message.timeout;
    loop {
        let answer = poll_replies(&client, &replies_url, &wamid, &message.from).await?;
        let finished = answer.state != ReplyState::Waiting;
        if finished || tokio::time::Instant::now() >= deadline {
            return Ok(LocalSendReport {
                wamid,
                state: answer.state,
                replies: answer.replies,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn poll_replies(
    client: &reqwest::Client,
    url: &str,
    wamid: &str,
    phone: &str,
) -> Result<RepliesAnswer, LocalSendError> {
    let bad_answer = |reason: String| LocalSendError::BadAnswer {
        url: url.to_owned(),
        reason,
    };
    let response = client
        .get(url)
        .query(&[("wamid", wamid), ("phone", phone)])
        .send()
        .await
        .map_err(|error| LocalSendError::Unreachable {
            url: url.to_owned(),
            reason: error.without_url().to_string(),
        })?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(LocalSendError::RepliesUnavailable);
    }
    if !response.status().is_success() {
        return Err(bad_answer(format!("HTTP {}", response.status())));
    }
    response
        .json::<RepliesAnswer>()
        .await
        .map_err(|error| bad_answer(error.without_url().to_string()))
}

/// A text notification as Meta sends it: `text.json`'s envelope around one message.
pub fn text_notification(
    from: &str,
    name: &str,
    text: &str,
    wamid: &str,
    timestamp: i64,
    phone_number_id: &str,
) -> Vec<u8> {
    let business = Business {
        waba_id: LOCAL_WABA_ID,
        phone_number_id,
        display_phone_number: LOCAL_DISPLAY_PHONE_NUMBER,
    };
    notification::text(
        &business,
        &Sender {
            from,
            name,
            wamid,
            timestamp,
        },
        text,
    )
}

/// A fresh message id, unique within this process and across runs.
pub fn new_wamid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("wamid.LOCAL{nanos:X}{count:04X}{:08X}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_notification_has_the_fixture_shape_and_parses() {
        let body = text_notification(
            "919820000001",
            "Anika Rao",
            "Hi, I need help with my order",
            "wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgUOUQ5NDIyMTIyQkRENUZDNTM1NEEA",
            1_796_289_300,
            LOCAL_PHONE_NUMBER_ID,
        );
        let fixture = include_bytes!("../../../tests/fixtures/whatsapp/text.json");
        let ours: Value = serde_json::from_slice(&body).unwrap();
        let theirs: Value = serde_json::from_slice(fixture).unwrap();
        assert_eq!(ours, theirs);
        let parsed = flowbot_whatsapp::parse_notification(&body).unwrap();
        assert_eq!(parsed.messages.len(), 1);
        assert_eq!(
            parsed.messages[0].profile_name.as_deref(),
            Some("Anika Rao")
        );
    }

    #[test]
    fn a_listen_address_without_a_scheme_is_an_http_url() {
        assert_eq!(base_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(base_url("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(
            base_url(" https://bot.example.com "),
            "https://bot.example.com"
        );
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(new_wamid(), new_wamid());
    }
}
