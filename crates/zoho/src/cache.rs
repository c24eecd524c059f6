//! [`CachingTokenStore`]: keeps recently read connections in memory in front of a slower store
//! (SQLite with decryption), so a busy server does not read and decrypt the connection on every
//! search.
//!
//! Writes go through and update the cache, so this process always sees its own refreshes at once.
//! Another process's refresh becomes visible within the time-to-live; until then this process keeps
//! using its own still-valid token, which Zoho accepts. Taking the refresh lease drops the cached
//! entry, so the refresh path always decides on the stored state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::store::{Connection, TokenStore};

/// A [`TokenStore`] that caches `load` for `ttl`.
pub struct CachingTokenStore<S: TokenStore> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<Connection>)>>,
}

impl<S: TokenStore> CachingTokenStore<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        CachingTokenStore {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn cached(&self, name: &str) -> Option<Option<Connection>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (read_at, connection) = entries.get(name)?;
        (read_at.elapsed() < self.ttl).then(|| connection.clone())
    }

    fn remember(&self, name: &str, connection: Option<Connection>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.insert(name.to_owned(), (Instant::now(), connection));
    }

    fn forget(&self, name: &str) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.remove(name);
    }
}

impl<S: TokenStore> TokenStore for CachingTokenStore<S> {
    async fn load(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        if let Some(connection) = self.cached(name) {
            return Ok(connection);
        }
        let connection = self.inner.load(name).await?;
        self.remember(name, connection.clone());
        Ok(connection)
    }

    async fn save(&self, connection: &Connection) -> Result<(), StoreError> {
        self.inner.save(connection).await?;
        self.remember(&connection.name, Some(connection.clone()));
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete(name).await?;
        self.forget(name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Connection>, StoreError> {
        self.inner.list().await
    }

    async fn try_acquire_refresh_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.forget(name);
        self.inner
            .try_acquire_refresh_lease(name, holder, now, until)
            .await
    }

    async fn release_refresh_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_refresh_lease(name, holder).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryTokenStore;
    use crate::{DataCentre, Secret};

    fn connection(token: &str) -> Connection {
        Connection {
            name: "zoho".into(),
            dc: DataCentre::In,
            accounts_url: "https://accounts.zoho.in".into(),
            api_domain: "https://www.zohoapis.in".into(),
            client_id: "id".into(),
            client_secret: Secret::new("secret"),
            refresh_token: Secret::new("refresh"),
            access_token: Secret::new(token),
            expires_at: Utc::now(),
            last_refresh_at: None,
            refresh_blocked_until: None,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn reads_are_cached_writes_go_through_and_the_lease_reads_fresh() {
        let inner = std::sync::Arc::new(MemoryTokenStore::new());
        let cache = CachingTokenStore::new(inner.clone(), Duration::from_secs(3600));
        cache.save(&connection("one")).await.expect("save");
        // Another process writes behind our back: the cache still answers with what it knows.
        inner.save(&connection("two")).await.expect("save");
        let seen = cache.load("zoho").await.expect("load").expect("connected");
        assert_eq!(seen.access_token.expose(), "one");
        // Taking the refresh lease reads the stored state again.
        assert!(cache
            .try_acquire_refresh_lease("zoho", "me", Utc::now(), Utc::now())
            .await
            .expect("lease"));
        let fresh = cache.load("zoho").await.expect("load").expect("connected");
        assert_eq!(fresh.access_token.expose(), "two");
        cache.delete("zoho").await.expect("delete");
        assert!(cache.load("zoho").await.expect("load").is_none());
    }
}
