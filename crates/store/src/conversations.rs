//! Conversation state, one row per contact: the flow, the step it waits at, its status, attempts,
//! clocks and variables (JSON text; serde_json keeps key order, numbers and strings such as "007"
//! exactly). Written by the turn commit (upsert, or delete when the conversation ended) and by
//! `release_handoff`; read when a turn starts and by `flowbot conversations list`.

use flowbot_engine::Conversation;
use rusqlite::{params, Connection};
use sqlx::SqlitePool;

use crate::codec::{enum_name, from_json, parse_enum, parse_time, time_text, to_json, to_u32};
use crate::{ConversationSummary, StoreError};

/// A conversation's columns, encoded in the caller's task.
pub(crate) struct EncodedConversation {
    flow: String,
    step: Option<String>,
    status: String,
    vars: String,
    attempts: i64,
    started_at: String,
    updated_at: String,
    expires_at: String,
}

impl EncodedConversation {
    pub(crate) fn new(conversation: &Conversation) -> Result<EncodedConversation, StoreError> {
        Ok(EncodedConversation {
            flow: conversation.flow.clone(),
            step: conversation.step.clone(),
            status: enum_name(&conversation.status, "the conversation status")?,
            vars: to_json(&conversation.vars, "the conversation variables")?,
            attempts: i64::from(conversation.attempts),
            started_at: time_text(conversation.started_at),
            updated_at: time_text(conversation.updated_at),
            expires_at: time_text(conversation.expires_at),
        })
    }
}

pub(crate) fn upsert(
    conn: &Connection,
    channel: &str,
    phone: &str,
    conversation: &EncodedConversation,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO conversations (channel, phone, flow, step, status, vars, attempts,
                                    started_at, updated_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (channel, phone) DO UPDATE SET
             flow = excluded.flow, step = excluded.step, status = excluded.status,
             vars = excluded.vars, attempts = excluded.attempts, started_at = excluded.started_at,
             updated_at = excluded.updated_at, expires_at = excluded.expires_at",
    )?
    .execute(params![
        channel,
        phone,
        &conversation.flow,
        &conversation.step,
        &conversation.status,
        &conversation.vars,
        conversation.attempts,
        &conversation.started_at,
        &conversation.updated_at,
        &conversation.expires_at
    ])?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, channel: &str, phone: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM conversations WHERE channel = ? AND phone = ?")?
        .execute(params![channel, phone])?;
    Ok(())
}

/// Deletes the contact's conversation if it is handed off; true when there was one.
pub(crate) fn release_handoff(
    conn: &Connection,
    channel: &str,
    phone: &str,
) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM conversations WHERE channel = ? AND phone = ? AND status = 'handoff'",
        )?
        .execute(params![channel, phone])?;
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct Record {
    flow: String,
    step: Option<String>,
    status: String,
    vars: String,
    attempts: i64,
    started_at: String,
    updated_at: String,
    expires_at: String,
}

pub(crate) async fn load(
    readers: &SqlitePool,
    channel: &str,
    phone: &str,
) -> Result<Option<Conversation>, StoreError> {
    let record: Option<Record> = sqlx::query_as(
        "SELECT flow, step, status, vars, attempts, started_at, updated_at, expires_at
         FROM conversations WHERE channel = ? AND phone = ?",
    )
    .bind(channel)
    .bind(phone)
    .fetch_optional(readers)
    .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    let what = |column: &str| format!("conversation of {channel}/{phone} ({column})");
    Ok(Some(Conversation {
        status: parse_enum(&record.status, &what("status"))?,
        vars: from_json(&record.vars, &what("vars"))?,
        attempts: to_u32(record.attempts, &what("attempts"))?,
        started_at: parse_time(&record.started_at, &what("started_at"))?,
        updated_at: parse_time(&record.updated_at, &what("updated_at"))?,
        expires_at: parse_time(&record.expires_at, &what("expires_at"))?,
        flow: record.flow,
        step: record.step,
    }))
}

#[derive(sqlx::FromRow)]
struct SummaryRecord {
    channel: String,
    phone: String,
    name: Option<String>,
    flow: String,
    step: Option<String>,
    status: String,
    updated_at: String,
    expires_at: String,
}

/// Every conversation with the contact's name, most recently updated first.
pub(crate) async fn list(readers: &SqlitePool) -> Result<Vec<ConversationSummary>, StoreError> {
    let records: Vec<SummaryRecord> = sqlx::query_as(
        "SELECT c.channel, c.phone, k.name, c.flow, c.step, c.status, c.updated_at, c.expires_at
         FROM conversations c
         LEFT JOIN contacts k ON k.channel = c.channel AND k.phone = c.phone
         ORDER BY c.updated_at DESC, c.channel, c.phone",
    )
    .fetch_all(readers)
    .await?;
    records
        .into_iter()
        .map(|record| {
            let what = |column: &str| {
                format!(
                    "conversation of {}/{} ({column})",
                    record.channel, record.phone
                )
            };
            Ok(ConversationSummary {
                updated_at: parse_time(&record.updated_at, &what("updated_at"))?,
                expires_at: parse_time(&record.expires_at, &what("expires_at"))?,
                channel: record.channel,
                phone: record.phone,
                name: record.name,
                flow: record.flow,
                step: record.step,
                status: record.status,
            })
        })
        .collect()
}
