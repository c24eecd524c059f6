//! The single writer task and its group commit.
//!
//! SQLite allows one writer at a time, so the store has exactly one: a tokio task that owns the
//! write connection and takes requests from a channel. A request is a closure that runs its
//! statements on that connection. The task takes everything queued (up to `max_batch`), opens one
//! `BEGIN IMMEDIATE` transaction, runs each request inside its own savepoint, commits once, and only
//! then answers each caller through a oneshot channel. Batching turns many small commits (each an
//! fsync-bound WAL write) into one; answering after the commit makes every acknowledged write
//! durable.
//!
//! A request that fails rolls back to its savepoint and gets its own error; the others in the batch
//! still commit. When the batch as a whole fails (the savepoint machinery or the commit itself), every
//! request of the batch gets that error and nothing of it is kept.
//!
//! The task does not know what the requests do: the SQL lives in the modules that own each table.

use std::future::Future;
use std::pin::Pin;

use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// A boxed future borrowing the write connection.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Handle to the writer task. Cheap to clone; the task ends when every handle is dropped or after
/// [`Writer::shutdown`].
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
    /// Starts the writer task over `pool` (a pool of one connection).
    pub(crate) fn spawn(pool: SqlitePool, max_batch: usize) -> Writer {
        let max_batch = max_batch.max(1);
        // Room for a few batches: enough that callers rarely wait to enqueue, bounded so that a
        // stalled disk pushes back on the webhook instead of growing memory.
        let (sender, receiver) = mpsc::channel(max_batch.saturating_mul(4).max(64));
        tokio::spawn(run(pool, receiver, max_batch));
        Writer { sender }
    }

    /// Runs `write` on the write connection inside its own savepoint, in the next group commit, and
    /// returns its result once the batch committed.
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
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
            // An error means the task ended anyway.
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
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;
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
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let result = match self.write.take() {
                Some(write) => write(conn).await,
                None => Err(StoreError::Database("a write request ran twice".into())),
            };
            let succeeded = result.is_ok();
            self.result = Some(result);
            succeeded
        })
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

async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<Message>, max_batch: usize) {
    let mut messages = Vec::with_capacity(max_batch);
    let mut shutdown_waiters = Vec::new();
    loop {
        if receiver.recv_many(&mut messages, max_batch).await == 0 {
            // Every handle dropped, or shut down and drained.
            break;
        }
        let mut jobs = Vec::with_capacity(messages.len());
        for message in messages.drain(..) {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Shutdown(waiter) => {
                    // Refuse new requests; the ones already queued are still run.
                    receiver.close();
                    shutdown_waiters.push(waiter);
                }
            }
        }
        if !jobs.is_empty() {
            run_batch(&pool, jobs).await;
        }
    }
    pool.close().await;
    for waiter in shutdown_waiters {
        let _ = waiter.send(());
    }
}

/// Runs one group commit and answers every request of it.
async fn run_batch(pool: &SqlitePool, mut jobs: Vec<Box<dyn Job>>) {
    let batch_error = match pool.acquire().await {
        Ok(mut conn) => {
            let result = execute(&mut conn, &mut jobs).await;
            if let Err(error) = &result {
                tracing::error!(%error, requests = jobs.len(), "a group commit failed; its requests are answered with the error");
                // The connection's transaction state is unknown after a failure in the savepoint
                // machinery; a fresh connection is cheaper than finding out.
                conn.close_on_drop();
            }
            result.err()
        }
        Err(error) => Some(StoreError::from(error)),
    };
    for job in jobs {
        job.answer(batch_error.as_ref());
    }
}

async fn execute(conn: &mut SqliteConnection, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock now (waiting up to busy_timeout for another process), so no
    // statement inside can fail with SQLITE_BUSY half-way through the batch. Dropping the
    // transaction unfinished (an error below, or the task cancelled) rolls it back.
    let mut transaction = conn.begin_with("BEGIN IMMEDIATE").await?;
    if let [job] = jobs {
        // Alone in its batch, a request needs no savepoint: the transaction is one.
        if job.run(&mut transaction).await {
            transaction.commit().await?;
        } else {
            transaction.rollback().await?;
        }
        return Ok(());
    }
    // Savepoints are opened and closed with plain SQL, each close sent together with the next
    // open, because every call is a round trip to the database thread. After a failed request,
    // ROLLBACK TO fails with "no such savepoint" when SQLite already rolled back the whole
    // transaction (I/O error, disk full): the batch is then abandoned instead of committing the
    // requests that follow on their own.
    sqlx::query("SAVEPOINT request")
        .execute(&mut *transaction)
        .await?;
    let last = jobs.len() - 1;
    for (index, job) in jobs.iter_mut().enumerate() {
        let succeeded = job.run(&mut transaction).await;
        let close = match (succeeded, index == last) {
            (true, false) => "RELEASE request; SAVEPOINT request",
            (true, true) => "RELEASE request",
            (false, false) => "ROLLBACK TO request; RELEASE request; SAVEPOINT request",
            (false, true) => "ROLLBACK TO request; RELEASE request",
        };
        sqlx::query(close).execute(&mut *transaction).await?;
    }
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory_pool() -> SqlitePool {
        let options: sqlx::sqlite::SqliteConnectOptions = match "sqlite::memory:".parse() {
            Ok(options) => options,
            Err(error) => panic!("in-memory options: {error}"),
        };
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("in-memory pool");
        sqlx::query("CREATE TABLE numbers (n INTEGER NOT NULL CHECK (n >= 0))")
            .execute(&pool)
            .await
            .expect("create table");
        pool
    }

    fn job<T, F>(write: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            write: Some(write),
            result: None,
            reply,
        });
        (job, answer)
    }

    fn insert(n: i64) -> (Box<dyn Job>, oneshot::Receiver<Result<u64, StoreError>>) {
        job(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("INSERT INTO numbers (n) VALUES (?)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            })
        })
    }

    /// One batch of three requests where the middle one violates a constraint: it alone fails, the
    /// other two commit.
    #[tokio::test]
    async fn a_failing_request_rolls_back_alone_in_its_batch() {
        let pool = memory_pool().await;
        let (first, first_answer) = insert(1);
        let (failing, failing_answer) = insert(-1);
        let (last, last_answer) = insert(3);
        run_batch(&pool, vec![first, failing, last]).await;

        assert_eq!(first_answer.await.expect("answered"), Ok(1));
        let failure = failing_answer
            .await
            .expect("answered")
            .expect_err("check constraint");
        assert!(
            failure.to_string().contains("CHECK constraint failed"),
            "{failure}"
        );
        assert_eq!(last_answer.await.expect("answered"), Ok(1));

        let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM numbers ORDER BY n")
            .fetch_all(&pool)
            .await
            .expect("select");
        assert_eq!(stored, vec![1, 3]);
    }
}
