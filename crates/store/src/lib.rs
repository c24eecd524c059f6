//! SQLite storage for flowbot, through sqlx: the only crate that holds SQL.
//!
//! CONTRACT SKELETON — the signatures below are what the server, the CLI and the tests code
//! against. The implementation replaces every `todo!()`; the signatures may gain parameters only
//! in agreement with their callers.
//!
//! What it keeps: contacts (24-hour window), conversations, the inbox (unique provider message id),
//! the outbox (keyed by inbox row + sequence, with delivery status), transcript events, and Zoho
//! connections (encrypted at rest).

use chrono::{DateTime, Utc};
use flowbot_engine::{Contact, Conversation, Inbound, Outbound, TraceEvent};
use serde::{Deserialize, Serialize};

/// Errors of the store; messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("encryption key: {0}")]
    Key(String),
    #[error("the store is shut down")]
    Closed,
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `synchronous=FULL` instead of `NORMAL` (safe against power loss, slower).
    pub synchronous_full: bool,
    /// Reader connections.
    pub max_readers: u32,
    /// How many queued write requests one group commit may take.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { synchronous_full: false, max_readers: 4, max_batch: 512 }
    }
}

/// An inbound message to record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewInbound {
    /// "whatsapp".
    pub channel: String,
    /// The business number's id (WhatsApp `phone_number_id`), to reply from.
    pub business_id: String,
    pub contact: Contact,
    pub message: Inbound,
}

/// What happened to one inbound message at insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted(i64),
    Duplicate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    Pending,
    Processing,
    Done,
    Failed,
}

/// A stored inbound message.
#[derive(Clone, Debug)]
pub struct InboxRow {
    pub id: i64,
    pub channel: String,
    pub business_id: String,
    pub contact: Contact,
    pub message: Inbound,
    pub state: InboxState,
    pub attempts: u32,
    pub received_at: DateTime<Utc>,
}

/// Everything one turn changes, committed in one transaction.
#[derive(Clone, Debug)]
pub struct TurnCommit {
    pub inbox_id: i64,
    pub channel: String,
    pub business_id: String,
    pub contact: Contact,
    /// The new conversation state; `None` deletes it (the conversation ended).
    pub conversation: Option<Conversation>,
    pub outbound: Vec<Outbound>,
    pub trace: Vec<TraceEvent>,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Sent,
    /// Not sent and never will be (outside the 24-hour window, invalid, …).
    Failed,
    /// Kept for later (sending paused, e.g. expired access token).
    Held,
}

/// A stored outbound message.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: i64,
    pub inbox_id: i64,
    pub sequence: u32,
    pub channel: String,
    pub business_id: String,
    /// The recipient's phone.
    pub phone: String,
    pub message: Outbound,
    pub state: OutboxState,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    /// sent, delivered, read, failed — from status notifications.
    pub delivery_status: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One transcript line: inbound, outbound or trace.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TranscriptEvent {
    pub at: DateTime<Utc>,
    pub phone: String,
    pub inbox_id: Option<i64>,
    pub entry: TranscriptEntry,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TranscriptEntry {
    Inbound { message: Inbound, contact: Contact },
    Outbound { message: Outbound },
    Trace { event: TraceEvent },
}

/// A row of `flowbot conversations list`.
#[derive(Clone, Debug)]
pub struct ConversationSummary {
    pub channel: String,
    pub phone: String,
    pub name: Option<String>,
    pub flow: String,
    pub step: Option<String>,
    pub status: String,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A known contact.
#[derive(Clone, Debug)]
pub struct ContactRow {
    pub channel: String,
    pub phone: String,
    pub name: Option<String>,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

/// The SQLite store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {}

impl Store {
    /// Opens (creating when missing) the database at a file path or `sqlite://` URL and runs the
    /// embedded migrations.
    pub async fn open(_location: &str, _options: StoreOptions) -> Result<Store, StoreError> {
        todo!()
    }

    /// Records the messages of one webhook in one transaction (group-committed with others);
    /// a message whose provider id is already stored is a `Duplicate`.
    pub async fn insert_inbound(&self, _batch: Vec<NewInbound>) -> Result<Vec<InsertOutcome>, StoreError> {
        todo!()
    }

    /// Inbox rows not yet done (pending or processing), oldest message first — for start-up.
    pub async fn unfinished_inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        todo!()
    }

    /// Marks a row as being processed (attempts + 1).
    pub async fn mark_processing(&self, _inbox_id: i64) -> Result<(), StoreError> {
        todo!()
    }

    /// Marks a row as failed with a reason (after too many attempts).
    pub async fn mark_failed(&self, _inbox_id: i64, _error: &str) -> Result<(), StoreError> {
        todo!()
    }

    /// The contact's conversation, if any.
    pub async fn load_conversation(&self, _channel: &str, _phone: &str) -> Result<Option<Conversation>, StoreError> {
        todo!()
    }

    /// Commits a turn atomically: conversation, contact (last inbound time), outbox rows, transcript
    /// events (inbound, outbound, trace) and the inbox row's `done`. Returns the new outbox rows.
    pub async fn commit_turn(&self, _commit: TurnCommit) -> Result<Vec<OutboxRow>, StoreError> {
        todo!()
    }

    /// Outbox rows still to send (pending), oldest first — for start-up and the sender.
    pub async fn unsent_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        todo!()
    }

    pub async fn mark_sent(&self, _outbox_id: i64, _provider_message_id: &str) -> Result<(), StoreError> {
        todo!()
    }

    /// Records a failed send: `state` Failed (never retried), Held (kept for later) or Pending
    /// (to retry).
    pub async fn mark_send_error(&self, _outbox_id: i64, _state: OutboxState, _error: &str) -> Result<(), StoreError> {
        todo!()
    }

    /// Applies a status notification to the outbox row with that provider id; false when none.
    pub async fn record_delivery_status(
        &self,
        _provider_message_id: &str,
        _status: &str,
        _error: Option<&str>,
    ) -> Result<bool, StoreError> {
        todo!()
    }

    pub async fn contact(&self, _channel: &str, _phone: &str) -> Result<Option<ContactRow>, StoreError> {
        todo!()
    }

    pub async fn list_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        todo!()
    }

    /// Transcript of one contact, oldest first.
    pub async fn transcript(&self, _phone: &str, _since: Option<DateTime<Utc>>) -> Result<Vec<TranscriptEvent>, StoreError> {
        todo!()
    }

    /// Ends a handoff: the bot answers the contact again. False when there was none.
    pub async fn release_handoff(&self, _channel: &str, _phone: &str) -> Result<bool, StoreError> {
        todo!()
    }

    /// Deletes transcripts and done inbox rows older than `before` (dedupe keys are kept at least
    /// 7 days regardless). Returns rows deleted.
    pub async fn prune(&self, _before: DateTime<Utc>) -> Result<u64, StoreError> {
        todo!()
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        todo!()
    }

    /// The Zoho token store over this database (encrypted with `key`).
    pub fn token_store(&self, _key: EncryptionKey) -> SqliteTokenStore {
        todo!()
    }

    /// Waits for queued writes and closes.
    pub async fn close(&self) {
        todo!()
    }
}

/// The 32-byte key that encrypts tokens at rest.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl EncryptionKey {
    /// From `FLOWBOT_SECRET_KEY` (base64 or hex of 32 bytes, or any passphrase, hashed), else from
    /// the key file beside the database (created with owner-only permissions on first use).
    pub fn load(_env_value: Option<&str>, _database_location: &str) -> Result<EncryptionKey, StoreError> {
        todo!()
    }
}

/// Zoho connections in SQLite, tokens encrypted (implements `flowbot_zoho::TokenStore`).
#[derive(Clone, Debug)]
pub struct SqliteTokenStore {}
