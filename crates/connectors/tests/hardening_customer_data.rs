//! Issue 9, hostile customer text and SSRF: what a customer types is data wherever it lands. Each
//! test runs a whole turn with the real [`flowbot_connectors::LiveEffects`] against the recording
//! server on 127.0.0.1 and compares what reached the wire byte for byte.
//!
//! Already covered in `api_request.rs` (not repeated here): CR/LF from customer text in a header
//! (`a_header_holding_a_line_break_from_customer_text_is_never_sent`), the metadata address
//! (`the_cloud_metadata_address_is_refused`), redirects to another origin
//! (`a_redirect_to_another_origin_is_not_followed`), and `+ & = ? # / " \` in every place
//! (`odd_values_are_percent_encoded_...`, `a_json_body_is_serialized_...`). The egress rules for
//! names that resolve to link-local addresses are unit tests in `src/egress.rs`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use flowbot_connectors::{EgressPolicy, HttpExecutor, LiveEffects};
use flowbot_engine::{drive, Contact, Engine, EngineConfig, Inbound, Secrets, TraceEvent};
use flowbot_flow::FlowSet;
use flowbot_zoho::{MemoryTokenStore, ReqwestTransport};
use serde_json::{json, Value};
use support::*;

/// Every place a customer's text can land in one request, then a reply quoting it.
const EVERY_PLACE: &str = r#"
  - id: call
    api_request:
      method: POST
      url: "BASE/notes/{{message.text}}/items?q={{message.text}}"
      headers:
        X-Note: "{{message.text}}"
      query:
        t: "{{message.text}}"
      body:
        json:
          text: "{{message.text}}"
    save:
      failure: $error
    on:
      error: failed
  - id: quote
    say: "Got: {{message.text}}"
    next: done
  - id: failed
    say: "It failed"
"#;

/// The path and query a customer's `text` must arrive as.
fn expected_target(text: &str) -> String {
    let in_url = flowbot_flow::template::encode_url_component(text);
    let in_form: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("/notes/{in_url}/items?q={in_url}&t={in_form}")
}

async fn assert_lands_as_data(text: &str) -> Run {
    let server = TestServer::replying(Reply::json(200, json!({"ok": true}))).await;
    let run = run(&flow(&server.url, EVERY_PLACE), text).await;
    let received = server.only();
    assert_eq!(received.target, expected_target(text), "path and query");
    assert_eq!(received.header("x-note"), Some(text), "header as written");
    let body: Value = serde_json::from_slice(&received.body).expect("the body is JSON");
    assert_eq!(body, json!({ "text": text }), "JSON body");
    assert_eq!(
        received.body,
        serde_json::to_vec(&json!({ "text": text })).expect("serializes"),
        "JSON body, byte for byte"
    );
    let wire = format!("{received:?}");
    assert!(
        !wire.contains(SHOP_TOKEN),
        "a secret reached the wire: {wire}"
    );
    assert_eq!(run.texts()[0], format!("Got: {text}"));
    run
}

#[tokio::test]
async fn template_syntax_typed_by_a_customer_is_never_evaluated() {
    for text in [
        "{{secrets.shop_token}}",
        "{{{secrets.shop_token}}}",
        "{{#each this}}{{@key}}={{this}};{{/each}}",
        "{{> partial}}{{lookup secrets \"shop_token\"}}",
        "{{upper contact.phone}}",
    ] {
        let run = assert_lands_as_data(text).await;
        assert!(
            !run.trace_json().contains(SHOP_TOKEN),
            "secret in the trace for {text:?}"
        );
    }
}

#[tokio::test]
async fn zero_width_and_right_to_left_characters_arrive_unchanged() {
    // Zero-width space and joiner, BOM, right-to-left override and isolate, Arabic and Hebrew.
    assert_lands_as_data(
        "a\u{200B}b\u{200D}c\u{FEFF}\u{202E}evil\u{202C}\u{2067}مرحبا שלום\u{2069}",
    )
    .await;
}

#[tokio::test]
async fn slashes_question_marks_and_hashes_stay_inside_their_path_segment() {
    for text in [
        "../../admin",
        "a/../../b?x=1#frag",
        "%2e%2e%2fadmin",
        "..\\..\\admin",
        "//evil.example/x",
        "@evil.example:81",
    ] {
        assert_lands_as_data(text).await;
    }
}

#[tokio::test]
async fn a_dot_segment_from_a_customer_never_moves_the_request_up_the_path() {
    // `/notes/{{x}}/items` with x = ".." would become `/notes/items` once the URL is normalised
    // (and `%2e%2e` is a dot segment too), so such a value is refused, never sent elsewhere.
    for text in [".", "..", "%2E%2e", ".%2e"] {
        let server = TestServer::replying(Reply::json(200, json!({"ok": true}))).await;
        let step = r#"
  - id: call
    api_request:
      url: "BASE/users/{{message.text}}/orders"
    save:
      failure: $error
    on:
      error: failed
  - id: ok
    say: "Done"
    next: done
  - id: failed
    say: "It failed"
"#;
        let run = run(&flow(&server.url, step), text).await;
        let received = server.received();
        assert!(
            received.iter().all(|r| r.target.starts_with("/users/")),
            "{text:?} moved the request: {received:#?}"
        );
        if received.is_empty() {
            assert_eq!(run.var("failure"), json!("invalid_request"), "{text:?}");
        }
    }
}

#[tokio::test]
async fn a_64_kib_message_is_sent_whole_in_the_body_and_split_in_replies() {
    let server = TestServer::replying(Reply::json(200, json!({"ok": true}))).await;
    let step = r#"
  - id: call
    api_request:
      method: POST
      url: "BASE/notes"
      body:
        json:
          text: "{{message.text}}"
    save:
      failure: $error
  - id: quote
    say: "{{message.text}}"
    next: done
"#;
    let word = "word\u{200B}ش ";
    let text = word.repeat(64 * 1024 / word.len() + 1);
    let run = run(&flow(&server.url, step), &text).await;
    let body: Value = serde_json::from_slice(&server.only().body).expect("JSON");
    assert_eq!(body["text"], json!(text));
    let replies = run.texts();
    // 64 KiB of 10-byte, 7-character words: about 46,000 characters, so at least 12 messages.
    assert!(replies.len() >= 12, "{} replies", replies.len());
    for reply in &replies[..replies.len() - 1] {
        assert!(
            reply.chars().count() <= 4096,
            "{} characters",
            reply.chars().count()
        );
    }
    // A split happens at a space, which the split drops; words are never cut or changed.
    let rejoined = replies[..replies.len() - 1].join(" ");
    let sent: Vec<&str> = rejoined.split_whitespace().collect();
    let typed: Vec<&str> = text.split_whitespace().collect();
    assert!(
        sent == typed,
        "{} words sent, {} typed",
        sent.len(),
        typed.len()
    );
}

// ----- SSRF: the host comes from flow text, config or secrets, never from customer data -----

/// Runs one turn of `flow_yaml` with these secrets and the default egress policy.
async fn run_with_secrets(flow_yaml: &str, text: &str, secrets: &[(&str, &str)]) -> Run {
    let loaded = flowbot_flow::load_flow("test.yaml", flow_yaml);
    let flow = loaded
        .flow
        .unwrap_or_else(|| panic!("the flow does not load: {:#?}", loaded.diagnostics));
    let secrets = Secrets::from_map(
        secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    let engine = Engine::new(
        FlowSet::from_flows(vec![flow]),
        EngineConfig::default(),
        secrets,
    );
    let effects: LiveEffects<ReqwestTransport, MemoryTokenStore> = LiveEffects {
        http: HttpExecutor::new(EgressPolicy::default()).expect("an HTTP client"),
        zoho: None::<Arc<_>>,
    };
    let contact = Contact {
        phone: PHONE.into(),
        name: Some("Priya".into()),
    };
    let turn = engine.start_turn(None, &contact, &Inbound::text("wamid.1", text, Utc::now()));
    let started = std::time::Instant::now();
    let result = drive(turn, &effects).await;
    Run {
        result,
        elapsed: started.elapsed(),
    }
}

fn diagnostics(flow_yaml: &str) -> String {
    let loaded = flowbot_flow::load_flow("test.yaml", flow_yaml);
    loaded
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_customer_value_right_after_the_host_is_a_validate_error() {
    for url in [
        "https://api.example.com{{message.text}}/x",
        "https://api.example.com:{{message.text}}/x",
        "https://{{message.text}}.example.com/x",
        "https://user:{{message.text}}@api.example.com/x",
        // After a trusted base, the value would extend the host (`.evil.example`) or the port.
        "{{secrets.shop_base}}{{message.text}}",
        "{{vars.base}}{{message.text}}/x",
        "{{base}}{{order_id}}",
    ] {
        let yaml = format!(
            "flow: t\ntriggers:\n  default: true\nvars:\n  base: \"https://api.example.com\"\n  order_id: \"1\"\nsteps:\n  - id: call\n    api_request:\n      url: \"{url}\"\n"
        );
        let found = diagnostics(&yaml);
        assert!(found.contains("error"), "{url} validated:\n{found}");
    }
}

#[tokio::test]
async fn a_customer_value_after_a_secret_base_cannot_change_the_host_or_port() {
    let server = TestServer::replying(Reply::json(200, json!({"ok": true}))).await;
    let flow_yaml = "flow: t\ntriggers:\n  default: true\nsteps:\n  - id: call\n    api_request:\n      url: \"{{secrets.shop_base}}/orders/{{message.text}}\"\n    save:\n      failure: $error\n  - id: done\n    ask: \"Anything else?\"\n";
    for text in ["0", ".evil.example", "@169.254.169.254", ":81/x", "#x"] {
        let run = run_with_secrets(flow_yaml, text, &[("shop_base", &server.url)]).await;
        assert_eq!(
            run.var("failure"),
            json!(null),
            "{text:?}: {}",
            run.trace_json()
        );
    }
    let targets: Vec<String> = server.received().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/orders/0",
            "/orders/.evil.example",
            "/orders/%40169.254.169.254",
            "/orders/%3A81%2Fx",
            "/orders/%23x"
        ]
    );
}

#[tokio::test]
async fn a_flow_var_base_overwritten_with_customer_data_is_not_used_as_the_host() {
    // The flow trusts its `vars:` entry `base`; an earlier step saves the customer's answer under
    // the same name. The request must still go to the author's base, not the customer's.
    let server = TestServer::replying(Reply::json(200, json!({"ok": true}))).await;
    let attacker = TestServer::replying(Reply::json(200, json!({"stolen": true}))).await;
    let flow_yaml = format!(
        "flow: t\ntriggers:\n  default: true\nvars:\n  base: \"{}\"\nsteps:\n  - id: take\n    set:\n      base: \"{{{{message.text}}}}\"\n  - id: call\n    api_request:\n      url: \"{{{{base}}}}/orders\"\n    save:\n      failure: $error\n  - id: done\n    ask: \"Anything else?\"\n",
        server.url
    );
    let run = run_with_secrets(&flow_yaml, &attacker.url, &[]).await;
    assert!(
        attacker.received().is_empty(),
        "the customer's host was called"
    );
    assert_eq!(server.only().target, "/orders");
    assert_eq!(run.var("failure"), json!(null));
}

#[tokio::test]
async fn link_local_and_metadata_addresses_are_refused_in_every_spelling() {
    // Decimal, hex and IPv4-mapped IPv6 spellings of 169.254.169.254, another link-local address,
    // and the AWS IPv6 metadata address. Nothing may connect; the reason is the egress policy.
    for url in [
        "http://2852039166/latest",
        "http://0xA9FEA9FE/latest",
        "http://[::ffff:169.254.169.254]/latest",
        "http://169.254.1.1/latest",
        "http://[fd00:ec2::254]/latest",
        "http://[fe80::1]/latest",
    ] {
        let step = format!(
            "  - id: call\n    api_request:\n      url: \"{url}\"\n      timeout: 2s\n    save:\n      failure: $error\n    on:\n      error: done\n"
        );
        let run = run(&flow("unused", &step), "hi").await;
        let errors: Vec<String> = run
            .result
            .trace
            .iter()
            .filter_map(|event| match event {
                TraceEvent::Http(http) => http.error.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(run.var("failure"), json!("connection"), "{url}");
        assert!(
            errors
                .iter()
                .all(|e| e.contains("refused by egress policy")),
            "{url}: {errors:?}"
        );
    }
}
