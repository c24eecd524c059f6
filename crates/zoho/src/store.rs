//! [`Connection`] (one connected Zoho account and its tokens) and the [`TokenStore`] trait that
//! persists connections and arbitrates refreshes between processes through a lease. The SQLite,
//! encrypted implementation lives in `crates/store`; [`MemoryTokenStore`] serves tests and replays.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dc::DataCentre;
use crate::error::StoreError;
use crate::secret::Secret;

/// A connected Zoho account. Plain fields so a store can persist them one by one; the secrets are
/// [`Secret`]s, so `{:?}` shows `[redacted]` for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    pub dc: DataCentre,
    /// Token endpoint base, e.g. `https://accounts.zoho.in` (or a test server).
    pub accounts_url: String,
    /// API base that Zoho returned for this account, e.g. `https://www.zohoapis.in`.
    pub api_domain: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub access_token: Secret,
    pub expires_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// Set after a throttled refresh; until then lookups fail fast without calling Zoho.
    pub refresh_blocked_until: Option<DateTime<Utc>>,
    /// The last token error, token-free, for `flowbot zoho status`.
    pub last_error: Option<String>,
}

/// Persists connections. Implementations must be safe to share between tasks and, for the lease,
/// between processes.
pub trait TokenStore: Send + Sync + 'static {
    fn load(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;
    fn save(&self, connection: &Connection) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deleting a missing connection is not an error.
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;
    /// Take the right to refresh `name` until `until`. Granted when nobody holds it, when `holder`
    /// already holds it, or when the current lease ended at or before `now`. Returns whether granted.
    fn try_acquire_refresh_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Give the lease back if `holder` holds it.
    fn release_refresh_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<S: TokenStore> TokenStore for Arc<S> {
    fn load(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send {
        (**self).load(name)
    }
    fn save(&self, connection: &Connection) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save(connection)
    }
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(name)
    }
    fn list(&self) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send {
        (**self).list()
    }
    fn try_acquire_refresh_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).try_acquire_refresh_lease(name, holder, now, until)
    }
    fn release_refresh_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release_refresh_lease(name, holder)
    }
}

/// An in-memory store: connections and leases in one mutex.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    connections: HashMap<String, Connection>,
    leases: HashMap<String, (String, DateTime<Utc>)>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        MemoryTokenStore::default()
    }

    /// A store that already holds these connections.
    pub fn with_connections(connections: impl IntoIterator<Item = Connection>) -> Self {
        let store = MemoryTokenStore::new();
        {
            let mut inner = store.lock();
            for connection in connections {
                inner
                    .connections
                    .insert(connection.name.clone(), connection);
            }
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl TokenStore for MemoryTokenStore {
    async fn load(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        Ok(self.lock().connections.get(name).cloned())
    }

    async fn save(&self, connection: &Connection) -> Result<(), StoreError> {
        self.lock()
            .connections
            .insert(connection.name.clone(), connection.clone());
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.connections.remove(name);
        inner.leases.remove(name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Connection>, StoreError> {
        let mut all: Vec<Connection> = self.lock().connections.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn try_acquire_refresh_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let free = match inner.leases.get(name) {
            None => true,
            Some((current, current_until)) => current == holder || *current_until <= now,
        };
        if free {
            inner
                .leases
                .insert(name.to_owned(), (holder.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_refresh_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner
            .leases
            .get(name)
            .is_some_and(|(current, _)| current == holder)
        {
            inner.leases.remove(name);
        }
        Ok(())
    }
}
