//! Effectively-once sends across a crash: every send carries `biz_opaque_callback_data`
//! (`flowbot-outbox-<id>`); a status webhook echoing it marks the row sent; at start-up a row
//! whose send was attempted but never confirmed waits a grace period for such a status (its
//! recipient's later rows wait behind it) and is sent again only when none came.

mod support;

use std::time::{Duration, Instant};

use flowbot_engine::{Contact, Inbound, Outbound};
use flowbot_server::Server;
use flowbot_store::{
    InsertOutcome, NewInbound, OutboxRow, OutboxState, Store, StoreOptions, TurnCommit,
};
use flowbot_testkit::fake_graph::FakeGraph;
use flowbot_testkit::webhook::{status_notification, APP_SECRET, PHONE_NUMBER_ID};
use support::*;

const ANIKA: &str = "919820000001";
const BRUNO: &str = "919820000002";
const CHEN: &str = "919820000003";

/// Commits a turn for `phone` with these text replies; returns the outbox rows.
async fn replies(store: &Store, phone: &str, texts: &[&str]) -> Vec<OutboxRow> {
    let contact = Contact {
        phone: phone.into(),
        name: None,
    };
    let outcomes = store
        .insert_inbound(vec![NewInbound {
            channel: "whatsapp".into(),
            business_id: PHONE_NUMBER_ID.into(),
            contact: contact.clone(),
            message: Inbound::text(wamid(), "hi", chrono::Utc::now()),
        }])
        .await
        .unwrap();
    let InsertOutcome::Inserted(inbox_id) = outcomes[0] else {
        panic!("inserted")
    };
    store
        .commit_turn(TurnCommit {
            inbox_id,
            channel: "whatsapp".into(),
            business_id: PHONE_NUMBER_ID.into(),
            contact,
            conversation: None,
            outbound: texts
                .iter()
                .map(|text| Outbound::Text {
                    body: (*text).into(),
                })
                .collect(),
            trace: Vec::new(),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap()
}

fn sent_bodies(graph: &FakeGraph) -> Vec<String> {
    bodies(&graph.messages())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_confirmed_send_is_not_repeated_and_an_unconfirmed_one_goes_after_the_grace(
) {
    let place = std::sync::Arc::new(Place {
        dir: tempfile::tempdir().unwrap(),
        graph: FakeGraph::start().await,
    });
    // What a run killed mid-send leaves: Anika's first reply and Chen's reply had their attempts
    // recorded, their answers never were. Graph took Anika's (a status will say so), not Chen's.
    let store = Store::open(
        &db_path(&place).display().to_string(),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let anika = replies(&store, ANIKA, &["anika 1", "anika 2"]).await;
    let bruno = replies(&store, BRUNO, &["bruno 1"]).await;
    let chen = replies(&store, CHEN, &["chen 1"]).await;
    store.mark_send_started(anika[0].id).await.unwrap();
    store.mark_send_started(chen[0].id).await.unwrap();
    store.close().await;

    let grace = Duration::from_millis(1500);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let webhook = format!("http://{addr}/webhooks/whatsapp");
    place.graph.send_statuses_to(&webhook, APP_SECRET);
    let mut options = Options::default();
    options.env.push((
        "FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS".into(),
        format!("{}", grace.as_secs_f64()),
    ));
    let config = config_for(&place, &options);
    let started = Instant::now();
    let server = Server::build(config, listener).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    // Bruno is not held up; Anika's and Chen's rows wait.
    let first = place.graph.wait_for_messages(1, WAIT).await;
    assert_eq!(bodies(&first), vec!["bruno 1"]);
    // Meta delivers the status of the send that was in flight at the crash.
    let status = status_notification(
        PHONE_NUMBER_ID,
        "wamid.ACCEPTED.BEFORE.THE.CRASH",
        "sent",
        ANIKA,
        Some(&format!("flowbot-outbox-{}", anika[0].id)),
    );
    let answer = reqwest::Client::new()
        .post(&webhook)
        .header("content-type", "application/json")
        .header(
            "X-Hub-Signature-256",
            flowbot_testkit::webhook::signature_header(APP_SECRET, &status),
        )
        .body(status)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(sent_bodies(&place.graph), vec!["bruno 1"], "still waiting");

    let all = place.graph.wait_for_messages(3, WAIT).await;
    assert!(
        started.elapsed() >= grace,
        "the uncertain rows waited out the grace"
    );
    let mut sent = bodies(&all);
    sent[1..].sort();
    assert_eq!(sent, vec!["bruno 1", "anika 2", "chen 1"]);
    // Every send names its row.
    for request in place.graph.messages() {
        assert!(
            request["biz_opaque_callback_data"]
                .as_str()
                .is_some_and(|data| data.starts_with("flowbot-outbox-")),
            "{request}"
        );
    }
    // Statuses for the new sends arrive too; then nothing else goes out.
    let deadline = Instant::now() + WAIT;
    while place.graph.statuses_delivered() < 3 {
        assert!(Instant::now() < deadline, "statuses not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        place.graph.messages().len(),
        3,
        "anika 1 was never sent again"
    );

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let store = Store::open(
        &db_path(&place).display().to_string(),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(store.unsent_outbox().await.unwrap().is_empty());
    let confirmed = store.outbox_row(anika[0].id).await.unwrap().unwrap();
    assert_eq!(confirmed.state, OutboxState::Sent);
    assert_eq!(
        confirmed.provider_message_id.as_deref(),
        Some("wamid.ACCEPTED.BEFORE.THE.CRASH")
    );
    assert_eq!(
        store
            .outbox_row(bruno[0].id)
            .await
            .unwrap()
            .unwrap()
            .delivery_status
            .as_deref(),
        Some("sent"),
        "the fake's status was recorded"
    );
    store.close().await;
}

#[tokio::test]
async fn a_status_with_callback_data_marks_a_pending_row_sent() {
    // Graph fails the send (retried with backoff); meanwhile a status names the row: the retry
    // is not made.
    let app = spawn_app().await;
    app.graph()
        .fail_next(1, flowbot_testkit::fake_graph::GraphFailure::Server);
    assert_eq!(app.send_text(ANIKA, "hello").await.0, 200);
    let deadline = Instant::now() + WAIT;
    while app.graph().rejected().is_empty() {
        assert!(Instant::now() < deadline, "the send was not tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let callback = app.graph().rejected()[0].body["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = status_notification(
        PHONE_NUMBER_ID,
        "wamid.TOOK.IT.AFTER.ALL",
        "delivered",
        ANIKA,
        Some(&callback),
    );
    assert_eq!(app.post_signed(&status).await.status(), 200);
    // A status naming no row of ours (or another sender's data) is fine too.
    let stray = status_notification(
        PHONE_NUMBER_ID,
        "wamid.X",
        "sent",
        ANIKA,
        Some("flowbot-outbox-999999"),
    );
    assert_eq!(app.post_signed(&stray).await.status(), 200);
    let other = status_notification(PHONE_NUMBER_ID, "wamid.Y", "sent", ANIKA, Some("crm-42"));
    assert_eq!(app.post_signed(&other).await.status(), 200);
    // The retry's backoff (about a second) passes without a send.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        app.graph().messages().is_empty(),
        "{:?}",
        app.graph().messages()
    );
    let place = app.stop().await;
    let outbox = query_outbox(&place).await;
    assert_eq!(
        outbox,
        vec![(
            "sent".to_string(),
            Some("wamid.TOOK.IT.AFTER.ALL".to_string()),
            Some("delivered".to_string()),
            None
        )]
    );
}
