//! SQLite storage for flowbot: the only crate that holds SQL. Reads and migrations go through
//! sqlx; writes through rusqlite on the writer thread (see `writer` for why).
//!
//! What it keeps: contacts (24-hour window), conversations, the inbox (unique provider message id),
//! the outbox (keyed by inbox row + sequence, with delivery status), transcript events, and Zoho
//! connections (encrypted at rest). What it does not do: decide anything. Retries, attempt limits,
//! the 24-hour window check and the periodic `prune` belong to the server; the store records.
//!
//! The runtime model (see `docs/` and the design): **one writer, group commit**. Every write goes to
//! a single thread that owns the write connection. It takes whatever requests have queued (up to
//! `max_batch`), runs them in one `BEGIN IMMEDIATE` transaction with a savepoint per request, commits
//! once and only then answers each caller. So a write that returned `Ok` is durable, a failing
//! request rolls back alone, and concurrent writers never see `database is locked`. Reads use a
//! separate pool of connections (WAL lets them run beside the writer).
//!
//! Invariants:
//! - `insert_inbound` returns only after its batch committed: an acknowledged webhook is on disk.
//! - `commit_turn` is all or nothing: conversation, contact, outbox rows, transcript and the inbox
//!   row's `done` are one savepoint. A message whose turn committed is never returned by
//!   `unfinished_inbox` again; an outbox row marked sent is never returned by `unsent_outbox`.
//! - No error message holds a token or a key.
//!
//! Modules, one job each:
//! - `open`: database locations, connection pragmas, pools and the embedded migrations.
//! - `writer`: the single writer thread and its group commit.
//! - `checkpoint`: WAL checkpoints on a thread of their own, off the writer's path.
//! - `codec`: how values become columns (timestamps, JSON, enum names).
//! - `inbox`: recording inbound messages, their states, start-up recovery.
//! - `turn`: the all-or-nothing commit of one turn.
//! - `conversations`: conversation state, the list of conversations, handoff release.
//! - `contacts`: contacts and their last inbound time.
//! - `outbox`: outbound rows, send results and delivery statuses.
//! - `transcript`: transcript events.
//! - `retention`: pruning old transcripts and dedupe keys.
//! - `key`: the encryption key (environment or key file) and sealing.
//! - `tokens`: [`SqliteTokenStore`], the encrypted Zoho token store with its refresh lease.

mod checkpoint;
mod codec;
mod contacts;
mod conversations;
mod inbox;
mod key;
mod open;
mod outbox;
mod retention;
mod tokens;
mod transcript;
mod turn;
mod writer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use flowbot_engine::{Contact, Conversation, Inbound, Outbound, TraceEvent};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

pub use key::EncryptionKey;
pub use open::{Location, DEFAULT_LOCATION};
pub use tokens::SqliteTokenStore;

use writer::Writer;

/// Errors of the store; messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("encryption key: {0}")]
    Key(String),
    #[error("the store is shut down")]
    Closed,
    /// The row a write names does not exist (an inbox or outbox id).
    #[error("{0}")]
    NotFound(String),
    /// The row is past the state the write needs (an inbox row already done or failed, an outbox
    /// row already sent); retrying will not help.
    #[error("{0}")]
    Conflict(String),
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
        StoreOptions {
            synchronous_full: false,
            max_readers: 4,
            max_batch: 512,
        }
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
    /// When a send attempt first started ([`Store::mark_send_started`]). On a row still pending or
    /// held it means Graph may have accepted the message already: see [`OutboxRow::is_uncertain`].
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// The time of the inbound message this row answers, on rows just returned by
    /// [`Store::commit_turn`] (`None` on rows read back). The contact's 24-hour window is open at
    /// least until a day after it, so a sender can skip reading the contact.
    pub answers_message_at: Option<DateTime<Utc>>,
}

impl OutboxRow {
    /// A send was attempted but not confirmed: the row is pending or held and an attempt started
    /// (Graph may have accepted it before a crash). A status webhook echoing the row's callback
    /// data confirms it ([`Store::confirm_sent`]).
    pub fn is_uncertain(&self) -> bool {
        self.attempt_started_at.is_some()
            && matches!(self.state, OutboxState::Pending | OutboxState::Held)
    }
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

/// The SQLite store. Cheap to clone: clones share the reader pool and the writer thread.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    location: Location,
    readers: SqlitePool,
    writer: Writer,
    /// SQLite opened the file read-only (no write permission on it or its folder).
    read_only: bool,
}

impl Store {
    /// Opens (creating when missing) the database at a file path or `sqlite://` URL and runs the
    /// embedded migrations.
    pub async fn open(location: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let location = Location::parse(location)?;
        let opened = open::open(&location, &options).await?;
        let read_only = opened
            .writer
            .is_readonly(rusqlite::DatabaseName::Main)
            .unwrap_or(false);
        let writer = Writer::spawn(
            opened.writer,
            opened.checkpointer,
            opened.temporary,
            options.max_batch,
        )?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                location,
                readers: opened.readers,
                writer,
                read_only,
            }),
        })
    }

    /// Where the database lives.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// True when SQLite could open the file for reading only (its permissions, or its folder's):
    /// every write would fail. Commands that only read can still use it; a server cannot.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Records the messages of one webhook in one transaction (group-committed with others);
    /// a message whose provider id is already stored is a `Duplicate`.
    pub async fn insert_inbound(
        &self,
        batch: Vec<NewInbound>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Encoding happens here, in the caller's task, so the single writer only binds values.
        let encoded = batch
            .iter()
            .map(inbox::EncodedInbound::new)
            .collect::<Result<Vec<_>, _>>()?;
        let received_at = Utc::now();
        self.inner
            .writer
            .write(move |conn| inbox::insert(conn, &encoded, received_at))
            .await
    }

    /// Inbox rows not yet done (pending or processing), oldest message first — for start-up.
    pub async fn unfinished_inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        inbox::unfinished(&self.inner.readers).await
    }

    /// Marks a row as being processed (attempts + 1). An error when the row is missing or already
    /// done or failed (it must not run again).
    pub async fn mark_processing(&self, inbox_id: i64) -> Result<(), StoreError> {
        let now = Utc::now();
        self.inner
            .writer
            .write(move |conn| inbox::mark_processing(conn, inbox_id, now))
            .await
    }

    /// Marks a row as failed with a reason (after too many attempts). An error when the row is
    /// missing or already finished.
    pub async fn mark_failed(&self, inbox_id: i64, error: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        let error = error.to_owned();
        self.inner
            .writer
            .write(move |conn| inbox::mark_failed(conn, inbox_id, &error, now))
            .await
    }

    /// The contact's conversation, if any.
    pub async fn load_conversation(
        &self,
        channel: &str,
        phone: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        conversations::load(&self.inner.readers, channel, phone).await
    }

    /// Commits a turn atomically: conversation, contact (last inbound time), outbox rows, transcript
    /// events (inbound, outbound, trace) and the inbox row's `done`. Returns the new outbox rows.
    /// Refused, with nothing written, when the inbox row is missing or already finished: a
    /// message never produces its replies twice.
    pub async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<OutboxRow>, StoreError> {
        let encoded = turn::EncodedTurn::new(commit)?;
        self.inner
            .writer
            .write(move |conn| turn::commit_turn(conn, &encoded))
            .await
    }

    /// Outbox rows still to send (pending, and held ones kept for later), oldest first — for
    /// start-up and the sender. Rows whose send was attempted but not confirmed carry
    /// `attempt_started_at` ([`OutboxRow::is_uncertain`]): Graph may have them already.
    pub async fn unsent_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        outbox::unsent(&self.inner.readers).await
    }

    /// One outbox row, in whatever state it is; `None` when there is no such row.
    pub async fn outbox_row(&self, outbox_id: i64) -> Result<Option<OutboxRow>, StoreError> {
        outbox::load(&self.inner.readers, outbox_id).await
    }

    /// Records, before the HTTP call, that a send attempt of a pending or held row starts (the
    /// first attempt's time is kept). Committed when this returns, so after a crash the row is
    /// known to be uncertain. `NotFound` when there is no such row; `Conflict` when it is no
    /// longer pending or held (already sent or failed: it must not be sent).
    pub async fn mark_send_started(&self, outbox_id: i64) -> Result<(), StoreError> {
        let now = Utc::now();
        self.inner
            .writer
            .write(move |conn| outbox::mark_send_started(conn, outbox_id, now))
            .await
    }

    /// A status webhook named this row (by the callback data its send carried): Graph accepted it
    /// as `provider_message_id`. A pending or held row becomes sent with that id (true); a row
    /// already sent or failed is left as it is (false). `NotFound` when there is no such row.
    pub async fn confirm_sent(
        &self,
        outbox_id: i64,
        provider_message_id: &str,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let provider_message_id = provider_message_id.to_owned();
        self.inner
            .writer
            .write(move |conn| outbox::confirm_sent(conn, outbox_id, &provider_message_id, now))
            .await
    }

    /// Records a successful send and the provider's message id (for status notifications).
    pub async fn mark_sent(
        &self,
        outbox_id: i64,
        provider_message_id: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let provider_message_id = provider_message_id.to_owned();
        self.inner
            .writer
            .write(move |conn| outbox::mark_sent(conn, outbox_id, &provider_message_id, now))
            .await
    }

    /// Records a failed send: `state` Failed (never retried), Held (kept for later) or Pending
    /// (to retry). Attempts + 1. A row already sent stays sent and this is an error.
    pub async fn mark_send_error(
        &self,
        outbox_id: i64,
        state: OutboxState,
        error: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let error = error.to_owned();
        self.inner
            .writer
            .write(move |conn| outbox::mark_send_error(conn, outbox_id, state, &error, now))
            .await
    }

    /// Applies a status notification to the outbox row with that provider id; false when none
    /// (true also when the row keeps a further-along status).
    /// Statuses only move forward (sent < delivered < read; failed wins), so a late `delivered`
    /// never hides a `read`.
    pub async fn record_delivery_status(
        &self,
        provider_message_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let provider_message_id = provider_message_id.to_owned();
        let status = status.to_owned();
        let error = error.map(str::to_owned);
        self.inner
            .writer
            .write(move |conn| {
                outbox::record_delivery_status(
                    conn,
                    &provider_message_id,
                    &status,
                    error.as_deref(),
                    now,
                )
            })
            .await
    }

    pub async fn contact(
        &self,
        channel: &str,
        phone: &str,
    ) -> Result<Option<ContactRow>, StoreError> {
        contacts::load(&self.inner.readers, channel, phone).await
    }

    /// All conversations, most recently updated first.
    pub async fn list_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        conversations::list(&self.inner.readers).await
    }

    /// Transcript of one contact, oldest first.
    pub async fn transcript(
        &self,
        phone: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TranscriptEvent>, StoreError> {
        transcript::read(&self.inner.readers, phone, since).await
    }

    /// Ends a handoff: the bot answers the contact again. False when there was none. The
    /// conversation is deleted, so the contact's next message starts a flow afresh.
    pub async fn release_handoff(&self, channel: &str, phone: &str) -> Result<bool, StoreError> {
        let channel = channel.to_owned();
        let phone = phone.to_owned();
        self.inner
            .writer
            .write(move |conn| conversations::release_handoff(conn, &channel, &phone))
            .await
    }

    /// Deletes transcripts and done inbox rows older than `before` (dedupe keys are kept at least
    /// 7 days regardless). Returns rows deleted: transcript events plus inbox rows (the outbox
    /// rows of deleted inbox rows go with them and are not counted). Unfinished rows are kept.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.prune_at(before, Utc::now()).await
    }

    /// [`Store::prune`] with the current time given, so retention can be tested without waiting a
    /// week. Deletes in chunks, each its own write, so a large prune never holds up the webhook.
    pub async fn prune_at(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let cutoffs = retention::Cutoffs::new(before, now);
        let mut deleted = 0;
        loop {
            let chunk = self
                .inner
                .writer
                .write(move |conn| retention::prune_chunk(conn, cutoffs))
                .await?;
            deleted += chunk.deleted;
            if chunk.finished {
                return Ok(deleted);
            }
        }
    }

    /// True when the database answers and the writer is running.
    pub async fn ping(&self) -> bool {
        if !self.inner.writer.is_running() {
            return false;
        }
        sqlx::query("SELECT 1")
            .execute(&self.inner.readers)
            .await
            .is_ok()
    }

    /// The Zoho token store over this database (encrypted with `key`).
    pub fn token_store(&self, key: EncryptionKey) -> SqliteTokenStore {
        SqliteTokenStore::new(self.clone(), key)
    }

    /// Waits for queued writes and closes. Later calls fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.inner.writer.shutdown().await;
        self.inner.readers.close().await;
    }

    pub(crate) fn readers(&self) -> &SqlitePool {
        &self.inner.readers
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolClosed => StoreError::Closed,
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migrating the database: {error}"))
    }
}
