//! [`ZohoClient`]: connect, refresh, disconnect, status and search, over a [`Transport`] and a
//! [`TokenStore`].
//!
//! Token rules: the access token is refreshed before a call when it expires within
//! `refresh_margin`, and once more when Zoho answers INVALID_TOKEN / AUTHENTICATION_FAILURE, after
//! which the call is retried once (never a loop). Refreshes are single-flight: a per-connection
//! tokio mutex inside the process (after taking it, the connection is reloaded and the refresh skipped
//! if another task already did it) and a lease in the token store across processes. A throttled
//! refresh ("Access Denied") blocks refreshing for at least 60 s; meanwhile lookups that need a new
//! token fail fast without calling Zoho.
//!
//! Calls: 429 and 5xx are retried twice with jittered backoff (Retry-After honoured up to a cap);
//! a per-connection semaphore bounds concurrent API calls. Every HTTP call is returned as a
//! token-free [`CallRecord`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::dc::DataCentre;
use crate::error::{TransportError, ZohoError};
use crate::oauth::{self, TokenFailure};
use crate::phone::PhoneForms;
use crate::search::{self, Answer};
use crate::secret::Secret;
use crate::store::{Connection, TokenStore};
use crate::transport::{HttpRequest, HttpResponse, Method, Transport};

pub use crate::search::{SearchOutcome, SearchQuery, SearchRequest};

/// The shortest time refreshing stays blocked after Zoho throttled a refresh.
pub const MIN_THROTTLE_BACKOFF: Duration = Duration::from_secs(60);

/// Tuning knobs; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Concurrent API calls per connection (Zoho allows 5–25 by edition).
    pub max_concurrency: usize,
    /// Refresh when the access token expires within this margin.
    pub refresh_margin: Duration,
    /// Timeout of one HTTP call.
    pub request_timeout: Duration,
    /// Retries after a 429, a 5xx or a transport failure of a search.
    pub max_retries: u32,
    /// Backoff before retry 1, 2, ... (the last one repeats); ±25 % jitter is added.
    pub retry_delays: Vec<Duration>,
    /// Cap on an honoured `Retry-After`.
    pub max_retry_after: Duration,
    /// How long refreshing stays blocked after a throttled refresh (at least 60 s).
    pub throttle_backoff: Duration,
    /// How long a cross-process refresh lease lasts.
    pub lease_duration: Duration,
    /// How often a process waiting on another's lease looks at the store again.
    pub lease_poll: Duration,
    /// This process's name in refresh leases.
    pub holder: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_concurrency: 10,
            refresh_margin: Duration::from_secs(5 * 60),
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_delays: vec![Duration::from_millis(200), Duration::from_millis(800)],
            max_retry_after: Duration::from_secs(5),
            throttle_backoff: Duration::from_secs(120),
            lease_duration: Duration::from_secs(30),
            lease_poll: Duration::from_millis(250),
            holder: format!(
                "pid{}-{:016x}",
                std::process::id(),
                rand::rng().random::<u64>()
            ),
        }
    }
}

/// What `flowbot zoho connect` needs.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub name: String,
    pub dc: DataCentre,
    /// Overrides the data centre's accounts URL (tests, proxies).
    pub accounts_url: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// The Self Client grant code; it lives a few minutes and works once.
    pub grant_code: Secret,
    pub redirect_uri: Option<String>,
}

/// One HTTP call, as shown in a conversation's trace. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub method: String,
    /// Token-free: the token endpoint without its form body, the revoke URL with `[redacted]`.
    pub url: String,
    /// `None` when no answer came (timeout, connection refused).
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// What the call was for and how it ended, e.g. `search`, `search retry 1: HTTP 429`.
    pub note: String,
}

/// A search's result and every HTTP call made for it (refreshes and retries included).
#[derive(Debug, Clone)]
pub struct SearchReport {
    pub result: Result<SearchOutcome, ZohoError>,
    pub calls: Vec<CallRecord>,
}

/// What `disconnect` did. The local copy is always deleted.
#[derive(Debug, Clone)]
pub struct DisconnectReport {
    /// Zoho confirmed the revoke.
    pub revoked: bool,
    /// Why the revoke did not succeed, if it did not.
    pub note: Option<String>,
    pub calls: Vec<CallRecord>,
}

/// A connection's health, for `flowbot zoho status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// The access token is valid beyond the refresh margin.
    Ready,
    /// The access token expired or expires soon; the next lookup refreshes it.
    NeedsRefresh,
    /// Zoho throttled refreshing; lookups needing a new token fail until `refresh_blocked_until`.
    Throttled,
    /// The last refresh failed (see `last_error`).
    Failing,
}

/// A connection as `flowbot zoho status` shows it. Never holds a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub name: String,
    pub dc: DataCentre,
    pub accounts_url: String,
    pub api_domain: String,
    /// Seconds until the access token expires (negative: expired).
    pub expires_in_secs: i64,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub refresh_blocked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub state: ConnectionState,
    pub hint: String,
}

/// Per-connection, in-process state.
struct ConnectionGate {
    refresh_lock: tokio::sync::Mutex<()>,
    permits: Arc<Semaphore>,
}

/// The Zoho CRM client. Share it (e.g. in an `Arc`) between tasks: single-flight refresh and the
/// concurrency limit hold per client.
pub struct ZohoClient<T: Transport, S: TokenStore> {
    transport: T,
    store: S,
    config: ClientConfig,
    gates: Mutex<HashMap<String, Arc<ConnectionGate>>>,
}

impl<T: Transport, S: TokenStore> ZohoClient<T, S> {
    pub fn new(transport: T, store: S, config: ClientConfig) -> Self {
        ZohoClient {
            transport,
            store,
            config,
            gates: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Exchange a Self Client grant code and store the connection (replacing one of that name).
    pub async fn connect(&self, request: ConnectRequest) -> Result<Connection, ZohoError> {
        let mut calls = Vec::new();
        let result = self.connect_recorded(request, &mut calls).await;
        log_calls(&calls);
        result
    }

    /// Refresh the access token now (single-flight, honouring a throttle block).
    pub async fn refresh(&self, name: &str) -> Result<ConnectionStatus, ZohoError> {
        let mut calls = Vec::new();
        let result = self.refresh_now(name, &mut calls).await;
        log_calls(&calls);
        let connection = result?;
        Ok(self.status_of(&connection, self.transport.now()))
    }

    /// Revoke the refresh token at Zoho (best effort) and delete the connection.
    pub async fn disconnect(&self, name: &str) -> Result<DisconnectReport, ZohoError> {
        let connection = self.load(name).await?;
        let mut calls = Vec::new();
        let url = oauth::revoke_url(&connection.accounts_url, &connection.refresh_token);
        let trace_url = oauth::revoke_url_for_trace(&connection.accounts_url);
        let request = HttpRequest {
            method: Method::Post,
            url,
            headers: Vec::new(),
            body: None,
            timeout: self.config.request_timeout,
        };
        let answer = self
            .send_recorded(request, &trace_url, "revoke refresh token", &mut calls)
            .await;
        let (revoked, note) = match answer {
            Ok(response) if response.status == 200 => {
                match oauth::parse_token_answer(response.status, &response.body) {
                    Err(TokenFailure::Other { code, .. }) => {
                        (false, Some(format!("Zoho answered {code:?}")))
                    }
                    Err(TokenFailure::InvalidCode) => (
                        false,
                        Some("the refresh token was already revoked".to_owned()),
                    ),
                    _ => (true, None),
                }
            }
            Ok(response) => (
                false,
                Some(format!("Zoho answered HTTP {}", response.status)),
            ),
            Err(error) => (false, Some(format!("could not reach {trace_url}: {error}"))),
        };
        self.store.delete(name).await?;
        self.forget_gate(name);
        log_calls(&calls);
        tracing::info!(connection = name, revoked, "zoho connection removed");
        Ok(DisconnectReport {
            revoked,
            note,
            calls,
        })
    }

    /// Every stored connection's health. Never shows a token.
    pub async fn status(&self) -> Result<Vec<ConnectionStatus>, ZohoError> {
        let now = self.transport.now();
        let connections = self.store.list().await?;
        Ok(connections
            .iter()
            .map(|connection| self.status_of(connection, now))
            .collect())
    }

    /// Search a module; never panics and never returns a token.
    pub async fn search(&self, request: &SearchRequest) -> SearchReport {
        let mut calls = Vec::new();
        let result = self.search_recorded(request, &mut calls).await;
        if let Err(error) = &result {
            tracing::warn!(connection = %request.connection, module = %request.module, %error, "zoho search failed");
        }
        SearchReport { result, calls }
    }

    async fn connect_recorded(
        &self,
        request: ConnectRequest,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Connection, ZohoError> {
        if request.name.trim().is_empty() {
            return Err(ZohoError::InvalidRequest {
                reason: "the connection needs a name".to_owned(),
            });
        }
        let accounts_url = request
            .accounts_url
            .clone()
            .unwrap_or_else(|| request.dc.accounts_url().to_owned())
            .trim_end_matches('/')
            .to_owned();
        let url = oauth::token_url(&accounts_url);
        let body = oauth::grant_form(
            &request.client_id,
            &request.client_secret,
            &request.grant_code,
            request.redirect_uri.as_deref(),
        );
        let response = self
            .post_form(&url, body, "grant code exchange", calls)
            .await?;
        let now = self.transport.now();
        let accounts_host = oauth::accounts_host(&accounts_url);
        let grant = match oauth::parse_token_answer(response.status, &response.body) {
            Ok(grant) => grant,
            Err(failure) => {
                return Err(match failure {
                    TokenFailure::InvalidCode => ZohoError::GrantCodeExpired { accounts_host },
                    TokenFailure::InvalidClient => ZohoError::InvalidClient {
                        accounts_host,
                        dc: request.dc.code().to_owned(),
                    },
                    TokenFailure::Throttled { .. } => ZohoError::Throttled {
                        name: request.name.clone(),
                        until: now + self.throttle_backoff(),
                    },
                    TokenFailure::Other { code, description } => ZohoError::TokenEndpoint {
                        url,
                        code,
                        description,
                    },
                    TokenFailure::Unexpected { status, detail } => ZohoError::UnexpectedResponse {
                        url,
                        status,
                        detail,
                    },
                })
            }
        };
        let Some(refresh_token) = grant.refresh_token else {
            return Err(ZohoError::TokenEndpoint {
                url,
                code: "no refresh_token in the answer".to_owned(),
                description: Some("generate the grant code with access_type=offline (a Self Client does this by default)".to_owned()),
            });
        };
        let connection = Connection {
            name: request.name.clone(),
            dc: request.dc,
            accounts_url,
            api_domain: grant
                .api_domain
                .map(|domain| domain.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| request.dc.api_domain().to_owned()),
            client_id: request.client_id,
            client_secret: request.client_secret,
            refresh_token,
            access_token: grant.access_token,
            expires_at: now + to_chrono(grant.expires_in),
            last_refresh_at: Some(now),
            refresh_blocked_until: None,
            last_error: None,
        };
        self.store.save(&connection).await?;
        self.forget_gate(&connection.name);
        tracing::info!(connection = %connection.name, dc = %connection.dc, api_domain = %connection.api_domain, "zoho connected");
        Ok(connection)
    }

    async fn search_recorded(
        &self,
        request: &SearchRequest,
        calls: &mut Vec<CallRecord>,
    ) -> Result<SearchOutcome, ZohoError> {
        search::validate_module(&request.module)?;
        let phone = match &request.query {
            SearchQuery::Phone(number) => {
                Some(PhoneForms::from_whatsapp(number).map_err(|invalid| {
                    ZohoError::InvalidRequest {
                        reason: invalid.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        let connection = self
            .usable_connection(&request.connection, None, calls)
            .await?;
        let mut answer = self
            .search_once(&connection, request, phone.as_ref(), "search", calls)
            .await?;
        if let Answer::AuthFailed { code } = &answer {
            tracing::info!(connection = %request.connection, %code, "zoho rejected the access token; refreshing once");
            let refreshed = self
                .usable_connection(&request.connection, Some(&connection.access_token), calls)
                .await?;
            answer = self
                .search_once(
                    &refreshed,
                    request,
                    phone.as_ref(),
                    "search after token refresh",
                    calls,
                )
                .await?;
            if let Answer::AuthFailed { code } = answer {
                return Err(ZohoError::TokenRejected {
                    name: request.connection.clone(),
                    code,
                });
            }
        }
        match answer {
            Answer::Records(body) => Ok(match &phone {
                Some(forms) => search::filter_phone_matches(body, forms),
                None => SearchOutcome::Found(body),
            }),
            Answer::Empty => Ok(SearchOutcome::Empty),
            Answer::Failed(error) => Err(error),
            // search_once turns exhausted retries into errors; kept total for the compiler.
            Answer::AuthFailed { code } => Err(ZohoError::TokenRejected {
                name: request.connection.clone(),
                code,
            }),
            Answer::Retryable { status, .. } => Err(ZohoError::ServerError {
                url: search_trace_url(&connection, request),
                status,
                attempts: self.config.max_retries + 1,
                detail: "retries exhausted".to_owned(),
            }),
        }
    }

    /// One search with bounded retries on 429 / 5xx / transport failures, inside the semaphore.
    async fn search_once(
        &self,
        connection: &Connection,
        request: &SearchRequest,
        phone: Option<&PhoneForms>,
        purpose: &str,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Answer, ZohoError> {
        let url = search::search_url(&connection.api_domain, request, phone)?;
        let gate = self.gate(&connection.name);
        let _permit =
            gate.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ZohoError::InvalidRequest {
                    reason: "the client is shutting down".to_owned(),
                })?;
        let attempts = self.config.max_retries + 1;
        let mut attempt = 0;
        loop {
            let note = if attempt == 0 {
                purpose.to_owned()
            } else {
                format!("{purpose} retry {attempt}")
            };
            let http = HttpRequest {
                method: Method::Get,
                url: url.clone(),
                headers: vec![
                    (
                        "Authorization".to_owned(),
                        format!("Zoho-oauthtoken {}", connection.access_token.expose()),
                    ),
                    ("Accept".to_owned(), "application/json".to_owned()),
                ],
                body: None,
                timeout: self.config.request_timeout,
            };
            let sent = self.send_recorded(http, &url, &note, calls).await;
            let last = attempt + 1 >= attempts;
            let (retry_after, failure) = match sent {
                Err(error) => {
                    if last {
                        return Err(ZohoError::Transport { url, error });
                    }
                    (None, None)
                }
                Ok(response) => {
                    let answer = search::classify_answer(
                        response.status,
                        &response.body,
                        &connection.name,
                        &request.module,
                        &url,
                    );
                    let Answer::Retryable { status, code } = answer else {
                        return Ok(answer);
                    };
                    (retry_after(&response), Some((status, code, response)))
                }
            };
            if last {
                let Some((status, code, response)) = failure else {
                    return Err(ZohoError::InvalidRequest {
                        reason: "no answer".to_owned(),
                    });
                };
                if status == 429 || code.as_deref() == Some("TOO_MANY_REQUESTS") {
                    return Err(ZohoError::RateLimited { url, attempts });
                }
                return Err(ZohoError::ServerError {
                    url,
                    status,
                    attempts,
                    detail: describe_body(&response),
                });
            }
            let delay = self.backoff(attempt, retry_after);
            self.transport.sleep(delay).await;
            attempt += 1;
        }
    }

    /// The connection with a usable access token, refreshing it if needed. `stale` is a token Zoho
    /// just rejected: refresh unless someone already replaced it.
    async fn usable_connection(
        &self,
        name: &str,
        stale: Option<&Secret>,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Connection, ZohoError> {
        let connection = self.load(name).await?;
        if !self.needs_refresh(&connection, stale) {
            return Ok(connection);
        }
        if let Err(throttled) = self.check_not_blocked(&connection) {
            // Refreshing is blocked, but a token inside the refresh margin still works.
            return self.still_valid(connection, stale).ok_or(throttled);
        }
        let gate = self.gate(name);
        let _guard = gate.refresh_lock.lock().await;
        // Another task may have refreshed while this one waited for the lock.
        let connection = self.load(name).await?;
        if !self.needs_refresh(&connection, stale) {
            return Ok(connection);
        }
        if let Err(throttled) = self.check_not_blocked(&connection) {
            return self.still_valid(connection, stale).ok_or(throttled);
        }
        let current = connection.clone();
        match self.refresh_under_lease(connection, stale, calls).await {
            Ok(refreshed) => Ok(refreshed),
            // A failed proactive refresh does not stop a call whose token has not expired yet.
            Err(error) => self.still_valid(current, stale).ok_or(error),
        }
    }

    async fn refresh_now(
        &self,
        name: &str,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Connection, ZohoError> {
        let connection = self.load(name).await?;
        self.check_not_blocked(&connection)?;
        let gate = self.gate(name);
        let _guard = gate.refresh_lock.lock().await;
        let connection = self.load(name).await?;
        self.check_not_blocked(&connection)?;
        let stale = connection.access_token.clone();
        self.refresh_under_lease(connection, Some(&stale), calls)
            .await
    }

    /// Take the store's lease (waiting for another process's refresh if need be), then refresh.
    async fn refresh_under_lease(
        &self,
        mut connection: Connection,
        stale: Option<&Secret>,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Connection, ZohoError> {
        let name = connection.name.clone();
        let holder = self.config.holder.clone();
        let started = self.transport.now();
        let lease = to_chrono(self.config.lease_duration);
        loop {
            let now = self.transport.now();
            if self
                .store
                .try_acquire_refresh_lease(&name, &holder, now, now + lease)
                .await?
            {
                break;
            }
            if now - started > lease {
                return Err(ZohoError::RefreshInProgress { name });
            }
            self.transport.sleep(self.config.lease_poll).await;
            connection = self.load(&name).await?;
            if !self.needs_refresh(&connection, stale) {
                return Ok(connection);
            }
            self.check_not_blocked(&connection)?;
        }
        let result = self.refresh_token(connection, calls).await;
        if let Err(error) = self.store.release_refresh_lease(&name, &holder).await {
            tracing::warn!(connection = %name, %error, "could not release the zoho refresh lease");
        }
        result
    }

    /// The refresh call itself; saves the outcome (new token, throttle block or last error).
    async fn refresh_token(
        &self,
        mut connection: Connection,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Connection, ZohoError> {
        let url = oauth::token_url(&connection.accounts_url);
        let body = oauth::refresh_form(
            &connection.client_id,
            &connection.client_secret,
            &connection.refresh_token,
        );
        let response = match self.post_form(&url, body, "token refresh", calls).await {
            Ok(response) => response,
            Err(error) => {
                connection.last_error = Some(error.to_string());
                self.store.save(&connection).await?;
                return Err(error);
            }
        };
        let now = self.transport.now();
        let accounts_host = oauth::accounts_host(&connection.accounts_url);
        let error = match oauth::parse_token_answer(response.status, &response.body) {
            Ok(grant) => {
                connection.access_token = grant.access_token;
                connection.expires_at = now + to_chrono(grant.expires_in);
                if let Some(domain) = grant.api_domain {
                    connection.api_domain = domain.trim_end_matches('/').to_owned();
                }
                connection.last_refresh_at = Some(now);
                connection.refresh_blocked_until = None;
                connection.last_error = None;
                self.store.save(&connection).await?;
                tracing::info!(connection = %connection.name, expires_at = %connection.expires_at, "zoho access token refreshed");
                return Ok(connection);
            }
            Err(TokenFailure::Throttled { .. }) => {
                let until = now + self.throttle_backoff();
                connection.refresh_blocked_until = Some(until);
                ZohoError::Throttled {
                    name: connection.name.clone(),
                    until,
                }
            }
            Err(TokenFailure::InvalidCode) => ZohoError::RefreshTokenRevoked {
                name: connection.name.clone(),
                accounts_host,
            },
            Err(TokenFailure::InvalidClient) => ZohoError::InvalidClient {
                accounts_host,
                dc: connection.dc.code().to_owned(),
            },
            Err(TokenFailure::Other { code, description }) => ZohoError::TokenEndpoint {
                url,
                code,
                description,
            },
            Err(TokenFailure::Unexpected { status, detail }) => ZohoError::UnexpectedResponse {
                url,
                status,
                detail,
            },
        };
        tracing::warn!(connection = %connection.name, %error, "zoho token refresh failed");
        connection.last_error = Some(error.to_string());
        self.store.save(&connection).await?;
        Err(error)
    }

    async fn post_form(
        &self,
        url: &str,
        body: Vec<u8>,
        note: &str,
        calls: &mut Vec<CallRecord>,
    ) -> Result<HttpResponse, ZohoError> {
        let request = HttpRequest {
            method: Method::Post,
            url: url.to_owned(),
            headers: vec![("Accept".to_owned(), "application/json".to_owned())],
            body: Some(("application/x-www-form-urlencoded".to_owned(), body)),
            timeout: self.config.request_timeout,
        };
        self.send_recorded(request, url, note, calls)
            .await
            .map_err(|error| ZohoError::Transport {
                url: url.to_owned(),
                error,
            })
    }

    /// Send and append a [`CallRecord`] with `trace_url` (which must be token-free).
    async fn send_recorded(
        &self,
        request: HttpRequest,
        trace_url: &str,
        note: &str,
        calls: &mut Vec<CallRecord>,
    ) -> Result<HttpResponse, TransportError> {
        let method = request.method.as_str().to_owned();
        let started = self.transport.now();
        let result = self.transport.send(request).await;
        let duration_ms = (self.transport.now() - started).num_milliseconds().max(0) as u64;
        let (status, note) = match &result {
            Ok(response) => {
                let code = error_code(&response.body);
                let note = match code {
                    Some(code) => format!("{note}: {code}"),
                    None => note.to_owned(),
                };
                (Some(response.status), note)
            }
            Err(error) => (None, format!("{note}: {error}")),
        };
        calls.push(CallRecord {
            method,
            url: trace_url.to_owned(),
            status,
            duration_ms,
            note,
        });
        result
    }

    async fn load(&self, name: &str) -> Result<Connection, ZohoError> {
        self.store
            .load(name)
            .await?
            .ok_or_else(|| ZohoError::NotConnected {
                name: name.to_owned(),
            })
    }

    fn needs_refresh(&self, connection: &Connection, stale: Option<&Secret>) -> bool {
        let margin = to_chrono(self.config.refresh_margin);
        connection.access_token.is_empty()
            || connection.expires_at - margin <= self.transport.now()
            || stale.is_some_and(|stale| *stale == connection.access_token)
    }

    /// The connection if its token has not expired yet and was not just rejected.
    fn still_valid(&self, connection: Connection, stale: Option<&Secret>) -> Option<Connection> {
        let rejected = stale.is_some_and(|stale| *stale == connection.access_token);
        let expired = connection.expires_at <= self.transport.now();
        (!rejected && !expired && !connection.access_token.is_empty()).then_some(connection)
    }

    fn check_not_blocked(&self, connection: &Connection) -> Result<(), ZohoError> {
        match connection.refresh_blocked_until {
            Some(until) if until > self.transport.now() => Err(ZohoError::Throttled {
                name: connection.name.clone(),
                until,
            }),
            _ => Ok(()),
        }
    }

    fn throttle_backoff(&self) -> chrono::Duration {
        to_chrono(self.config.throttle_backoff.max(MIN_THROTTLE_BACKOFF))
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let base = self
            .config
            .retry_delays
            .get(attempt as usize)
            .or(self.config.retry_delays.last())
            .copied()
            .unwrap_or(Duration::from_millis(200));
        let jittered = base.mul_f64(rand::rng().random_range(0.75..1.25));
        match retry_after {
            Some(wait) => wait.min(self.config.max_retry_after).max(jittered),
            None => jittered,
        }
    }

    fn gate(&self, name: &str) -> Arc<ConnectionGate> {
        let mut gates = match self.gates.lock() {
            Ok(gates) => gates,
            Err(poisoned) => poisoned.into_inner(),
        };
        gates
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(ConnectionGate {
                    refresh_lock: tokio::sync::Mutex::new(()),
                    permits: Arc::new(Semaphore::new(self.config.max_concurrency.max(1))),
                })
            })
            .clone()
    }

    fn forget_gate(&self, name: &str) {
        let mut gates = match self.gates.lock() {
            Ok(gates) => gates,
            Err(poisoned) => poisoned.into_inner(),
        };
        gates.remove(name);
    }

    fn status_of(&self, connection: &Connection, now: DateTime<Utc>) -> ConnectionStatus {
        let expires_in_secs = (connection.expires_at - now).num_seconds();
        let margin = to_chrono(self.config.refresh_margin);
        let (state, hint) = match (connection.refresh_blocked_until, &connection.last_error) {
            (Some(until), _) if until > now => (
                ConnectionState::Throttled,
                format!("Zoho throttled token refresh; lookups that need a new token fail until {until}; wait, do not reconnect"),
            ),
            (_, Some(error)) => (ConnectionState::Failing, error.clone()),
            _ if connection.expires_at - margin <= now => (
                ConnectionState::NeedsRefresh,
                "the access token expired or expires soon; the next lookup refreshes it".to_owned(),
            ),
            _ => (ConnectionState::Ready, "ready".to_owned()),
        };
        ConnectionStatus {
            name: connection.name.clone(),
            dc: connection.dc,
            accounts_url: connection.accounts_url.clone(),
            api_domain: connection.api_domain.clone(),
            expires_in_secs,
            last_refresh_at: connection.last_refresh_at,
            refresh_blocked_until: connection.refresh_blocked_until,
            last_error: connection.last_error.clone(),
            state,
            hint,
        }
    }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response
        .header("retry-after")
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A Zoho `code` or token-endpoint `error` from a body, for call notes; never the body itself.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["code", "error"]
        .iter()
        .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str))
        .filter(|code| code.len() <= 80)
        .map(str::to_owned)
}

fn describe_body(response: &HttpResponse) -> String {
    if let Some(code) = error_code(&response.body) {
        return code;
    }
    match response.header("content-type") {
        Some(content_type) => format!("{} bytes of {content_type}", response.body.len()),
        None => format!("{} bytes", response.body.len()),
    }
}

fn search_trace_url(connection: &Connection, request: &SearchRequest) -> String {
    format!("{}/crm/v8/{}/search", connection.api_domain, request.module)
}

fn log_calls(calls: &[CallRecord]) {
    for call in calls {
        tracing::debug!(method = %call.method, url = %call.url, status = ?call.status, duration_ms = call.duration_ms, note = %call.note, "zoho call");
    }
}
