//! Opening the database: where it is ([`Location`]: a file path or a `sqlite:` URL), how each
//! connection is set up (WAL, `synchronous`, busy timeout, foreign keys), the write connection (one,
//! driven by the writer thread), the reader pool and the embedded migrations.
//!
//! A new database file is created with owner-only permissions (0600 on unix) before SQLite opens
//! it; SQLite gives its `-wal` and `-shm` files the same permissions.
//!
//! An in-memory database (`sqlite::memory:`) is a private temporary file instead, removed when the
//! writer thread ends (on close, or once every handle to the store is dropped): SQLite's in-memory
//! databases belong to one connection, and the store needs a write connection and readers that see
//! the same data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::checkpoint::Checkpointer;
use crate::{StoreError, StoreOptions};

/// The database `flowbot serve` uses when none is configured: `flowbot.db` in the working folder.
pub const DEFAULT_LOCATION: &str = "flowbot.db";

/// How long a connection waits for a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations in the workspace's top-level `migrations/`, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Memory,
}

impl Location {
    /// Accepts a plain path (`flowbot.db`, `/var/lib/flowbot/flowbot.db`), `sqlite://path`,
    /// `sqlite:path`, `sqlite:///absolute/path` and `sqlite::memory:` (or `:memory:`). An empty
    /// string means [`DEFAULT_LOCATION`]. A URL's query (`?mode=rwc`) is ignored: the store always
    /// creates a missing file and always sets its own pragmas.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Location::File(PathBuf::from(DEFAULT_LOCATION)));
        }
        let path = match text.strip_prefix("sqlite:") {
            Some(rest) => {
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                rest.split_once('?').map_or(rest, |(path, _query)| path)
            }
            None => text,
        };
        if path == ":memory:" {
            return Ok(Location::Memory);
        }
        if path.is_empty() {
            return Err(StoreError::Database(format!(
                "the database location {text:?} names no file: give a path such as flowbot.db or sqlite://flowbot.db"
            )));
        }
        Ok(Location::File(PathBuf::from(path)))
    }

    /// The database file, unless in memory.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Memory => f.write_str("sqlite::memory:"),
        }
    }
}

/// The open database: the write connection for the writer thread, the reader pool, and for
/// `sqlite::memory:` the temporary folder holding the file (the writer thread removes it).
pub(crate) struct Opened {
    pub(crate) writer: rusqlite::Connection,
    pub(crate) checkpointer: Checkpointer,
    pub(crate) readers: SqlitePool,
    pub(crate) temporary: Option<tempfile::TempDir>,
}

pub(crate) async fn open(
    location: &Location,
    options: &StoreOptions,
) -> Result<Opened, StoreError> {
    let (path, temporary) = match location {
        Location::File(path) => (path.clone(), None),
        Location::Memory => {
            let folder = tempfile::Builder::new()
                .prefix("flowbot-memory-")
                .tempdir()
                .map_err(|error| {
                    StoreError::Database(format!(
                        "cannot create a temporary folder for sqlite::memory: {error}"
                    ))
                })?;
            (folder.path().join("flowbot.db"), Some(folder))
        }
    };
    create_private_file(&path)?;
    let connect = configure(SqliteConnectOptions::new().filename(&path), options);
    // Migrations run on a connection of their own, closed before the writer opens its own.
    let migrations = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(connect.clone())
        .await
        .map_err(|error| {
            StoreError::Database(format!("cannot open the database {location}: {error}"))
        })?;
    let migrated = migrate(&migrations, location).await;
    migrations.close().await;
    migrated?;
    let writer = write_connection(&path, options).map_err(|error| {
        StoreError::Database(format!("cannot open the database {location}: {error}"))
    })?;
    let checkpointer = Checkpointer::spawn(&path, BUSY_TIMEOUT)?;
    let readers = SqlitePoolOptions::new()
        .max_connections(options.max_readers.max(1))
        .min_connections(0)
        .connect_with(connect.pragma("query_only", "ON"))
        .await?;
    Ok(Opened {
        writer,
        checkpointer,
        readers,
        temporary,
    })
}

/// The writer thread's connection, set up like the readers (see [`configure`]).
fn write_connection(
    path: &Path,
    options: &StoreOptions,
) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let synchronous = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    // WAL is a property of the file, set when the migrations' connection opened it.
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoints run on their own thread (`checkpoint`), not inside the writer's commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The pages a turn touches (index pages by phone and time, spread over the file) stay cached:
    // 16 MiB instead of SQLite's 2 MiB default.
    conn.pragma_update(None, "cache_size", -16_384)?;
    // Every statement the writer runs is prepared once and kept.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn configure(connect: SqliteConnectOptions, options: &StoreOptions) -> SqliteConnectOptions {
    let synchronous = if options.synchronous_full {
        SqliteSynchronous::Full
    } else {
        SqliteSynchronous::Normal
    };
    connect
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // Savepoints keep a sub-journal of the pages they change; in memory, not in temp files.
        .pragma("temp_store", "memory")
}

/// One connection, kept open for the life of the store.
async fn migrate(pool: &SqlitePool, location: &Location) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await.map_err(|error| {
        StoreError::Database(format!("migrating the database {location}: {error}"))
    })
}

/// Creates the database file with owner-only permissions when it does not exist yet.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Database(format!(
            "cannot create the database file {}: {error}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let file = |path: &str| Ok(Location::File(PathBuf::from(path)));
        assert_eq!(Location::parse(""), file("flowbot.db"));
        assert_eq!(Location::parse("data/bot.db"), file("data/bot.db"));
        assert_eq!(Location::parse("sqlite://bot.db"), file("bot.db"));
        assert_eq!(Location::parse("sqlite:bot.db"), file("bot.db"));
        assert_eq!(
            Location::parse("sqlite:///var/lib/bot.db"),
            file("/var/lib/bot.db")
        );
        assert_eq!(Location::parse("sqlite://bot.db?mode=rwc"), file("bot.db"));
        assert_eq!(Location::parse("sqlite::memory:"), Ok(Location::Memory));
        assert_eq!(Location::parse("sqlite://:memory:"), Ok(Location::Memory));
        assert_eq!(Location::parse(":memory:"), Ok(Location::Memory));
        assert!(Location::parse("sqlite://").is_err());
    }
}
