//! Endpoints for operators: `GET /healthz` (the process answers: 200 `ok`), `GET /readyz` (the
//! database answers a ping and flows are loaded: 200 `ready`, else 503 with the reason) and
//! `GET /metrics` (Prometheus / OpenMetrics text from [`crate::metrics::Metrics`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::metrics::CONTENT_TYPE;

/// Liveness: always `ok` while the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and flows are loaded.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response();
    }
    if !state.flows.is_loaded() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no flows loaded").into_response();
    }
    (StatusCode::OK, "ready").into_response()
}

/// The metrics as text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}
