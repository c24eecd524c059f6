//! The inbox: every inbound message, recorded before the webhook is answered. The unique
//! `(channel, provider_message_id)` is the dedupe key, so a redelivered message is recognised at
//! insert (`ON CONFLICT DO NOTHING`) without a read first. Rows move pending → processing → done
//! (by the turn commit) or failed; start-up reads the unfinished ones back in message order.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::SqlitePool;

use crate::codec::{from_json, parse_enum, parse_time, time_text, to_json, to_u32};
use crate::{InboxRow, InsertOutcome, NewInbound, StoreError};

/// An inbound message with its JSON already encoded, so the single writer only binds values.
pub(crate) struct EncodedInbound {
    provider_message_id: String,
    channel: String,
    business_id: String,
    phone: String,
    contact_name: Option<String>,
    contact: String,
    message: String,
    message_at: String,
}

impl EncodedInbound {
    pub(crate) fn new(inbound: &NewInbound) -> Result<EncodedInbound, StoreError> {
        Ok(EncodedInbound {
            provider_message_id: inbound.message.id.clone(),
            channel: inbound.channel.clone(),
            business_id: inbound.business_id.clone(),
            phone: inbound.contact.phone.clone(),
            contact_name: inbound.contact.name.clone(),
            contact: to_json(&inbound.contact, "the contact")?,
            message: to_json(&inbound.message, "the inbound message")?,
            message_at: time_text(inbound.message.timestamp),
        })
    }
}

/// Inserts the messages; a known provider id is a `Duplicate`, also a second copy within the
/// batch. Outcomes are in the order of `batch`.
pub(crate) fn insert(
    conn: &Connection,
    batch: &[EncodedInbound],
    received_at: DateTime<Utc>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let received_at = time_text(received_at);
    let mut insert = conn.prepare_cached(
        "INSERT INTO inbox (provider_message_id, channel, business_id, phone, contact_name, contact,
                            message, message_at, state, attempts, received_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, ?9)
         ON CONFLICT (channel, provider_message_id) DO NOTHING
         RETURNING id",
    )?;
    batch
        .iter()
        .map(|inbound| {
            let id: Option<i64> = insert
                .query_row(
                    params![
                        inbound.provider_message_id,
                        inbound.channel,
                        inbound.business_id,
                        inbound.phone,
                        inbound.contact_name,
                        inbound.contact,
                        inbound.message,
                        inbound.message_at,
                        received_at,
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(match id {
                Some(id) => InsertOutcome::Inserted(id),
                None => InsertOutcome::Duplicate,
            })
        })
        .collect()
}

/// Marks a row as being processed (attempts + 1); an error when it is missing or finished.
pub(crate) fn mark_processing(
    conn: &Connection,
    inbox_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE inbox SET state = 'processing', attempts = attempts + 1, updated_at = ?
             WHERE id = ? AND state IN ('pending', 'processing')",
        )?
        .execute(params![time_text(now), inbox_id])?;
    if updated == 0 {
        return Err(not_open(conn, inbox_id));
    }
    Ok(())
}

/// Marks a row as failed with a reason; an error when it is missing or finished.
pub(crate) fn mark_failed(
    conn: &Connection,
    inbox_id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE inbox SET state = 'failed', last_error = ?, updated_at = ?
             WHERE id = ? AND state IN ('pending', 'processing')",
        )?
        .execute(params![error, time_text(now), inbox_id])?;
    if updated == 0 {
        return Err(not_open(conn, inbox_id));
    }
    Ok(())
}

/// Why a write to an inbox row that must be open changed nothing: `Conflict` when the row is
/// finished, `NotFound` when there is none.
pub(crate) fn not_open(conn: &Connection, inbox_id: i64) -> StoreError {
    let state: Result<Option<String>, rusqlite::Error> = conn
        .query_row("SELECT state FROM inbox WHERE id = ?", [inbox_id], |row| {
            row.get(0)
        })
        .optional();
    match state {
        Ok(Some(state)) => StoreError::Conflict(format!("inbox row {inbox_id} is already {state}")),
        Ok(None) => StoreError::NotFound(format!("there is no inbox row {inbox_id}")),
        Err(error) => error.into(),
    }
}

#[derive(sqlx::FromRow)]
struct Record {
    id: i64,
    channel: String,
    business_id: String,
    contact: String,
    message: String,
    state: String,
    attempts: i64,
    received_at: String,
}

/// Pending and processing rows, oldest message first (ties in arrival order).
pub(crate) async fn unfinished(readers: &SqlitePool) -> Result<Vec<InboxRow>, StoreError> {
    let records: Vec<Record> = sqlx::query_as(
        "SELECT id, channel, business_id, contact, message, state, attempts, received_at
         FROM inbox WHERE state IN ('pending', 'processing')
         ORDER BY message_at, id",
    )
    .fetch_all(readers)
    .await?;
    records.into_iter().map(Record::into_row).collect()
}

impl Record {
    fn into_row(self) -> Result<InboxRow, StoreError> {
        let what = |column: &str| format!("inbox row {} ({column})", self.id);
        Ok(InboxRow {
            id: self.id,
            contact: from_json(&self.contact, &what("contact"))?,
            message: from_json(&self.message, &what("message"))?,
            state: parse_enum(&self.state, &what("state"))?,
            attempts: to_u32(self.attempts, &what("attempts"))?,
            received_at: parse_time(&self.received_at, &what("received_at"))?,
            channel: self.channel,
            business_id: self.business_id,
        })
    }
}
