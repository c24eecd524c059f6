//! `GET /local/replies?wamid=WAMID&phone=PHONE`: the replies the bot gave to one inbound message,
//! read from the contact's transcript. It exists for `flowbot send`, which posts a signed
//! notification and then polls here until the turn is done.
//!
//! Read-only, and served only when the server has no Graph access token or listens on loopback
//! (it shows conversation content). The answer is JSON ([`RepliesAnswer`]):
//!
//! ```json
//! { "wamid": "wamid.LOCAL…", "state": "done", "replies": [ { "type": "text", "body": "Hi" } ] }
//! ```
//!
//! `state` is `waiting` (stored, turn not done yet), `done` (the turn committed; `replies` is
//! complete, possibly empty) or `not_found` (unknown id, or the turn failed).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowbot_engine::Outbound;
use flowbot_store::TranscriptEntry;
use serde::{Deserialize, Serialize};

use crate::app::AppState;

/// The query of `GET /local/replies`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RepliesQuery {
    /// The inbound message's provider id.
    pub wamid: String,
    /// The contact's phone (transcripts are kept per contact).
    pub phone: String,
}

/// Where the inbound message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyState {
    Waiting,
    Done,
    NotFound,
}

/// The answer of `GET /local/replies`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepliesAnswer {
    pub wamid: String,
    pub state: ReplyState,
    pub replies: Vec<Outbound>,
}

pub async fn replies(State(state): State<AppState>, Query(query): Query<RepliesQuery>) -> Response {
    match find_replies(&state, &query).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => {
            tracing::warn!(%error, "local replies could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store could not be read",
            )
                .into_response()
        }
    }
}

async fn find_replies(
    state: &AppState,
    query: &RepliesQuery,
) -> Result<RepliesAnswer, flowbot_store::StoreError> {
    // Whether the message waits is read before the transcript: a turn committing between the two
    // reads then shows in the transcript, instead of the message being in neither.
    let waiting = state
        .store
        .unfinished_inbox()
        .await?
        .iter()
        .any(|row| row.message.id == query.wamid);
    let events = state.store.transcript(&query.phone, None).await?;
    let inbound_at = events.iter().position(|event| {
        matches!(&event.entry, TranscriptEntry::Inbound { message, .. } if message.id == query.wamid)
    });
    if let Some(position) = inbound_at {
        let inbox_id = events[position].inbox_id;
        let replies = events[position + 1..]
            .iter()
            // Events of one turn carry its inbox id; without ids, the turn ends at the next inbound.
            .take_while(|event| {
                inbox_id.is_some() || !matches!(event.entry, TranscriptEntry::Inbound { .. })
            })
            .filter(|event| inbox_id.is_none() || event.inbox_id == inbox_id)
            .filter_map(|event| match &event.entry {
                TranscriptEntry::Outbound { message } => Some(message.clone()),
                _ => None,
            })
            .collect();
        return Ok(RepliesAnswer {
            wamid: query.wamid.clone(),
            state: ReplyState::Done,
            replies,
        });
    }
    Ok(RepliesAnswer {
        wamid: query.wamid.clone(),
        state: if waiting {
            ReplyState::Waiting
        } else {
            ReplyState::NotFound
        },
        replies: Vec::new(),
    })
}
