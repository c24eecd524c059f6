//! The production side of the engine's effects: what the server and `flowbot chat` use to perform
//! the HTTP calls and Zoho searches that turns ask for. The engine stays sans-I/O; this crate is
//! where its effects meet the network.
//!
//! - [`http`]: [`HttpExecutor`] performs one `Effect::Http` with reqwest: the request's timeout for
//!   the whole exchange, reading stops at `max_response` (→ `HttpResult::TooLarge`), redirects
//!   followed only within the same origin, failures described without the URL's query.
//! - [`egress`]: [`EgressPolicy`], the SSRF guard: link-local and cloud metadata destinations are
//!   refused unless allowed, for literal IPs and for resolved names alike.
//! - [`zoho`]: [`zoho_request`] maps the engine's request to the Zoho client's;
//!   [`zoho_search_result`] maps a `flowbot_zoho::SearchReport` to the engine's result.
//! - [`live`]: [`LiveEffects`], the `EffectHandler` that drives turns for real.
//!
//! Invariant: nothing here panics on a server's answer, and no secret (an API key in a query, a
//! token) reaches a `Connection` reason, a Zoho error text or a call record.

pub mod egress;
pub mod http;
pub mod live;
pub mod zoho;

pub use egress::EgressPolicy;
pub use http::{HttpExecutor, MAX_REDIRECTS};
pub use live::LiveEffects;
pub use zoho::{zoho_request, zoho_search_result};
