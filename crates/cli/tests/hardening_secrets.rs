//! Issue 9, secrets: a full conversation through the real `flowbot serve` with known token values
//! (Graph access token, app secret, Zoho access, refreshed access and refresh tokens and client
//! secret through the fake Zoho, a `FLOWBOT_SECRET_*` bearer for an api_request), at debug log
//! level, with a Graph failure on the way. Then every log line, the transcript
//! (`conversations show`), the export, `conversations list`, `zoho status` and `/metrics` are
//! searched: none holds a secret. The database and the key file are owner-only (0600).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use chrono::Utc;
use flowbot_store::{EncryptionKey, Store, StoreOptions};
use flowbot_testkit::fake_graph::{FakeGraph, GraphFailure};
use flowbot_testkit::fake_zoho::{
    FakeZoho, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN,
};
use flowbot_testkit::webhook::{signature_header, text_notification};
use flowbot_zoho::store::{Connection, TokenStore};
use flowbot_zoho::{DataCentre, Secret};
use serde_json::{json, Value};

const GRAPH_TOKEN: &str = "EAAG-graph-token-SECRET-4f1a2b";
const APP_SECRET: &str = "app-secret-SECRET-9c8d7e";
const CALLBACK_TOKEN: &str = "cb-bearer-SECRET-1a2b3c";
const PHONE: &str = "919820000001";

fn priya() -> Value {
    json!({
        "Owner": { "name": "Ravi Kumar", "id": "4876876000000315001" },
        "First_Name": "Priya", "Last_Name": "Sharma", "Mobile": "9820000001", "Phone": null,
        "Lead_Status": "Contacted",
        "Account_Name": { "name": "Sharma Textiles", "id": "4876876000001122001" },
        "Modified_Time": "2026-11-28T16:02:11+05:30", "id": "4876876000002200101"
    })
}

/// Runs a command in `folder` (which holds `flows/`, as an operator's folder does).
fn flowbot(folder: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(folder)
        .env_remove("FLOWBOT_DATABASE_URL")
        .env_remove("FLOWBOT_SECRET_KEY")
        .output()
        .expect("flowbot runs")
}

fn all_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_transcripts_exports_errors_or_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("flowbot.db");
    let database_text = database.to_str().expect("utf-8").to_string();

    // Zoho: a connection whose access token expires within the refresh margin.
    let zoho = FakeZoho::with_records(vec![priya()]).await;
    let first_access = zoho.issue_token(Duration::from_secs(120));
    let store = Store::open(&database_text, StoreOptions::default())
        .await
        .expect("store");
    // No FLOWBOT_SECRET_KEY: the key file beside the database is created.
    let key = EncryptionKey::load(None, &database_text).expect("key");
    let now = Utc::now();
    store
        .token_store(key)
        .save(&Connection {
            name: "zoho".into(),
            dc: DataCentre::In,
            accounts_url: zoho.url(),
            api_domain: zoho.url(),
            client_id: FAKE_CLIENT_ID.into(),
            client_secret: Secret::new(FAKE_CLIENT_SECRET),
            refresh_token: Secret::new(FAKE_REFRESH_TOKEN),
            access_token: Secret::new(&first_access),
            expires_at: now + chrono::Duration::seconds(120),
            last_refresh_at: Some(now),
            refresh_blocked_until: None,
            last_error: None,
        })
        .await
        .expect("connection stored");
    store.close().await;

    // A call-back service that records the bearer it got.
    let bearers: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = bearers.clone();
    let callback = Router::new().route(
        "/callbacks",
        post(move |headers: axum::http::HeaderMap| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                sink.lock().expect("lock").push(auth);
                (axum::http::StatusCode::CREATED, "{\"id\":\"cb-1\"}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let callback_url = format!("http://{}/callbacks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, callback).await;
    });

    let graph = FakeGraph::start_with_token(GRAPH_TOKEN).await;
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).expect("flows");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../flows/zoho_lead_status.yaml"
        ),
        flows.join("zoho_lead_status.yaml"),
    )
    .expect("copy the shipped flow");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let log_path = dir.path().join("serve.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(["serve", "--listen", &addr.to_string()])
        .env("FLOWBOT_DATABASE_URL", &database)
        .env("FLOWBOT_FLOWS", &flows)
        .env_remove("FLOWBOT_SECRET_KEY")
        .env("FLOWBOT_WHATSAPP_API_BASE", graph.url())
        .env("FLOWBOT_WHATSAPP_ACCESS_TOKEN", GRAPH_TOKEN)
        .env("FLOWBOT_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("FLOWBOT_WHATSAPP_VERIFY_TOKEN", "verify-SECRET-token")
        .env("FLOWBOT_SECRET_CALLBACK_URL", &callback_url)
        .env("FLOWBOT_SECRET_CALLBACK_TOKEN", CALLBACK_TOKEN)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("serve starts");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let post = |text: &str, n: u32| {
        let body = text_notification(
            PHONE,
            "Priya Sharma",
            text,
            &format!("wamid.SECRETS{n}"),
            Utc::now().timestamp(),
        );
        let signature = signature_header(APP_SECRET, &body);
        client
            .post(format!("http://{addr}/webhooks/whatsapp"))
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
    };
    // The first send fails at Graph (500) and is retried: the error path logs too.
    graph.fail_next(1, GraphFailure::Server);
    assert_eq!(post("Hi", 1).await.expect("answer").status().as_u16(), 200);
    let replies = graph.wait_for_messages(1, Duration::from_secs(20)).await;
    assert_eq!(replies.len(), 1, "the greeting");
    assert_eq!(
        post("CALLBACK", 2).await.expect("answer").status().as_u16(),
        200
    );
    let replies = graph.wait_for_messages(2, Duration::from_secs(20)).await;
    assert_eq!(replies.len(), 2, "the confirmation");
    // A wrong signature and a bad verify token: rejections are logged.
    let rejected = client
        .post(format!("http://{addr}/webhooks/whatsapp"))
        .header("X-Hub-Signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(rejected.status().as_u16(), 401);
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        bearers.lock().expect("lock").as_slice(),
        [format!("Bearer {CALLBACK_TOKEN}")]
    );
    assert_eq!(zoho.refreshes(), 1, "the access token was refreshed");
    let refreshed_access = zoho
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/search"))
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .next_back()
        .and_then(|h| h.strip_prefix("Zoho-oauthtoken ").map(str::to_string))
        .expect("a search with a token");
    assert_ne!(refreshed_access, first_access);

    unsafe {
        libc::kill(server.id() as i32, libc::SIGTERM);
    }
    let _ = server.wait();
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.lines().count() > 20, "trace logging ran: {logs}");

    let shown = flowbot(
        dir.path(),
        &["conversations", "show", PHONE, "--database", &database_text],
    );
    let exported = flowbot(
        dir.path(),
        &[
            "conversations",
            "export",
            PHONE,
            "--database",
            &database_text,
        ],
    );
    let listed = flowbot(
        dir.path(),
        &["conversations", "list", "--database", &database_text],
    );
    let status = flowbot(
        dir.path(),
        &["zoho", "status", "--database", &database_text],
    );
    assert!(
        all_text(&shown).contains("CALLBACK"),
        "{}",
        all_text(&shown)
    );
    assert!(exported.status.success(), "{}", all_text(&exported));

    let secrets = [
        GRAPH_TOKEN,
        APP_SECRET,
        CALLBACK_TOKEN,
        FAKE_CLIENT_SECRET,
        FAKE_REFRESH_TOKEN,
        first_access.as_str(),
        refreshed_access.as_str(),
        "verify-SECRET-token",
    ];
    for (place, text) in [
        ("serve log", logs.as_str()),
        ("conversations show", &all_text(&shown)),
        ("conversations export", &all_text(&exported)),
        ("conversations list", &all_text(&listed)),
        ("zoho status", &all_text(&status)),
        ("/metrics", &metrics),
    ] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{place} shows a secret ({secret}):\n{}",
                text.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    println!(
        "searched {} log lines, {} transcript lines, {} export lines, /metrics ({} bytes): no secret",
        logs.lines().count(),
        all_text(&shown).lines().count(),
        all_text(&exported).lines().count(),
        metrics.len()
    );

    for file in [
        database.clone(),
        dir.path().join("flowbot.db.key"),
        dir.path().join("flowbot.db-wal"),
        dir.path().join("flowbot.db-shm"),
    ] {
        if file.exists() {
            assert_eq!(
                mode(&file),
                0o600,
                "{} has mode {:o}",
                file.display(),
                mode(&file)
            );
        } else {
            assert!(
                !file.ends_with("flowbot.db") && !file.ends_with("flowbot.db.key"),
                "{} missing",
                file.display()
            );
        }
    }
}
