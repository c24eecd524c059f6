//! Contacts: everyone who wrote to the bot, with their profile name and the time of their last
//! inbound message, which the server's 24-hour customer-service window is measured from. Written
//! only by the turn commit; the last inbound time never moves backwards when messages are processed
//! out of order.

use rusqlite::{params, Connection};
use sqlx::SqlitePool;

use crate::codec::{parse_optional_time, time_text};
use crate::{ContactRow, StoreError};

/// Records a contact and its latest inbound message time (`message_at`, RFC 3339 text as stored in
/// the inbox). A missing name keeps the known one.
pub(crate) fn upsert(
    conn: &Connection,
    channel: &str,
    phone: &str,
    name: Option<&str>,
    message_at: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO contacts (channel, phone, name, last_inbound_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (channel, phone) DO UPDATE SET
             name = COALESCE(excluded.name, contacts.name),
             last_inbound_at = MAX(COALESCE(contacts.last_inbound_at, ''), excluded.last_inbound_at),
             updated_at = excluded.updated_at")?.execute(params![channel, phone, name, message_at, time_text(now)])?;
    Ok(())
}

pub(crate) async fn load(
    readers: &SqlitePool,
    channel: &str,
    phone: &str,
) -> Result<Option<ContactRow>, StoreError> {
    let record: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT channel, phone, name, last_inbound_at FROM contacts WHERE channel = ? AND phone = ?",
    )
    .bind(channel)
    .bind(phone)
    .fetch_optional(readers)
    .await?;
    let Some((channel, phone, name, last_inbound_at)) = record else {
        return Ok(None);
    };
    let last_inbound_at = parse_optional_time(
        last_inbound_at.as_deref(),
        &format!("contact {channel}/{phone} (last_inbound_at)"),
    )?;
    Ok(Some(ContactRow {
        channel,
        phone,
        name,
        last_inbound_at,
    }))
}
