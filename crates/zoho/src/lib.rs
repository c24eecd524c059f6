//! Zoho CRM client for flowbot: data centres, the OAuth grant / refresh / revoke dance, record search
//! with phone-number matching, and the [`TokenStore`] trait that persists connections.
//!
//! Layout, one concept per module:
//! - [`dc`]: the Zoho data centres and their accounts / API URLs.
//! - [`secret`]: [`Secret`], a string whose `Debug` prints `[redacted]`.
//! - [`error`]: [`ZohoError`], whose messages name the cause and the fix, and the small error types
//!   of the seams ([`TransportError`], [`StoreError`]).
//! - [`transport`]: the [`Transport`] seam (HTTP plus a clock) and its production implementation
//!   [`ReqwestTransport`], with an optional [`ManualClock`] for tests and replays.
//! - [`cache`]: [`cache::CachingTokenStore`], connections kept in memory in front of a slow store.
//! - [`store`]: [`Connection`], the [`TokenStore`] trait and the in-memory [`MemoryTokenStore`].
//! - [`oauth`]: token-endpoint requests and answers (grant code, refresh, revoke).
//! - [`phone`]: WhatsApp number → the forms people store in Zoho, and normalisation of stored values.
//! - [`search`]: search URLs, criteria escaping, response classification, phone post-filtering.
//! - [`client`]: [`ZohoClient`], which ties the above together: single-flight refresh, retries,
//!   a per-connection concurrency limit and a [`CallRecord`] for every HTTP call.
//!
//! Invariant: no access token, refresh token, grant code or client secret ever appears in an error,
//! a `Debug` output, a log line or a [`CallRecord`].
//!
//! This crate does not know about flows, SQL or WhatsApp: the engine maps a [`SearchReport`] to a
//! step outcome, and the SQLite token store lives in `crates/store`.

pub mod cache;
pub mod client;
pub mod dc;
pub mod error;
pub mod oauth;
pub mod phone;
pub mod search;
pub mod secret;
pub mod store;
pub mod transport;

pub use client::{
    CallRecord, ClientConfig, ConnectRequest, ConnectionState, ConnectionStatus, DisconnectReport,
    SearchOutcome, SearchQuery, SearchReport, SearchRequest, ZohoClient,
};
pub use dc::DataCentre;
pub use error::{StoreError, TransportError, TransportErrorKind, ZohoError};
pub use secret::Secret;
pub use store::{Connection, MemoryTokenStore, TokenStore};
pub use transport::{HttpRequest, HttpResponse, ManualClock, Method, ReqwestTransport, Transport};
