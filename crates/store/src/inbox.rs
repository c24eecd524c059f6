//! The inbox: every inbound message, recorded before the webhook is answered. The unique
//! `(channel, provider_message_id)` is the dedupe key, so a redelivered message is recognised at
//! insert (`ON CONFLICT DO NOTHING`) without a read first. Rows move pending → processing → done
//! (by the turn commit) or failed; start-up reads the unfinished ones back in message order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::codec::{from_json, parse_enum, parse_time, time_text, to_json, to_u32};
use crate::{InboxRow, InsertOutcome, NewInbound, StoreError};

/// Rows per INSERT statement (SQLite allows 32766 bound values; a row has 11).
const ROWS_PER_INSERT: usize = 500;

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
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    batch: &[EncodedInbound],
    received_at: DateTime<Utc>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let received_at = time_text(received_at);
    let mut outcomes = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO inbox (provider_message_id, channel, business_id, phone, contact_name, contact,
                                message, message_at, state, attempts, received_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, inbound| {
            row.push_bind(&inbound.provider_message_id)
                .push_bind(&inbound.channel)
                .push_bind(&inbound.business_id)
                .push_bind(&inbound.phone)
                .push_bind(&inbound.contact_name)
                .push_bind(&inbound.contact)
                .push_bind(&inbound.message)
                .push_bind(&inbound.message_at)
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind(&received_at)
                .push_bind(&received_at);
        });
        insert.push(
            " ON CONFLICT (channel, provider_message_id) DO NOTHING
              RETURNING id, channel, provider_message_id",
        );
        // RETURNING gives rows in no particular order: match them back by key. Of two copies in
        // one batch, the first is the one inserted.
        let inserted: Vec<(i64, String, String)> =
            insert.build_query_as().fetch_all(&mut *conn).await?;
        let mut ids: HashMap<(String, String), i64> = inserted
            .into_iter()
            .map(|(id, channel, provider_message_id)| ((channel, provider_message_id), id))
            .collect();
        for inbound in chunk {
            let key = (inbound.channel.clone(), inbound.provider_message_id.clone());
            outcomes.push(match ids.remove(&key) {
                Some(id) => InsertOutcome::Inserted(id),
                None => InsertOutcome::Duplicate,
            });
        }
    }
    Ok(outcomes)
}

pub(crate) async fn mark_processing(
    conn: &mut SqliteConnection,
    inbox_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE inbox SET state = 'processing', attempts = attempts + 1, updated_at = ?
         WHERE id = ? AND state IN ('pending', 'processing')",
    )
    .bind(time_text(now))
    .bind(inbox_id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(not_open(conn, inbox_id).await);
    }
    Ok(())
}

pub(crate) async fn mark_failed(
    conn: &mut SqliteConnection,
    inbox_id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE inbox SET state = 'failed', last_error = ?, updated_at = ?
         WHERE id = ? AND state IN ('pending', 'processing')",
    )
    .bind(error)
    .bind(time_text(now))
    .bind(inbox_id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(not_open(conn, inbox_id).await);
    }
    Ok(())
}

/// Why an inbox row could not move on: it is missing or already finished.
pub(crate) async fn not_open(conn: &mut SqliteConnection, inbox_id: i64) -> StoreError {
    let state: Result<Option<String>, sqlx::Error> =
        sqlx::query_scalar("SELECT state FROM inbox WHERE id = ?")
            .bind(inbox_id)
            .fetch_optional(&mut *conn)
            .await;
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
