//! Opening the state the commands share: the SQLite store at `--database`, the key that encrypts
//! Zoho tokens (`FLOWBOT_SECRET_KEY`, else the key file beside the database) and the Zoho client.

use anyhow::{Context, Result};
use flowbot_store::{EncryptionKey, SqliteTokenStore, Store, StoreOptions};
use flowbot_zoho::transport::ReqwestTransport;
use flowbot_zoho::{ClientConfig, ZohoClient};

pub type CliZoho = ZohoClient<ReqwestTransport, SqliteTokenStore>;

/// Opens (creating and migrating when needed) the database.
pub async fn open_store(database: &str) -> Result<Store> {
    Store::open(database, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the database {database}"))
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
