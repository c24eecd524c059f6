//! One serving process per database. Two servers on one database file would each keep their own
//! cache of conversations and answer the same contact from different states (found by a new-user
//! trial: an answer sent to the second server was refused by the first one's stale question). So
//! `serve` holds an exclusive `flock` on `<database>.lock` for as long as it runs; the kernel drops
//! it when the process ends, however it ends. Commands that only read (`conversations`) and the
//! Zoho commands do not take it. An in-memory database needs none.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another flowbot serve is already using the database {database} (it holds {lock}); stop it \
         first, or give this server a database of its own with --database"
    )]
    Held { database: String, lock: String },
    #[error("cannot create the lock file {lock}: {error}")]
    Io { lock: String, error: std::io::Error },
}

/// Takes the lock of the database file at `database`, without waiting.
pub fn lock(database: &Path) -> Result<InstanceLock, LockError> {
    let lock_path = lock_path(database);
    let lock = lock_path.display().to_string();
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| LockError::Io {
            lock: lock.clone(),
            error,
        })?;
    if !try_lock_exclusive(&file) {
        return Err(LockError::Held {
            database: database.display().to_string(),
            lock,
        });
    }
    Ok(InstanceLock { _file: file })
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a file descriptor this `File` owns and keeps open, and integer flags.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> bool {
    // No advisory lock here: two servers on one database are not detected on this platform.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_database_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let database = dir.path().join("flowbot.db");
        let first = lock(&database).expect("first lock");
        let second = lock(&database).expect_err("second lock");
        assert!(
            second
                .to_string()
                .contains("another flowbot serve is already using"),
            "{second}"
        );
        let other = lock(&dir.path().join("other.db")).expect("another database is free");
        drop((first, other));
        lock(&database).expect("free again");
    }
}
