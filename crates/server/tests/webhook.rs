//! The webhook's doors: the handshake, signatures, the body limit, malformed bodies, every fixture
//! type, and the loopback rule without an app secret.

mod support;

use axum::body::Body;
use flowbot_server::{app, Server, ServerError};
use flowbot_testkit::webhook::{signature_header, text_notification, APP_SECRET};
use http::{Request, StatusCode};
use support::*;
use tower::ServiceExt;

#[tokio::test]
async fn the_handshake_answers_the_challenge_and_refuses_a_wrong_token() {
    let app = spawn_app().await;
    let ok = app
        .get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
        .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444");

    let wrong = app
        .get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
        .await;
    assert_eq!(wrong.status(), 403);
    let wrong_mode = app
        .get("/webhooks/whatsapp?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1")
        .await;
    assert_eq!(wrong_mode.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn bad_and_missing_signatures_are_401_and_nothing_is_stored() {
    let app = spawn_app().await;
    let body = text_notification("919820000001", "Anika Rao", "Hi", &wamid(), now());
    assert_eq!(app.post_webhook(&body, None).await.status(), 401);
    let wrong = signature_header("another secret", &body);
    assert_eq!(app.post_webhook(&body, Some(&wrong)).await.status(), 401);
    assert_eq!(
        app.post_webhook(&body, Some("sha256=zz")).await.status(),
        401
    );
    // Signed over other bytes (the same JSON re-serialized) is wrong too.
    let reserialized =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    let signature = signature_header(APP_SECRET, &reserialized);
    assert_eq!(
        app.post_webhook(&body, Some(&signature)).await.status(),
        401
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"flowbot_messages_in_total{type="unread",outcome="rejected"} 4"#),
        "{metrics}"
    );
    let place = app.stop().await;
    assert!(place.graph.messages().is_empty());
    assert!(query_outbox(&place).await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let mut body = text_notification("919820000001", "Anika Rao", "Hi", &wamid(), now());
    body.resize(1024 * 1024 + 1, b' ');
    let signature = signature_header(APP_SECRET, &body);
    assert_eq!(
        app.post_webhook(&body, Some(&signature)).await.status(),
        413
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    for body in [&b"{not json"[..], b"[]", br#"{"object":"page","entry":[]}"#] {
        assert_eq!(
            app.post_signed(body).await.status(),
            400,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let (status, _) = app.send_text("919820000001", "still there?").await;
    assert_eq!(status, 200);
    assert_eq!(
        bodies(&app.wait_for_replies(1).await),
        vec!["You said: still there?"]
    );
    app.stop().await;
}

#[tokio::test]
async fn every_fixture_type_is_accepted() {
    let app = spawn_app().await;
    let folder = format!(
        "{}/../../tests/fixtures/whatsapp",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures: {names:?}");
    for name in &names {
        let body = fresh_fixture(name);
        let status = app.post_signed(&body).await.status();
        assert_eq!(status, 200, "{name}");
    }
    let metrics = app.metrics().await;
    for kind in [
        "text",
        "image",
        "location",
        "contacts",
        "reaction",
        "button",
        "list",
        "unsupported",
    ] {
        assert!(
            metrics.contains(&format!(
                r#"flowbot_messages_in_total{{type="{kind}",outcome="accepted"}}"#
            )),
            "{kind} not accepted:\n{metrics}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_an_app_secret_signatures_are_not_checked_on_loopback_and_other_addresses_are_refused(
) {
    let options = Options {
        app_secret: false,
        ..Options::default()
    };
    let app = spawn_with(options.clone()).await;
    let body = text_notification("919820000001", "Anika Rao", "unsigned", &wamid(), now());
    assert_eq!(app.post_webhook(&body, None).await.status(), 200);
    assert_eq!(
        bodies(&app.wait_for_replies(1).await),
        vec!["You said: unsigned"]
    );
    let place = app.stop().await;

    let config = config_for(&place, &options);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = Server::build(config, listener)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(refused, ServerError::UnsignedNotLoopback { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("FLOWBOT_WHATSAPP_APP_SECRET"));
}

#[tokio::test]
async fn handlers_answer_without_a_socket() {
    let place = std::sync::Arc::new(Place {
        dir: tempfile::tempdir().unwrap(),
        graph: flowbot_testkit::fake_graph::FakeGraph::start().await,
    });
    let config = config_for(&place, &Options::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::build(config, listener).await.unwrap();
    let router = app(server.state());
    let response = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = router
        .oneshot(
            Request::post("/webhooks/whatsapp")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.run_until_stopped(async {}).await.unwrap();
}
