//! Operating the server: health, readiness and metrics; graceful shutdown and restart without
//! losing or repeating work; flow reloads; start-up refusals; `flowbot send`.

mod support;

use std::time::Duration;

use axum::routing::get;
use flowbot_engine::Outbound;
use flowbot_server::{run, send_local, LocalMessage, ReplyState, Server, ServerError};
use flowbot_testkit::webhook::APP_SECRET;
use secrecy::SecretString;
use support::*;

#[tokio::test]
async fn healthz_readyz_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);

    assert_eq!(app.send_text("919820000001", "count me").await.0, 200);
    app.wait_for_replies(1).await;
    let metrics = app.get("/metrics").await;
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    let text = metrics.text().await.unwrap();
    for name in [
        r#"flowbot_messages_in_total{type="text",outcome="accepted"} 1"#,
        r#"flowbot_messages_out_total{type="text",outcome="sent"} 1"#,
        "flowbot_turn_duration_seconds_count 1",
        r#"flowbot_queue_depth{queue="worker"}"#,
        r#"flowbot_queue_depth{queue="sender"}"#,
        "flowbot_zoho_token_refreshes_total 0",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    app.stop().await;
}

/// A slow outside API, so turns are in flight when shutdown comes.
async fn slow_api() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::Json(serde_json::json!({ "status": "ok" }))
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn shutdown_while_processing_loses_nothing_and_restart_repeats_nothing() {
    let url = slow_api().await;
    let flow = format!(
        r#"flow: slow
triggers:
  default: true
steps:
  - id: call
    api_request:
      url: "{url}"
      timeout: 5s
    save:
      status: status
  - id: done
    say: "Checked ({{{{status}}}}): {{{{message.text}}}}"
"#
    );
    let options = Options {
        flows: vec![("slow.yaml".into(), flow)],
        workers: 1,
        ..Options::default()
    };
    let app = spawn_with(options.clone()).await;
    let contacts = [
        "919820000011",
        "919820000012",
        "919820000013",
        "919820000014",
    ];
    for phone in contacts {
        assert_eq!(app.send_text(phone, "hello").await.0, 200);
    }
    // Every message is acknowledged (durable); stop while the first turn waits on the slow API.
    let place = app.stop().await;
    let before_restart = place.graph.messages().len();
    assert!(
        before_restart < contacts.len(),
        "shutdown came too late to test anything"
    );

    let app = spawn_in(place, options).await;
    app.wait_for_replies(contacts.len()).await;
    let place = app.stop().await;
    let replies = place.graph.messages();
    let mut recipients: Vec<&str> = replies.iter().map(|r| r["to"].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(
        recipients, contacts,
        "each contact answered exactly once: {replies:#?}"
    );
    assert!(
        bodies(&replies).iter().all(|b| b == "Checked (ok): hello"),
        "{replies:#?}"
    );
}

#[tokio::test]
async fn reloading_flows_keeps_conversations_and_a_bad_reload_keeps_the_old_flows() {
    let app = spawn_app().await;
    assert_eq!(app.send_text("919820000001", "a").await.0, 200);
    app.wait_for_replies(1).await;

    let flows = app.place.dir.path().join("flows");
    std::fs::write(
        flows.join("echo.yaml"),
        ECHO_FLOW.replace("You said:", "Echo:"),
    )
    .unwrap();
    assert_eq!(app.handle.reload_flows().unwrap(), 1);
    assert_eq!(app.send_text("919820000001", "b").await.0, 200);
    app.wait_for_replies(2).await;

    std::fs::write(
        flows.join("broken.yaml"),
        "flow: broken\nsteps:\n  - id: x\n    goto: nowhere\n",
    )
    .unwrap();
    let error = app.handle.reload_flows().unwrap_err();
    assert!(error.to_string().contains("broken.yaml"), "{error}");
    assert_eq!(app.send_text("919820000001", "c").await.0, 200);
    let replies = app.wait_for_replies(3).await;
    assert_eq!(bodies(&replies), vec!["You said: a", "Echo: b", "Echo: c"]);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"flowbot_flow_reloads_total{outcome="error"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn invalid_flows_stop_start_up_with_the_diagnostics() {
    let place = Place {
        dir: tempfile::tempdir().unwrap(),
        graph: flowbot_testkit::fake_graph::FakeGraph::start().await,
    };
    let options = Options {
        flows: vec![(
            "bad.yaml".into(),
            "flow: bad\nsteps:\n  - id: a\n    goto: nowhere\n".into(),
        )],
        ..Options::default()
    };
    let config = config_for(&place, &options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = Server::build(config.clone(), listener)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ServerError::Flows(_)));
    let text = error.to_string();
    assert!(text.contains("bad.yaml:4:"), "{text}");

    let mut check = config;
    check.check_only = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(matches!(
        run(check, listener, std::future::pending()).await,
        Err(ServerError::Flows(_))
    ));
}

#[tokio::test]
async fn check_only_validates_and_returns_without_serving() {
    let place = Place {
        dir: tempfile::tempdir().unwrap(),
        graph: flowbot_testkit::fake_graph::FakeGraph::start().await,
    };
    let mut config = config_for(&place, &Options::default());
    config.check_only = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    run(config, listener, std::future::pending()).await.unwrap();
    assert!(
        !db_path(&place).exists(),
        "check mode does not create the database"
    );
}

#[tokio::test]
async fn flowbot_send_posts_a_signed_message_and_returns_the_replies() {
    let app = spawn_with(Options {
        access_token: false,
        ..Options::default()
    })
    .await;
    let mut message = LocalMessage::new(app.url.clone(), "919820000001", "Hi there");
    message.name = Some("Priya Sharma".into());
    message.app_secret = Some(SecretString::from(APP_SECRET));
    let report = send_local(&message).await.unwrap();
    assert_eq!(report.state, ReplyState::Done);
    assert_eq!(
        report.replies,
        vec![Outbound::Text {
            body: "You said: Hi there".into()
        }]
    );

    message.app_secret = Some(SecretString::from("a wrong secret"));
    let error = send_local(&message).await.unwrap_err();
    assert!(
        error.to_string().contains("FLOWBOT_WHATSAPP_APP_SECRET"),
        "{error}"
    );
    app.stop().await;
}

/// Two servers on one database would each answer a contact from their own cached state: the
/// second is refused at start with a clear error, and the database is free again once the first
/// stopped.
#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused() {
    let first = spawn_app().await;
    let config = config_for(&first.place, &Options::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = Server::build(config, listener)
        .await
        .err()
        .expect("the second server is refused");
    assert!(matches!(refused, ServerError::Lock(_)), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("another flowbot serve is already using the database"),
        "{refused}"
    );
    let place = first.stop().await;
    let again = spawn_in(place, Options::default()).await;
    again.stop().await;
}
