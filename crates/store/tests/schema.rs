//! Opening a store: migrations from an empty file and again on an existing one, the file's
//! permissions, the pragmas every connection gets, and the in-memory location.

mod common;

use common::{at, insert_one, open_store};
use flowbot_store::{Store, StoreOptions};

#[tokio::test]
async fn migrations_create_every_table_in_an_empty_file() {
    let db = open_store().await;
    let mut tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(&mut db.raw().await)
            .await
            .expect("tables");
    tables.retain(|name| name != "_sqlx_migrations");
    assert_eq!(
        tables,
        [
            "contacts",
            "conversations",
            "inbox",
            "outbox",
            "transcript",
            "zoho_connections"
        ]
    );
    assert!(db.store.ping().await);
}

#[tokio::test]
async fn opening_twice_keeps_the_data_and_applies_nothing_new() {
    let db = open_store().await;
    insert_one(&db.store, "wamid.1", "919820000001", at(0)).await;
    db.store.close().await;

    let again = db.reopen().await;
    let also = db.reopen().await;
    assert_eq!(again.unfinished_inbox().await.expect("read").len(), 1);
    assert_eq!(also.unfinished_inbox().await.expect("read").len(), 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM _sqlx_migrations").await, 4);
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = open_store().await;
    let mode = std::fs::metadata(&db.path)
        .expect("file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[tokio::test]
async fn the_file_is_in_wal_mode_and_a_turn_needs_its_inbox_row() {
    let db = open_store().await;
    let mut conn = db.raw().await;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(journal, "wal", "WAL is a property of the file");

    // (That foreign keys are on shows in the retention test: outbox rows go with their inbox row.)
    let refused = db
        .store
        .commit_turn(common::turn(4242, "919820000001", &["hello"], at(0)))
        .await
        .expect_err("no such inbox row");
    assert!(
        refused.to_string().contains("no inbox row 4242"),
        "{refused}"
    );
}

#[tokio::test]
async fn sqlite_urls_and_memory() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("url.db").display());
    let store = Store::open(&url, StoreOptions::default())
        .await
        .expect("opens by URL");
    insert_one(&store, "wamid.1", "919820000001", at(0)).await;
    assert!(dir.path().join("url.db").exists());

    let memory = Store::open("sqlite::memory:", StoreOptions::default())
        .await
        .expect("opens in memory");
    let inbox_id = insert_one(&memory, "wamid.1", "919820000001", at(0)).await;
    memory
        .commit_turn(common::turn(inbox_id, "919820000001", &["hello"], at(1)))
        .await
        .expect("commit");
    assert_eq!(memory.unsent_outbox().await.expect("read").len(), 1);
    assert!(memory
        .load_conversation(common::CHANNEL, "919820000001")
        .await
        .expect("read")
        .is_some());
    memory.close().await;
    assert!(!memory.ping().await);
    assert_eq!(
        memory
            .insert_inbound(vec![common::inbound("wamid.2", "9198", "hi", at(2))])
            .await,
        Err(flowbot_store::StoreError::Closed)
    );
}

#[tokio::test]
async fn synchronous_full_is_an_option() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let options = StoreOptions {
        synchronous_full: true,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path().join("full.db").to_str().expect("utf-8"), options)
        .await
        .expect("opens");
    insert_one(&store, "wamid.1", "919820000001", at(0)).await;
}

/// Start-up reads the unfinished inbox rows and the outbox rows still to send; both must be found
/// by an index, not by scanning tables that hold every message of the retention period (the outbox
/// query scanned until migration 0004: 30 ms at start-up over 100,000 conversations).
#[tokio::test]
async fn start_up_reads_use_indexes() {
    let db = open_store().await;
    let mut conn = db.raw().await;
    for query in [
        "SELECT id FROM outbox WHERE state IN ('pending', 'held') ORDER BY id",
        "SELECT id FROM inbox WHERE state IN ('pending', 'processing') ORDER BY message_at, id",
    ] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                .fetch_all(&mut conn)
                .await
                .expect("plan");
        let steps: Vec<&str> = plan.iter().map(|step| step.3.as_str()).collect();
        assert!(
            steps.iter().all(|step| step.contains("USING INDEX")),
            "{query}: {steps:?}"
        );
    }
}
