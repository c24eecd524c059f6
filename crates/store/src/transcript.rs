//! Transcript events: what came in, what went out and what each step did, one row per event, in
//! the order the turn commit wrote them. The entry is stored as its JSON (tagged by `kind`, also a
//! column for filtering in SQL). Events are not tied to inbox rows by a foreign key, because
//! transcripts and dedupe keys are pruned on separate schedules.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::codec::{from_json, parse_time, time_text, to_json};
use crate::{StoreError, TranscriptEntry, TranscriptEvent};

/// One entry to insert: its `kind` column and its JSON.
pub(crate) struct NewEntry {
    kind: &'static str,
    json: String,
}

impl NewEntry {
    pub(crate) fn new(entry: &TranscriptEntry) -> Result<NewEntry, StoreError> {
        let kind = match entry {
            TranscriptEntry::Inbound { .. } => "inbound",
            TranscriptEntry::Outbound { .. } => "outbound",
            TranscriptEntry::Trace { .. } => "trace",
        };
        Ok(NewEntry {
            kind,
            json: to_json(entry, "a transcript event")?,
        })
    }

    /// The inbound entry from the message and contact JSON stored in the inbox row: the same JSON
    /// `TranscriptEntry::Inbound` serializes to, without decoding and encoding them again.
    pub(crate) fn inbound(message_json: &str, contact_json: &str) -> NewEntry {
        NewEntry {
            kind: "inbound",
            json: format!(
                r#"{{"kind":"inbound","message":{message_json},"contact":{contact_json}}}"#
            ),
        }
    }
}

/// What the events of one insert share.
pub(crate) struct EventKey<'a> {
    pub(crate) channel: &'a str,
    pub(crate) phone: &'a str,
    pub(crate) inbox_id: Option<i64>,
    pub(crate) at: DateTime<Utc>,
}

/// Inserts the entries, in order, in one statement.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    key: &EventKey<'_>,
    entries: &[&NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let at = time_text(key.at);
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO transcript (channel, phone, inbox_id, at, kind, entry) ",
    );
    insert.push_values(entries, |mut row, entry| {
        row.push_bind(key.channel)
            .push_bind(key.phone)
            .push_bind(key.inbox_id)
            .push_bind(&at)
            .push_bind(entry.kind)
            .push_bind(&entry.json);
    });
    insert.build().execute(&mut *conn).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use flowbot_engine::{Contact, Inbound};

    /// The assembled inbound entry reads back as the entry serde would have written.
    #[test]
    fn the_inbound_entry_assembled_from_stored_json_is_a_transcript_entry() {
        let message = Inbound::text("wamid.1", "hi \"there\" 🙂", chrono::Utc::now());
        let contact = Contact {
            phone: "919820000001".into(),
            name: Some("Asha".into()),
        };
        let message_json = to_json(&message, "message").expect("encodes");
        let contact_json = to_json(&contact, "contact").expect("encodes");
        let assembled = NewEntry::inbound(&message_json, &contact_json);
        let expected = NewEntry::new(&TranscriptEntry::Inbound {
            message: message.clone(),
            contact: contact.clone(),
        })
        .expect("encodes");
        assert_eq!(assembled.json, expected.json);
        match from_json(&assembled.json, "entry") {
            Ok(TranscriptEntry::Inbound {
                message: read,
                contact: who,
            }) => {
                assert_eq!((read, who), (message, contact));
            }
            other => panic!("expected an inbound entry, got {other:?}"),
        }
    }
}
