//! The HTTP-and-clock seam. [`Transport`] sends one request and tells the time, so the same client
//! runs in production ([`ReqwestTransport`] on the system clock), in tests against a local fake with
//! a [`ManualClock`] (sleeps advance virtual time instead of waiting), and in replays where the engine
//! supplies its own transport that answers from recorded responses.
//!
//! This module does no retries, no auth and no logging: that is the client's job.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{TransportError, TransportErrorKind};

/// HTTP method; Zoho needs only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One HTTP request. `Debug` hides header values and the body, which carry tokens.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `(content type, bytes)`.
    pub body: Option<(String, Vec<u8>)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &"[redacted]")
            .field("header_names", &header_names)
            .field(
                "body_len",
                &self.body.as_ref().map(|(_, bytes)| bytes.len()),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One HTTP response, body fully read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Sends HTTP requests and tells the time.
pub trait Transport: Send + Sync + 'static {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send;
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// A clock that moves only when told to (or when something sleeps on it).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.now.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub fn advance(&self, duration: Duration) {
        let step = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let mut now = match self.now.lock() {
            Ok(now) => now,
            Err(poisoned) => poisoned.into_inner(),
        };
        *now = now.checked_add_signed(step).unwrap_or(*now);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        let mut now = match self.now.lock() {
            Ok(now) => now,
            Err(poisoned) => poisoned.into_inner(),
        };
        *now = to;
    }
}

/// Production transport: reqwest with rustls, no redirects, a default timeout of 10 s.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    clock: Option<Arc<ManualClock>>,
}

impl ReqwestTransport {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new() -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Self::DEFAULT_TIMEOUT)
            .connect_timeout(Self::DEFAULT_TIMEOUT)
            .build()
            .map_err(|error| map_reqwest_error(&error))?;
        Ok(ReqwestTransport {
            client,
            clock: None,
        })
    }

    /// Reuse an existing client (kept-alive connections shared with other callers).
    pub fn with_client(client: reqwest::Client) -> Self {
        ReqwestTransport {
            client,
            clock: None,
        }
    }

    /// Tell the time from `clock`, and make `sleep` advance it instead of waiting (tests).
    pub fn with_manual_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .timeout(request.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some((content_type, bytes)) = request.body {
            builder = builder.header("content-type", content_type).body(bytes);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| map_reqwest_error(&error))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|error| map_reqwest_error(&error))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Some(clock) => clock.now(),
            None => Utc::now(),
        }
    }

    async fn sleep(&self, duration: Duration) {
        match &self.clock {
            Some(clock) => {
                clock.advance(duration);
                tokio::task::yield_now().await;
            }
            None => tokio::time::sleep(duration).await,
        }
    }
}

/// reqwest errors print their URL, which may carry a token in its query: drop it, keep the causes.
fn map_reqwest_error(error: &reqwest::Error) -> TransportError {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    };
    let mut message = match kind {
        TransportErrorKind::Timeout => "timed out".to_owned(),
        TransportErrorKind::Connect => "connection failed".to_owned(),
        TransportErrorKind::Other => "request failed".to_owned(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    TransportError::new(kind, message)
}
