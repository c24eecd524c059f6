//! The crate's one error enum, [`ZohoError`], plus the error types of the two seams
//! ([`TransportError`] for HTTP, [`StoreError`] for the token store).
//!
//! Each `ZohoError` message is a line of the troubleshooting table: it names the cause and the fix.
//! Invariant: no variant holds a token, a grant code or a client secret; URLs are token-free.

use chrono::{DateTime, Utc};

/// Everything that can go wrong talking to Zoho. `Clone` so a trace can keep a copy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZohoError {
    #[error("Zoho connection {name:?} is not connected: run `flowbot zoho connect --name {name}`")]
    NotConnected { name: String },

    #[error("the grant code expired or was already used at {accounts_host} (they live minutes): generate a new one in the Self Client and connect at once")]
    GrantCodeExpired { accounts_host: String },

    #[error("the refresh token of Zoho connection {name:?} was revoked (or is unknown at {accounts_host}): reconnect with `flowbot zoho connect --name {name}`")]
    RefreshTokenRevoked { name: String, accounts_host: String },

    #[error("wrong data centre or client id/secret: this client is not known at {accounts_host} (data centre {dc}); check the client id and secret in the API console of the data centre the account lives in, and pass its --dc (an account in India uses --dc in, Europe --dc eu, Australia --dc com.au, Canada --dc ca)")]
    InvalidClient { accounts_host: String, dc: String },

    #[error("Zoho throttled token refresh for connection {name:?} (\"Access Denied\": too many token requests); Zoho lookups fail fast until {until} — wait a few minutes and do not reconnect or refresh in a loop")]
    Throttled { name: String, until: DateTime<Utc> },

    #[error("the Zoho token endpoint {url} answered {code:?}{}: check the connection's client id, secret and data centre, then reconnect", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenEndpoint {
        url: String,
        code: String,
        description: Option<String>,
    },

    #[error("Zoho rejected the access token of connection {name:?} ({code}) even right after a refresh: reconnect with `flowbot zoho connect --name {name}`")]
    TokenRejected { name: String, code: String },

    #[error("the Zoho connection {name:?} lacks an OAuth scope for {module}: add the scopes ZohoCRM.modules.{scope_module}.READ and ZohoSearch.securesearch.READ to the Self Client grant, then reconnect with `flowbot zoho connect --name {name}`", scope_module = module.to_ascii_lowercase())]
    ScopeMismatch { name: String, module: String },

    #[error("the Zoho user of connection {name:?} has no permission to read {module} (NO_PERMISSION): give that user's profile read access to the module, or connect as another user")]
    NoPermission { name: String, module: String },

    #[error("Zoho does not know the module {module:?} (INVALID_MODULE): use the module's API name, e.g. Contacts, Leads, Accounts, Deals (Setup > Developer Hub > APIs > API Names)")]
    InvalidModule { module: String },

    #[error("Zoho refused the search query ({code}: {message}){}: check the criteria syntax ((Field:operator:value)and(...)), field API names and operators", details.as_deref().map(|d| format!(" {d}")).unwrap_or_default())]
    InvalidQuery {
        code: String,
        message: String,
        details: Option<String>,
    },

    #[error("the search request is invalid: {reason}")]
    InvalidRequest { reason: String },

    #[error("Zoho is rate limiting {url} (TOO_MANY_REQUESTS, HTTP 429) after {attempts} attempts: lower the concurrency limit or check the org's daily API credits")]
    RateLimited { url: String, attempts: u32 },

    #[error("Zoho answered HTTP {status} from {url} after {attempts} attempts ({detail}): Zoho is having trouble, try again later")]
    ServerError {
        url: String,
        status: u16,
        attempts: u32,
        detail: String,
    },

    #[error("Zoho answered HTTP {status} {code} from {url}: {message}")]
    Api {
        url: String,
        status: u16,
        code: String,
        message: String,
    },

    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    UnexpectedResponse {
        url: String,
        status: u16,
        detail: String,
    },

    #[error("could not reach Zoho at {url}: {error}")]
    Transport { url: String, error: TransportError },

    #[error("another flowbot process is refreshing the token of connection {name:?} and did not finish in time: try again in a moment")]
    RefreshInProgress { name: String },

    #[error("token store: {0}")]
    Store(#[from] StoreError),
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    Timeout,
    Connect,
    Other,
}

/// An HTTP request that got no answer. The message never holds the URL's query (which may hold a
/// token); the caller adds a token-free URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

/// A token store failed (I/O, database, decryption). The message must not hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
}
