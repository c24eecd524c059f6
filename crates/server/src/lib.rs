//! flowbot's HTTP service: the WhatsApp webhook, the worker pool that runs turns, the sender that
//! delivers replies, and the endpoints operators watch.
//!
//! Start-up is a function: [`run`] takes a [`ServerConfig`], a bound listener and a shutdown
//! future, so `flowbot serve` and the tests (on `127.0.0.1:0`) start the same thing. [`Server`]
//! splits it in two ([`Server::build`], then [`Server::run_until_stopped`]) for callers that want a
//! [`ServerHandle`] (to reload flows) or the bound address. `flowbot send` uses
//! [`local_send::send_local`].
//!
//! Layout, one job per module:
//! - [`config`]: [`ServerConfig`] from a TOML/YAML file plus `FLOWBOT_*` variables; secrets wrapped.
//! - [`app`]: [`app::app`], the router, and [`app::AppState`].
//! - [`ingress`]: `GET|POST /webhooks/whatsapp`: signature, body limit, inbox insert, hand-off.
//! - [`inbound`]: WhatsApp messages → the engine's uniform `Inbound`.
//! - [`worker`]: the per-contact worker queues that run turns.
//! - [`sender`]: delivery through the Cloud API: per-recipient order, retries, window, pause on 190.
//! - [`metrics`]: Prometheus metrics. [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`reload`]: loading the flows folder, and reloading it (SIGHUP).
//! - [`instance_lock`]: one serving process per database (`<database>.lock`).
//! - [`local_replies`]: `GET /local/replies` for `flowbot send`. [`local_send`]: its client side.
//!
//! Invariants: the webhook answers only after its messages are durable and never waits for a flow
//! or an outside API; one contact's messages run one at a time in message order; an unfinished
//! inbox row or an unsent outbox row is picked up again at the next start, and a sent row is never
//! sent again; no secret is ever logged.

pub mod app;
pub mod config;
pub mod health;
pub mod inbound;
pub mod ingress;
pub mod instance_lock;
pub mod local_replies;
pub mod local_send;
pub mod metrics;
pub mod reload;
pub mod sender;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowbot_connectors::{EgressPolicy, HttpExecutor, LiveEffects};
use flowbot_engine::{Engine, EngineConfig};
use flowbot_flow::Diagnostic;
use flowbot_store::{EncryptionKey, Store, StoreError, StoreOptions};
use flowbot_whatsapp::{CloudApiClient, CloudApiConfig};
use flowbot_zoho::cache::CachingTokenStore;
use flowbot_zoho::{ClientConfig, ReqwestTransport, ZohoClient};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::app::{app, AppState, IngressSettings};
pub use crate::config::{ConfigError, LogFormat, ServerConfig, WhatsAppConfig};
pub use crate::local_replies::{RepliesAnswer, ReplyState};
pub use crate::local_send::{send_local, LocalMessage, LocalSendError, LocalSendReport};
pub use crate::metrics::Metrics;
pub use crate::reload::{load_flows, FlowsError, LoadedFlows};

use crate::reload::LiveFlows;
use crate::sender::{spawn_sender, Outlet, SendItem, SenderConfig, SenderTask};
use crate::worker::{spawn_workers, tried_too_often, InboxJob, WorkerContext, WorkerPool};

/// Why the server could not start or stopped with an error. Messages name the setting to fix and
/// never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// Display lists every diagnostic, as `flowbot validate` prints them.
    #[error(transparent)]
    Flows(#[from] FlowsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "FLOWBOT_WHATSAPP_APP_SECRET is not set, so webhook signatures cannot be checked: refusing to \
         listen on {addr}, which is not a loopback address (set the app secret, or listen on 127.0.0.1)"
    )]
    UnsignedNotLoopback { addr: SocketAddr },
    #[error("could not set up outside HTTP calls: {0}")]
    Http(String),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Lock(#[from] instance_lock::LockError),
}

/// What `serve --check` found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Flows loaded.
    pub flows: usize,
    /// Flow files read.
    pub files: usize,
    /// Warnings (errors make [`check`] fail instead).
    pub warnings: Vec<Diagnostic>,
}

/// Starts the server on `listener` and serves until `shutdown` resolves, then stops gracefully:
/// stops accepting, lets turns in flight finish, flushes the sender (at most
/// [`ServerConfig::shutdown_grace`]) and closes the store. With [`ServerConfig::check_only`] it
/// only validates the configuration and the flows, and returns.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if config.check_only {
        let report = check(&config)?;
        tracing::info!(
            flows = report.flows,
            files = report.files,
            "configuration and flows are valid"
        );
        return Ok(());
    }
    Server::build(config, listener)
        .await?
        .run_until_stopped(shutdown)
        .await
}

/// Validates the configuration and the flows without opening the database or a socket.
pub fn check(config: &ServerConfig) -> Result<CheckReport, ServerError> {
    config.check()?;
    if config.whatsapp.app_secret.is_none() && !config.listen.ip().is_loopback() {
        return Err(ServerError::UnsignedNotLoopback {
            addr: config.listen,
        });
    }
    let loaded = load_flows(&config.flows)?;
    Ok(CheckReport {
        flows: loaded.flows.flows().len(),
        files: loaded.files,
        warnings: loaded.warnings,
    })
}

/// A started server, not yet serving HTTP (its workers and sender already run).
pub struct Server {
    /// Held until the store is closed: one serving process per database.
    lock: Option<instance_lock::InstanceLock>,
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    workers: WorkerPool,
    sender: SenderTask,
    shutdown_grace: Duration,
    retention_days: u32,
}

/// Controls a running server from outside.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    flows: Arc<LiveFlows>,
    metrics: Arc<Metrics>,
    local_addr: SocketAddr,
}

impl Server {
    /// Checks the configuration, loads the flows (refusing to start on any error), opens the
    /// store, starts the sender and the workers, and feeds them the work left from the last run.
    pub async fn build(config: ServerConfig, listener: TcpListener) -> Result<Server, ServerError> {
        config.check()?;
        let local_addr = listener.local_addr()?;
        if config.whatsapp.app_secret.is_none() {
            if !local_addr.ip().is_loopback() {
                return Err(ServerError::UnsignedNotLoopback { addr: local_addr });
            }
            tracing::warn!(
                "FLOWBOT_WHATSAPP_APP_SECRET IS NOT SET: webhook signatures are NOT checked. \
                 Listening on loopback ({local_addr}) only; set the app secret before exposing this server"
            );
        }
        // Flows first: invalid flows stop the start before the database is created or migrated.
        let loaded = load_flows(&config.flows)?;
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let flow_count = loaded.flows.flows().len();
        let lock = match flowbot_store::Location::parse(&config.database_url)?.path() {
            Some(path) => Some(instance_lock::lock(path)?),
            None => None,
        };

        let store = Store::open(
            &config.database_url,
            StoreOptions {
                synchronous_full: config.synchronous_full,
                ..StoreOptions::default()
            },
        )
        .await?;
        if store.is_read_only() {
            store.close().await;
            return Err(ServerError::Store(StoreError::Database(format!(
                "the database {} can only be read (check the permissions of the file, its -wal and \
                 -shm files and its folder): the server must write every webhook before answering it",
                config.database_url
            ))));
        }
        let metrics = Arc::new(Metrics::new());

        let outlet = match &config.whatsapp.access_token {
            Some(token) => {
                let client = CloudApiClient::new(CloudApiConfig {
                    api_base: config.whatsapp.api_base.clone(),
                    api_version: config.whatsapp.api_version.clone(),
                    access_token: token.clone(),
                    timeout: flowbot_whatsapp::client::DEFAULT_TIMEOUT,
                })
                .map_err(|error| ServerError::Http(error.to_string()))?;
                Outlet::Cloud(client)
            }
            None => {
                tracing::warn!(
                    "FLOWBOT_WHATSAPP_ACCESS_TOKEN is not set: replies are recorded and logged (\"would send to …\"), not sent"
                );
                Outlet::Local
            }
        };
        let local_replies = config.whatsapp.access_token.is_none() || local_addr.ip().is_loopback();
        let (sender, sender_task) = spawn_sender(
            store.clone(),
            outlet,
            metrics.clone(),
            SenderConfig {
                uncertain_grace: config.uncertain_send_grace,
                ..SenderConfig::default()
            },
            config.queue_capacity,
        );

        let effects = LiveEffects {
            http: HttpExecutor::new(EgressPolicy {
                allow_link_local: config.allow_link_local,
            })
            .map_err(ServerError::Http)?,
            zoho: zoho_client(&config, &store),
        };
        let engine = Engine::new(
            loaded.flows,
            EngineConfig::default(),
            config.flow_secrets.clone(),
        );
        let flows = Arc::new(LiveFlows::new(config.flows.clone(), engine));

        let worker_count = config.worker_count();
        let (workers, worker_pool) = spawn_workers(
            worker_count,
            config.queue_capacity,
            WorkerContext {
                store: store.clone(),
                flows: flows.clone(),
                effects: Arc::new(effects),
                sender: sender.clone(),
                metrics: metrics.clone(),
                cache_capacity: (config.conversation_cache / worker_count.max(1)).max(16),
            },
        );

        // Work left by the last run: unsent replies first (they are older), then unfinished turns.
        let unsent = store.unsent_outbox().await?;
        let unsent_count = unsent.len();
        let uncertain_count = unsent.iter().filter(|row| row.is_uncertain()).count();
        if uncertain_count > 0 {
            tracing::warn!(
                uncertain = uncertain_count,
                grace_ms = config.uncertain_send_grace.as_millis() as u64,
                "replies were in flight when the last run stopped; each waits for a status webhook to confirm it (its recipient's later replies wait behind it) and is sent again only if none does"
            );
        }
        for row in unsent {
            sender.submit(SendItem::Row(row)).await;
        }
        let unfinished = store.unfinished_inbox().await?;
        let unfinished_count = unfinished.len();
        for row in unfinished {
            if tried_too_often(row.attempts) {
                tracing::error!(
                    inbox_id = row.id,
                    attempts = row.attempts,
                    "inbox message tried too often; marked failed"
                );
                store
                    .mark_failed(
                        row.id,
                        "tried too often (the process stopped during its turns)",
                    )
                    .await?;
                continue;
            }
            workers.dispatch(InboxJob::from(row)).await;
        }

        tracing::info!(
            listen = %local_addr,
            flows = flow_count,
            workers = worker_count,
            resumed_turns = unfinished_count,
            resumed_replies = unsent_count,
            "flowbot server started"
        );
        let state = AppState {
            store,
            ingress: Arc::new(IngressSettings {
                app_secret: config.whatsapp.app_secret.clone(),
                verify_token: config.whatsapp.verify_token.clone(),
                body_limit: config.body_limit,
                body_read_timeout: config.body_read_timeout,
            }),
            workers,
            metrics,
            flows,
            local_replies,
        };
        Ok(Server {
            lock,
            listener,
            local_addr,
            state,
            workers: worker_pool,
            sender: sender_task,
            shutdown_grace: config.shutdown_grace,
            retention_days: config.retention_days,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to reload flows while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            flows: self.state.flows.clone(),
            metrics: self.state.metrics.clone(),
            local_addr: self.local_addr,
        }
    }

    /// The handlers' state (for `app(state).oneshot(..)` tests on a built server).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then stops gracefully (see [`run`]).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            lock,
            listener,
            state,
            workers,
            sender,
            shutdown_grace,
            retention_days,
            ..
        } = self;
        let store = state.store.clone();
        let background = background_tasks(&state, retention_days);
        let served = axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown)
            .await;
        tracing::info!("stopping: no new webhooks; letting turns in flight finish");
        for task in background {
            task.abort();
        }
        workers.stop().await;
        if !sender.flush(shutdown_grace).await {
            tracing::warn!(
                grace_seconds = shutdown_grace.as_secs_f64(),
                "the sender did not finish in time; unsent replies stay pending and go out on the next start"
            );
        }
        store.close().await;
        drop(lock);
        tracing::info!("flowbot server stopped");
        served.map_err(ServerError::Io)
    }
}

impl ServerHandle {
    /// Reads the flows folder again and swaps the flows in without dropping conversations. On
    /// error the old flows keep running and the error lists the diagnostics. Returns the number of
    /// flows now loaded.
    pub fn reload_flows(&self) -> Result<usize, FlowsError> {
        self.flows
            .reload(&self.metrics)
            .map(|loaded| loaded.flows.flows().len())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// The Zoho client over the store's encrypted token store, or `None` (flows' `zoho_search` steps
/// then take their error outcome) when the key cannot be loaded.
fn zoho_client(
    config: &ServerConfig,
    store: &Store,
) -> Option<Arc<ZohoClient<ReqwestTransport, CachingTokenStore<flowbot_store::SqliteTokenStore>>>> {
    let key_value = config
        .secret_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned());
    let key = match EncryptionKey::load(key_value.as_deref(), &config.database_url) {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(%error, "Zoho is not available: the token store key could not be loaded");
            return None;
        }
    };
    let transport = match ReqwestTransport::new() {
        Ok(transport) => transport,
        Err(error) => {
            tracing::warn!(%error, "Zoho is not available: its HTTP client could not be built");
            return None;
        }
    };
    // The connection is read from SQLite and decrypted at most once a second per connection,
    // not on every search (see flowbot_zoho::cache).
    Some(Arc::new(ZohoClient::new(
        transport,
        CachingTokenStore::new(store.token_store(key), Duration::from_secs(1)),
        ClientConfig::default(),
    )))
}

/// Retention (hourly prune) and, on unix, SIGHUP → reload flows.
fn background_tasks(state: &AppState, retention_days: u32) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if retention_days > 0 {
        let store = state.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                hourly.tick().await;
                let before = Utc::now() - chrono::Duration::days(i64::from(retention_days));
                match store.prune(before).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(
                        rows,
                        retention_days,
                        "old transcripts and inbox rows pruned"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "pruning old rows failed; trying again in an hour")
                    }
                }
            }
        }));
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let flows = state.flows.clone();
        let metrics = state.metrics.clone();
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => tasks.push(tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading flows");
                    let _ = flows.reload(&metrics);
                }
            })),
            Err(error) => tracing::warn!(%error, "SIGHUP reload is not available"),
        }
    }
    tasks
}
