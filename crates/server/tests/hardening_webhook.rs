//! Issue 9, hostile webhook bodies: whatever arrives at `POST /webhooks/whatsapp` gets a 4xx or is
//! tolerated, the server keeps answering other customers meanwhile, and memory stays bounded.
//! Bodies are signed with the test app secret, so each reaches the parser (an unsigned one stops at
//! the signature: 401, tested in `webhook.rs`).

mod support;

use std::time::{Duration, Instant};

use flowbot_testkit::webhook::{signature_header, text_notification, APP_SECRET};
use serde_json::{json, Value};
use support::{bodies, now, spawn_with, wamid, Options, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn notification(from: &str, text: &str) -> Value {
    serde_json::from_slice(&text_notification(from, "Hostile", text, &wamid(), now()))
        .expect("the builder makes JSON")
}

/// Every variant of a valid notification where one field (object, array, string or number, at
/// any depth) is replaced by a value of each wrong type, or removed.
fn wrong_types(valid: &Value) -> Vec<Value> {
    fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    at.push(key.clone());
                    paths(child, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    at.push(index.to_string());
                    paths(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    fn replace(value: &mut Value, path: &[String], with: Option<Value>) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut target = value;
        for segment in parents {
            target = match target {
                Value::Object(map) => map.get_mut(segment).expect("path exists"),
                Value::Array(items) => &mut items[segment.parse::<usize>().expect("index")],
                _ => return,
            };
        }
        match (target, with) {
            (Value::Object(map), Some(with)) => {
                map.insert(last.clone(), with);
            }
            (Value::Object(map), None) => {
                map.remove(last);
            }
            (Value::Array(items), Some(with)) => {
                items[last.parse::<usize>().expect("index")] = with
            }
            (Value::Array(items), None) => {
                items.remove(last.parse::<usize>().expect("index"));
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(valid, &mut Vec::new(), &mut all);
    let mut variants = Vec::new();
    for path in all.iter().filter(|p| !p.is_empty()) {
        for with in [
            Some(json!(12345)),
            Some(json!(-1.5e300)),
            Some(json!("a string")),
            Some(json!([])),
            Some(json!({})),
            Some(json!(null)),
            Some(json!(true)),
            None,
        ] {
            let mut variant = valid.clone();
            replace(&mut variant, path, with);
            variants.push(variant);
        }
    }
    variants
}

fn nested(depth: usize) -> Vec<u8> {
    let mut body = b"{\"object\":\"whatsapp_business_account\",\"entry\":".to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    body
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_4xx_or_are_tolerated_and_others_are_still_served() {
    let app = spawn_with(Options::default()).await;
    let valid = notification("919820000101", "hello");
    let valid_bytes = serde_json::to_vec(&valid).expect("serializes");

    let mut hostile: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("truncated".into(), valid_bytes[..valid_bytes.len() / 2].to_vec()),
        ("10,000 levels of nesting".into(), nested(10_000)),
        ("not JSON".into(), b"<html>hello</html>".to_vec()),
        ("a JSON string".into(), b"\"whatsapp\"".to_vec()),
        ("no entry".into(), br#"{"object":"whatsapp_business_account"}"#.to_vec()),
        ("entry null".into(), br#"{"object":"whatsapp_business_account","entry":null}"#.to_vec()),
        ("changes missing".into(), br#"{"object":"whatsapp_business_account","entry":[{"id":"1"}]}"#.to_vec()),
        ("messages not an array".into(), br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":7}}]}]}"#.to_vec()),
        ("wrong object".into(), br#"{"object":"page","entry":[]}"#.to_vec()),
    ];
    // Invalid UTF-8 inside a string, and a lone surrogate escape.
    let mut invalid_utf8 = valid_bytes.clone();
    let at = invalid_utf8
        .windows(5)
        .position(|w| w == b"hello")
        .expect("the text is in the body");
    invalid_utf8[at] = 0xff;
    invalid_utf8[at + 1] = 0xfe;
    hostile.push(("invalid UTF-8".into(), invalid_utf8));
    hostile.push((
        "lone surrogate".into(),
        String::from_utf8_lossy(&valid_bytes)
            .replace("hello", "\\ud800")
            .into_bytes(),
    ));
    // A huge string where nobody reads it (900 KiB, under the 1 MiB limit).
    let mut huge = valid.clone();
    huge["entry"][0]["id"] = json!("x".repeat(900 * 1024));
    hostile.push((
        "900 KiB string".into(),
        serde_json::to_vec(&huge).expect("json"),
    ));
    let mut huge_id = valid.clone();
    huge_id["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("w".repeat(512 * 1024));
    hostile.push((
        "512 KiB message id".into(),
        serde_json::to_vec(&huge_id).expect("json"),
    ));
    for (index, variant) in wrong_types(&valid).into_iter().enumerate() {
        hostile.push((
            format!("wrong type #{index}: {variant}"),
            serde_json::to_vec(&variant).expect("json"),
        ));
    }
    println!("{} hostile bodies", hostile.len());

    let rss_before = rss_kib();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (name, body) in &hostile {
        let status = app.post_signed(body).await.status().as_u16();
        assert!(
            matches!(status, 200 | 400 | 413),
            "{name}: answered {status}"
        );
        *statuses.entry(status).or_default() += 1;
    }
    println!("answers: {statuses:?}");

    // 10 MiB: 413 before the body is read whole.
    let big = vec![b' '; 10 * 1024 * 1024];
    let response = app
        .client
        .post(format!("{}/webhooks/whatsapp", app.url))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature_header(APP_SECRET, &big))
        .body(big)
        .send()
        .await;
    // The server may close the connection before reading the rest; either way no 2xx.
    if let Ok(response) = response {
        assert_eq!(response.status().as_u16(), 413);
    }
    for _ in 0..20 {
        let body = serde_json::to_vec(&huge).expect("json");
        app.post_signed(&body).await;
    }
    let rss_after = rss_kib();
    println!(
        "RSS of the test process (server inside): {} KiB before, {} KiB after the hostile bodies and 20 more 900 KiB ones",
        rss_before, rss_after
    );
    assert!(
        rss_after < rss_before + 200 * 1024,
        "memory grew by {} KiB",
        rss_after - rss_before
    );

    // Meanwhile, and after, a customer is answered.
    let (status, _) = app.send_text("919820000999", "still there?").await;
    assert_eq!(status, 200);
    // Some wrong-type variants were tolerated (and answered); wait for this customer's answer.
    let deadline = Instant::now() + WAIT;
    let mut seen = 0;
    loop {
        let replies = app.graph().wait_for_messages(seen + 1, WAIT).await;
        if bodies(&replies).contains(&"You said: still there?".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer: {:?}",
            bodies(&replies)
        );
        seen = replies.len();
    }
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_messages_in_one_notification_are_each_answered_once() {
    let app = spawn_with(Options::default()).await;
    let mut body = notification("919820000200", "message 0");
    let template = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let messages: Vec<Value> = (0..100)
        .map(|n| {
            let mut message = template.clone();
            message["id"] = json!(wamid());
            message["text"]["body"] = json!(format!("message {n}"));
            message
        })
        .collect();
    body["entry"][0]["changes"][0]["value"]["messages"] = json!(messages);
    let bytes = serde_json::to_vec(&body).expect("json");
    assert_eq!(app.post_signed(&bytes).await.status().as_u16(), 200);
    // Delivered again (Meta retries): duplicates are dropped.
    assert_eq!(app.post_signed(&bytes).await.status().as_u16(), 200);
    let replies = app.wait_for_replies(100).await;
    let texts = bodies(&replies);
    let expected: Vec<String> = (0..100).map(|n| format!("You said: message {n}")).collect();
    assert_eq!(texts, expected, "one reply each, in order");
    // Nothing more arrives.
    let more = app
        .graph()
        .wait_for_messages(101, Duration::from_millis(500))
        .await;
    assert_eq!(more.len(), 100);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_one_byte_at_a_time_times_out_while_others_are_served() {
    let mut options = Options::default();
    options
        .env
        .push(("FLOWBOT_BODY_READ_TIMEOUT_SECONDS".into(), "1".into()));
    let app = spawn_with(options).await;
    let body = text_notification("919820000300", "Slow", "slow", &wamid(), now());
    let signature = signature_header(APP_SECRET, &body);

    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("write head");
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut answer = Vec::new();
        for byte in &body {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            // One byte every 200 ms: the whole body would take minutes.
            let mut buffer = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });

    // Meanwhile another customer is served at once.
    let (status, _) = app.send_text("919820000301", "fast").await;
    assert_eq!(status, 200);
    let replies = app.wait_for_replies(1).await;
    assert_eq!(bodies(&replies), ["You said: fast"]);

    let answer = tokio::time::timeout(WAIT, trickle)
        .await
        .expect("the slow body ends")
        .expect("the trickle task");
    let waited = started.elapsed();
    println!(
        "slow body answered after {} ms: {:?}",
        waited.as_millis(),
        answer.lines().next()
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    app.stop().await;
}
