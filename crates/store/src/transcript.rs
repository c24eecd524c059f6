//! Transcript events: what came in, what went out and what each step did. A turn is stored as one
//! row (kind `turn`) whose entry is a JSON object holding the turn's trace events; the inbound
//! message and the outbound ones are not copied into it but read from the turn's inbox row and
//! outbox rows (`inbox_id`, same contact), which retention keeps at least as long. Reading expands
//! a turn back into events in the order they happened: inbound, each outbound, each trace event.
//!
//! Older rows are still read as they are: turn rows written by earlier versions hold their own
//! copies (`{"message", "contact", "outbound", "trace"}`), and databases written before migration
//! 0003 hold one row per event (kind `inbound`, `outbound` or `trace`, the entry being the
//! [`TranscriptEntry`] JSON). Rows are not tied to inbox rows by a foreign key: a turn whose inbox
//! row is already gone (retention compares the inbox row's reception time and the turn's time with
//! the same cut-off, so a message received just before it and answered just after) reads with its
//! trace events only until the next prune removes it too.

use chrono::{DateTime, Utc};
use flowbot_engine::{Contact, Inbound, Outbound, TraceEvent};
use rusqlite::{params, Connection};
use serde::Deserialize;
use sqlx::SqlitePool;

use crate::codec::{from_json, parse_time, time_text};
use crate::{StoreError, TranscriptEntry, TranscriptEvent};

/// The `kind` of a row holding a whole turn.
const TURN_KIND: &str = "turn";

/// The entry of a turn row, as read back. Only rows written by earlier versions hold the messages
/// themselves.
#[derive(Deserialize)]
struct TurnEntry {
    #[serde(default)]
    message: Option<Inbound>,
    #[serde(default)]
    contact: Option<Contact>,
    #[serde(default)]
    outbound: Option<Vec<Outbound>>,
    trace: Vec<TraceEvent>,
}

/// The entry JSON of a turn row: the trace events, already encoded as one array.
pub(crate) fn turn_entry(trace_json: &str) -> String {
    format!(r#"{{"trace":{trace_json}}}"#)
}

/// What a turn row is stored under.
pub(crate) struct TurnKey<'a> {
    pub(crate) channel: &'a str,
    pub(crate) phone: &'a str,
    pub(crate) inbox_id: i64,
    pub(crate) at: DateTime<Utc>,
}

/// Inserts one turn's row; `events` is how many transcript events it holds.
pub(crate) fn insert_turn(
    conn: &Connection,
    key: &TurnKey<'_>,
    entry: &str,
    events: usize,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO transcript (channel, phone, inbox_id, at, kind, entry, events)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key.channel,
        key.phone,
        key.inbox_id,
        time_text(key.at),
        TURN_KIND,
        entry,
        i64::try_from(events).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

/// One row of the transcript read: the transcript row, and for a turn its inbox row's message
/// and contact and one of its outbox messages (a turn with several replies comes as several rows).
type ReadRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The contact's events at or after `since`, oldest first.
pub(crate) async fn read(
    readers: &SqlitePool,
    phone: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<TranscriptEvent>, StoreError> {
    // Without `since`, the empty string sorts before every timestamp.
    let since = since.map(time_text).unwrap_or_default();
    let records: Vec<ReadRow> = sqlx::query_as(
        "SELECT t.id, t.phone, t.inbox_id, t.at, t.kind, t.entry, i.message, i.contact, o.message
         FROM transcript t
         LEFT JOIN inbox i ON t.kind = 'turn' AND i.id = t.inbox_id AND i.phone = t.phone
         LEFT JOIN outbox o ON t.kind = 'turn' AND o.inbox_id = t.inbox_id AND o.phone = t.phone
         WHERE t.phone = ? AND t.at >= ? ORDER BY t.at, t.id, o.sequence",
    )
    .bind(phone)
    .bind(since)
    .fetch_all(readers)
    .await?;
    let mut events = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while let Some((id, phone, inbox_id, at, kind, entry, inbound, contact, first_reply)) =
        records.next()
    {
        let what = |column: &str| format!("transcript event {id} ({column})");
        let at = parse_time(&at, &what("at"))?;
        if kind != TURN_KIND {
            events.push(TranscriptEvent {
                at,
                entry: from_json(&entry, &what("entry"))?,
                phone,
                inbox_id,
            });
            continue;
        }
        // The turn's other replies are the next rows of the same transcript row.
        let mut replies: Vec<String> = first_reply.into_iter().collect();
        while let Some(next) = records.next_if(|next| next.0 == id) {
            replies.extend(next.8);
        }
        let turn: TurnEntry = from_json(&entry, &what("entry"))?;
        let event = |entry| TranscriptEvent {
            at,
            phone: phone.clone(),
            inbox_id,
            entry,
        };
        let inbound = match (turn.message, turn.contact) {
            (Some(message), Some(contact)) => Some((message, contact)),
            _ => match (inbound, contact) {
                (Some(message), Some(contact)) => Some((
                    from_json(&message, &what("inbox message"))?,
                    from_json(&contact, &what("inbox contact"))?,
                )),
                _ => None,
            },
        };
        if let Some((message, contact)) = inbound {
            events.push(event(TranscriptEntry::Inbound { message, contact }));
        }
        let outbound = match turn.outbound {
            Some(outbound) => outbound,
            None => replies
                .iter()
                .map(|reply| from_json(reply, &what("outbox message")))
                .collect::<Result<_, _>>()?,
        };
        events.extend(
            outbound
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

pub(crate) struct Pruned {
    /// Rows (a turn's row holds several events).
    pub(crate) rows: u64,
    /// Transcript events those rows held.
    pub(crate) events: u64,
}

/// Deletes up to `limit` rows older than `before`.
pub(crate) fn prune_chunk(
    conn: &Connection,
    before: &str,
    limit: i64,
) -> Result<Pruned, StoreError> {
    let events = conn
        .prepare_cached(
            "DELETE FROM transcript WHERE id IN (SELECT id FROM transcript WHERE at < ? LIMIT ?)
             RETURNING events",
        )?
        .query_map(params![before, limit], |row| row.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pruned {
        rows: events.len() as u64,
        events: events.iter().map(|n| n.unsigned_abs()).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::to_json;

    /// A turn entry holds the trace only; an entry written by an earlier version, with its own
    /// copies of the messages, still reads.
    #[test]
    fn turn_entries_new_and_old_read_back() {
        let trace = vec![TraceEvent::Step {
            step: "greet".into(),
            kind: "say".into(),
        }];
        let entry = turn_entry(&to_json(&trace, "trace").expect("encodes"));
        assert_eq!(
            entry,
            r#"{"trace":[{"event":"step","step":"greet","kind":"say"}]}"#
        );
        let read: TurnEntry = from_json(&entry, "entry").expect("decodes");
        assert_eq!(read.trace, trace);
        assert!(read.message.is_none() && read.contact.is_none() && read.outbound.is_none());

        let message = Inbound::text("wamid.1", "hi \"there\" 🙂", chrono::Utc::now());
        let contact = Contact {
            phone: "919820000001".into(),
            name: Some("Asha".into()),
        };
        let outbound = vec![Outbound::Text { body: "one".into() }];
        let old = format!(
            r#"{{"message":{},"contact":{},"outbound":{},"trace":[]}}"#,
            to_json(&message, "message").expect("encodes"),
            to_json(&contact, "contact").expect("encodes"),
            to_json(&outbound, "outbound").expect("encodes"),
        );
        let read: TurnEntry = from_json(&old, "entry").expect("decodes");
        assert_eq!((read.message, read.contact), (Some(message), Some(contact)));
        assert_eq!(read.outbound, Some(outbound));
    }
}
