//! The commit of one turn, all or nothing: the inbox row becomes `done`, the conversation is saved
//! (or deleted when it ended), the contact's last inbound time moves to the message's timestamp,
//! the outbound messages become pending outbox rows, and the transcript gets one row holding the
//! inbound message, the outbound messages and the trace events. The writer runs it inside one savepoint, so a
//! failure at any step leaves no trace of the turn and the message is processed again.
//!
//! The inbox row is updated first: a turn for a row that is missing or already finished is refused
//! before anything else is written, so a message can never produce its replies twice.
//!
//! [`EncodedTurn`] does the JSON encoding in the caller's task; the writer then runs five
//! statements per turn (inbox, conversation, contact, a multi-row insert for the outbox, one
//! transcript row), because every statement is a round trip to the database thread.

use chrono::{DateTime, Utc};
use flowbot_engine::Outbound;
use sqlx::SqliteConnection;

use crate::codec::{time_text, to_json};
use crate::conversations::EncodedConversation;
use crate::outbox::NewOutbox;
use crate::{contacts, conversations, inbox, outbox, transcript};
use crate::{OutboxRow, StoreError, TurnCommit};

/// A [`TurnCommit`] with its values encoded for the database.
pub(crate) struct EncodedTurn {
    inbox_id: i64,
    channel: String,
    business_id: String,
    phone: String,
    contact_name: Option<String>,
    conversation: Option<EncodedConversation>,
    outbound: Vec<Outbound>,
    outbound_json: Vec<String>,
    /// The trace events as one JSON array (the inbound message comes from the inbox row).
    trace_json: String,
    /// Transcript events of the turn: the inbound message, the outbound ones, the trace events.
    events: usize,
    now: DateTime<Utc>,
}

impl EncodedTurn {
    pub(crate) fn new(commit: TurnCommit) -> Result<EncodedTurn, StoreError> {
        let outbound_json = commit
            .outbound
            .iter()
            .map(|message| to_json(message, "an outbound message"))
            .collect::<Result<Vec<_>, _>>()?;
        let trace_json = to_json(&commit.trace, "the trace")?;
        let events = 1 + commit.outbound.len() + commit.trace.len();
        Ok(EncodedTurn {
            inbox_id: commit.inbox_id,
            conversation: commit
                .conversation
                .as_ref()
                .map(EncodedConversation::new)
                .transpose()?,
            channel: commit.channel,
            business_id: commit.business_id,
            phone: commit.contact.phone,
            contact_name: commit.contact.name,
            outbound: commit.outbound,
            outbound_json,
            trace_json,
            events,
            now: commit.now,
        })
    }
}

pub(crate) async fn commit_turn(
    conn: &mut SqliteConnection,
    turn: &EncodedTurn,
) -> Result<Vec<OutboxRow>, StoreError> {
    let finished: Option<(String, String, String)> = sqlx::query_as(
        "UPDATE inbox SET state = 'done', last_error = NULL, updated_at = ?
         WHERE id = ? AND state IN ('pending', 'processing')
         RETURNING message_at, contact, message",
    )
    .bind(time_text(turn.now))
    .bind(turn.inbox_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((message_at, inbound_contact, inbound_message)) = finished else {
        return Err(inbox::not_open(conn, turn.inbox_id).await);
    };

    match &turn.conversation {
        Some(conversation) => {
            conversations::upsert(conn, &turn.channel, &turn.phone, conversation).await?
        }
        None => conversations::delete(conn, &turn.channel, &turn.phone).await?,
    }

    contacts::upsert(
        conn,
        &turn.channel,
        &turn.phone,
        turn.contact_name.as_deref(),
        &message_at,
        turn.now,
    )
    .await?;

    let target = NewOutbox {
        inbox_id: turn.inbox_id,
        channel: &turn.channel,
        business_id: &turn.business_id,
        phone: &turn.phone,
        now: turn.now,
    };
    let rows = outbox::insert(conn, &target, &turn.outbound, &turn.outbound_json).await?;

    // The entry is assembled from the stored and encoded JSON, not decoded and encoded again.
    let entry = transcript::turn_entry(
        &inbound_message,
        &inbound_contact,
        &turn.outbound_json,
        &turn.trace_json,
    );
    let key = transcript::TurnKey {
        channel: &turn.channel,
        phone: &turn.phone,
        inbox_id: turn.inbox_id,
        at: turn.now,
    };
    transcript::insert_turn(conn, &key, &entry, turn.events).await?;

    Ok(rows)
}
