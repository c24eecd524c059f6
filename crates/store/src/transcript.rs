//! Transcript events: what came in, what went out and what each step did, one row per event, in
//! the order the turn commit wrote them. The entry is stored as its JSON (tagged by `kind`, also a
//! column for filtering in SQL). Events are not tied to inbox rows by a foreign key, because
//! transcripts and dedupe keys are pruned on separate schedules.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};

use crate::codec::{from_json, parse_time, time_text, to_json};
use crate::{StoreError, TranscriptEntry, TranscriptEvent};

/// The event's `kind` column: the serde tag of the entry.
fn kind(entry: &TranscriptEntry) -> &'static str {
    match entry {
        TranscriptEntry::Inbound { .. } => "inbound",
        TranscriptEntry::Outbound { .. } => "outbound",
        TranscriptEntry::Trace { .. } => "trace",
    }
}

pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    channel: &str,
    event: &TranscriptEvent,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO transcript (channel, phone, inbox_id, at, kind, entry) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(channel)
        .bind(&event.phone)
        .bind(event.inbox_id)
        .bind(time_text(event.at))
        .bind(kind(&event.entry))
        .bind(to_json(&event.entry, "a transcript event")?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The contact's events at or after `since`, oldest first.
pub(crate) async fn read(
    readers: &SqlitePool,
    phone: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<TranscriptEvent>, StoreError> {
    // Without `since`, the empty string sorts before every timestamp.
    let since = since.map(time_text).unwrap_or_default();
    let records: Vec<(i64, String, Option<i64>, String, String)> = sqlx::query_as(
        "SELECT id, phone, inbox_id, at, entry FROM transcript
         WHERE phone = ? AND at >= ? ORDER BY at, id",
    )
    .bind(phone)
    .bind(since)
    .fetch_all(readers)
    .await?;
    records
        .into_iter()
        .map(|(id, phone, inbox_id, at, entry)| {
            Ok(TranscriptEvent {
                at: parse_time(&at, &format!("transcript event {id} (at)"))?,
                entry: from_json(&entry, &format!("transcript event {id} (entry)"))?,
                phone,
                inbox_id,
            })
        })
        .collect()
}

/// Deletes up to `limit` events older than `before`; returns how many.
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    before: &str,
    limit: i64,
) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM transcript WHERE id IN (SELECT id FROM transcript WHERE at < ? LIMIT ?)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(deleted.rows_affected())
}
