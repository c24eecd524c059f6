//! [`SqliteTokenStore`]: Zoho connections in the `zoho_connections` table, implementing
//! `flowbot_zoho::TokenStore`. Each connection is serialized to JSON and sealed with the
//! [`EncryptionKey`] (so neither tokens nor the client secret are readable in the file), and the
//! refresh lease that makes token refreshes single-flight across processes is two columns of the
//! same row, taken with one conditional upsert. Writes go through the store's writer like every
//! other write; reads use the reader pool.

use chrono::{DateTime, Utc};
use flowbot_zoho::{Connection, StoreError as TokenStoreError, TokenStore};
use rusqlite::params;

use crate::codec::time_text;
use crate::key::EncryptionKey;
use crate::{Store, StoreError};

/// Zoho connections in SQLite, tokens encrypted (implements `flowbot_zoho::TokenStore`).
#[derive(Clone, Debug)]
pub struct SqliteTokenStore {
    store: Store,
    key: EncryptionKey,
}

impl SqliteTokenStore {
    pub(crate) fn new(store: Store, key: EncryptionKey) -> SqliteTokenStore {
        SqliteTokenStore { store, key }
    }

    fn open(&self, name: &str, sealed: &[u8]) -> Result<Connection, StoreError> {
        let plaintext = self.key.open(name.as_bytes(), sealed)?;
        serde_json::from_slice(&plaintext).map_err(|error| {
            StoreError::Corrupt(format!(
                "the Zoho connection {name:?} could not be read: {error}"
            ))
        })
    }

    async fn load_connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM zoho_connections WHERE name = ? AND sealed IS NOT NULL",
        )
        .bind(name)
        .fetch_optional(self.store.readers())
        .await?;
        sealed.map(|sealed| self.open(name, &sealed)).transpose()
    }

    async fn list_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT name, sealed FROM zoho_connections WHERE sealed IS NOT NULL ORDER BY name",
        )
        .fetch_all(self.store.readers())
        .await?;
        rows.iter()
            .map(|(name, sealed)| self.open(name, sealed))
            .collect()
    }

    async fn save_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let plaintext = serde_json::to_vec(connection).map_err(|error| {
            StoreError::Database(format!("cannot encode the Zoho connection: {error}"))
        })?;
        let name = connection.name.clone();
        let sealed = self.key.seal(name.as_bytes(), &plaintext)?;
        let now = time_text(Utc::now());
        self.store
            .writer()
            .write(move |conn| save(conn, &name, &sealed, &now))
            .await
    }

    async fn delete_connection(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.store
            .writer()
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM zoho_connections WHERE name = ?")?
                    .execute([&name])?;
                Ok(())
            })
            .await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let (now, until) = (time_text(now), time_text(until));
        self.store
            .writer()
            .write(move |conn| acquire_lease(conn, &name, &holder, &now, &until))
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.store
            .writer()
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE zoho_connections SET lease_holder = NULL, lease_until = NULL
                     WHERE name = ? AND lease_holder = ?",
                )?
                .execute([&name, &holder])?;
                Ok(())
            })
            .await
    }
}

fn save(
    conn: &rusqlite::Connection,
    name: &str,
    sealed: &[u8],
    now: &str,
) -> Result<(), StoreError> {
    // The lease columns are left as they are: saving the refreshed tokens does not end the lease.
    conn.prepare_cached("INSERT INTO zoho_connections (name, sealed, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at")?.execute(params![name, sealed, now])?;
    Ok(())
}

/// Granted when nobody holds the lease, `holder` already does, or it ended at or before `now`. A
/// lease may be taken before the connection is saved (the row then has no `sealed` value yet).
fn acquire_lease(
    conn: &rusqlite::Connection,
    name: &str,
    holder: &str,
    now: &str,
    until: &str,
) -> Result<bool, StoreError> {
    let granted = conn.prepare_cached("INSERT INTO zoho_connections (name, sealed, lease_holder, lease_until, updated_at)
         VALUES (?1, NULL, ?2, ?4, ?3)
         ON CONFLICT (name) DO UPDATE SET lease_holder = excluded.lease_holder, lease_until = excluded.lease_until
         WHERE lease_holder IS NULL OR lease_holder = ?2 OR lease_until <= ?3")?.execute(params![name, holder, now, until])?;
    Ok(granted > 0)
}

fn token_error(error: StoreError) -> TokenStoreError {
    TokenStoreError::new(match error {
        // Already the full sentence a person needs.
        StoreError::Key(message) => message,
        other => other.to_string(),
    })
}

impl TokenStore for SqliteTokenStore {
    async fn load(&self, name: &str) -> Result<Option<Connection>, TokenStoreError> {
        self.load_connection(name).await.map_err(token_error)
    }

    async fn save(&self, connection: &Connection) -> Result<(), TokenStoreError> {
        self.save_connection(connection).await.map_err(token_error)
    }

    async fn delete(&self, name: &str) -> Result<(), TokenStoreError> {
        self.delete_connection(name).await.map_err(token_error)
    }

    async fn list(&self) -> Result<Vec<Connection>, TokenStoreError> {
        self.list_connections().await.map_err(token_error)
    }

    async fn try_acquire_refresh_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, TokenStoreError> {
        self.acquire_lease(name, holder, now, until)
            .await
            .map_err(token_error)
    }

    async fn release_refresh_lease(&self, name: &str, holder: &str) -> Result<(), TokenStoreError> {
        self.release_lease(name, holder).await.map_err(token_error)
    }
}
