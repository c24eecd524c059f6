//! After the turn: send results, delivery statuses arriving out of order, and retention (old
//! transcripts go, dedupe keys stay at least seven days, outbox rows go with their inbox row).

mod common;

use chrono::Duration;
use common::{at, inbound, insert_one, open_store, turn};
use flowbot_store::{InsertOutcome, OutboxRow, OutboxState, Store};

const PHONE: &str = "919820000001";

async fn one_reply(store: &Store, message_id: &str) -> OutboxRow {
    let inbox_id = insert_one(store, message_id, PHONE, at(0)).await;
    let mut rows = store
        .commit_turn(turn(inbox_id, PHONE, &["Hi"], at(1)))
        .await
        .expect("commit");
    rows.pop().expect("one row")
}

async fn delivery(db: &common::TestDb, outbox_id: i64) -> (Option<String>, Option<String>) {
    sqlx::query_as("SELECT delivery_status, error FROM outbox WHERE id = ?")
        .bind(outbox_id)
        .fetch_one(&mut db.raw().await)
        .await
        .expect("row")
}

#[tokio::test]
async fn send_results_move_rows_out_of_the_unsent_list() {
    let db = open_store().await;
    let sent = one_reply(&db.store, "wamid.1").await;
    let held = one_reply(&db.store, "wamid.2").await;
    let failed = one_reply(&db.store, "wamid.3").await;
    let retried = one_reply(&db.store, "wamid.4").await;

    db.store
        .mark_sent(sent.id, "wamid.out.1")
        .await
        .expect("sent");
    db.store
        .mark_send_error(held.id, OutboxState::Held, "access token expired")
        .await
        .expect("held");
    db.store
        .mark_send_error(
            failed.id,
            OutboxState::Failed,
            "131047 outside the 24-hour window",
        )
        .await
        .expect("failed");
    db.store
        .mark_send_error(retried.id, OutboxState::Pending, "HTTP 503")
        .await
        .expect("retry");

    // Held rows (sending paused, e.g. an expired access token) are kept for later: a restart
    // tries them again. Sent and failed rows are never returned.
    let unsent = db.store.unsent_outbox().await.expect("read");
    let ids: Vec<i64> = unsent.iter().map(|row| row.id).collect();
    assert_eq!(ids, vec![held.id, retried.id]);
    assert_eq!(unsent[0].state, OutboxState::Held);
    assert_eq!(
        (unsent[1].attempts, unsent[1].error.as_deref()),
        (1, Some("HTTP 503"))
    );

    let error = db
        .store
        .mark_send_error(sent.id, OutboxState::Pending, "late")
        .await
        .expect_err("already sent");
    assert!(
        matches!(error, flowbot_store::StoreError::Conflict(_)),
        "{error}"
    );
    assert!(matches!(
        db.store.mark_sent(12345, "wamid.x").await,
        Err(flowbot_store::StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn delivery_statuses_never_move_backwards_and_failed_wins() {
    let db = open_store().await;
    let row = one_reply(&db.store, "wamid.1").await;
    db.store
        .mark_sent(row.id, "wamid.out.1")
        .await
        .expect("sent");

    assert!(db
        .store
        .record_delivery_status("wamid.out.1", "read", None)
        .await
        .expect("status"));
    assert!(db
        .store
        .record_delivery_status("wamid.out.1", "delivered", None)
        .await
        .expect("late delivered"));
    assert!(db
        .store
        .record_delivery_status("wamid.out.1", "sent", None)
        .await
        .expect("late sent"));
    assert_eq!(delivery(&db, row.id).await, (Some("read".into()), None));

    assert!(db
        .store
        .record_delivery_status(
            "wamid.out.1",
            "failed",
            Some("131026 message undeliverable")
        )
        .await
        .expect("failed"));
    assert!(db
        .store
        .record_delivery_status("wamid.out.1", "read", None)
        .await
        .expect("read after failed"));
    assert_eq!(
        delivery(&db, row.id).await,
        (
            Some("failed".into()),
            Some("131026 message undeliverable".into())
        )
    );

    assert!(!db
        .store
        .record_delivery_status("wamid.unknown", "read", None)
        .await
        .expect("status"));
}

#[tokio::test]
async fn pruning_drops_old_transcripts_but_keeps_dedupe_keys_seven_days() {
    let db = open_store().await;
    // Rows are received "now" (the real clock); prune_at moves the clock instead.
    let now = chrono::Utc::now();
    let done = insert_one(&db.store, "wamid.done", PHONE, at(0)).await;
    db.store
        .commit_turn(turn(done, PHONE, &["Hi", "Bye"], at(1)))
        .await
        .expect("commit");
    let recent = insert_one(&db.store, "wamid.recent", PHONE, at(2)).await;
    db.store
        .commit_turn(turn(recent, PHONE, &["Hi"], now))
        .await
        .expect("commit");
    insert_one(&db.store, "wamid.pending", PHONE, at(3)).await;

    // Everything is older than `before`, but the inbox rows are younger than seven days: only the
    // transcript of the old turn goes.
    let deleted = db
        .store
        .prune_at(now - Duration::hours(1), now)
        .await
        .expect("prune");
    assert_eq!(
        deleted, 5,
        "inbound + 2 outbound + 2 trace events of the old turn"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 3);
    // The recent turn is one row holding its four events.
    assert_eq!(db.count("SELECT COUNT(*) FROM transcript").await, 1);
    assert_eq!(db.count("SELECT SUM(events) FROM transcript").await, 4);
    let again = db
        .store
        .insert_inbound(vec![inbound("wamid.done", PHONE, "hi", at(0))])
        .await
        .expect("insert");
    assert_eq!(
        again,
        vec![InsertOutcome::Duplicate],
        "the dedupe key is still there"
    );

    // Eight days later the finished rows go, with their outbox rows (foreign key cascade); the
    // unfinished one stays.
    let later = now + Duration::days(8);
    let deleted = db.store.prune_at(later, later).await.expect("prune");
    assert_eq!(
        deleted,
        4 + 2,
        "the recent turn's transcript and two finished inbox rows"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbox WHERE state = 'pending'")
            .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(db.store.prune_at(later, later).await.expect("prune"), 0);
}

#[tokio::test]
async fn pruning_a_large_backlog_works_in_chunks() {
    let db = open_store().await;
    for n in 0..5 {
        let batch = (0..1_000)
            .map(|m| inbound(&format!("wamid.{n}.{m}"), PHONE, "hi", at(m)))
            .collect();
        db.store.insert_inbound(batch).await.expect("insert");
    }
    sqlx::query("UPDATE inbox SET state = 'done'")
        .execute(&mut db.raw().await)
        .await
        .expect("finish all");
    let later = chrono::Utc::now() + Duration::days(8);
    assert_eq!(db.store.prune_at(later, later).await.expect("prune"), 5_000);
    assert_eq!(db.count("SELECT COUNT(*) FROM inbox").await, 0);
}

#[tokio::test]
async fn a_started_attempt_makes_an_unsent_row_uncertain_and_survives_a_reopen() {
    let db = open_store().await;
    let untried = one_reply(&db.store, "wamid.1").await;
    let tried = one_reply(&db.store, "wamid.2").await;
    let retried = one_reply(&db.store, "wamid.3").await;
    let held = one_reply(&db.store, "wamid.4").await;
    assert!(!untried.is_uncertain());

    db.store.mark_send_started(tried.id).await.expect("started");
    db.store
        .mark_send_started(retried.id)
        .await
        .expect("started");
    db.store
        .mark_send_error(retried.id, OutboxState::Pending, "timed out")
        .await
        .expect("retry");
    db.store.mark_send_started(held.id).await.expect("started");
    db.store
        .mark_send_error(held.id, OutboxState::Held, "190")
        .await
        .expect("held");
    let first = db
        .store
        .outbox_row(tried.id)
        .await
        .expect("read")
        .expect("row")
        .attempt_started_at
        .expect("attempt time");
    // A second attempt keeps the first attempt's time.
    db.store.mark_send_started(tried.id).await.expect("again");

    db.store.close().await;
    let store = db.reopen().await;
    let unsent = store.unsent_outbox().await.expect("read");
    let uncertain: Vec<(i64, bool)> = unsent
        .iter()
        .map(|row| (row.id, row.is_uncertain()))
        .collect();
    assert_eq!(
        uncertain,
        vec![
            (untried.id, false),
            (tried.id, true),
            (retried.id, true),
            (held.id, true)
        ]
    );
    assert_eq!(unsent[1].attempt_started_at, Some(first));
    assert_eq!(unsent[3].state, OutboxState::Held);
}

#[tokio::test]
async fn a_status_naming_the_row_confirms_it_once_and_never_revives_it() {
    let db = open_store().await;
    let row = one_reply(&db.store, "wamid.1").await;
    db.store.mark_send_started(row.id).await.expect("started");

    assert!(db
        .store
        .confirm_sent(row.id, "wamid.out.1")
        .await
        .expect("confirm"));
    let stored = db
        .store
        .outbox_row(row.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(stored.state, OutboxState::Sent);
    assert_eq!(stored.provider_message_id.as_deref(), Some("wamid.out.1"));
    assert!(!stored.is_uncertain());
    assert!(db.store.unsent_outbox().await.expect("read").is_empty());
    // Its later statuses find it by the provider id.
    assert!(db
        .store
        .record_delivery_status("wamid.out.1", "delivered", None)
        .await
        .expect("status"));

    // Meta redelivers the status: nothing changes. The sender's own mark_sent may come too.
    assert!(!db
        .store
        .confirm_sent(row.id, "wamid.out.1")
        .await
        .expect("again"));
    db.store
        .mark_sent(row.id, "wamid.out.1")
        .await
        .expect("the sender's record");
    // A sent row cannot start another attempt.
    assert!(matches!(
        db.store.mark_send_started(row.id).await,
        Err(flowbot_store::StoreError::Conflict(_))
    ));

    // A failed row stays failed; an unknown row is NotFound.
    let failed = one_reply(&db.store, "wamid.2").await;
    db.store
        .mark_send_error(failed.id, OutboxState::Failed, "131047")
        .await
        .expect("failed");
    assert!(!db
        .store
        .confirm_sent(failed.id, "wamid.out.2")
        .await
        .expect("confirm"));
    assert_eq!(
        db.store
            .outbox_row(failed.id)
            .await
            .expect("read")
            .expect("row")
            .state,
        OutboxState::Failed
    );
    assert!(matches!(
        db.store.confirm_sent(9999, "wamid.x").await,
        Err(flowbot_store::StoreError::NotFound(_))
    ));
    assert!(matches!(
        db.store.mark_send_started(9999).await,
        Err(flowbot_store::StoreError::NotFound(_))
    ));
    assert!(db.store.outbox_row(9999).await.expect("read").is_none());

    // A held row is confirmed too (its send may have been accepted before the pause).
    let held = one_reply(&db.store, "wamid.3").await;
    db.store
        .mark_send_error(held.id, OutboxState::Held, "190")
        .await
        .expect("held");
    assert!(db
        .store
        .confirm_sent(held.id, "wamid.out.3")
        .await
        .expect("confirm"));
}
