//! The commit of one turn, all or nothing: the inbox row becomes `done`, the conversation is saved
//! (or deleted when it ended), the contact's last inbound time moves to the message's timestamp,
//! the outbound messages become pending outbox rows, and the transcript gets the inbound message,
//! each outbound message and each trace event. The writer runs it inside one savepoint, so a
//! failure at any step leaves no trace of the turn and the message is processed again.
//!
//! The inbox row is updated first: a turn for a row that is missing or already finished is refused
//! before anything else is written, so a message can never produce its replies twice.

use sqlx::SqliteConnection;

use crate::codec::{from_json, time_text};
use crate::outbox::NewOutbox;
use crate::{contacts, conversations, inbox, outbox, transcript};
use crate::{OutboxRow, StoreError, TranscriptEntry, TranscriptEvent, TurnCommit};

pub(crate) async fn commit_turn(
    conn: &mut SqliteConnection,
    commit: &TurnCommit,
) -> Result<Vec<OutboxRow>, StoreError> {
    let phone = commit.contact.phone.as_str();

    let finished: Option<(String, String, String)> = sqlx::query_as(
        "UPDATE inbox SET state = 'done', last_error = NULL, updated_at = ?
         WHERE id = ? AND state IN ('pending', 'processing')
         RETURNING message_at, contact, message",
    )
    .bind(time_text(commit.now))
    .bind(commit.inbox_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((message_at, inbound_contact, inbound_message)) = finished else {
        return Err(inbox::not_open(conn, commit.inbox_id).await);
    };

    match &commit.conversation {
        Some(conversation) => {
            conversations::upsert(conn, &commit.channel, phone, conversation).await?
        }
        None => conversations::delete(conn, &commit.channel, phone).await?,
    }

    contacts::upsert(
        conn,
        &commit.channel,
        phone,
        commit.contact.name.as_deref(),
        &message_at,
        commit.now,
    )
    .await?;

    let target = NewOutbox {
        inbox_id: commit.inbox_id,
        channel: &commit.channel,
        business_id: &commit.business_id,
        phone,
        now: commit.now,
    };
    let rows = outbox::insert(conn, &target, &commit.outbound).await?;

    let what = |column: &str| format!("inbox row {} ({column})", commit.inbox_id);
    let inbound = TranscriptEntry::Inbound {
        message: from_json(&inbound_message, &what("message"))?,
        contact: from_json(&inbound_contact, &what("contact"))?,
    };
    let outbound = commit
        .outbound
        .iter()
        .map(|message| TranscriptEntry::Outbound {
            message: message.clone(),
        });
    let trace = commit.trace.iter().map(|event| TranscriptEntry::Trace {
        event: event.clone(),
    });
    for entry in std::iter::once(inbound).chain(outbound).chain(trace) {
        let event = TranscriptEvent {
            at: commit.now,
            phone: phone.to_owned(),
            inbox_id: Some(commit.inbox_id),
            entry,
        };
        transcript::insert(conn, &commit.channel, &event).await?;
    }

    Ok(rows)
}
