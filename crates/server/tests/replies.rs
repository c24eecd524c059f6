//! From a webhook to a reply at the (fake) Cloud API: exact request JSON, duplicates, batches,
//! per-contact order, Graph failures (131047, 130429, 190), the 24-hour window, delivery statuses
//! and the local mode without an access token.

mod support;

use std::time::Duration;

use flowbot_testkit::fake_graph::GraphFailure;
use flowbot_testkit::webhook::{text_notification, PHONE_NUMBER_ID};
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_signed_fixture_gets_the_exact_reply_and_a_read_receipt() {
    let app = spawn_app().await;
    let response = app.post_signed(&fresh_fixture("text.json")).await;
    assert_eq!(response.status(), 200);
    let replies = app.wait_for_replies(1).await;
    assert_eq!(
        replies[0],
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919820000001",
            "type": "text",
            "text": { "body": "You said: Hi, I need help with my order" },
            "biz_opaque_callback_data": "flowbot-outbox-1"
        })
    );
    let request = &app.graph().requests()[0];
    assert_eq!(request.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    let place = app.stop().await;
    assert_eq!(
        place.graph.read_receipts(),
        vec![json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgUOUQ5NDIyMTIyQkRENUZDNTM1NEEA"
        })]
    );
    let outbox = query_outbox(&place).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].0, "sent");
    assert_eq!(
        outbox[0].1.as_deref(),
        request.answered_message_id.as_deref()
    );
}

#[tokio::test]
async fn a_duplicate_delivery_one_after_the_other_gets_one_reply() {
    let app = spawn_app().await;
    let body = text_notification("919820000001", "Anika Rao", "once", &wamid(), now());
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.wait_for_replies(1).await;
    assert_eq!(app.post_signed(&body).await.status(), 200);
    let metrics = app.metrics().await;
    let place = app.stop().await;
    assert_eq!(bodies(&place.graph.messages()), vec!["You said: once"]);
    assert!(
        metrics.contains(r#"flowbot_messages_in_total{type="text",outcome="duplicate"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"flowbot_messages_in_total{type="text",outcome="accepted"} 1"#));
}

#[tokio::test]
async fn simultaneous_duplicate_deliveries_get_one_reply() {
    let app = spawn_app().await;
    let body = text_notification(
        "919820000001",
        "Anika Rao",
        "twice at once",
        &wamid(),
        now(),
    );
    let (a, b, c) = tokio::join!(
        app.post_signed(&body),
        app.post_signed(&body),
        app.post_signed(&body)
    );
    assert_eq!(
        (a.status(), b.status(), c.status()),
        (
            200.try_into().unwrap(),
            200.try_into().unwrap(),
            200.try_into().unwrap()
        )
    );
    app.wait_for_replies(1).await;
    let metrics = app.metrics().await;
    let place = app.stop().await;
    assert_eq!(
        bodies(&place.graph.messages()),
        vec!["You said: twice at once"]
    );
    assert!(
        metrics.contains(r#"flowbot_messages_in_total{type="text",outcome="duplicate"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_batch_from_two_contacts_gets_two_replies() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_signed(&fresh_fixture("batch_two_messages.json"))
            .await
            .status(),
        200
    );
    let replies = app.wait_for_replies(2).await;
    let mut pairs: Vec<(String, String)> = replies
        .iter()
        .map(|r| {
            (
                r["to"].as_str().unwrap().to_string(),
                r["text"]["body"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("919820000001".to_string(), "You said: menu".to_string()),
            (
                "919820000002".to_string(),
                "You said: Is my policy active?".to_string()
            ),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn three_quick_messages_from_one_contact_are_processed_in_order() {
    let app = spawn_app().await;
    // Slow answers from Graph make later messages queue up behind earlier ones.
    app.graph().set_latency(Some(Duration::from_millis(50)));
    for text in ["one", "two", "three"] {
        assert_eq!(app.send_text("919820000001", text).await.0, 200);
    }
    let replies = app.wait_for_replies(3).await;
    assert_eq!(
        bodies(&replies),
        vec!["You said: one", "You said: two", "You said: three"]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_out_of_timestamp_order_runs_in_timestamp_order() {
    let app = spawn_app().await;
    let t = now();
    let notification = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550100200", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": "Anika Rao" }, "wa_id": "919820000001" }],
            "messages": [
                { "from": "919820000001", "id": wamid(), "timestamp": (t - 1).to_string(), "type": "text", "text": { "body": "second" } },
                { "from": "919820000001", "id": wamid(), "timestamp": (t - 2).to_string(), "type": "text", "text": { "body": "first" } }
            ]
        }}]}]
    });
    assert_eq!(
        app.post_signed(&serde_json::to_vec(&notification).unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        bodies(&app.wait_for_replies(2).await),
        vec!["You said: first", "You said: second"]
    );
    app.stop().await;
}

#[tokio::test]
async fn outside_window_131047_is_not_retried_and_flags_the_conversation() {
    let app = spawn_app().await;
    app.graph().fail_next(1, GraphFailure::OutsideWindow);
    assert_eq!(app.send_text("919820000001", "late").await.0, 200);
    // Wait for the refused send, then for a later message to go through (the sender moved on).
    assert_eq!(app.send_text("919820000001", "later").await.0, 200);
    assert_eq!(
        bodies(&app.wait_for_replies(1).await),
        vec!["You said: later"]
    );
    let metrics = app.metrics().await;
    let place = app.stop().await;
    assert_eq!(place.graph.rejected().len(), 1);
    assert!(
        metrics.contains(r#"flowbot_messages_out_total{type="text",outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"flowbot_conversations_flagged_total{reason="outside_window"} 1"#));
    let outbox = query_outbox(&place).await;
    assert_eq!(outbox[0].0, "failed");
    assert!(
        outbox[0]
            .3
            .as_deref()
            .unwrap_or_default()
            .contains("131047"),
        "{outbox:?}"
    );
    assert_eq!(outbox[1].0, "sent");
}

#[tokio::test]
async fn a_reply_outside_the_24_hour_window_is_refused_before_sending() {
    let app = spawn_app().await;
    let two_days_ago = now() - 2 * 24 * 3600;
    let body = text_notification(
        "919820000003",
        "Old Message",
        "from the past",
        &wamid(),
        two_days_ago,
    );
    assert_eq!(app.post_signed(&body).await.status(), 200);
    assert_eq!(app.send_text("919820000001", "fresh").await.0, 200);
    app.wait_for_replies(1).await;
    // The old message's turn may finish after the fresh one's: wait for its failure to be counted.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = app.metrics().await;
        if metrics.contains(r#"flowbot_conversations_flagged_total{reason="outside_window"} 1"#) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let place = app.stop().await;
    assert_eq!(bodies(&place.graph.messages()), vec!["You said: fresh"]);
    assert!(place.graph.rejected().is_empty(), "nothing was even tried");
}

#[tokio::test]
async fn throughput_130429_and_server_errors_are_retried_with_backoff() {
    let app = spawn_app().await;
    app.graph().fail_next(1, GraphFailure::Throughput);
    assert_eq!(app.send_text("919820000001", "busy?").await.0, 200);
    assert_eq!(
        bodies(&app.wait_for_replies(1).await),
        vec!["You said: busy?"]
    );
    let metrics = app.metrics().await;
    let place = app.stop().await;
    assert_eq!(place.graph.rejected().len(), 1);
    assert!(
        metrics.contains(r#"flowbot_messages_out_total{type="text",outcome="retried"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"flowbot_messages_out_total{type="text",outcome="sent"} 1"#));
    assert_eq!(query_outbox(&place).await[0].0, "sent");
}

#[tokio::test]
async fn an_expired_token_190_holds_replies_instead_of_dropping_them() {
    let app = spawn_app().await;
    // Two scripted failures: should the second message race the pause, it is refused too.
    app.graph().fail_next(2, GraphFailure::AuthExpired);
    assert_eq!(app.send_text("919820000001", "hello?").await.0, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.graph().rejected().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second message while paused is held without being tried.
    assert_eq!(app.send_text("919820000002", "anyone?").await.0, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = app.metrics().await;
        if metrics.contains(r#"flowbot_messages_out_total{type="text",outcome="held"} 2"#) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let place = app.stop().await;
    assert!((1..=2).contains(&place.graph.rejected().len()));
    assert!(place.graph.messages().is_empty());
    let states: Vec<String> = query_outbox(&place)
        .await
        .into_iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(states, vec!["held", "held"]);
}

#[tokio::test]
async fn a_status_notification_updates_the_outbox_row() {
    let app = spawn_app().await;
    assert_eq!(app.send_text("919820000001", "track me").await.0, 200);
    app.wait_for_replies(1).await;
    let sent_id = app.graph().requests()[0]
        .answered_message_id
        .clone()
        .unwrap();
    let status = String::from_utf8(fresh_fixture("status_delivered.json"))
        .unwrap()
        .replace(
            "wamid.HBgMOTE5ODIwMDAwMDAxFQIAERgSNzVFQUJGMDE3QjU1QUQ3OENEAA==",
            &sent_id,
        );
    assert_eq!(app.post_signed(status.as_bytes()).await.status(), 200);
    let metrics = app.metrics().await;
    let place = app.stop().await;
    let outbox = query_outbox(&place).await;
    assert_eq!(outbox[0].1.as_deref(), Some(sent_id.as_str()));
    assert_eq!(outbox[0].2.as_deref(), Some("delivered"));
    assert!(
        metrics.contains(r#"flowbot_delivery_statuses_total{status="delivered"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_image_where_text_is_asked_gets_the_retry_prompt() {
    let flow = r#"flow: name
triggers:
  default: true
steps:
  - id: ask_name
    ask:
      text: What is your name?
      retry: Please type your name.
    save: name
  - id: thanks
    say: "Thanks {{name}}"
"#;
    let app = spawn_with(Options {
        flows: vec![("name.yaml".into(), flow.into())],
        ..Options::default()
    })
    .await;
    assert_eq!(app.send_text("919820000001", "hi").await.0, 200);
    app.wait_for_replies(1).await;
    assert_eq!(
        app.post_signed(&fresh_fixture("sticker.json"))
            .await
            .status(),
        200
    );
    assert_eq!(app.send_text("919820000001", "Anika").await.0, 200);
    let replies = app.wait_for_replies(3).await;
    assert_eq!(
        bodies(&replies),
        vec![
            "What is your name?",
            "Please type your name.",
            "Thanks Anika"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn without_an_access_token_replies_are_recorded_not_sent() {
    let app = spawn_with(Options {
        access_token: false,
        ..Options::default()
    })
    .await;
    let (status, id) = app.send_text("919820000001", "local only").await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let answer: serde_json::Value = app
            .get(&format!("/local/replies?wamid={id}&phone=919820000001"))
            .await
            .json()
            .await
            .unwrap();
        if answer["state"] == "done" {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        answer["replies"],
        json!([{ "type": "text", "body": "You said: local only" }])
    );
    let place = app.stop().await;
    assert!(place.graph.messages().is_empty());
    assert!(place.graph.read_receipts().is_empty());
    let outbox = query_outbox(&place).await;
    assert_eq!(outbox[0].0, "sent");
    assert!(
        outbox[0].1.as_deref().unwrap().starts_with("local."),
        "{outbox:?}"
    );
}

#[tokio::test]
async fn held_replies_go_out_once_a_probe_send_succeeds_after_a_token_change() {
    use flowbot_engine::{Contact, Inbound, Outbound};
    use flowbot_server::metrics::Metrics;
    use flowbot_server::sender::{spawn_sender, Outlet, SendItem, SenderConfig};
    use flowbot_store::{InsertOutcome, NewInbound, Store, StoreOptions, TurnCommit};
    use flowbot_whatsapp::{CloudApiClient, CloudApiConfig};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("db.sqlite").display().to_string(),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let contact = Contact {
        phone: "919820000001".into(),
        name: None,
    };
    let message = Inbound::text(wamid(), "hi", chrono::Utc::now());
    let outcomes = store
        .insert_inbound(vec![NewInbound {
            channel: "whatsapp".into(),
            business_id: PHONE_NUMBER_ID.into(),
            contact: contact.clone(),
            message,
        }])
        .await
        .unwrap();
    let InsertOutcome::Inserted(inbox_id) = outcomes[0] else {
        panic!("inserted")
    };
    let rows = store
        .commit_turn(TurnCommit {
            inbox_id,
            channel: "whatsapp".into(),
            business_id: PHONE_NUMBER_ID.into(),
            contact,
            conversation: None,
            outbound: vec![
                Outbound::Text {
                    body: "first".into(),
                },
                Outbound::Text {
                    body: "second".into(),
                },
            ],
            trace: Vec::new(),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();

    // Graph accepts another token than ours until the operator rotates it.
    let graph = flowbot_testkit::fake_graph::FakeGraph::start_with_token("the-old-token").await;
    let client =
        CloudApiClient::new(CloudApiConfig::new("the-new-token").with_api_base(graph.url()))
            .unwrap();
    let metrics = std::sync::Arc::new(Metrics::new());
    let config = SenderConfig {
        probe_interval: Duration::from_millis(200),
        ..SenderConfig::default()
    };
    let (sender, task) = spawn_sender(
        store.clone(),
        Outlet::Cloud(client),
        metrics.clone(),
        config,
        16,
    );
    for row in rows {
        assert!(sender.submit(SendItem::Row(row)).await);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !metrics
        .encode()
        .contains(r#"flowbot_messages_out_total{type="text",outcome="held"} 2"#)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        graph.rejected().len(),
        1,
        "the second message is held without being tried"
    );

    graph.set_token("the-new-token");
    let sent = graph.wait_for_messages(2, WAIT).await;
    assert_eq!(bodies(&sent), vec!["first", "second"], "resumed in order");
    assert!(task.flush(WAIT).await);
    assert!(store.unsent_outbox().await.unwrap().is_empty());
    store.close().await;
}
