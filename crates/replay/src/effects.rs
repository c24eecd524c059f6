//! Performing a replay's effects offline: HTTP from the fakes, sleeps on the virtual clock, and Zoho
//! searches through the real Zoho client over a transport that the same fakes answer — so token
//! refreshes, phone forms and retries run exactly as in production.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowbot_engine::{Effect, EffectHandler, EffectResult, HttpResponse, HttpResult};
use flowbot_zoho::store::{Connection, MemoryTokenStore};
use flowbot_zoho::transport::{
    HttpRequest as ZohoRequest, HttpResponse as ZohoResponse, Transport,
};
use flowbot_zoho::{
    ClientConfig, DataCentre, Secret, TransportError, TransportErrorKind, ZohoClient,
};

use crate::fakes::{FakeAnswer, FakeRequest, Fakes};
use crate::format::ZohoSpec;

/// The Zoho client of a replay.
pub type ReplayZoho = ZohoClient<FakeTransport, MemoryTokenStore>;

/// The effect handler of replays and of `flowbot chat --fakes`.
pub struct ReplayEffects {
    pub fakes: Fakes,
    pub zoho: Arc<ReplayZoho>,
}

impl ReplayEffects {
    pub fn new(fakes: Fakes, zoho: Option<&ZohoSpec>, now: DateTime<Utc>) -> ReplayEffects {
        let transport = FakeTransport {
            fakes: fakes.clone(),
        };
        let store = MemoryTokenStore::with_connections([seed_connection(zoho, now)]);
        let config = ClientConfig {
            holder: "replay".into(),
            ..ClientConfig::default()
        };
        ReplayEffects {
            fakes,
            zoho: Arc::new(ZohoClient::new(transport, store, config)),
        }
    }
}

/// The connection a replay starts with: what `zoho:` says, else an account in India whose access
/// token must first be fetched through the (faked) token endpoint.
fn seed_connection(spec: Option<&ZohoSpec>, now: DateTime<Utc>) -> Connection {
    let default = ZohoSpec::default();
    let spec = spec.unwrap_or(&default);
    let dc: DataCentre = spec
        .dc
        .as_deref()
        .unwrap_or("in")
        .parse()
        .unwrap_or(DataCentre::In);
    let (access_token, expires_at) = match &spec.access_token {
        Some(token) => (
            token.clone(),
            spec.expires_at.unwrap_or(now + chrono::Duration::hours(1)),
        ),
        None => (String::new(), DateTime::<Utc>::UNIX_EPOCH),
    };
    Connection {
        name: spec.connection.clone().unwrap_or_else(|| "zoho".into()),
        dc,
        accounts_url: spec
            .accounts_url
            .clone()
            .unwrap_or_else(|| dc.accounts_url().to_string()),
        api_domain: spec
            .api_domain
            .clone()
            .unwrap_or_else(|| dc.api_domain().to_string()),
        client_id: "replay-client-id".into(),
        client_secret: Secret::new("replay-client-secret"),
        refresh_token: Secret::new("replay-refresh-token"),
        access_token: Secret::new(access_token),
        expires_at,
        last_refresh_at: None,
        refresh_blocked_until: None,
        last_error: None,
    }
}

impl EffectHandler for ReplayEffects {
    async fn handle(&self, effect: Effect) -> EffectResult {
        match effect {
            Effect::Http(request) => {
                let answer = self.fakes.answer(&FakeRequest {
                    method: &request.method,
                    url: &request.url,
                    headers: &request.headers,
                    body: request.body.as_deref(),
                    timeout: request.timeout,
                });
                EffectResult::Http(match answer {
                    FakeAnswer::Response {
                        status,
                        headers,
                        body,
                        took,
                    } => {
                        if body.len() as u64 > request.max_response {
                            HttpResult::TooLarge
                        } else {
                            HttpResult::Response(HttpResponse {
                                status,
                                headers,
                                body,
                                duration: took,
                            })
                        }
                    }
                    FakeAnswer::Timeout => HttpResult::Timeout,
                    FakeAnswer::NoMatch => {
                        HttpResult::Connection("no fake matches this request".into())
                    }
                })
            }
            Effect::Sleep(duration) => {
                self.fakes.advance(duration);
                EffectResult::Slept
            }
            Effect::ZohoSearch(request) => {
                let report = self
                    .zoho
                    .search(&flowbot_connectors::zoho_request(&request))
                    .await;
                EffectResult::Zoho(flowbot_connectors::zoho_search_result(report))
            }
        }
    }
}

/// The Zoho client's transport in replays: answered by the fakes, on the virtual clock.
pub struct FakeTransport {
    fakes: Fakes,
}

impl Transport for FakeTransport {
    async fn send(&self, request: ZohoRequest) -> Result<ZohoResponse, TransportError> {
        let mut headers = request.headers.clone();
        let body = request.body.as_ref().map(|(content_type, bytes)| {
            headers.push(("Content-Type".into(), content_type.clone()));
            bytes.as_slice()
        });
        let answer = self.fakes.answer(&FakeRequest {
            method: request.method.as_str(),
            url: &request.url,
            headers: &headers,
            body,
            timeout: request.timeout,
        });
        match answer {
            FakeAnswer::Response {
                status,
                headers,
                body,
                ..
            } => Ok(ZohoResponse {
                status,
                headers,
                body,
            }),
            FakeAnswer::Timeout => Err(TransportError::new(
                TransportErrorKind::Timeout,
                "timed out (replay)",
            )),
            FakeAnswer::NoMatch => Err(TransportError::new(
                TransportErrorKind::Connect,
                "no fake matches this request",
            )),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.fakes.now()
    }

    async fn sleep(&self, duration: Duration) {
        self.fakes.advance(duration);
    }
}
