//! Opening the database: where it is ([`Location`]: a file path or a `sqlite:` URL), how each
//! connection is set up (WAL, `synchronous`, busy timeout, foreign keys), the two pools (one
//! connection for the writer task, several for readers) and the embedded migrations.
//!
//! A new database file is created with owner-only permissions (0600 on unix) before SQLite opens
//! it; SQLite gives its `-wal` and `-shm` files the same permissions.
//!
//! An in-memory database (`sqlite::memory:`) lives as long as its connections, and each new
//! connection would see an empty database of its own, so it uses a single pool of one connection
//! that is never closed while the store runs: the writer and the readers take turns on it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

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

/// The writer's pool (one connection) and the readers' pool.
pub(crate) struct Pools {
    pub(crate) writer: SqlitePool,
    pub(crate) readers: SqlitePool,
}

/// Creates the file when missing, connects both pools and runs the migrations.
pub(crate) async fn open_pools(
    location: &Location,
    options: &StoreOptions,
) -> Result<Pools, StoreError> {
    let connect = match location {
        Location::Memory => {
            let connect = SqliteConnectOptions::from_str("sqlite::memory:")?;
            let pool = single_connection_pool(configure(connect, options)).await?;
            migrate(&pool, location).await?;
            return Ok(Pools {
                writer: pool.clone(),
                readers: pool,
            });
        }
        Location::File(path) => {
            create_private_file(path)?;
            configure(SqliteConnectOptions::new().filename(path), options)
        }
    };
    let writer = single_connection_pool(connect.clone())
        .await
        .map_err(|error| {
            StoreError::Database(format!("cannot open the database {location}: {error}"))
        })?;
    migrate(&writer, location).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(options.max_readers.max(1))
        .min_connections(0)
        // Readers never write: a stray write through them is an error, not a second writer.
        .connect_with(connect.pragma("query_only", "ON"))
        .await?;
    Ok(Pools { writer, readers })
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
async fn single_connection_pool(connect: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect)
        .await?;
    Ok(pool)
}

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
