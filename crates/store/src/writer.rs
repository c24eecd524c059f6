//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, so the store has exactly one: an OS thread that owns the
//! write connection and takes requests from a channel. A request is a closure that runs its
//! statements on that connection. The thread takes everything queued (up to `max_batch`), opens one
//! `BEGIN IMMEDIATE` transaction, runs each request inside its own savepoint, commits once, and only
//! then answers each caller through a oneshot channel. Batching turns many small commits (each a
//! WAL write) into one; answering after the commit makes every acknowledged write durable.
//!
//! The connection is driven synchronously (rusqlite) on this one thread, so a whole group commit is
//! one hand-off between the caller's task and the database, not one per statement: with sqlx's
//! asynchronous driver every statement was a channel send and a thread wake-up, and those
//! hand-offs were most of the store's cost (docs/BENCHMARKS.md). Reads stay on sqlx's pool. WAL
//! checkpoints are not run here but by the [`Checkpointer`](crate::checkpoint::Checkpointer),
//! which the writer nudges after commits.
//!
//! A request that fails rolls back to its savepoint and gets its own error; the others in the batch
//! still commit. When the batch as a whole fails (the savepoint machinery or the commit itself), every
//! request of the batch gets that error and nothing of it is kept.
//!
//! The thread does not know what the requests do: the SQL lives in the modules that own each table.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::Checkpointer;
use crate::StoreError;

/// Handle to the writer thread. Cheap to clone; the thread ends when every handle is dropped or
/// after [`Writer::shutdown`].
#[derive(Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("running", &self.is_running())
            .finish()
    }
}

enum Message {
    Write(Box<dyn Job>),
    Shutdown(oneshot::Sender<()>),
}

impl Writer {
    /// Starts the writer thread over `conn`, the write connection; `checkpointer` is told about
    /// commits and stopped before the connection closes.
    /// `temporary` (the folder of a `sqlite::memory:` database) is removed once the thread has
    /// closed its connection.
    pub(crate) fn spawn(
        conn: Connection,
        checkpointer: Checkpointer,
        temporary: Option<tempfile::TempDir>,
        max_batch: usize,
    ) -> Result<Writer, StoreError> {
        let max_batch = max_batch.max(1);
        // Room for a few batches: enough that callers rarely wait to enqueue, bounded so that a
        // stalled disk pushes back on the webhook instead of growing memory.
        let (sender, receiver) = mpsc::channel(max_batch.saturating_mul(4).max(64));
        std::thread::Builder::new()
            .name("flowbot-store-writer".into())
            .spawn(move || {
                run(conn, checkpointer, receiver, max_batch);
                drop(temporary);
            })
            .map_err(|error| {
                StoreError::Database(format!("cannot start the writer thread: {error}"))
            })?;
        Ok(Writer { sender })
    }

    /// Runs `write` on the write connection inside its own savepoint, in the next group commit, and
    /// returns its result once the batch committed. `write` runs on the writer thread: it must do
    /// database work only (encode values before calling).
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            write: Some(write),
            result: None,
            reply,
        });
        self.sender
            .send(Message::Write(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Lets the writer finish everything already queued, then stops it and closes its connection.
    pub(crate) async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.sender.send(Message::Shutdown(done)).await.is_ok() {
            // An error means the thread ended anyway.
            let _ = finished.await;
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }
}

/// One queued write: runs on the connection, keeps its result, answers after the commit.
trait Job: Send {
    /// Runs the write; true when it succeeded (its savepoint is then released, else rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller. `batch_error` is set when the batch as a whole did not commit.
    fn answer(self: Box<Self>, batch_error: Option<&StoreError>);
}

struct TypedJob<T, F> {
    write: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = match self.write.take() {
            // A panicking request must not take the writer thread (and every later write) with it.
            Some(write) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(conn)))
                .unwrap_or_else(|_| Err(StoreError::Database("a write request panicked".into()))),
            None => Err(StoreError::Database("a write request ran twice".into())),
        };
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, batch_error: Option<&StoreError>) {
        let outcome = match (self.result, batch_error) {
            // A request's own error is the more precise one, whatever happened to the batch.
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(error)) => Err(error.clone()),
            (None, None) => Err(StoreError::Database("the write request was not run".into())),
        };
        // The caller may have gone away (a cancelled request); its write stands regardless.
        let _ = self.reply.send(outcome);
    }
}

fn run(
    conn: Connection,
    mut checkpointer: Checkpointer,
    mut receiver: mpsc::Receiver<Message>,
    max_batch: usize,
) {
    let mut shutdown_waiters = Vec::new();
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    // Blocks for the first message of a batch, then takes whatever else is queued.
    while let Some(first) = receiver.blocking_recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Shutdown(waiter) => {
                    // Refuse new requests; the ones already queued are still run.
                    receiver.close();
                    shutdown_waiters.push(waiter);
                }
            }
            if jobs.len() < max_batch {
                next = receiver.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            run_batch(&conn, &mut jobs);
            // Never inside a transaction (one a failed batch could not end).
            if conn.is_autocommit() {
                checkpointer.committed(&conn);
            }
        }
    }
    // The checkpoint thread ends first (after the checkpoint it may be running), then the write
    // connection closes; SQLite checkpoints the WAL when the last connection to the file closes.
    checkpointer.stop();
    if let Err((_, error)) = conn.close() {
        tracing::warn!(%error, "closing the write connection");
    }
    for waiter in shutdown_waiters {
        let _ = waiter.send(());
    }
}

/// Runs one group commit and answers every request of it (draining `jobs`).
fn run_batch(conn: &Connection, jobs: &mut Vec<Box<dyn Job>>) {
    let result = execute(conn, jobs);
    if let Err(error) = &result {
        tracing::error!(%error, requests = jobs.len(), "a group commit failed; its requests are answered with the error");
        // Whatever is left of the transaction goes; an error here means there was none.
        let _ = conn.execute_batch("ROLLBACK");
    }
    let batch_error = result.err();
    for job in jobs.drain(..) {
        job.answer(batch_error.as_ref());
    }
}

fn execute(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        // A failed batch whose ROLLBACK failed too left its transaction open; end it now, or every
        // later BEGIN would fail.
        tracing::error!("the write connection was left inside a transaction; rolling it back");
        control(conn, "ROLLBACK")?;
    }
    // IMMEDIATE takes the write lock now (waiting up to busy_timeout for another process), so no
    // statement inside can fail with SQLITE_BUSY half-way through the batch.
    control(conn, "BEGIN IMMEDIATE")?;
    if let [job] = jobs {
        // Alone in its batch, a request needs no savepoint: the transaction is one.
        control(conn, if job.run(conn) { "COMMIT" } else { "ROLLBACK" })?;
        return Ok(());
    }
    // After a failed request, ROLLBACK TO fails with "no such savepoint" when SQLite already rolled
    // back the whole transaction (I/O error, disk full): the batch is then abandoned instead of
    // committing the requests that follow on their own.
    for job in jobs.iter_mut() {
        control(conn, "SAVEPOINT request")?;
        if !job.run(conn) {
            control(conn, "ROLLBACK TO request")?;
        }
        control(conn, "RELEASE request")?;
    }
    control(conn, "COMMIT")?;
    Ok(())
}

/// Runs a transaction or savepoint statement, prepared once (four of them per request otherwise
/// parsed again every time).
fn control(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_connection() -> Connection {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch("CREATE TABLE numbers (n INTEGER NOT NULL CHECK (n >= 0))")
            .expect("create table");
        conn
    }

    fn insert(n: i64) -> (Box<dyn Job>, oneshot::Receiver<Result<usize, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let write =
            move |conn: &Connection| Ok(conn.execute("INSERT INTO numbers (n) VALUES (?)", [n])?);
        let job = Box::new(TypedJob {
            write: Some(write),
            result: None,
            reply,
        });
        (job, answer)
    }

    fn stored(conn: &Connection) -> Vec<i64> {
        let mut select = conn
            .prepare("SELECT n FROM numbers ORDER BY n")
            .expect("prepare");
        let rows = select.query_map([], |row| row.get(0)).expect("select");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    /// One batch of three requests where the middle one violates a constraint: it alone fails, the
    /// other two commit.
    #[test]
    fn a_failing_request_rolls_back_alone_in_its_batch() {
        let conn = memory_connection();
        let (first, mut first_answer) = insert(1);
        let (failing, mut failing_answer) = insert(-1);
        let (last, mut last_answer) = insert(3);
        run_batch(&conn, &mut vec![first, failing, last]);

        assert_eq!(first_answer.try_recv().expect("answered"), Ok(1));
        let failure = failing_answer
            .try_recv()
            .expect("answered")
            .expect_err("check constraint");
        assert!(
            failure.to_string().contains("CHECK constraint failed"),
            "{failure}"
        );
        assert_eq!(last_answer.try_recv().expect("answered"), Ok(1));
        assert_eq!(stored(&conn), vec![1, 3]);
    }

    /// A request alone in its batch that fails leaves nothing behind and the connection usable.
    #[test]
    fn a_lone_failing_request_rolls_back_and_the_next_batch_commits() {
        let conn = memory_connection();
        let (failing, mut failing_answer) = insert(-1);
        run_batch(&conn, &mut vec![failing]);
        assert!(failing_answer.try_recv().expect("answered").is_err());
        let (next, mut next_answer) = insert(2);
        run_batch(&conn, &mut vec![next]);
        assert_eq!(next_answer.try_recv().expect("answered"), Ok(1));
        assert_eq!(stored(&conn), vec![2]);
    }

    /// A transaction left open on the connection (a failed batch whose ROLLBACK failed too) is
    /// ended before the next batch, instead of making every later BEGIN fail.
    #[test]
    fn a_transaction_left_open_is_ended_before_the_next_batch() {
        let conn = memory_connection();
        conn.execute_batch("BEGIN; INSERT INTO numbers (n) VALUES (7)")
            .expect("an open transaction");
        let (next, mut next_answer) = insert(2);
        run_batch(&conn, &mut vec![next]);
        assert_eq!(next_answer.try_recv().expect("answered"), Ok(1));
        assert!(conn.is_autocommit());
        assert_eq!(
            stored(&conn),
            vec![2],
            "the stray transaction's insert was rolled back"
        );
    }

    /// A request that panics gets an error; the batch and the thread go on.
    #[test]
    fn a_panicking_request_fails_alone() {
        let conn = memory_connection();
        let (first, mut first_answer) = insert(1);
        let (reply, mut panicked_answer) = oneshot::channel::<Result<usize, StoreError>>();
        let panicking = Box::new(TypedJob {
            write: Some(|_: &Connection| -> Result<usize, StoreError> { panic!("a bug") }),
            result: None,
            reply,
        });
        run_batch(&conn, &mut vec![first, panicking]);
        assert_eq!(first_answer.try_recv().expect("answered"), Ok(1));
        assert!(panicked_answer.try_recv().expect("answered").is_err());
        assert_eq!(stored(&conn), vec![1]);
    }
}
