//! The Cloud API client against the fake Graph API over real HTTP on 127.0.0.1.

use std::time::Duration;

use flowbot_testkit::fake_graph::{FakeGraph, GraphFailure, DEFAULT_TOKEN};
use flowbot_whatsapp::client::{CloudApiClient, CloudApiConfig, SendError, DEFAULT_API_VERSION};
use flowbot_whatsapp::outbound::{OutboundMessage, ReplyButton};
use serde_json::json;

const PHONE_NUMBER_ID: &str = "123456789012345";
const ANIKA: &str = "919820000001";
const INBOUND_WAMID: &str = "wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgUOUQ5NDIyMTIyQkRENUZDNTM1NEEA";

fn client_for(graph: &FakeGraph, token: &str) -> CloudApiClient {
    let mut config = CloudApiConfig::new(token).with_api_base(graph.url());
    config.timeout = Duration::from_secs(5);
    CloudApiClient::new(config).unwrap_or_else(|error| panic!("{error}"))
}

fn hello() -> OutboundMessage {
    OutboundMessage::text("Hello from the bot")
}

#[tokio::test]
async fn send_returns_the_wamid_and_posts_the_exact_request() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);

    let first = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), Some(INBOUND_WAMID))
        .await;
    let second = client.send(PHONE_NUMBER_ID, ANIKA, &hello(), None).await;
    let (first, second) = match (first, second) {
        (Ok(first), Ok(second)) => (first, second),
        other => panic!("sends failed: {other:?}"),
    };
    assert!(first.message_id.starts_with("wamid."));
    assert_ne!(
        first.message_id, second.message_id,
        "every send gets a fresh wamid"
    );
    assert_eq!(first.wa_id.as_deref(), Some(ANIKA));

    let requests = graph.requests();
    assert_eq!(requests.len(), 2);
    let request = &requests[0];
    assert_eq!(
        request.path,
        format!("/{DEFAULT_API_VERSION}/{PHONE_NUMBER_ID}/messages")
    );
    assert_eq!(
        request.answered_message_id.as_deref(),
        Some(first.message_id.as_str())
    );
    assert_eq!(
        request.body,
        hello().to_request_json(ANIKA, Some(INBOUND_WAMID))
    );
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("authorization"),
        Some(format!("Bearer {DEFAULT_TOKEN}").as_str())
    );
    assert_eq!(header("content-type"), Some("application/json"));
    assert!(graph.read_receipts().is_empty());
}

#[tokio::test]
async fn send_with_callback_data_carries_it_and_refuses_more_than_512_characters() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    let sent = client
        .send_with_callback_data(
            PHONE_NUMBER_ID,
            ANIKA,
            &hello(),
            None,
            Some("flowbot-outbox-9"),
        )
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(
        graph.messages(),
        vec![hello().to_request_json_with_callback_data(ANIKA, None, Some("flowbot-outbox-9"))]
    );

    let too_long = "x".repeat(513);
    let refused = client
        .send_with_callback_data(PHONE_NUMBER_ID, ANIKA, &hello(), None, Some(&too_long))
        .await;
    assert!(matches!(refused, Err(SendError::Invalid(_))), "{refused:?}");
    assert_eq!(graph.messages().len(), 1, "nothing sent");
}

#[tokio::test]
async fn mark_read_is_recorded_apart_from_sends() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    client
        .mark_read(PHONE_NUMBER_ID, INBOUND_WAMID)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    client
        .mark_read_and_type(PHONE_NUMBER_ID, INBOUND_WAMID)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(graph.messages().is_empty());
    let receipts = graph.read_receipts();
    assert_eq!(receipts.len(), 2);
    assert_eq!(
        receipts[0],
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": INBOUND_WAMID})
    );
    assert_eq!(receipts[1]["typing_indicator"], json!({"type": "text"}));
}

#[tokio::test]
async fn wait_for_messages_wakes_on_concurrent_sends() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    let sender = tokio::spawn(async move {
        for n in 0..3 {
            let message = OutboundMessage::text(format!("bubble {n}"));
            let _ = client.send(PHONE_NUMBER_ID, ANIKA, &message, None).await;
        }
    });
    let messages = graph.wait_for_messages(3, Duration::from_secs(10)).await;
    let bodies: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["text"]["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["bubble 0", "bubble 1", "bubble 2"]);
    sender.await.unwrap_or_else(|error| panic!("{error}"));
    // Asking for more than will come returns what there is once the timeout passes.
    assert_eq!(
        graph
            .wait_for_messages(4, Duration::from_millis(50))
            .await
            .len(),
        3
    );
}

/// Whether an error is the expected variant.
type IsKind = fn(&SendError) -> bool;

#[tokio::test]
async fn each_graph_error_is_classified() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    let cases: [(GraphFailure, IsKind, bool, i64); 6] = [
        (
            GraphFailure::OutsideWindow,
            |e| matches!(e, SendError::OutsideWindow(_)),
            false,
            131047,
        ),
        (
            GraphFailure::Throughput,
            |e| matches!(e, SendError::Throughput(_)),
            true,
            130429,
        ),
        (
            GraphFailure::PairRateLimit,
            |e| matches!(e, SendError::PairRateLimit(_)),
            true,
            131056,
        ),
        (
            GraphFailure::AuthExpired,
            |e| matches!(e, SendError::AuthExpired(_)),
            false,
            190,
        ),
        (
            GraphFailure::InvalidParameter,
            |e| matches!(e, SendError::InvalidParameter(_)),
            false,
            100,
        ),
        (
            GraphFailure::Server,
            |e| matches!(e, SendError::Server(_)),
            true,
            131000,
        ),
    ];
    for (failure, is_expected_kind, retryable, code) in cases {
        graph.fail_next(1, failure);
        let error = match client.send(PHONE_NUMBER_ID, ANIKA, &hello(), None).await {
            Err(error) => error,
            Ok(sent) => panic!("{failure:?}: sent {sent:?}"),
        };
        assert!(
            is_expected_kind(&error),
            "{failure:?} classified as {error:?}"
        );
        assert_eq!(error.is_retryable(), retryable, "{failure:?}");
        assert_eq!(error.retry_after().is_some(), retryable, "{failure:?}");
        let graph_error = error
            .graph_error()
            .unwrap_or_else(|| panic!("{failure:?}: no graph error"));
        assert_eq!(graph_error.code, code, "{failure:?}");
        assert_eq!(graph_error.http_status, failure.response().0, "{failure:?}");
        assert!(graph_error.fbtrace_id.is_some(), "{failure:?}");
    }
    // The failure was used up: the next send goes through again.
    assert!(client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .is_ok());
    assert_eq!(graph.messages().len(), 1);
    assert_eq!(graph.rejected().len(), 6);
}

#[tokio::test]
async fn details_and_subcode_are_kept() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    graph.fail_next(1, GraphFailure::AuthExpired);
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    let graph_error = error
        .as_ref()
        .and_then(SendError::graph_error)
        .cloned()
        .unwrap_or_default();
    assert_eq!(graph_error.subcode, Some(463));

    graph.fail_next(1, GraphFailure::OutsideWindow);
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("131047") && text.contains("more than 24 hours"),
        "{text}"
    );
}

#[tokio::test]
async fn backoff_grows_for_rate_limits() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    graph.fail_next(1, GraphFailure::PairRateLimit);
    let error = match client.send(PHONE_NUMBER_ID, ANIKA, &hello(), None).await {
        Err(error) => error,
        Ok(sent) => panic!("sent {sent:?}"),
    };
    assert_eq!(error.retry_after(), Some(Duration::from_secs(6)));
    assert_eq!(error.backoff(1), Some(Duration::from_secs(24)));
    assert_eq!(error.backoff(30), Some(Duration::from_secs(15 * 60)));
}

#[tokio::test]
async fn wrong_token_is_auth_expired_and_never_leaks() {
    let graph = FakeGraph::start().await;
    let secret = "EAAG-super-secret-token-value-0123456789";
    let client = client_for(&graph, secret);
    let error = match client.send(PHONE_NUMBER_ID, ANIKA, &hello(), None).await {
        Err(error) => error,
        Ok(sent) => panic!("sent {sent:?}"),
    };
    assert!(matches!(error, SendError::AuthExpired(_)), "{error:?}");
    assert!(!error.is_retryable());
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
    let config = CloudApiConfig::new(secret);
    assert!(!format!("{config:?}").contains(secret));
}

#[tokio::test]
async fn token_echoed_by_graph_is_scrubbed() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    graph.fail_next_with(
        1,
        400,
        json!({"error": {"message": format!("Malformed access token {DEFAULT_TOKEN}"), "code": 190,
                          "error_data": {"details": DEFAULT_TOKEN}}}),
    );
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    let text = format!(
        "{error:?} {}",
        error.as_ref().map(ToString::to_string).unwrap_or_default()
    );
    assert!(text.contains("[REDACTED]"), "{text}");
    assert!(!text.contains(DEFAULT_TOKEN), "{text}");
}

#[tokio::test]
async fn invalid_message_is_refused_locally() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    let four_buttons = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: (0..4)
            .map(|i| ReplyButton::new(format!("b{i}"), format!("B{i}")))
            .collect(),
    };
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &four_buttons, None)
        .await
        .err();
    assert!(matches!(error, Some(SendError::Invalid(_))), "{error:?}");
    let error = client.send("123/../456", ANIKA, &hello(), None).await.err();
    assert!(
        matches!(error, Some(SendError::BadPhoneNumberId { .. })),
        "{error:?}"
    );
    assert!(
        graph.rejected().is_empty() && graph.messages().is_empty(),
        "nothing reached the API"
    );
}

#[tokio::test]
async fn timeout_and_refused_connection_are_transport_errors() {
    let graph = FakeGraph::start().await;
    graph.set_latency(Some(Duration::from_millis(500)));
    let mut config = CloudApiConfig::new(DEFAULT_TOKEN).with_api_base(graph.url());
    config.timeout = Duration::from_millis(100);
    let client = CloudApiClient::new(config).unwrap_or_else(|error| panic!("{error}"));
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(
        matches!(
            error,
            Some(SendError::Transport {
                timed_out: true,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(error.as_ref().is_some_and(SendError::is_retryable));

    let url = graph.url().to_owned();
    drop(graph);
    let client = client_for_url(&url);
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(
        matches!(error, Some(SendError::Transport { .. })),
        "{error:?}"
    );
}

fn client_for_url(url: &str) -> CloudApiClient {
    let mut config = CloudApiConfig::new(DEFAULT_TOKEN).with_api_base(url);
    config.timeout = Duration::from_secs(2);
    CloudApiClient::new(config).unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test]
async fn non_json_error_bodies_are_classified_by_status() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    graph.fail_next_with(1, 503, json!("upstream unavailable"));
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(matches!(error, Some(SendError::Server(_))), "{error:?}");
    graph.fail_next_with(1, 429, json!({}));
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(matches!(error, Some(SendError::Throughput(_))), "{error:?}");
}

#[tokio::test]
async fn scripted_failures_hit_sends_not_read_receipts_and_tokens_rotate() {
    let graph = FakeGraph::start().await;
    let client = client_for(&graph, DEFAULT_TOKEN);
    graph.fail_next(1, GraphFailure::Throughput);
    assert!(client
        .mark_read(PHONE_NUMBER_ID, INBOUND_WAMID)
        .await
        .is_ok());
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(matches!(error, Some(SendError::Throughput(_))), "{error:?}");

    graph.set_token("rotated-token");
    let error = client
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .err();
    assert!(
        matches!(error, Some(SendError::AuthExpired(_))),
        "{error:?}"
    );
    let rotated = client_for(&graph, "rotated-token");
    assert!(rotated
        .send(PHONE_NUMBER_ID, ANIKA, &hello(), None)
        .await
        .is_ok());
    assert_eq!(graph.messages().len(), 1);
}
