//! WAL checkpoints, off the writer's path.
//!
//! In WAL mode every commit appends pages to the `-wal` file, and a checkpoint copies them back
//! into the database file (with an fsync). By default SQLite runs it inside the commit that makes
//! the WAL pass 1,000 pages, on the writer's connection: every group commit waiting behind it. The
//! store instead turns automatic checkpoints off on the write connection and runs passive
//! checkpoints on a connection of their own, on this thread, when the writer says enough commits
//! went by. A passive checkpoint never blocks the writer or a reader.
//!
//! The WAL file starts over from its beginning only when a write transaction begins with every
//! frame copied back, which a checkpoint running beside a busy writer never achieves: the writer
//! appends while it copies. So after each background checkpoint the writer runs one more passive
//! checkpoint itself, between two group commits, which only has the few frames committed meanwhile
//! left to copy; the WAL then stays the size of a few dozen commits instead of growing for as long
//! as the load lasts.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StoreError;

/// Commits between two checkpoints (a one-turn commit writes a few dozen pages).
const COMMITS_PER_CHECKPOINT: u32 = 64;
/// At most this long between a commit and the checkpoint that copies it back.
const MAX_INTERVAL: Duration = Duration::from_millis(500);

/// The writer's handle to the checkpoint thread; the thread ends when this is dropped.
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
    /// Background checkpoints finished so far, and how many of them the writer has followed up.
    finished: Arc<AtomicU64>,
    followed: u64,
    commits: u32,
    last: Instant,
}

impl Checkpointer {
    /// Opens a connection to the database at `path` and starts the thread.
    pub(crate) fn spawn(path: &Path, busy_timeout: Duration) -> Result<Checkpointer, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        let (nudge, nudged) = sync_channel::<()>(1);
        let finished = Arc::new(AtomicU64::new(0));
        let finished_here = finished.clone();
        let thread = std::thread::Builder::new()
            .name("flowbot-store-checkpoint".into())
            .spawn(move || {
                while nudged.recv().is_ok() {
                    // (busy, WAL pages, pages checkpointed): only an error is of interest.
                    let checkpoint =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = checkpoint {
                        tracing::warn!(%error, "a WAL checkpoint failed; the next one retries");
                    }
                    finished_here.fetch_add(1, Ordering::Release);
                }
            })
            .map_err(|error| {
                StoreError::Database(format!("cannot start the checkpoint thread: {error}"))
            })?;
        Ok(Checkpointer {
            nudge,
            thread,
            finished,
            followed: 0,
            commits: 0,
            last: Instant::now(),
        })
    }

    /// Called by the writer after each group commit, with its connection (no transaction open).
    pub(crate) fn committed(&mut self, conn: &rusqlite::Connection) {
        let finished = self.finished.load(Ordering::Acquire);
        if finished != self.followed {
            // (busy, frames in the WAL, frames checkpointed). Busy: the background thread is
            // already running the next checkpoint; try again after the next commit, or the WAL
            // might never start over on a disk slow enough that checkpoints always overlap.
            let tail = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(0)
            });
            match tail {
                Ok(0) => self.followed = finished,
                Ok(_) => {}
                Err(error) => {
                    self.followed = finished;
                    tracing::warn!(%error, "a WAL checkpoint failed; the next one retries");
                }
            }
        }
        self.commits += 1;
        if self.commits >= COMMITS_PER_CHECKPOINT || self.last.elapsed() >= MAX_INTERVAL {
            // Full means a checkpoint is already due: it will copy these pages too.
            let _ = self.nudge.try_send(());
            self.commits = 0;
            self.last = Instant::now();
        }
    }

    /// Ends the thread after the checkpoint it may be running, and waits for it.
    pub(crate) fn stop(self) {
        drop(self.nudge);
        if self.thread.join().is_err() {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}
