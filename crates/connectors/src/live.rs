//! [`LiveEffects`]: the [`EffectHandler`] that performs a turn's effects for real, used by the
//! server and `flowbot chat` (replays answer effects from recordings instead).
//!
//! `Http` goes to the [`HttpExecutor`], `Sleep` waits on tokio's clock, `ZohoSearch` goes to the
//! Zoho client. Without a Zoho client every search is the error outcome, with the fix in its text.

use std::sync::Arc;

use flowbot_engine::{Effect, EffectHandler, EffectResult, ZohoOutcome, ZohoSearchResult};
use flowbot_zoho::{TokenStore, Transport, ZohoClient};

use crate::http::HttpExecutor;
use crate::zoho::{zoho_request, zoho_search_result};

/// Effects performed for real.
pub struct LiveEffects<T: Transport, S: TokenStore> {
    pub http: HttpExecutor,
    /// `None`: flows with a `zoho_search` step get the error outcome ("not connected").
    pub zoho: Option<Arc<ZohoClient<T, S>>>,
}

impl<T: Transport, S: TokenStore> EffectHandler for LiveEffects<T, S> {
    async fn handle(&self, effect: Effect) -> EffectResult {
        match effect {
            Effect::Http(request) => EffectResult::Http(self.http.execute(request).await),
            Effect::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                EffectResult::Slept
            }
            Effect::ZohoSearch(request) => match &self.zoho {
                Some(client) => EffectResult::Zoho(zoho_search_result(
                    client.search(&zoho_request(&request)).await,
                )),
                None => EffectResult::Zoho(ZohoSearchResult {
                    outcome: ZohoOutcome::Error(format!(
                        "Zoho is not connected: run `flowbot zoho connect --name {} ...`",
                        request.connection
                    )),
                    calls: Vec::new(),
                }),
            },
        }
    }
}
