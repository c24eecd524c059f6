//! The Zoho token store: connections round-trip, tokens are not readable in the database file, a
//! wrong key is a clear error, the key file is created owner-only and reused, and the refresh lease
//! is granted, refused while held, and granted again after it expired.

mod common;

use chrono::Duration;
use common::{at, open_store};
use flowbot_store::{EncryptionKey, StoreError};
use flowbot_zoho::{Connection, DataCentre, Secret, TokenStore};

const ACCESS_TOKEN: &str = "1000.access.9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const REFRESH_TOKEN: &str = "1000.refresh.0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const CLIENT_SECRET: &str = "client-secret-5e6f7a8b9c0d";

fn connection(name: &str) -> Connection {
    Connection {
        name: name.into(),
        dc: DataCentre::In,
        accounts_url: "https://accounts.zoho.in".into(),
        api_domain: "https://www.zohoapis.in".into(),
        client_id: "1000.CLIENTID".into(),
        client_secret: Secret::new(CLIENT_SECRET),
        refresh_token: Secret::new(REFRESH_TOKEN),
        access_token: Secret::new(ACCESS_TOKEN),
        expires_at: at(3600),
        last_refresh_at: Some(at(0)),
        refresh_blocked_until: None,
        last_error: None,
    }
}

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_bytes([byte; 32])
}

#[tokio::test]
async fn connections_round_trip() {
    let db = open_store().await;
    let tokens = db.store.token_store(key(1));
    assert_eq!(tokens.load("zoho").await, Ok(None));

    tokens.save(&connection("zoho")).await.expect("save");
    tokens.save(&connection("crm_eu")).await.expect("save");
    assert_eq!(tokens.load("zoho").await, Ok(Some(connection("zoho"))));

    let mut refreshed = connection("zoho");
    refreshed.access_token = Secret::new("1000.access.new");
    refreshed.expires_at = at(7200);
    tokens.save(&refreshed).await.expect("save again");
    assert_eq!(tokens.load("zoho").await, Ok(Some(refreshed)));

    let names: Vec<String> = tokens
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["crm_eu", "zoho"]);
    tokens.delete("crm_eu").await.expect("delete");
    tokens
        .delete("never_existed")
        .await
        .expect("deleting a missing one is fine");
    assert_eq!(tokens.list().await.expect("list").len(), 1);
}

#[tokio::test]
async fn tokens_are_not_readable_in_the_database_file() {
    let db = open_store().await;
    let tokens = db.store.token_store(key(1));
    tokens.save(&connection("zoho")).await.expect("save");
    // A control: text stored without encryption is found by the same scan.
    db.store
        .insert_inbound(vec![common::inbound(
            "wamid.1",
            "919820000001",
            "plain-text-marker-42",
            at(0),
        )])
        .await
        .expect("insert");
    db.store.close().await;

    let mut bytes = std::fs::read(&db.path).expect("database file");
    // After close the WAL is normally checkpointed into the file; read it too in case it is not.
    let mut wal_path = db.path.clone().into_os_string();
    wal_path.push("-wal");
    bytes.extend(std::fs::read(&wal_path).unwrap_or_default());
    let readable = |text: &str| {
        bytes
            .windows(text.len())
            .any(|window| window == text.as_bytes())
    };
    assert!(
        readable("plain-text-marker-42"),
        "the scan sees unencrypted data"
    );
    for secret in [
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        CLIENT_SECRET,
        "1000.access",
        "1000.refresh",
    ] {
        assert!(!readable(secret), "{secret} is readable in the file");
    }
    // The row is there, just sealed.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM zoho_connections WHERE sealed IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_error() {
    let db = open_store().await;
    db.store
        .token_store(key(1))
        .save(&connection("zoho"))
        .await
        .expect("save");
    let wrong = db.store.token_store(key(2));
    let error = wrong.load("zoho").await.expect_err("wrong key");
    assert_eq!(
        error.message,
        "cannot decrypt the Zoho connection: FLOWBOT_SECRET_KEY differs from the key used to store it"
    );
    assert!(wrong.list().await.is_err());
}

#[tokio::test]
async fn the_key_comes_from_the_environment_or_a_key_file_beside_the_database() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let database = dir.path().join("flowbot.db");
    let location = database.to_str().expect("utf-8");

    let from_file = EncryptionKey::load(None, location).expect("created");
    let key_file = dir.path().join("flowbot.db.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let url = format!("sqlite://{location}");
    let again = EncryptionKey::load(None, &url).expect("read back");
    let empty_env = EncryptionKey::load(Some("  "), location).expect("an empty variable is unset");

    // Same key every time: what one sealed, the others open.
    let store = flowbot_store::Store::open(location, Default::default())
        .await
        .expect("open");
    store
        .token_store(from_file)
        .save(&connection("zoho"))
        .await
        .expect("save");
    assert_eq!(
        store.token_store(again).load("zoho").await,
        Ok(Some(connection("zoho")))
    );
    assert!(store.token_store(empty_env).load("zoho").await.is_ok());

    // The file holds base64 of the key, so it can be moved into FLOWBOT_SECRET_KEY.
    let content = std::fs::read_to_string(&key_file).expect("key file");
    let from_env = EncryptionKey::load(Some(content.trim()), "elsewhere.db").expect("from env");
    assert_eq!(
        store.token_store(from_env).load("zoho").await,
        Ok(Some(connection("zoho")))
    );
    let passphrase = EncryptionKey::load(Some("a long passphrase"), location).expect("hashed");
    assert!(store.token_store(passphrase).load("zoho").await.is_err());

    std::fs::write(&key_file, "not a key").expect("overwrite");
    match EncryptionKey::load(None, location) {
        Err(StoreError::Key(message)) => assert!(message.contains("flowbot.db.key"), "{message}"),
        other => panic!("expected a key error, got {other:?}"),
    }
    assert!(EncryptionKey::load(None, "sqlite::memory:").is_ok());
}

#[tokio::test]
async fn the_refresh_lease_is_exclusive_until_released_or_expired() {
    let db = open_store().await;
    let tokens = db.store.token_store(key(1));
    let until = at(30);

    // A lease can be taken before the connection exists, and saving does not end it.
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-a", at(0), until)
            .await,
        Ok(true)
    );
    tokens.save(&connection("zoho")).await.expect("save");
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-b", at(1), at(31))
            .await,
        Ok(false)
    );
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-a", at(2), at(32))
            .await,
        Ok(true),
        "re-entrant"
    );
    assert_eq!(tokens.load("zoho").await, Ok(Some(connection("zoho"))));

    // Another holder cannot release it; the holder can.
    tokens
        .release_refresh_lease("zoho", "process-b")
        .await
        .expect("no-op");
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-b", at(3), at(33))
            .await,
        Ok(false)
    );
    tokens
        .release_refresh_lease("zoho", "process-a")
        .await
        .expect("release");
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-b", at(4), at(34))
            .await,
        Ok(true)
    );

    // An expired lease is free again (at exactly its end, too).
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-c", at(33), at(60))
            .await,
        Ok(false)
    );
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("zoho", "process-c", at(34), at(64))
            .await,
        Ok(true)
    );

    // Leases are per connection.
    assert_eq!(
        tokens
            .try_acquire_refresh_lease("other", "process-a", at(35), at(65))
            .await,
        Ok(true)
    );
    assert_eq!(
        tokens.list().await.expect("list").len(),
        1,
        "a lease-only row is not a connection"
    );
}

/// Twenty contenders at once: exactly one gets the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_contenders_get_the_lease_once() {
    let db = open_store().await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        let tokens = db.store.token_store(key(1));
        tasks.push(tokio::spawn(async move {
            tokens
                .try_acquire_refresh_lease(
                    "zoho",
                    &format!("holder-{n}"),
                    at(0),
                    at(0) + Duration::seconds(30),
                )
                .await
        }));
    }
    let mut granted = 0;
    for task in tasks {
        if task.await.expect("task").expect("lease query") {
            granted += 1;
        }
    }
    assert_eq!(granted, 1);
}
