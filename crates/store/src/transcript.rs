//! Transcript events: what came in, what went out and what each step did. A turn is stored as one
//! row (kind `turn`) whose entry is a JSON object holding the inbound message and its contact, the
//! outbound messages and the trace events; reading expands it back into events in the order they
//! happened: inbound, each outbound, each trace event. Databases written before migration 0003 also
//! hold one row per event (kind `inbound`, `outbound` or `trace`, the entry being the
//! [`TranscriptEntry`] JSON); those are read as they are. Events are not tied to inbox rows by a
//! foreign key, because transcripts and dedupe keys are pruned on separate schedules.

use chrono::{DateTime, Utc};
use flowbot_engine::{Contact, Inbound, Outbound, TraceEvent};
use serde::Deserialize;
use sqlx::{SqliteConnection, SqlitePool};

use crate::codec::{from_json, parse_time, time_text};
use crate::{StoreError, TranscriptEntry, TranscriptEvent};

/// The `kind` of a row holding a whole turn.
const TURN_KIND: &str = "turn";

/// The entry of a turn row, as read back.
#[derive(Deserialize)]
struct TurnEntry {
    message: Inbound,
    contact: Contact,
    outbound: Vec<Outbound>,
    trace: Vec<TraceEvent>,
}

/// The entry JSON of a turn row, assembled from JSON already encoded (the inbound message and
/// contact as stored in the inbox row, each outbound message as stored in the outbox, the trace
/// events as one array) without decoding and encoding anything again.
pub(crate) fn turn_entry(
    message_json: &str,
    contact_json: &str,
    outbound_json: &[String],
    trace_json: &str,
) -> String {
    let outbound = outbound_json.join(",");
    format!(
        r#"{{"message":{message_json},"contact":{contact_json},"outbound":[{outbound}],"trace":{trace_json}}}"#
    )
}

/// What a turn row is stored under.
pub(crate) struct TurnKey<'a> {
    pub(crate) channel: &'a str,
    pub(crate) phone: &'a str,
    pub(crate) inbox_id: i64,
    pub(crate) at: DateTime<Utc>,
}

/// Inserts one turn's row; `events` is how many transcript events it holds.
pub(crate) async fn insert_turn(
    conn: &mut SqliteConnection,
    key: &TurnKey<'_>,
    entry: &str,
    events: usize,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO transcript (channel, phone, inbox_id, at, kind, entry, events)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(key.channel)
    .bind(key.phone)
    .bind(key.inbox_id)
    .bind(time_text(key.at))
    .bind(TURN_KIND)
    .bind(entry)
    .bind(i64::try_from(events).unwrap_or(i64::MAX))
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
    let records: Vec<(i64, String, Option<i64>, String, String, String)> = sqlx::query_as(
        "SELECT id, phone, inbox_id, at, kind, entry FROM transcript
         WHERE phone = ? AND at >= ? ORDER BY at, id",
    )
    .bind(phone)
    .bind(since)
    .fetch_all(readers)
    .await?;
    let mut events = Vec::with_capacity(records.len());
    for (id, phone, inbox_id, at, kind, entry) in records {
        let at = parse_time(&at, &format!("transcript event {id} (at)"))?;
        if kind != TURN_KIND {
            events.push(TranscriptEvent {
                at,
                entry: from_json(&entry, &format!("transcript event {id} (entry)"))?,
                phone,
                inbox_id,
            });
            continue;
        }
        let turn: TurnEntry = from_json(&entry, &format!("transcript event {id} (entry)"))?;
        let event = |entry| TranscriptEvent {
            at,
            phone: phone.clone(),
            inbox_id,
            entry,
        };
        events.push(event(TranscriptEntry::Inbound {
            message: turn.message,
            contact: turn.contact,
        }));
        events.extend(
            turn.outbound
                .into_iter()
                .map(|message| event(TranscriptEntry::Outbound { message })),
        );
        events.extend(
            turn.trace
                .into_iter()
                .map(|event_| event(TranscriptEntry::Trace { event: event_ })),
        );
    }
    Ok(events)
}

/// What one prune chunk deleted.
pub(crate) struct Pruned {
    /// Rows (a turn's row holds several events).
    pub(crate) rows: u64,
    /// Transcript events those rows held.
    pub(crate) events: u64,
}

/// Deletes up to `limit` rows older than `before`.
pub(crate) async fn prune_chunk(
    conn: &mut SqliteConnection,
    before: &str,
    limit: i64,
) -> Result<Pruned, StoreError> {
    let events: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM transcript WHERE id IN (SELECT id FROM transcript WHERE at < ? LIMIT ?)
         RETURNING events",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Pruned {
        rows: events.len() as u64,
        events: events.iter().map(|n| n.unsigned_abs()).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::to_json;

    /// A turn entry assembled from stored JSON reads back as the events serde would have written,
    /// inbound first, then the outbound messages, then the trace.
    #[test]
    fn a_turn_entry_assembled_from_stored_json_reads_back() {
        let message = Inbound::text("wamid.1", "hi \"there\" 🙂", chrono::Utc::now());
        let contact = Contact {
            phone: "919820000001".into(),
            name: Some("Asha".into()),
        };
        let outbound = vec![
            Outbound::Text { body: "one".into() },
            Outbound::Text { body: "two".into() },
        ];
        let trace = vec![TraceEvent::Step {
            step: "greet".into(),
            kind: "say".into(),
        }];
        let outbound_json: Vec<String> = outbound
            .iter()
            .map(|m| to_json(m, "outbound").expect("encodes"))
            .collect();
        let entry = turn_entry(
            &to_json(&message, "message").expect("encodes"),
            &to_json(&contact, "contact").expect("encodes"),
            &outbound_json,
            &to_json(&trace, "trace").expect("encodes"),
        );
        let read: TurnEntry = from_json(&entry, "entry").expect("decodes");
        assert_eq!((read.message, read.contact), (message, contact));
        assert_eq!(read.outbound, outbound);
        assert_eq!(read.trace, trace);

        let empty = turn_entry("{}", "{}", &[], "[]");
        assert_eq!(
            empty,
            r#"{"message":{},"contact":{},"outbound":[],"trace":[]}"#
        );
    }
}
