//! Committing turns: everything a turn changes lands together or not at all, also when a write in
//! the middle fails; crash recovery semantics; conversation variables round-trip exactly;
//! conversations, contacts, transcripts and handoff release read back what was written.

mod common;

use chrono::Duration;
use common::{at, conversation, insert_one, open_store, turn, CHANNEL};
use flowbot_engine::{Outbound, Status};
use flowbot_store::{InboxState, OutboxState, TranscriptEntry};
use serde_json::{json, Map, Value};

const PHONE: &str = "919820000001";

#[tokio::test]
async fn a_turn_commits_conversation_contact_outbox_transcript_and_done() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    let commit = turn(inbox_id, PHONE, &["Hi Asha", "Reply CALLBACK"], at(3));
    let rows = db.store.commit_turn(commit.clone()).await.expect("commit");

    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].sequence, rows[1].sequence), (0, 1));
    assert_eq!(
        rows[0].message,
        Outbound::Text {
            body: "Hi Asha".into()
        }
    );
    assert_eq!(rows[0].state, OutboxState::Pending);
    assert_eq!(rows[0].phone, PHONE);
    assert_eq!(rows[0].business_id, common::BUSINESS);
    assert_eq!(
        rows[0].answers_message_at,
        Some(at(0)),
        "new rows carry the answered message's time (the sender's window check needs no read)"
    );
    let unsent = db.store.unsent_outbox().await.expect("read");
    assert_eq!(
        unsent.iter().map(|row| row.id).collect::<Vec<_>>(),
        rows.iter().map(|row| row.id).collect::<Vec<_>>()
    );
    assert!(
        unsent.iter().all(|row| row.answers_message_at.is_none()),
        "rows read back do not know it: the sender reads the contact"
    );

    assert_eq!(
        db.store
            .load_conversation(CHANNEL, PHONE)
            .await
            .expect("read"),
        commit.conversation
    );
    let contact = db
        .store
        .contact(CHANNEL, PHONE)
        .await
        .expect("read")
        .expect("contact exists");
    assert_eq!(contact.name.as_deref(), Some("Asha Rao"));
    assert_eq!(
        contact.last_inbound_at,
        Some(at(0)),
        "the message's timestamp, not the commit time"
    );
    assert!(db.store.unfinished_inbox().await.expect("read").is_empty());

    let transcript = db.store.transcript(PHONE, None).await.expect("read");
    let kinds: Vec<&str> = transcript
        .iter()
        .map(|event| match &event.entry {
            TranscriptEntry::Inbound { .. } => "inbound",
            TranscriptEntry::Outbound { .. } => "outbound",
            TranscriptEntry::Trace { .. } => "trace",
        })
        .collect();
    assert_eq!(kinds, ["inbound", "outbound", "outbound", "trace", "trace"]);
    assert!(transcript
        .iter()
        .all(|event| event.inbox_id == Some(inbox_id) && event.at == at(3)));
    match &transcript[0].entry {
        TranscriptEntry::Inbound { message, contact } => {
            assert_eq!(message.id, "wamid.1");
            assert_eq!(contact.phone, PHONE);
        }
        other => panic!("expected the inbound message first, got {other:?}"),
    }
    assert!(db
        .store
        .transcript(PHONE, Some(at(4)))
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        db.store
            .transcript(PHONE, Some(at(3)))
            .await
            .expect("read")
            .len(),
        5
    );
}

/// A database written before turns were stored as one row holds one row per event: those are read
/// as they were, in order with the newer one-row turns, and pruning counts events in both.
#[tokio::test]
async fn per_event_rows_of_older_databases_still_read_beside_turn_rows() {
    let db = open_store().await;
    let old = insert_one(&db.store, "wamid.old", PHONE, at(0)).await;
    let old_turn = turn(old, PHONE, &["Old reply"], at(1));
    let mut entries = vec![
        (
            "inbound",
            serde_json::to_string(&TranscriptEntry::Inbound {
                message: common::inbound("wamid.old", PHONE, "hi", at(0)).message,
                contact: old_turn.contact.clone(),
            }),
        ),
        (
            "outbound",
            serde_json::to_string(&TranscriptEntry::Outbound {
                message: old_turn.outbound[0].clone(),
            }),
        ),
    ];
    for event in &old_turn.trace {
        entries.push((
            "trace",
            serde_json::to_string(&TranscriptEntry::Trace {
                event: event.clone(),
            }),
        ));
    }
    let mut raw = db.raw().await;
    for (kind, entry) in entries {
        // The columns of migration 0001 only, as an older version wrote them.
        sqlx::query(
            "INSERT INTO transcript (channel, phone, inbox_id, at, kind, entry)
             VALUES (?, ?, ?, '2024-05-01T09:00:01.000000000Z', ?, ?)",
        )
        .bind(CHANNEL)
        .bind(PHONE)
        .bind(old)
        .bind(kind)
        .bind(entry.expect("encodes"))
        .execute(&mut raw)
        .await
        .expect("old row");
    }
    let new = insert_one(&db.store, "wamid.new", PHONE, at(2)).await;
    db.store
        .commit_turn(turn(new, PHONE, &["New one", "New two"], at(3)))
        .await
        .expect("commit");

    let transcript = db.store.transcript(PHONE, None).await.expect("read");
    let seen: Vec<(Option<i64>, String)> = transcript
        .iter()
        .map(|event| {
            let what = match &event.entry {
                TranscriptEntry::Inbound { message, .. } => format!("in {}", message.id),
                TranscriptEntry::Outbound { message } => format!("out {message:?}"),
                TranscriptEntry::Trace { .. } => "trace".into(),
            };
            (event.inbox_id, what)
        })
        .collect();
    let text = |body: &str| format!("{:?}", Outbound::Text { body: body.into() });
    assert_eq!(
        seen,
        vec![
            (Some(old), "in wamid.old".into()),
            (Some(old), format!("out {}", text("Old reply"))),
            (Some(old), "trace".into()),
            (Some(old), "trace".into()),
            (Some(new), "in wamid.new".into()),
            (Some(new), format!("out {}", text("New one"))),
            (Some(new), format!("out {}", text("New two"))),
            (Some(new), "trace".into()),
            (Some(new), "trace".into()),
        ]
    );
    assert_eq!(transcript[0].at, at(1));
    assert_eq!(transcript[8].at, at(3));
    assert_eq!(
        db.store
            .transcript(PHONE, Some(at(2)))
            .await
            .expect("read")
            .len(),
        5,
        "only the new turn"
    );

    // Both turns' inbox rows are younger than seven days: only transcript events go.
    let now = chrono::Utc::now();
    assert_eq!(db.store.prune_at(at(2), now).await.expect("prune"), 4);
    assert_eq!(db.store.prune_at(at(4), now).await.expect("prune"), 5);
    assert!(db
        .store
        .transcript(PHONE, None)
        .await
        .expect("read")
        .is_empty());
}

/// Nothing of a turn is visible after a write in its middle failed: here the first transcript
/// insert (after the inbox, conversation, contact and outbox writes) is made to fail by a trigger.
#[tokio::test]
async fn a_turn_that_fails_half_way_leaves_no_trace() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    sqlx::query("CREATE TRIGGER sabotage BEFORE INSERT ON transcript BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        .execute(&mut db.raw().await)
        .await
        .expect("trigger");

    let error = db
        .store
        .commit_turn(turn(inbox_id, PHONE, &["Hi", "Bye"], at(3)))
        .await
        .expect_err("sabotaged");
    assert!(error.to_string().contains("injected failure"), "{error}");

    assert_eq!(
        db.store
            .load_conversation(CHANNEL, PHONE)
            .await
            .expect("read"),
        None
    );
    assert!(db
        .store
        .contact(CHANNEL, PHONE)
        .await
        .expect("read")
        .is_none());
    assert!(db.store.unsent_outbox().await.expect("read").is_empty());
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM transcript").await, 0);
    let unfinished = db.store.unfinished_inbox().await.expect("read");
    assert_eq!(unfinished.len(), 1, "the message will be processed again");
    assert_eq!(unfinished[0].state, InboxState::Pending);

    // Once the fault is gone, the same turn commits.
    sqlx::query("DROP TRIGGER sabotage")
        .execute(&mut db.raw().await)
        .await
        .expect("drop trigger");
    db.store
        .commit_turn(turn(inbox_id, PHONE, &["Hi", "Bye"], at(4)))
        .await
        .expect("commit");
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 2);
}

/// The second outbox row fails after the first was written: the first goes too.
#[tokio::test]
async fn a_turn_failing_between_two_outbox_rows_keeps_neither() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    sqlx::query(
        "CREATE TRIGGER sabotage BEFORE INSERT ON outbox WHEN NEW.sequence = 1
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&mut db.raw().await)
    .await
    .expect("trigger");
    db.store
        .commit_turn(turn(inbox_id, PHONE, &["Hi", "Bye"], at(3)))
        .await
        .expect_err("sabotaged");
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM conversations").await, 0);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbox WHERE state = 'pending'")
            .await,
        1
    );
}

/// A failing turn in the middle of other writes does not take them down with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_turn_does_not_fail_the_writes_committed_with_it() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    sqlx::query("CREATE TRIGGER sabotage BEFORE INSERT ON transcript BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        .execute(&mut db.raw().await)
        .await
        .expect("trigger");
    let mut inserts = Vec::new();
    for n in 0..20 {
        let store = db.store.clone();
        inserts.push(tokio::spawn(async move {
            store
                .insert_inbound(vec![common::inbound(
                    &format!("wamid.other.{n}"),
                    "919820000002",
                    "hi",
                    at(n),
                )])
                .await
        }));
    }
    let failed = db
        .store
        .commit_turn(turn(inbox_id, PHONE, &["Hi"], at(3)))
        .await;
    for insert in inserts {
        assert!(insert.await.expect("task").is_ok());
    }
    assert!(failed.is_err());
    assert_eq!(
        db.count("SELECT COUNT(*) FROM inbox WHERE state = 'pending'")
            .await,
        21
    );
}

#[tokio::test]
async fn a_message_is_never_answered_twice() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    db.store
        .commit_turn(turn(inbox_id, PHONE, &["Hi"], at(3)))
        .await
        .expect("commit");
    let error = db
        .store
        .commit_turn(turn(inbox_id, PHONE, &["Hi"], at(4)))
        .await
        .expect_err("already done");
    assert!(
        matches!(error, flowbot_store::StoreError::Conflict(_)),
        "{error}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 1);
}

#[tokio::test]
async fn after_a_crash_only_unfinished_messages_and_unsent_replies_come_back() {
    let db = open_store().await;
    let answered = insert_one(&db.store, "wamid.answered", PHONE, at(0)).await;
    let in_flight = insert_one(&db.store, "wamid.in_flight", "919820000002", at(1)).await;
    let pending = insert_one(&db.store, "wamid.pending", "919820000003", at(2)).await;
    let rows = db
        .store
        .commit_turn(turn(answered, PHONE, &["one", "two"], at(3)))
        .await
        .expect("commit");
    db.store
        .mark_processing(in_flight)
        .await
        .expect("processing");
    db.store
        .mark_sent(rows[0].id, "wamid.out.1")
        .await
        .expect("sent");
    // The process dies: no close, no more writes.
    let path = db.path.clone();
    drop(db.store);

    let store = common::open_at(&path).await;
    let unfinished: Vec<i64> = store
        .unfinished_inbox()
        .await
        .expect("read")
        .iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(unfinished, vec![in_flight, pending]);
    let unsent: Vec<i64> = store
        .unsent_outbox()
        .await
        .expect("read")
        .iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(unsent, vec![rows[1].id], "the sent reply is not sent again");
}

/// The server writes nothing before a fresh message's turn: the turn commits a pending row
/// directly. Only a turn resumed after a crash counts an attempt (`mark_processing`), and that
/// count survives the next crash, so start-up can give up on a message that keeps stopping the
/// process; reading the unfinished rows counts nothing.
#[tokio::test]
async fn a_fresh_turn_needs_no_processing_mark_and_resumed_attempts_survive_crashes() {
    let db = open_store().await;
    let fresh = insert_one(&db.store, "wamid.fresh", PHONE, at(0)).await;
    db.store
        .commit_turn(turn(fresh, PHONE, &["Hi"], at(1)))
        .await
        .expect("a pending row commits");

    let poison = insert_one(&db.store, "wamid.poison", "919820000002", at(2)).await;
    let path = db.path.clone();
    // The ingress's run stops the process: nothing was counted.
    drop(db.store);
    for start in 1..=3_u32 {
        let store = common::open_at(&path).await;
        let rows = store.unfinished_inbox().await.expect("read");
        let rows_again = store.unfinished_inbox().await.expect("read");
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].id, rows[0].attempts), (poison, start - 1));
        assert_eq!(rows_again[0].attempts, start - 1, "reading counts nothing");
        // The resumed turn counts its attempt, then the process stops again.
        store.mark_processing(poison).await.expect("processing");
        drop(store);
    }
    let store = common::open_at(&path).await;
    let rows = store.unfinished_inbox().await.expect("read");
    assert_eq!(
        (rows[0].state, rows[0].attempts),
        (InboxState::Processing, 3)
    );
    store
        .commit_turn(turn(poison, "919820000002", &["At last"], at(3)))
        .await
        .expect("a processing row commits");
    let again = store
        .commit_turn(turn(poison, "919820000002", &["Twice"], at(4)))
        .await
        .expect_err("done");
    assert_eq!(
        again,
        flowbot_store::StoreError::Conflict(format!("inbox row {poison} is already done"))
    );
}

#[tokio::test]
async fn variables_round_trip_exactly() {
    let db = open_store().await;
    let inbox_id = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    let vars: Map<String, Value> = match json!({
        "zip": "007",
        "count": 3,
        "big": 9007199254740993u64,
        "negative": -12,
        "ratio": 0.1,
        "tiny": 1e-300,
        "name": "Ünïcödé 名前 🙂",
        "quote": "a \"b\" \\ c\nd",
        "empty": "",
        "nothing": null,
        "flags": [true, false],
        "nested": {"z": 1, "a": {"deep": ["x", {"y": 2.5}]}},
        "last": "order is kept",
    }) {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    };
    let mut commit = turn(inbox_id, PHONE, &[], at(3));
    commit.conversation = Some(conversation(vars.clone(), at(3)));
    db.store.commit_turn(commit).await.expect("commit");

    let loaded = db
        .store
        .load_conversation(CHANNEL, PHONE)
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(loaded.vars, vars);
    let keys: Vec<&String> = loaded.vars.keys().collect();
    let expected: Vec<&String> = vars.keys().collect();
    assert_eq!(keys, expected, "key order");
    assert_eq!(loaded.vars["zip"], Value::String("007".into()));
    assert_eq!(loaded.vars["big"].as_u64(), Some(9007199254740993));
}

#[tokio::test]
async fn an_ended_conversation_is_deleted_and_handoffs_are_released() {
    let db = open_store().await;
    let first = insert_one(&db.store, "wamid.1", PHONE, at(0)).await;
    db.store
        .commit_turn(turn(first, PHONE, &["Hi"], at(1)))
        .await
        .expect("commit");
    let second = insert_one(&db.store, "wamid.2", PHONE, at(2)).await;
    let mut ended = turn(second, PHONE, &["Bye"], at(3));
    ended.conversation = None;
    db.store.commit_turn(ended).await.expect("commit");
    assert_eq!(
        db.store
            .load_conversation(CHANNEL, PHONE)
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        db.store
            .contact(CHANNEL, PHONE)
            .await
            .expect("read")
            .and_then(|contact| contact.last_inbound_at),
        Some(at(2))
    );

    assert!(
        !db.store
            .release_handoff(CHANNEL, PHONE)
            .await
            .expect("release"),
        "nothing to release"
    );
    let third = insert_one(&db.store, "wamid.3", PHONE, at(4)).await;
    let mut handoff = turn(third, PHONE, &["A colleague will reply"], at(5));
    if let Some(conversation) = handoff.conversation.as_mut() {
        conversation.status = Status::Handoff;
    }
    db.store.commit_turn(handoff).await.expect("commit");
    let listed = db.store.list_conversations().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].name.as_deref()),
        ("handoff", Some("Asha Rao"))
    );
    assert_eq!(listed[0].expires_at, at(5) + Duration::hours(4));

    assert!(db
        .store
        .release_handoff(CHANNEL, PHONE)
        .await
        .expect("release"));
    assert_eq!(
        db.store
            .load_conversation(CHANNEL, PHONE)
            .await
            .expect("read"),
        None
    );
    assert!(db
        .store
        .list_conversations()
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn the_last_inbound_time_never_moves_backwards() {
    let db = open_store().await;
    let newer = insert_one(&db.store, "wamid.newer", PHONE, at(100)).await;
    let older = insert_one(&db.store, "wamid.older", PHONE, at(50)).await;
    db.store
        .commit_turn(turn(newer, PHONE, &[], at(101)))
        .await
        .expect("commit");
    db.store
        .commit_turn(turn(older, PHONE, &[], at(102)))
        .await
        .expect("commit");
    let contact = db
        .store
        .contact(CHANNEL, PHONE)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(contact.last_inbound_at, Some(at(100)));
}

/// A turn's transcript row reads its messages from its own inbox and outbox rows, matched by
/// contact too: if its inbox row is gone and the id is used again (an emptied inbox restarts its
/// ids), another contact's message must not show up in this contact's transcript.
#[tokio::test]
async fn a_transcript_never_shows_another_contacts_messages() {
    let db = open_store().await;
    let other = "919820000002";
    let mine = insert_one(&db.store, "wamid.mine", PHONE, at(0)).await;
    db.store
        .commit_turn(turn(mine, PHONE, &["for me"], at(1)))
        .await
        .expect("commit");
    let theirs = insert_one(&db.store, "wamid.theirs", other, at(2)).await;
    db.store
        .commit_turn(turn(theirs, other, &["for them"], at(3)))
        .await
        .expect("commit");
    // As if my inbox row had been pruned and its id given to the other contact's message.
    let mut raw = db.raw().await;
    sqlx::query("UPDATE transcript SET inbox_id = ? WHERE phone = ?")
        .bind(theirs)
        .bind(PHONE)
        .execute(&mut raw)
        .await
        .expect("update");
    let transcript = db.store.transcript(PHONE, None).await.expect("read");
    assert!(!transcript.is_empty(), "the trace events still read");
    for event in &transcript {
        match &event.entry {
            TranscriptEntry::Inbound { message, .. } => {
                panic!("another contact's message: {message:?}")
            }
            TranscriptEntry::Outbound { message } => panic!("another contact's reply: {message:?}"),
            TranscriptEntry::Trace { .. } => {}
        }
    }
}
