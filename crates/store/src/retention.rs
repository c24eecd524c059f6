//! Retention: deleting transcript events older than a cut-off, and finished (done or failed) inbox
//! rows older than the cut-off but never younger than seven days, because an inbox row is also the
//! dedupe key of a provider message id and providers redeliver for days. Outbox rows go with their
//! inbox row (`ON DELETE CASCADE`). Work is done in chunks, each its own write, so a large prune
//! never keeps the writer from the webhook for long. Calling it periodically is the server's job.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection};

use crate::codec::time_text;
use crate::{transcript, StoreError};

/// How long an inbox row (a dedupe key) is kept at least.
pub(crate) const DEDUPE_KEEP_DAYS: i64 = 7;

/// Rows per table and chunk.
const CHUNK: i64 = 2_000;

/// The two cut-offs of one prune.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cutoffs {
    transcript_before: DateTime<Utc>,
    inbox_before: DateTime<Utc>,
}

impl Cutoffs {
    pub(crate) fn new(before: DateTime<Utc>, now: DateTime<Utc>) -> Cutoffs {
        Cutoffs {
            transcript_before: before,
            inbox_before: before.min(now - Duration::days(DEDUPE_KEEP_DAYS)),
        }
    }
}

pub(crate) struct Chunk {
    pub(crate) deleted: u64,
    /// Nothing older is left.
    pub(crate) finished: bool,
}

pub(crate) fn prune_chunk(conn: &Connection, cutoffs: Cutoffs) -> Result<Chunk, StoreError> {
    let transcript = transcript::prune_chunk(conn, &time_text(cutoffs.transcript_before), CHUNK)?;
    let inbox_deleted = conn
        .prepare_cached(
            "DELETE FROM inbox WHERE id IN (
             SELECT id FROM inbox WHERE received_at < ? AND state IN ('done', 'failed') LIMIT ?)",
        )?
        .execute(params![time_text(cutoffs.inbox_before), CHUNK])? as u64;
    let limit = CHUNK.unsigned_abs();
    Ok(Chunk {
        deleted: transcript.events + inbox_deleted,
        finished: transcript.rows < limit && inbox_deleted < limit,
    })
}
