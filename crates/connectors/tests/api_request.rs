//! Issue 3, the External API Request step, over real HTTP: whole turns of small flows driven by
//! [`flowbot_connectors::LiveEffects`] against a recording server on 127.0.0.1. Each test asserts
//! what reached the server, byte for byte where escaping is concerned, and what came out of the
//! turn (saved variables, outcome, messages, trace).

mod support;

use std::time::Duration;

use flowbot_engine::TraceEvent;
use serde_json::json;
use support::*;

/// [`ODD`] percent-encoded for a path segment or a query value written in the URL.
const ODD_IN_URL: &str =
    "a%2Bb%26c%3Dd%3Fe%23f%2Fg%22h%5Ci%0Aj%20%F0%9F%98%80%20%E0%A4%AA%E0%A5%8D%E0%A4%B0%E0%A4%BF%E0%A4%AF%E0%A4%BE";
/// [`ODD`] form-encoded (the `query:` map and form bodies): a space is `+`, a `+` is `%2B`.
const ODD_IN_FORM: &str =
    "a%2Bb%26c%3Dd%3Fe%23f%2Fg%22h%5Ci%0Aj+%F0%9F%98%80+%E0%A4%AA%E0%A5%8D%E0%A4%B0%E0%A4%BF%E0%A4%AF%E0%A4%BE";
/// [`ODD`] as a JSON string.
const ODD_IN_JSON: &str = r#""a+b&c=d?e#f/g\"h\\i\nj 😀 प्रिया""#;

fn ok_json() -> Reply {
    Reply::json(200, json!({"ok": true}))
}

/// Neither the trace, nor the messages, nor the kept variables show a secret.
fn assert_no_secrets(run: &Run, secrets: &[&str]) {
    let trace = run.trace_json();
    let outbound = serde_json::to_string(&run.result.outbound).expect("serializes");
    let vars = serde_json::to_string(&run.result.conversation).expect("serializes");
    for secret in secrets {
        assert!(!trace.contains(secret), "{secret} in the trace: {trace}");
        assert!(
            !outbound.contains(secret),
            "{secret} in the messages: {outbound}"
        );
        assert!(
            !vars.contains(secret),
            "{secret} in the conversation: {vars}"
        );
    }
    assert!(
        trace.contains("[redacted]"),
        "the trace shows where the secret was: {trace}"
    );
}

// ----- methods -----

#[tokio::test]
async fn every_method_reaches_the_server_as_written() {
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let server = TestServer::replying(ok_json()).await;
        let step = r#"
  - id: call
    api_request:
      method: METHOD
      url: "BASE/orders/{{order_id}}"
    save:
      ok: ok
      status: $status
"#;
        let run = run(&flow(&server.url, &step.replace("METHOD", method)), "hi").await;
        let received = server.only();
        assert_eq!(
            (received.method.as_str(), received.target.as_str()),
            (method, "/orders/A-17")
        );
        assert_eq!(received.header("accept"), Some("application/json"));
        assert_eq!(
            (run.var("ok"), run.var("status")),
            (json!(true), json!(200)),
            "{method}"
        );
    }
}

// ----- auth -----

/// A server that echoes the credentials it got back in a header and in the body, so the test
/// shows that the trace redacts answers too.
async fn echoing_server() -> TestServer {
    TestServer::start(|_, received| {
        let echoed = format!(
            "{} {}",
            received.header("authorization").unwrap_or(""),
            received.target
        );
        Reply::json(200, json!({"name": "Priya", "echo": echoed})).header("x-echo", &echoed)
    })
    .await
}

#[tokio::test]
async fn bearer_auth_sends_the_secret_and_the_trace_hides_it() {
    let server = echoing_server().await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/me
      auth: { bearer: "{{secrets.shop_token}}" }
    save:
      name: name
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(
        server.only().header("authorization"),
        Some(format!("Bearer {SHOP_TOKEN}").as_str())
    );
    assert_eq!(run.var("name"), json!("Priya"));
    assert_no_secrets(&run, &[SHOP_TOKEN]);
}

#[tokio::test]
async fn basic_auth_sends_user_and_password_and_the_trace_hides_them() {
    let server = echoing_server().await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/me
      auth: { basic: { user: shop, password: "{{secrets.shop_password}}" } }
    save:
      name: name
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    // base64("shop:pw: s3cr3t!")
    assert_eq!(
        server.only().header("authorization"),
        Some("Basic c2hvcDpwdzogczNjcjN0IQ==")
    );
    assert_eq!(run.var("name"), json!("Priya"));
    assert_no_secrets(&run, &["pw: s3cr3t!", "c2hvcDpwdzogczNjcjN0IQ=="]);
}

#[tokio::test]
async fn api_key_in_a_header_is_sent_and_hidden() {
    let server = echoing_server().await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/me
      auth: { api_key: { header: X-Api-Key, value: "{{secrets.shop_token}}" } }
    save:
      name: name
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(server.only().header("x-api-key"), Some(SHOP_TOKEN));
    assert_eq!(run.var("name"), json!("Priya"));
    assert_no_secrets(&run, &[SHOP_TOKEN]);
}

#[tokio::test]
async fn api_key_in_the_query_is_sent_and_hidden() {
    let server = echoing_server().await;
    let step = r#"
  - id: call
    api_request:
      url: "BASE/me?lang=en"
      auth: { api_key: { query: api_key, value: "{{secrets.shop_token}}" } }
    save:
      name: name
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(
        server.only().target,
        format!("/me?lang=en&api_key={SHOP_TOKEN}")
    );
    assert_eq!(run.var("name"), json!("Priya"));
    assert_no_secrets(&run, &[SHOP_TOKEN]);
}

// ----- escaping by place -----

#[tokio::test]
async fn odd_values_are_percent_encoded_in_the_path_and_query_and_form_encoded_in_the_query_map() {
    let server = TestServer::replying(ok_json()).await;
    let step = r#"
  - id: call
    api_request:
      url: "BASE/customers/{{odd}}?q={{odd}}&fixed=1"
      query:
        name: "{{odd}}"
        n: "{{count}}"
    save:
      ok: ok
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(
        server.only().target,
        format!("/customers/{ODD_IN_URL}?q={ODD_IN_URL}&fixed=1&n=3&name={ODD_IN_FORM}")
    );
    assert_eq!(run.var("ok"), json!(true));
}

#[tokio::test]
async fn a_json_body_is_serialized_from_values_and_a_lone_placeholder_keeps_its_type() {
    let server = TestServer::replying(ok_json()).await;
    let step = r#"
  - id: call
    api_request:
      method: POST
      url: BASE/orders
      body:
        json:
          note: "{{odd}}"
          count: "{{count}}"
          label: "n={{count}}"
          items: ["{{odd}}", 2, true, null]
          customer: { phone: "{{contact.phone}}" }
    save:
      ok: ok
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    let received = server.only();
    let expected = format!(
        r#"{{"note":{ODD_IN_JSON},"count":3,"label":"n=3","items":[{ODD_IN_JSON},2,true,null],"customer":{{"phone":"{PHONE}"}}}}"#
    );
    assert_eq!(received.body_text(), expected);
    assert_eq!(received.header("content-type"), Some("application/json"));
    let parsed: serde_json::Value = serde_json::from_slice(&received.body).expect("valid JSON");
    assert_eq!(parsed["note"], json!(ODD));
    assert_eq!(run.var("ok"), json!(true));
}

#[tokio::test]
async fn a_form_body_is_form_encoded() {
    let server = TestServer::replying(ok_json()).await;
    let step = r#"
  - id: call
    api_request:
      method: POST
      url: BASE/forms
      body:
        form:
          note: "{{odd}}"
          n: "{{count}}"
    save:
      ok: ok
"#;
    run(&flow(&server.url, step), "hi").await;
    let received = server.only();
    assert_eq!(received.body_text(), format!("n=3&note={ODD_IN_FORM}"));
    assert_eq!(
        received.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn a_raw_body_is_sent_as_rendered_with_its_content_type() {
    let server = TestServer::replying(Reply::new(200, "text/plain", "stored ✓")).await;
    let step = r#"
  - id: call
    api_request:
      method: PUT
      url: BASE/notes
      body:
        raw:
          content_type: "text/plain; charset=utf-8"
          text: "note: {{odd}}"
      response: text
    save:
      reply: $body
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    let received = server.only();
    assert_eq!(received.body, format!("note: {ODD}").into_bytes());
    assert_eq!(
        received.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(run.var("reply"), json!("stored ✓"));
}

// ----- reading the answer -----

#[tokio::test]
async fn save_paths_read_hits_misses_nulls_zero_false_wildcards_and_the_specials() {
    let body = json!({
        "data": [{"id": 11, "name": "प्रिया", "zero": 0, "no": false, "nothing": null}, {"id": 12}],
        "meta": {"count": 2}
    });
    let server =
        TestServer::replying(Reply::json(200, body.clone()).header("X-Request-Id", "req-42")).await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/customers
    save:
      name: data[0].name
      zero: data[0].zero
      no: data[0].no
      nothing: data[0].nothing
      miss: data[5].id
      ids: data[*].id
      total: $.meta.count
      status: $status
      request_id: $headers.x-request-id
      failure: $error
      raw: $body
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(run.outcome(), "ok");
    assert_eq!(run.var("name"), json!("प्रिया"));
    assert_eq!((run.var("zero"), run.var("no")), (json!(0), json!(false)));
    assert_eq!(
        (run.var("nothing"), run.var("miss")),
        (json!(null), json!(null))
    );
    assert_eq!(run.var("ids"), json!([11, 12]));
    assert_eq!(run.var("total"), json!(2));
    assert_eq!(run.var("status"), json!(200));
    assert_eq!(run.var("request_id"), json!("req-42"));
    assert_eq!(run.var("failure"), json!(null));
    assert_eq!(run.var("raw"), json!(body.to_string()));
}

/// The call step, then `found` (goes to done) and `none_found`, so the outcome shows in the text.
const EMPTY_BRANCHES: &str = r#"
    on:
      empty: none_found
  - id: found
    say: "Found"
    next: done
  - id: none_found
    say: "No orders"
"#;

#[tokio::test]
async fn no_content_204_is_the_empty_outcome() {
    let server = TestServer::replying(Reply::empty(204)).await;
    let step = format!("  - id: call\n    api_request:\n      url: BASE/orders\n    save:\n      status: $status{EMPTY_BRANCHES}");
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(run.outcome(), "empty");
    assert_eq!(run.texts(), ["No orders", "Anything else?"]);
    assert_eq!(run.var("status"), json!(204));
}

#[tokio::test]
async fn a_first_save_path_finding_nothing_is_the_empty_outcome() {
    // The first path as written (not in alphabetical order) decides.
    let server =
        TestServer::replying(Reply::json(200, json!({"data": [], "currency": "INR"}))).await;
    let step = format!(
        "  - id: call\n    api_request:\n      url: BASE/orders\n    save:\n      order_id: data[0].id\n      currency: currency{EMPTY_BRANCHES}"
    );
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(run.outcome(), "empty");
    assert_eq!(run.texts(), ["No orders", "Anything else?"]);
    assert_eq!(
        (run.var("order_id"), run.var("currency")),
        (json!(null), json!("INR"))
    );
}

#[tokio::test]
async fn a_first_save_path_finding_something_goes_on() {
    let server = TestServer::replying(Reply::json(
        200,
        json!({"data": [{"id": 7}], "currency": "INR"}),
    ))
    .await;
    let step = format!(
        "  - id: call\n    api_request:\n      url: BASE/orders\n    save:\n      order_id: data[0].id\n      currency: currency{EMPTY_BRANCHES}"
    );
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(run.outcome(), "ok");
    assert_eq!(run.texts(), ["Found", "Anything else?"]);
    assert_eq!(run.var("order_id"), json!(7));
}

// ----- retries -----

#[tokio::test]
async fn a_500_is_retried_and_the_retry_succeeds() {
    let server = TestServer::start(|n, _| {
        if n == 0 {
            Reply::json(500, json!({"error": "boom"}))
        } else {
            Reply::json(200, json!({"id": 9}))
        }
    })
    .await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/orders
      retry: { attempts: 2, backoff: 10ms }
    save:
      id: id
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(server.received().len(), 2);
    assert_eq!(run.attempts(), 2);
    assert_eq!(run.var("id"), json!(9));
}

const ON_ERROR: &str = r#"
    on:
      error: failed
  - id: ok
    say: "Done"
    next: done
  - id: failed
    say: "It failed"
"#;

#[tokio::test]
async fn a_post_is_not_retried_without_retry_unsafe() {
    let server = TestServer::replying(Reply::json(500, json!({"error": "boom"}))).await;
    let step = format!(
        "  - id: call\n    api_request:\n      method: POST\n      url: BASE/orders\n      retry: {{ attempts: 2, backoff: 10ms }}\n    save:\n      failure: $error{ON_ERROR}"
    );
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(server.received().len(), 1);
    assert_eq!(run.texts(), ["It failed", "Anything else?"]);
    assert_eq!(run.var("failure"), json!("http_status"));
}

#[tokio::test]
async fn a_post_is_retried_with_retry_unsafe() {
    let server = TestServer::replying(Reply::json(503, json!({"error": "busy"}))).await;
    let step = format!(
        "  - id: call\n    api_request:\n      method: POST\n      url: BASE/orders\n      retry: {{ attempts: 2, backoff: 10ms }}\n      retry_unsafe: true\n    save:\n      failure: $error{ON_ERROR}"
    );
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(server.received().len(), 3);
    assert_eq!(run.texts(), ["It failed", "Anything else?"]);
}

#[tokio::test]
async fn retry_after_of_a_429_is_honoured() {
    let server = TestServer::start(|n, _| {
        if n == 0 {
            Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "1")
        } else {
            Reply::json(200, json!({"id": 1}))
        }
    })
    .await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/orders
      retry: { attempts: 1, backoff: 10ms }
    save:
      id: id
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(server.received().len(), 2);
    assert_eq!(run.var("id"), json!(1));
    assert!(
        run.elapsed >= Duration::from_secs(1),
        "waited only {:?}",
        run.elapsed
    );
}

// ----- failures -----

#[tokio::test]
async fn a_slow_server_ends_in_the_timeout_outcome_at_the_timeout() {
    let server = TestServer::replying(ok_json().after(Duration::from_secs(5))).await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/slow
      timeout: 1s
    save:
      failure: $error
    on:
      timeout: slow
  - id: ok
    say: "Done"
    next: done
  - id: slow
    say: "The shop is slow today"
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    // A correctness bound (the step ends at its timeout, not when the server answers), not a benchmark.
    assert!(
        run.elapsed < Duration::from_secs(3),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.elapsed >= Duration::from_millis(900),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(run.outcome(), "timeout");
    assert_eq!(run.texts(), ["The shop is slow today", "Anything else?"]);
    assert_eq!(run.var("failure"), json!("timeout"));
}

#[tokio::test]
async fn an_html_502_page_without_an_on_branch_sends_the_fallback_and_ends() {
    let page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
    let server = TestServer::replying(Reply::new(502, "text/html", page)).await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/orders
    save:
      id: id
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    assert_eq!(run.outcome(), "error");
    assert_eq!(run.texts(), [fallback_text()]);
    assert!(run.result.conversation.is_none(), "the conversation ended");
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_error_whether_announced_or_streamed() {
    for reply in [
        Reply::json(200, json!({})),
        Reply::json(200, json!({})).chunked(),
    ] {
        let chunked = reply.chunked;
        let mut big = reply;
        big.body = vec![b' '; 5 * 1024 * 1024];
        let server = TestServer::replying(big).await;
        let step = format!("  - id: call\n    api_request:\n      url: BASE/export\n    save:\n      failure: $error{ON_ERROR}");
        let run = run(&flow(&server.url, &step), "hi").await;
        assert_eq!(run.var("failure"), json!("too_large"), "chunked: {chunked}");
        assert_eq!(run.texts(), ["It failed", "Anything else?"]);
    }
}

#[tokio::test]
async fn a_redirect_within_the_same_origin_is_followed() {
    let server = TestServer::start(|n, _| {
        if n == 0 {
            Reply::empty(301).header("Location", "/v2/orders")
        } else {
            Reply::json(200, json!({"id": 3}))
        }
    })
    .await;
    let step = r#"
  - id: call
    api_request:
      url: BASE/orders
    save:
      id: id
"#;
    let run = run(&flow(&server.url, step), "hi").await;
    let targets: Vec<String> = server.received().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/orders", "/v2/orders"]);
    assert_eq!(run.var("id"), json!(3));
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    // Same IP, another port: another origin.
    let elsewhere = TestServer::replying(ok_json()).await;
    let location = format!("{}/collect?token=x", elsewhere.url);
    let server = TestServer::replying(Reply::empty(302).header("Location", &location)).await;
    let step = format!("  - id: call\n    api_request:\n      url: BASE/orders\n    save:\n      failure: $error\n      status: $status{ON_ERROR}");
    let run = run(&flow(&server.url, &step), "hi").await;
    assert_eq!(server.received().len(), 1);
    assert!(
        elsewhere.received().is_empty(),
        "the other origin was called"
    );
    assert_eq!(
        (run.var("failure"), run.var("status")),
        (json!("http_status"), json!(302))
    );
    assert_eq!(run.texts(), ["It failed", "Anything else?"]);
}

#[tokio::test]
async fn a_header_holding_a_line_break_from_customer_text_is_never_sent() {
    let server = TestServer::replying(ok_json()).await;
    let step = format!(
        "  - id: call\n    api_request:\n      url: BASE/notes\n      headers:\n        X-Note: \"{{{{message.text}}}}\"\n    save:\n      failure: $error{ON_ERROR}"
    );
    let run = run(&flow(&server.url, &step), "hello\r\nX-Evil: 1").await;
    assert!(
        server.received().is_empty(),
        "something reached the server: {:#?}",
        server.received()
    );
    assert_eq!(run.texts(), ["It failed", "Anything else?"]);
    assert_eq!(run.var("failure"), json!("invalid_request"));
}

#[tokio::test]
async fn the_cloud_metadata_address_is_refused() {
    let step = format!(
        "  - id: call\n    api_request:\n      url: http://169.254.169.254/latest/meta-data/iam\n      timeout: 2s\n    save:\n      failure: $error{ON_ERROR}"
    );
    let run = run(&flow("unused", &step), "hi").await;
    assert_eq!(run.var("failure"), json!("connection"));
    let errors: Vec<String> = run
        .result
        .trace
        .iter()
        .filter_map(|event| match event {
            TraceEvent::Http(http) => http.error.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(errors, ["connection: destination refused by egress policy: 169.254.169.254 is a cloud metadata address"]);
}

#[tokio::test]
async fn a_refused_connection_is_an_error_naming_host_and_port_only() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let step = format!(
        "  - id: call\n    api_request:\n      url: \"http://127.0.0.1:{port}/orders\"\n      auth: {{ api_key: {{ query: key, value: \"{{{{secrets.shop_token}}}}\" }} }}\n    save:\n      failure: $error{ON_ERROR}"
    );
    let run = run(&flow("unused", &step), "hi").await;
    assert_eq!(run.var("failure"), json!("connection"));
    assert!(
        run.trace_json()
            .contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{}",
        run.trace_json()
    );
    assert_no_secrets(&run, &[SHOP_TOKEN]);
}
