//! Opening the state the commands share: the SQLite store at `--database`, the key that encrypts
//! Zoho tokens (`FLOWBOT_SECRET_KEY`, else the key file beside the database) and the Zoho client.

use anyhow::{Context, Result};
use flowbot_store::{EncryptionKey, Location, SqliteTokenStore, Store, StoreOptions};
use flowbot_zoho::transport::ReqwestTransport;
use flowbot_zoho::{ClientConfig, ZohoClient};

pub type CliZoho = ZohoClient<ReqwestTransport, SqliteTokenStore>;

/// Opens (creating and migrating when needed) the database.
pub async fn open_store(database: &str) -> Result<Store> {
    Store::open(database, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the database {database}"))
}

/// Opens a database that must already exist: commands that only read (or change what is there)
/// should not create an empty database because of a typo in the path.
pub async fn open_existing_store(database: &str) -> Result<Store> {
    let location = Location::parse(database)
        .with_context(|| format!("cannot open the database {database}"))?;
    if let Some(path) = location.path() {
        if !path.exists() {
            anyhow::bail!(
                "there is no database at {} (`flowbot serve`, `flowbot chat --database` and `flowbot zoho connect` create one; pass --database or set FLOWBOT_DATABASE_URL)",
                path.display()
            );
        }
    }
    open_store(database).await
}

/// The Zoho client over the database's encrypted token store.
pub fn zoho_client(store: &Store, database: &str) -> Result<CliZoho> {
    let key_value = std::env::var("FLOWBOT_SECRET_KEY").ok();
    let key = EncryptionKey::load(key_value.as_deref(), database)
        .context("cannot load the encryption key of Zoho tokens")?;
    let transport =
        ReqwestTransport::new().map_err(|e| anyhow::anyhow!("cannot set up HTTP: {e}"))?;
    Ok(ZohoClient::new(
        transport,
        store.token_store(key),
        ClientConfig::default(),
    ))
}
