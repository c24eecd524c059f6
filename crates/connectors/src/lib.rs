//! CONTRACT SKELETON — the production implementation of the engine's effects.
//!
//! - `http`: [`HttpExecutor`] performs one `Effect::Http` with reqwest: the request's timeout for the
//!   whole exchange, reading stops at `max_response` (→ `HttpResult::TooLarge`), redirects followed
//!   only to the same host, egress rules (link-local / cloud metadata refused unless allowed).
//! - `zoho`: [`zoho_search_result`] maps a `flowbot_zoho::SearchReport` to the engine's
//!   `ZohoSearchResult`; [`zoho_request`] maps the engine's request to the client's.
//! - `live`: [`LiveEffects`], the `EffectHandler` the server and `flowbot chat` drive turns with.

use std::sync::Arc;

use flowbot_engine::{Effect, EffectHandler, EffectResult, HttpRequest, HttpResult, ZohoSearchRequest, ZohoSearchResult};
use flowbot_zoho::{SearchReport, SearchRequest, TokenStore, Transport, ZohoClient};

/// Where outside calls may go.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    /// Allow link-local and cloud metadata addresses (169.254.0.0/16, fd00:ec2::254). Off by default.
    pub allow_link_local: bool,
}

/// Performs HTTP effects.
#[derive(Clone, Debug)]
pub struct HttpExecutor {}

impl HttpExecutor {
    pub fn new(_policy: EgressPolicy) -> Result<HttpExecutor, String> {
        todo!()
    }

    pub async fn execute(&self, _request: HttpRequest) -> HttpResult {
        todo!()
    }
}

/// The engine's Zoho request as the client's.
pub fn zoho_request(_request: &ZohoSearchRequest) -> SearchRequest {
    todo!()
}

/// The client's report as the engine's result (errors as their cause-and-fix text).
pub fn zoho_search_result(_report: SearchReport) -> ZohoSearchResult {
    todo!()
}

/// Effects performed for real.
pub struct LiveEffects<T: Transport, S: TokenStore> {
    pub http: HttpExecutor,
    /// `None`: flows with a `zoho_search` step get the error outcome ("not connected").
    pub zoho: Option<Arc<ZohoClient<T, S>>>,
}

impl<T: Transport, S: TokenStore> EffectHandler for LiveEffects<T, S> {
    async fn handle(&self, _effect: Effect) -> EffectResult {
        todo!()
    }
}
