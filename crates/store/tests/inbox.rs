//! Recording inbound messages: dedupe by provider message id (also under concurrency), several
//! messages in one call, row states, and many concurrent writers on one file without
//! "database is locked".

mod common;

use std::sync::Arc;

use common::{at, inbound, insert_one, open_store};
use flowbot_store::{InboxState, InsertOutcome, StoreError};

#[tokio::test]
async fn a_redelivered_message_is_a_duplicate() {
    let db = open_store().await;
    let first = db
        .store
        .insert_inbound(vec![inbound("wamid.A", "919820000001", "hi", at(0))])
        .await
        .expect("insert");
    assert!(
        matches!(first.as_slice(), [InsertOutcome::Inserted(_)]),
        "{first:?}"
    );
    let again = db
        .store
        .insert_inbound(vec![inbound("wamid.A", "919820000001", "hi", at(0))])
        .await
        .expect("insert");
    assert_eq!(again, vec![InsertOutcome::Duplicate]);
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 1);
}

#[tokio::test]
async fn two_concurrent_inserts_of_one_message_insert_it_once() {
    let db = open_store().await;
    let store = &db.store;
    let message = || vec![inbound("wamid.same", "919820000001", "hi", at(0))];
    let (left, right) = tokio::join!(
        store.insert_inbound(message()),
        store.insert_inbound(message())
    );
    let mut outcomes = left.expect("left");
    outcomes.extend(right.expect("right"));
    let inserted = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, InsertOutcome::Inserted(_)))
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    assert!(outcomes.contains(&InsertOutcome::Duplicate));
}

#[tokio::test]
async fn a_webhook_batch_is_recorded_in_one_call_with_an_outcome_per_message() {
    let db = open_store().await;
    insert_one(&db.store, "wamid.old", "919820000001", at(0)).await;
    let outcomes = db
        .store
        .insert_inbound(vec![
            inbound("wamid.1", "919820000001", "one", at(1)),
            inbound("wamid.old", "919820000001", "again", at(0)),
            inbound("wamid.2", "919820000002", "two", at(2)),
            inbound(
                "wamid.1",
                "919820000001",
                "one, twice in the same batch",
                at(1),
            ),
        ])
        .await
        .expect("insert");
    assert!(matches!(outcomes[0], InsertOutcome::Inserted(_)));
    assert_eq!(outcomes[1], InsertOutcome::Duplicate);
    assert!(matches!(outcomes[2], InsertOutcome::Inserted(_)));
    assert_eq!(outcomes[3], InsertOutcome::Duplicate);
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 3);
}

#[tokio::test]
async fn unfinished_rows_come_back_oldest_message_first_with_everything_stored() {
    let db = open_store().await;
    // Arrival order differs from message order (providers deliver out of order).
    let later = insert_one(&db.store, "wamid.later", "919820000001", at(60)).await;
    let earlier = insert_one(&db.store, "wamid.earlier", "919820000001", at(5)).await;

    let rows = db.store.unfinished_inbox().await.expect("read");
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    assert_eq!(ids, vec![earlier, later]);
    let row = &rows[0];
    assert_eq!(row.state, InboxState::Pending);
    assert_eq!(row.attempts, 0);
    assert_eq!(row.channel, common::CHANNEL);
    assert_eq!(row.business_id, common::BUSINESS);
    assert_eq!(row.contact.name.as_deref(), Some("Asha Rao"));
    assert_eq!(
        row.message,
        inbound("wamid.earlier", "919820000001", "hi", at(5)).message
    );
}

#[tokio::test]
async fn processing_counts_attempts_and_failed_rows_are_finished() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", "919820000001", at(0)).await;
    db.store
        .mark_processing(inbox_id)
        .await
        .expect("processing");
    db.store
        .mark_processing(inbox_id)
        .await
        .expect("processing again after a crash");
    let rows = db.store.unfinished_inbox().await.expect("read");
    assert_eq!(
        (rows[0].state, rows[0].attempts),
        (InboxState::Processing, 2)
    );

    db.store
        .mark_failed(inbox_id, "flow crashed three times")
        .await
        .expect("failed");
    assert!(db.store.unfinished_inbox().await.expect("read").is_empty());
    let error = db
        .store
        .mark_processing(inbox_id)
        .await
        .expect_err("finished");
    assert_eq!(
        error,
        StoreError::Conflict(format!("inbox row {inbox_id} is already failed"))
    );
    let error = db.store.mark_processing(999).await.expect_err("missing");
    assert_eq!(
        error,
        StoreError::NotFound("there is no inbox row 999".into())
    );
}

/// 50 tasks × 100 single-message inserts at once on one file: every insert succeeds (no
/// "database is locked") and every row is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writers_never_see_database_is_locked() {
    let db = open_store().await;
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for task in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for n in 0..100 {
                let id = format!("wamid.{task}.{n}");
                let phone = format!("9198200{task:05}");
                let outcome = store
                    .insert_inbound(vec![inbound(&id, &phone, "hi", at(n))])
                    .await;
                match outcome {
                    Ok(outcomes) => {
                        assert!(matches!(outcomes.as_slice(), [InsertOutcome::Inserted(_)]))
                    }
                    Err(error) => panic!("insert {id} failed: {error}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 5_000);
}

/// Two stores on one file (the server and a CLI command, say) each with their own writer: SQLite's
/// lock and the busy timeout serialise them, nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_write_side_by_side() {
    let db = open_store().await;
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for (index, store) in [db.store.clone(), other].into_iter().enumerate() {
        for task in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..50 {
                    let id = format!("wamid.{index}.{task}.{n}");
                    if let Err(error) = store
                        .insert_inbound(vec![inbound(&id, "919820000001", "hi", at(n))])
                        .await
                    {
                        panic!("insert {id} failed: {error}");
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 1_000);
}
