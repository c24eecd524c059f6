//! The outbox: one row per outbound message of a turn, keyed by the inbound message and its
//! position (`inbox_id`, `sequence`), created `pending` by the turn commit. The sender reads pending
//! rows, sends them and records the result (`mark_sent` with the provider's message id, or
//! `mark_send_error`). A row marked sent is never pending again, so it is never sent twice.
//!
//! Before each send the sender records `attempt_started_at` (`mark_send_started`): after a crash,
//! a pending or held row with it set may already be at Graph (uncertain). The send carries the
//! row's id as `biz_opaque_callback_data`; a status webhook echoing it confirms the row
//! (`confirm_sent`), so the row is not sent again.
//!
//! Delivery statuses (sent, delivered, read, failed) arrive later from status notifications, found
//! by the provider message id, possibly out of order. They only move forward:
//! sent < delivered < read, and failed wins over everything.

use chrono::{DateTime, Utc};
use flowbot_engine::Outbound;
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::SqlitePool;

use crate::codec::{enum_name, from_json, parse_enum, parse_time, time_text, to_u32};
use crate::{OutboxRow, OutboxState, StoreError};

/// Where a new outbox row goes.
pub(crate) struct NewOutbox<'a> {
    pub(crate) inbox_id: i64,
    pub(crate) channel: &'a str,
    pub(crate) business_id: &'a str,
    pub(crate) phone: &'a str,
    pub(crate) now: DateTime<Utc>,
    /// The inbound message's time, when known (see [`OutboxRow::answers_message_at`]).
    pub(crate) message_at: Option<DateTime<Utc>>,
}

/// Inserts the messages (with their JSON encodings) as `pending` rows with sequence 0, 1, …;
/// returns the new rows.
pub(crate) fn insert(
    conn: &Connection,
    target: &NewOutbox<'_>,
    messages: &[Outbound],
    encoded: &[String],
) -> Result<Vec<OutboxRow>, StoreError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let created_at = time_text(target.now);
    let mut insert = conn.prepare_cached(
        "INSERT INTO outbox (inbox_id, sequence, channel, business_id, phone, message, state,
                             attempts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)
         RETURNING id",
    )?;
    let ids = (0_i64..)
        .zip(encoded)
        .map(|(sequence, message)| {
            insert.query_row(
                params![
                    target.inbox_id,
                    sequence,
                    target.channel,
                    target.business_id,
                    target.phone,
                    message,
                    created_at,
                ],
                |row| row.get::<_, i64>(0),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() != messages.len() {
        return Err(StoreError::Database(format!(
            "{} encoded outbox messages for {} messages",
            ids.len(),
            messages.len()
        )));
    }
    (0u32..)
        .zip(ids.into_iter().zip(messages))
        .map(|(sequence, (id, message))| {
            Ok(OutboxRow {
                id,
                inbox_id: target.inbox_id,
                sequence,
                channel: target.channel.to_owned(),
                business_id: target.business_id.to_owned(),
                phone: target.phone.to_owned(),
                message: message.clone(),
                state: OutboxState::Pending,
                attempts: 0,
                provider_message_id: None,
                delivery_status: None,
                error: None,
                created_at: target.now,
                attempt_started_at: None,
                answers_message_at: target.message_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct Record {
    id: i64,
    inbox_id: i64,
    sequence: i64,
    channel: String,
    business_id: String,
    phone: String,
    message: String,
    state: String,
    attempts: i64,
    provider_message_id: Option<String>,
    delivery_status: Option<String>,
    error: Option<String>,
    created_at: String,
    attempt_started_at: Option<String>,
}

const COLUMNS: &str =
    "id, inbox_id, sequence, channel, business_id, phone, message, state, attempts,
                provider_message_id, delivery_status, error, created_at, attempt_started_at";

/// Rows still to send: pending ones, and held ones (sending was paused, e.g. an expired access
/// token, and is tried again after a restart), in the order they were created.
pub(crate) async fn unsent(readers: &SqlitePool) -> Result<Vec<OutboxRow>, StoreError> {
    let records: Vec<Record> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE state IN ('pending', 'held') ORDER BY id"
    ))
    .fetch_all(readers)
    .await?;
    records.into_iter().map(Record::into_row).collect()
}

/// One row by id, whatever its state.
pub(crate) async fn load(
    readers: &SqlitePool,
    outbox_id: i64,
) -> Result<Option<OutboxRow>, StoreError> {
    let record: Option<Record> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?"))
            .bind(outbox_id)
            .fetch_optional(readers)
            .await?;
    record.map(Record::into_row).transpose()
}

impl Record {
    fn into_row(self) -> Result<OutboxRow, StoreError> {
        let what = |column: &str| format!("outbox row {} ({column})", self.id);
        Ok(OutboxRow {
            sequence: to_u32(self.sequence, &what("sequence"))?,
            message: from_json(&self.message, &what("message"))?,
            state: parse_enum(&self.state, &what("state"))?,
            attempts: to_u32(self.attempts, &what("attempts"))?,
            created_at: parse_time(&self.created_at, &what("created_at"))?,
            attempt_started_at: self
                .attempt_started_at
                .as_deref()
                .map(|at| parse_time(at, &what("attempt_started_at")))
                .transpose()?,
            id: self.id,
            inbox_id: self.inbox_id,
            channel: self.channel,
            business_id: self.business_id,
            phone: self.phone,
            provider_message_id: self.provider_message_id,
            delivery_status: self.delivery_status,
            error: self.error,
            answers_message_at: None,
        })
    }
}

pub(crate) fn mark_sent(
    conn: &Connection,
    outbox_id: i64,
    provider_message_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = time_text(now);
    let updated = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'sent', provider_message_id = ?, attempts = attempts + 1,
                           error = NULL, sent_at = ?, updated_at = ?
         WHERE id = ?",
        )?
        .execute(params![provider_message_id, &now, &now, outbox_id])?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!(
            "there is no outbox row {outbox_id}"
        )));
    }
    Ok(())
}

/// Marks that a send attempt starts (the first attempt's time is kept).
pub(crate) fn mark_send_started(
    conn: &Connection,
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = time_text(now);
    let updated = conn
        .prepare_cached(
            "UPDATE outbox SET attempt_started_at = COALESCE(attempt_started_at, ?), updated_at = ?
         WHERE id = ? AND state IN ('pending', 'held')",
        )?
        .execute(params![&now, &now, outbox_id])?;
    if updated > 0 {
        return Ok(());
    }
    Err(match stored_state(conn, outbox_id)? {
        Some(state) => {
            StoreError::Conflict(format!("outbox row {outbox_id} is {state}, not to be sent"))
        }
        None => StoreError::NotFound(format!("there is no outbox row {outbox_id}")),
    })
}

/// A status webhook confirmed the send of a pending or held row: it becomes sent. True when the
/// row changed; false when it was already sent or failed.
pub(crate) fn confirm_sent(
    conn: &Connection,
    outbox_id: i64,
    provider_message_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let now = time_text(now);
    let updated = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'sent', provider_message_id = ?, error = NULL, sent_at = ?,
                           updated_at = ?
         WHERE id = ? AND state IN ('pending', 'held')",
        )?
        .execute(params![provider_message_id, &now, &now, outbox_id])?;
    if updated > 0 {
        return Ok(true);
    }
    match stored_state(conn, outbox_id)? {
        Some(_) => Ok(false),
        None => Err(StoreError::NotFound(format!(
            "there is no outbox row {outbox_id}"
        ))),
    }
}

/// Records a failed send. A row already sent stays sent (it must never be sent again).
pub(crate) fn mark_send_error(
    conn: &Connection,
    outbox_id: i64,
    state: OutboxState,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if state == OutboxState::Sent {
        return Err(StoreError::Database(format!(
            "a send error cannot mark outbox row {outbox_id} as sent: use mark_sent"
        )));
    }
    let updated = conn
        .prepare_cached(
            "UPDATE outbox SET state = ?, error = ?, attempts = attempts + 1, updated_at = ?
         WHERE id = ? AND state != 'sent'",
        )?
        .execute(params![
            enum_name(&state, "the outbox state")?,
            error,
            time_text(now),
            outbox_id
        ])?;
    if updated > 0 {
        return Ok(());
    }
    Err(match stored_state(conn, outbox_id)? {
        Some(_) => StoreError::Conflict(format!("outbox row {outbox_id} is already sent")),
        None => StoreError::NotFound(format!("there is no outbox row {outbox_id}")),
    })
}

/// The state of an outbox row, for the error of a write that changed nothing; `None` when there
/// is no such row.
fn stored_state(conn: &Connection, outbox_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT state FROM outbox WHERE id = ?")?
        .query_row([outbox_id], |row| row.get(0))
        .optional()?)
}

/// How far along a delivery status is; a status replaces the stored one only when it ranks higher.
fn status_rank(status: Option<&str>) -> u8 {
    match status {
        None => 0,
        Some("sent") => 2,
        Some("delivered") => 3,
        Some("read") => 4,
        Some("failed") => 5,
        // Statuses this version does not know (e.g. "deleted") are kept only if nothing better is.
        Some(_) => 1,
    }
}

/// Applies a status notification; false when no outbox row has that provider message id.
pub(crate) fn record_delivery_status(
    conn: &Connection,
    provider_message_id: &str,
    status: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let current: Option<(i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT id, delivery_status FROM outbox WHERE provider_message_id = ? ORDER BY id LIMIT 1",
        )?
        .query_row([provider_message_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((outbox_id, current)) = current else {
        return Ok(false);
    };
    if status_rank(Some(status)) > status_rank(current.as_deref()) {
        conn.prepare_cached("UPDATE outbox SET delivery_status = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ?")?.execute(params![status, error, time_text(now), outbox_id])?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::status_rank;

    #[test]
    fn statuses_only_move_forward_and_failed_wins() {
        let order = [
            None,
            Some("deleted"),
            Some("sent"),
            Some("delivered"),
            Some("read"),
            Some("failed"),
        ];
        for pair in order.windows(2) {
            assert!(status_rank(pair[0]) < status_rank(pair[1]), "{pair:?}");
        }
    }
}
