//! The commit of one turn, all or nothing: the inbox row becomes `done`, the conversation is saved
//! (or deleted when it ended), the contact's last inbound time moves to the message's timestamp,
//! the outbound messages become pending outbox rows, and the transcript gets one row holding the
//! trace events (the messages themselves are read from the inbox and outbox rows). The writer runs
//! it inside one savepoint, so a failure at any step leaves no trace of the turn and the message is
//! processed again.
//!
//! The inbox row is updated first: a turn for a row that is missing or already finished is refused
//! before anything else is written, so a message can never produce its replies twice.
//!
//! [`EncodedTurn`] does the JSON encoding in the caller's task, so the writer thread only binds
//! values to its prepared statements (inbox, conversation, contact, one per outbox row, one
//! transcript row).

use chrono::{DateTime, Utc};
use flowbot_engine::Outbound;
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{parse_time, time_text, to_json};
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

pub(crate) fn commit_turn(
    conn: &Connection,
    turn: &EncodedTurn,
) -> Result<Vec<OutboxRow>, StoreError> {
    let finished: Option<String> = conn
        .prepare_cached(
            "UPDATE inbox SET state = 'done', last_error = NULL, updated_at = ?
             WHERE id = ? AND state IN ('pending', 'processing')
             RETURNING message_at",
        )?
        .query_row(params![time_text(turn.now), turn.inbox_id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(message_at) = finished else {
        return Err(inbox::not_open(conn, turn.inbox_id));
    };

    match &turn.conversation {
        Some(conversation) => {
            conversations::upsert(conn, &turn.channel, &turn.phone, conversation)?
        }
        None => conversations::delete(conn, &turn.channel, &turn.phone)?,
    }

    contacts::upsert(
        conn,
        &turn.channel,
        &turn.phone,
        turn.contact_name.as_deref(),
        &message_at,
        turn.now,
    )?;

    let target = NewOutbox {
        inbox_id: turn.inbox_id,
        channel: &turn.channel,
        business_id: &turn.business_id,
        phone: &turn.phone,
        now: turn.now,
        message_at: parse_time(&message_at, "the inbox row's message_at").ok(),
    };
    let rows = outbox::insert(conn, &target, &turn.outbound, &turn.outbound_json)?;

    // The inbound and outbound messages are in the inbox and outbox rows: the entry holds the trace.
    let entry = transcript::turn_entry(&turn.trace_json);
    let key = transcript::TurnKey {
        channel: &turn.channel,
        phone: &turn.phone,
        inbox_id: turn.inbox_id,
        at: turn.now,
    };
    transcript::insert_turn(conn, &key, &entry, turn.events)?;

    Ok(rows)
}
