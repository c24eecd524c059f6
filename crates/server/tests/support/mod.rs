//! `spawn_app()`: a real server on 127.0.0.1:0 with a fresh SQLite file, a flows folder written by
//! the test, a fake Graph API and a shutdown switch, so each test reads like the product's users.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flowbot_server::{Server, ServerConfig, ServerError, ServerHandle};
use flowbot_testkit::fake_graph::{FakeGraph, DEFAULT_TOKEN};
use flowbot_testkit::webhook::{signature_header, text_notification, APP_SECRET};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Replies with what the customer said, then waits for the next message (an `ask` loop).
pub const ECHO_FLOW: &str = r#"flow: echo
triggers:
  default: true
steps:
  - id: echo
    ask: "You said: {{message.text}}"
    save: reply
    next: echo
"#;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// What to start.
#[derive(Clone)]
pub struct Options {
    pub flows: Vec<(String, String)>,
    /// Configure the Graph access token (else replies are only recorded).
    pub access_token: bool,
    /// Configure the app secret (else signatures are not checked).
    pub app_secret: bool,
    pub workers: usize,
    /// Extra `FLOWBOT_*` variables.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flows: vec![("echo.yaml".into(), ECHO_FLOW.into())],
            access_token: true,
            app_secret: true,
            workers: 2,
            env: Vec::new(),
        }
    }
}

/// Files that outlive one server run (a restart reuses them).
pub struct Place {
    pub dir: TempDir,
    pub graph: FakeGraph,
}

pub struct TestApp {
    pub url: String,
    pub addr: SocketAddr,
    pub place: Arc<Place>,
    pub handle: ServerHandle,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServerError>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    let place = Arc::new(Place {
        dir: tempfile::tempdir().expect("a temporary folder"),
        graph: FakeGraph::start().await,
    });
    spawn_in(place, options).await
}

/// Starts a server over an existing database and fake Graph API (a restart).
pub async fn spawn_in(place: Arc<Place>, options: Options) -> TestApp {
    let config = config_for(&place, &options);
    spawn_config(place, config).await
}

/// Starts a server with a configuration the test adjusted (settings without a variable).
pub async fn spawn_config(place: Arc<Place>, config: ServerConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let server = Server::build(config, listener)
        .await
        .expect("the server starts");
    let addr = server.local_addr();
    let handle = server.handle();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run_until_stopped(async move {
        let _ = stop.await;
    }));
    TestApp {
        url: format!("http://{addr}"),
        addr,
        place,
        handle,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// The configuration a test server gets: everything under the place's folder.
pub fn config_for(place: &Place, options: &Options) -> ServerConfig {
    let flows = place.dir.path().join("flows");
    std::fs::create_dir_all(&flows).expect("a flows folder");
    for (name, text) in &options.flows {
        std::fs::write(flows.join(name), text).expect("a flow file");
    }
    let mut env = vec![
        (
            "FLOWBOT_DATABASE_URL".to_string(),
            db_path(place).display().to_string(),
        ),
        ("FLOWBOT_FLOWS".to_string(), flows.display().to_string()),
        (
            "FLOWBOT_WHATSAPP_API_BASE".to_string(),
            place.graph.url().to_string(),
        ),
        (
            "FLOWBOT_WHATSAPP_VERIFY_TOKEN".to_string(),
            "verify-me".to_string(),
        ),
        (
            "FLOWBOT_SECRET_KEY".to_string(),
            "a test passphrase for the token store".to_string(),
        ),
        ("FLOWBOT_WORKERS".to_string(), options.workers.to_string()),
    ];
    if options.access_token {
        env.push(("FLOWBOT_WHATSAPP_ACCESS_TOKEN".into(), DEFAULT_TOKEN.into()));
    }
    if options.app_secret {
        env.push(("FLOWBOT_WHATSAPP_APP_SECRET".into(), APP_SECRET.into()));
    }
    env.extend(options.env.iter().cloned());
    ServerConfig::from_env(env).expect("a valid configuration")
}

pub fn db_path(place: &Place) -> PathBuf {
    place.dir.path().join("flowbot.db")
}

static NEXT_WAMID: AtomicU64 = AtomicU64::new(1);

/// A fresh, unique inbound message id.
pub fn wamid() -> String {
    let n = NEXT_WAMID.fetch_add(1, Ordering::Relaxed);
    format!("wamid.TEST{:08}{:016X}", std::process::id(), n)
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fixture with its message and status timestamps moved to now (the 24-hour window is real).
pub fn fresh_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("the fixture exists");
    let now = now();
    let re_stamped = text
        .lines()
        .map(|line| match line.find("\"timestamp\": \"") {
            Some(start) => {
                let value_start = start + "\"timestamp\": \"".len();
                let value_end = line[value_start..]
                    .find('"')
                    .map_or(line.len(), |e| value_start + e);
                let old: i64 = line[value_start..value_end].parse().unwrap_or(0);
                // Keep the order of timestamps inside one fixture.
                let shifted = now - 1_796_289_700 + old;
                format!("{}{}{}", &line[..value_start], shifted, &line[value_end..])
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut bytes = re_stamped.into_bytes();
    bytes.push(b'\n');
    bytes
}

impl TestApp {
    pub fn graph(&self) -> &FakeGraph {
        &self.place.graph
    }

    /// POSTs a body signed with the test app secret.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        let signature = signature_header(APP_SECRET, body);
        self.post_webhook(body, Some(&signature)).await
    }

    pub async fn post_webhook(&self, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.expect("the server answers")
    }

    /// Sends a text from `from` now; returns the HTTP status and the message id.
    pub async fn send_text(&self, from: &str, text: &str) -> (u16, String) {
        let id = wamid();
        let body = text_notification(from, "Test Customer", text, &id, now());
        let status = self.post_signed(&body).await.status().as_u16();
        (status, id)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// Waits for `count` sends at the fake Graph API and returns their bodies.
    pub async fn wait_for_replies(&self, count: usize) -> Vec<Value> {
        let replies = self.graph().wait_for_messages(count, WAIT).await;
        assert!(
            replies.len() >= count,
            "expected {count} replies, got {}: {replies:#?}",
            replies.len()
        );
        replies
    }

    /// Stops the server gracefully and gives back what outlives it.
    pub async fn stop(mut self) -> Arc<Place> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
        self.place.clone()
    }
}

/// The body texts of text replies, in order.
pub fn bodies(replies: &[Value]) -> Vec<String> {
    replies
        .iter()
        .map(|reply| {
            reply["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// One outbox row: state, provider message id, delivery status, error.
pub type OutboxLine = (String, Option<String>, Option<String>, Option<String>);

/// A read-only look at the database, for what no endpoint shows (outbox rows).
pub async fn query_outbox(place: &Place) -> Vec<OutboxLine> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db_path(place))
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the database read-only");
    let rows: Vec<OutboxLine> = sqlx::query_as(
        "SELECT state, provider_message_id, delivery_status, error FROM outbox ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("read the outbox");
    pool.close().await;
    rows
}
