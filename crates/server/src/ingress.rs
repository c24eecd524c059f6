//! The WhatsApp webhook: `GET /webhooks/whatsapp` (the subscription handshake) and
//! `POST /webhooks/whatsapp` (notifications).
//!
//! A POST is checked in this order, and each rejection logs one line (never the body, never a
//! secret): body not in within the read timeout → 408; body over the limit → 413; `X-Hub-Signature-256` missing or wrong, checked in constant
//! time over the exact raw bytes (never re-serialized) → 401; not a WhatsApp notification → 400.
//! Then every message of every entry and change is stored in the inbox in one `insert_inbound`
//! (duplicates dropped by the store's unique provider id), status notifications update the outbox
//! row they name, and each inserted message, in message-timestamp order, is handed to the worker
//! that owns its contact. The answer (200) never waits for a flow or an outside API; it is sent
//! after the insert commits, so an acknowledged message is durable.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use flowbot_store::{InsertOutcome, StoreError};
use flowbot_whatsapp::signature::{self, SIGNATURE_HEADER};
use flowbot_whatsapp::webhook::DeliveryStatus;
use flowbot_whatsapp::{parse_notification, Notification};
use secrecy::ExposeSecret;

use crate::app::AppState;
use crate::inbound::{describe_error, to_new_inbound};
use crate::metrics::InOutcome;
use crate::sender::outbox_id_of_callback_data;
use crate::worker::InboxJob;

/// The metric type of messages rejected before they could be read.
const UNREAD: &str = "unread";

/// `GET /webhooks/whatsapp`: answers `hub.challenge` as plain text when `hub.mode` is `subscribe`
/// and `hub.verify_token` equals the configured token; 403 otherwise.
pub async fn verify(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let mode = params.get("hub.mode").map(String::as_str);
    let token = params.get("hub.verify_token").map(String::as_str);
    let challenge = params.get("hub.challenge");
    let Some(expected) = state.ingress.verify_token.as_ref() else {
        tracing::warn!("webhook verification refused: FLOWBOT_WHATSAPP_VERIFY_TOKEN is not set");
        return StatusCode::FORBIDDEN.into_response();
    };
    let token_matches =
        token.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose_secret().as_bytes()));
    match (mode, token_matches, challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            tracing::info!("webhook verification accepted");
            (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                challenge.clone(),
            )
                .into_response()
        }
        _ => {
            tracing::warn!(
                mode = mode.unwrap_or("-"),
                "webhook verification refused: wrong mode, token or missing challenge"
            );
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

/// `POST /webhooks/whatsapp`.
pub async fn receive(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    // A body trickling in (one byte a second) would hold its connection forever: bounded.
    let read = Bytes::from_request(request, &());
    let body: Result<Bytes, BytesRejection> =
        match tokio::time::timeout(state.ingress.body_read_timeout, read).await {
            Ok(body) => body,
            Err(_) => {
                state.metrics.message_in(UNREAD, InOutcome::Rejected);
                tracing::warn!(
                    seconds = state.ingress.body_read_timeout.as_secs_f64(),
                    "webhook rejected (408): the body did not arrive in time"
                );
                return (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")])
                    .into_response();
            }
        };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            state.metrics.message_in(UNREAD, InOutcome::Rejected);
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                tracing::warn!(
                    limit = state.ingress.body_limit,
                    "webhook rejected: body larger than the limit"
                );
            } else {
                tracing::warn!(%status, "webhook rejected: the body could not be read");
            }
            return status.into_response();
        }
    };
    if let Some(secret) = &state.ingress.app_secret {
        let header = headers
            .get(SIGNATURE_HEADER)
            .and_then(|value| value.to_str().ok());
        if let Err(error) = signature::verify(secret.expose_secret().as_bytes(), &body, header) {
            state.metrics.message_in(UNREAD, InOutcome::Rejected);
            tracing::warn!(bytes = body.len(), "webhook rejected: {error}");
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let notification = match parse_notification(&body) {
        Ok(notification) => notification,
        Err(error) => {
            state.metrics.message_in(UNREAD, InOutcome::Rejected);
            // The error names the JSON position, never the content.
            tracing::warn!(bytes = body.len(), "webhook rejected (400): {error}");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    // In its own task: if the caller hangs up (Meta's timeout) while this waits for the store or
    // for room in a worker queue, the hand-off still happens. Dropped halfway, a message stored
    // but never handed over would wait for the next start, and Meta's redelivery is a duplicate.
    let accepted = tokio::spawn(async move { accept(&state, notification).await });
    match accepted.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(status)) => status.into_response(),
        Err(error) => {
            tracing::error!(%error, "webhook hand-off task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Stores the notification's messages and statuses, then hands the new messages to the workers.
async fn accept(state: &AppState, notification: Notification) -> Result<(), StatusCode> {
    for skipped in &notification.skipped {
        tracing::warn!(path = %skipped.path, reason = %skipped.reason, "webhook item skipped");
    }
    for error in &notification.errors {
        tracing::warn!(
            "WhatsApp reported an error in a webhook: {}",
            describe_error(error)
        );
    }

    let mut batch = Vec::with_capacity(notification.messages.len());
    for message in &notification.messages {
        match to_new_inbound(message) {
            Some(new) => batch.push(new),
            None => {
                state
                    .metrics
                    .message_in(message.type_name(), InOutcome::Rejected);
                tracing::warn!(wamid = %message.id, "webhook message without a sender id skipped");
            }
        }
    }
    // A batch is not in timestamp order; a contact's messages must run in it.
    batch.sort_by_key(|new| new.message.timestamp);

    if !batch.is_empty() {
        let outcomes = match state.store.insert_inbound(batch.clone()).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::error!(messages = batch.len(), %error, "webhook not stored (500); WhatsApp will deliver it again");
                return Err(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        for (new, outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                InsertOutcome::Duplicate => {
                    state
                        .metrics
                        .message_in(&new.message.kind, InOutcome::Duplicate);
                    tracing::debug!(wamid = %new.message.id, "duplicate delivery dropped");
                }
                InsertOutcome::Inserted(inbox_id) => {
                    state
                        .metrics
                        .message_in(&new.message.kind, InOutcome::Accepted);
                    let job = InboxJob {
                        inbox_id,
                        channel: new.channel,
                        business_id: new.business_id,
                        contact: new.contact,
                        message: new.message,
                        resumed: false,
                    };
                    if !state.workers.dispatch(job).await {
                        tracing::warn!(
                            inbox_id,
                            "workers stopped; the message runs on the next start"
                        );
                    }
                }
            }
        }
    }

    for status in &notification.statuses {
        let error = status.errors.first().map(describe_error);
        state.metrics.delivery_status(status.status.as_str());
        if status.status == DeliveryStatus::Failed {
            let outside_window = status.errors.iter().any(|e| e.code == Some(131047));
            if outside_window {
                state.metrics.conversation_flagged("outside_window");
            }
            tracing::warn!(
                message_id = %status.id,
                recipient = status.recipient_id.as_deref().unwrap_or("-"),
                error = error.as_deref().unwrap_or("-"),
                "WhatsApp could not deliver a message"
            );
        }
        // A status naming one of our outbox rows (the callback data every send carries) means
        // Graph accepted that send, even if its answer never reached us (a crash): the row is
        // sent. This is what keeps the row from being sent again, so a store failure here is a
        // 500 and Meta delivers the status again.
        if let Some(outbox_id) = status
            .biz_opaque_callback_data
            .as_deref()
            .and_then(outbox_id_of_callback_data)
        {
            match state.store.confirm_sent(outbox_id, &status.id).await {
                Ok(true) => tracing::info!(
                    outbox_id,
                    message_id = %status.id,
                    "a status webhook confirmed a send whose answer was not recorded"
                ),
                Ok(false) => {}
                Err(StoreError::NotFound(_)) => {
                    tracing::debug!(outbox_id, message_id = %status.id, "status for an outbox row we do not have")
                }
                Err(error) => {
                    tracing::error!(outbox_id, message_id = %status.id, %error, "could not confirm a send from its status (500); WhatsApp will deliver it again");
                    return Err(StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
        }
        match state
            .store
            .record_delivery_status(&status.id, status.status.as_str(), error.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(message_id = %status.id, "status for a message we do not know")
            }
            Err(error) => {
                tracing::warn!(message_id = %status.id, %error, "could not record a delivery status")
            }
        }
    }
    Ok(())
}

/// Compares without stopping at the first difference (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"token2"));
    }
}
