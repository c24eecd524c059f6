//! The inbox: every inbound message, recorded before the webhook is answered. The unique
//! `(channel, provider_message_id)` is the dedupe key, so a redelivered message is recognised at
//! insert (`ON CONFLICT DO NOTHING`) without a read first. Rows move pending → processing → done
//! (by the turn commit) or failed; start-up reads the unfinished ones back in message order.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use crate::codec::{from_json, parse_enum, parse_time, time_text, to_json, to_u32};
use crate::{InboxRow, InsertOutcome, NewInbound, StoreError};

/// Inserts each message, in order; a known provider id is a `Duplicate`, also within one batch.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    batch: &[NewInbound],
    received_at: DateTime<Utc>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let received_at = time_text(received_at);
    let mut outcomes = Vec::with_capacity(batch.len());
    for inbound in batch {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbox (provider_message_id, channel, business_id, phone, contact_name, contact,
                                message, message_at, state, attempts, received_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)
             ON CONFLICT (channel, provider_message_id) DO NOTHING
             RETURNING id",
        )
        .bind(&inbound.message.id)
        .bind(&inbound.channel)
        .bind(&inbound.business_id)
        .bind(&inbound.contact.phone)
        .bind(&inbound.contact.name)
        .bind(to_json(&inbound.contact, "the contact")?)
        .bind(to_json(&inbound.message, "the inbound message")?)
        .bind(time_text(inbound.message.timestamp))
        .bind(&received_at)
        .bind(&received_at)
        .fetch_optional(&mut *conn)
        .await?;
        outcomes.push(match inserted {
            Some(id) => InsertOutcome::Inserted(id),
            None => InsertOutcome::Duplicate,
        });
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
        Ok(Some(state)) => StoreError::Database(format!("inbox row {inbox_id} is already {state}")),
        Ok(None) => StoreError::Database(format!("there is no inbox row {inbox_id}")),
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
