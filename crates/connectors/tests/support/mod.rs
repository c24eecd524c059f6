//! Test support: a recording HTTP server on `127.0.0.1:0` and a one-call way to run a whole turn of
//! a flow with the real [`LiveEffects`].
//!
//! The server records exactly what reached it (method, the raw request target as sent, headers,
//! the raw body bytes) and answers with whatever the test's responder says, so each test reads as
//! "this flow, this answer → this went over the wire and this came out of the turn".

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use chrono::Utc;
use flowbot_connectors::{EgressPolicy, HttpExecutor, LiveEffects};
use flowbot_engine::{
    drive, Contact, Engine, EngineConfig, Inbound, Outbound, Secrets, TraceEvent, TurnResult,
};
use flowbot_flow::FlowSet;
use flowbot_zoho::{MemoryTokenStore, ReqwestTransport, TokenStore, Transport};
use serde_json::Value;

/// The contact every test turn is with.
pub const PHONE: &str = "919820000001";
/// The secret the flows use; it must never show up in a trace.
pub const SHOP_TOKEN: &str = "tok_live_7Gq2ZxSECRET";
/// Every character that has broken an escaper somewhere: `+ & = ? # / " \`, a newline, a space,
/// an emoji and Devanagari.
pub const ODD: &str = "a+b&c=d?e#f/g\"h\\i\nj 😀 प्रिया";

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query exactly as they came over the wire.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Waited before answering.
    pub delay: Duration,
    /// Sent in 64 KiB chunks without a Content-Length (as a streaming server would).
    pub chunked: bool,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::new(status, "application/json", body.to_string().into_bytes())
    }

    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            chunked: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Responder = dyn Fn(usize, &Received) -> Reply + Send + Sync;

struct Shared {
    received: Mutex<Vec<Received>>,
    responder: Box<Responder>,
}

/// A recording server. Dropping it stops it.
pub struct TestServer {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Answers the n-th request (from 0) with `responder(n, request)`.
    pub async fn start(
        responder: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        });
        let app = Router::new().fallback(record).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer { url, shared, task }
    }

    /// Always answers this reply.
    pub async fn replying(reply: Reply) -> TestServer {
        TestServer::start(move |_, _| reply.clone()).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// The one request received (fails the test if there were more or none).
    pub fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(
            received.len(),
            1,
            "expected exactly one request, got {received:#?}"
        );
        received.into_iter().next().expect("one request")
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let reply = {
        let mut all = shared.received.lock().expect("lock");
        let reply = (shared.responder)(all.len(), &received);
        all.push(received);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("a status"));
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let body = if reply.chunked {
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = reply
            .body
            .chunks(64 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        Body::from_stream(futures::stream::iter(chunks))
    } else {
        Body::from(reply.body)
    };
    response.body(body).expect("a response")
}

/// A flow of one `api_request` step (`id: call`, written by the test, indented as a list item under
/// `steps:`) followed by an `ask`, so that the conversation — and its variables — is kept.
/// `BASE` in the step is replaced by the server's URL. The flow's vars: `odd` ([`ODD`]),
/// `count` (the number 3), `order_id` ("A-17").
pub fn flow(base: &str, step: &str) -> String {
    let odd = serde_json::to_string(ODD).expect("a JSON string");
    format!(
        "flow: t\ntriggers:\n  default: true\nvars:\n  odd: {odd}\n  count: 3\n  order_id: \"A-17\"\nsteps:\n{}\n  - id: done\n    ask: \"Anything else?\"\n",
        step.replace("BASE", base).trim_end()
    )
}

/// The outcome of a turn, with helpers to read it.
pub struct Run {
    pub result: TurnResult,
    pub elapsed: Duration,
}

impl Run {
    /// A variable of the kept conversation (fails the test if the conversation ended).
    pub fn var(&self, name: &str) -> Value {
        let conversation = self
            .result
            .conversation
            .as_ref()
            .unwrap_or_else(|| panic!("the conversation ended: {:#?}", self.result.trace));
        conversation.vars.get(name).cloned().unwrap_or(Value::Null)
    }

    /// The outcome the `call` step reported (`ok` when it reported none).
    pub fn outcome(&self) -> String {
        self.result
            .trace
            .iter()
            .find_map(|event| match event {
                TraceEvent::Outcome { step, outcome, .. } if step == "call" => {
                    Some(outcome.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| "ok".into())
    }

    pub fn texts(&self) -> Vec<String> {
        self.result
            .outbound
            .iter()
            .map(|message| message.body().to_string())
            .collect()
    }

    pub fn trace_json(&self) -> String {
        serde_json::to_string(&self.result.trace).expect("the trace serializes")
    }

    /// The number of HTTP attempts in the trace.
    pub fn attempts(&self) -> usize {
        self.result
            .trace
            .iter()
            .filter(|event| matches!(event, TraceEvent::Http(_)))
            .count()
    }
}

/// Loads the flow (failing on any diagnostic error) and runs one turn for the inbound `text`.
pub async fn run(flow_yaml: &str, text: &str) -> Run {
    run_with(
        flow_yaml,
        text,
        live(None::<Arc<flowbot_zoho::ZohoClient<ReqwestTransport, MemoryTokenStore>>>),
    )
    .await
}

pub fn live<T: Transport, S: TokenStore>(
    zoho: Option<Arc<flowbot_zoho::ZohoClient<T, S>>>,
) -> LiveEffects<T, S> {
    LiveEffects {
        http: HttpExecutor::new(EgressPolicy::default()).expect("an HTTP client"),
        zoho,
    }
}

pub async fn run_with<T: Transport, S: TokenStore>(
    flow_yaml: &str,
    text: &str,
    effects: LiveEffects<T, S>,
) -> Run {
    let loaded = flowbot_flow::load_flow("test.yaml", flow_yaml);
    let flow = loaded.flow.unwrap_or_else(|| {
        panic!(
            "the flow does not load: {:#?}\n{flow_yaml}",
            loaded.diagnostics
        )
    });
    let secrets = Secrets::from_map(BTreeMap::from([
        ("shop_token".to_string(), SHOP_TOKEN.to_string()),
        ("shop_password".to_string(), "pw: s3cr3t!".to_string()),
    ]));
    let engine = Engine::new(
        FlowSet::from_flows(vec![flow]),
        EngineConfig::default(),
        secrets,
    );
    let contact = Contact {
        phone: PHONE.into(),
        name: Some("Priya".into()),
    };
    let turn = engine.start_turn(None, &contact, &Inbound::text("wamid.1", text, Utc::now()));
    let started = std::time::Instant::now();
    let result = drive(turn, &effects).await;
    Run {
        result,
        elapsed: started.elapsed(),
    }
}

/// The fallback text the engine sends when a step's failure has no `on:` branch.
pub fn fallback_text() -> String {
    EngineConfig::default().fallback_text
}

pub fn is_text(message: &Outbound, text: &str) -> bool {
    message.body() == text
}
