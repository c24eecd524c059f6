//! The HTTP surface as one function: [`app`] builds the axum [`Router`] from an [`AppState`], so
//! tests can call it with `oneshot` and `run` can serve it on a socket.
//!
//! Routes: `GET|POST /webhooks/whatsapp` ([`crate::ingress`]), `GET /healthz`, `GET /readyz`
//! ([`crate::health`]), `GET /metrics` ([`crate::metrics`]) and, only when the server runs without
//! a Graph access token or listens on loopback, `GET /local/replies` ([`crate::local_replies`]).
//! A body limit applies to every route (413 above it).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use flowbot_store::Store;
use secrecy::SecretString;

use crate::metrics::Metrics;
use crate::reload::LiveFlows;
use crate::worker::WorkerQueues;
use crate::{health, ingress, local_replies};

/// What the handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub ingress: Arc<IngressSettings>,
    pub workers: WorkerQueues,
    pub metrics: Arc<Metrics>,
    pub flows: Arc<LiveFlows>,
    /// Serve `GET /local/replies`.
    pub local_replies: bool,
}

/// How the webhook checks what comes in.
#[derive(Clone, Debug)]
pub struct IngressSettings {
    /// `None`: signatures are not checked (loopback only).
    pub app_secret: Option<SecretString>,
    /// `None`: the handshake is always refused.
    pub verify_token: Option<SecretString>,
    /// Largest body accepted, in bytes.
    pub body_limit: usize,
    /// Longest time a body may take to arrive (408 after it).
    pub body_read_timeout: std::time::Duration,
}

/// The router of the whole service.
pub fn app(state: AppState) -> Router {
    let body_limit = state.ingress.body_limit;
    let mut router = Router::new()
        .route(
            "/webhooks/whatsapp",
            get(ingress::verify).post(ingress::receive),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    if state.local_replies {
        router = router.route("/local/replies", get(local_replies::replies));
    }
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
