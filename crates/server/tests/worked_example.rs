//! The worked example end to end, on real-format input: `flowbot serve` on a temporary SQLite file,
//! a fake Zoho (real HTTP, fixture shapes, enforcing `Zoho-oauthtoken` and expiry), a fake Graph API
//! and a fake call-back service. A signed Cloud API notification saying "Hi" from 919820000001 gets
//! the exact reply as a WhatsApp text message request; "CALLBACK" gets the confirmation and the
//! call-back request arrives with the right body.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use chrono::Utc;
use flowbot_store::{EncryptionKey, Store, StoreOptions};
use flowbot_testkit::fake_zoho::{
    FakeZoho, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN,
};
use flowbot_zoho::store::{Connection, TokenStore};
use flowbot_zoho::{DataCentre, Secret};
use serde_json::{json, Value};
use support::{db_path, Options, WAIT};

const EXPECTED_GREETING: &str = "Hi Priya, good to hear from you.\n\
You are registered with us as a contact for Sharma Textiles.\n\
Your account status: Contacted.\n\
Your account manager is Ravi Kumar.\n\
\n\
Reply CALLBACK to request a call back from Ravi.";

fn priya() -> Value {
    json!({
        "Owner": { "name": "Ravi Kumar", "id": "4876876000000315001", "email": "ravi.kumar@example.com" },
        "Email": "priya@example.com",
        "First_Name": "Priya",
        "Last_Name": "Sharma",
        "Mobile": "9820000001",
        "Phone": null,
        "Lead_Status": "Contacted",
        "Account_Name": { "name": "Sharma Textiles", "id": "4876876000001122001" },
        "Modified_Time": "2026-11-28T16:02:11+05:30",
        "id": "4876876000002200101"
    })
}

/// What the call-back service received: the Authorization header and the JSON body of each call.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A call-back service that records the JSON bodies it receives.
async fn callback_service() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = Router::new().route(
        "/callbacks",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    sink.lock().expect("lock").push((auth, value));
                    (axum::http::StatusCode::CREATED, "{\"id\":\"cb-1\"}")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/callbacks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

#[tokio::test]
async fn hi_from_a_known_number_gets_the_exact_reply_and_callback_is_recorded() {
    let zoho = FakeZoho::with_records(vec![priya()]).await;
    // The access token expires in 2 minutes: inside the 5-minute margin, so the first lookup
    // refreshes it first, and the customer notices nothing.
    let access = zoho.issue_token(Duration::from_secs(120));
    let (callback_url, callbacks) = callback_service().await;
    let flow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../flows/zoho_lead_status.yaml"
    ))
    .expect("the shipped flow");
    let mut options = Options {
        flows: vec![("zoho_lead_status.yaml".into(), flow)],
        ..Options::default()
    };
    options
        .env
        .push(("FLOWBOT_SECRET_CALLBACK_URL".into(), callback_url));
    options.env.push((
        "FLOWBOT_SECRET_CALLBACK_TOKEN".into(),
        "cb-token-not-real".into(),
    ));

    // Connect Zoho the way `flowbot zoho connect` leaves it: an encrypted connection in the database.
    let app = spawn_with_zoho(options, &zoho, &access).await;

    let started = Instant::now();
    let (status, _) = app.send_text("919820000001", "Hi").await;
    assert_eq!(status, 200);
    let replies = app.graph().wait_for_messages(1, WAIT).await;
    let elapsed = started.elapsed();
    println!(
        "first reply arrived {} ms after the webhook",
        elapsed.as_millis()
    );
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["to"], "919820000001");
    assert_eq!(replies[0]["type"], "text");
    assert_eq!(replies[0]["text"]["body"], EXPECTED_GREETING);
    assert_eq!(zoho.refreshes(), 1, "one refresh before the lookup");
    let search = zoho
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/search"))
        .expect("a search");
    assert!(search
        .header("authorization")
        .is_some_and(|h| h.starts_with("Zoho-oauthtoken ")));

    let (status, _) = app.send_text("919820000001", "CALLBACK").await;
    assert_eq!(status, 200);
    let replies = app.graph().wait_for_messages(2, WAIT).await;
    assert_eq!(
        replies[1]["text"]["body"],
        "Thanks Priya, Ravi will call you back."
    );
    let received = callbacks.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0.as_deref(), Some("Bearer cb-token-not-real"));
    assert_eq!(
        received[0].1,
        json!({
            "contact_id": "4876876000002200101",
            "phone": "919820000001",
            "name": "Priya",
            "account_manager": "Ravi Kumar",
            "source": "whatsapp"
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_number_gets_the_polite_branch() {
    let zoho = FakeZoho::with_records(vec![priya()]).await;
    let access = zoho.issue_token(Duration::from_secs(3600));
    let flow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../flows/zoho_lead_status.yaml"
    ))
    .expect("the shipped flow");
    let options = Options {
        flows: vec![("zoho_lead_status.yaml".into(), flow)],
        ..Options::default()
    };
    let app = spawn_with_zoho(options, &zoho, &access).await;
    let (status, _) = app.send_text("919820000077", "Hi").await;
    assert_eq!(status, 200);
    let replies = app.graph().wait_for_messages(1, WAIT).await;
    assert_eq!(
        replies[0]["text"]["body"],
        "Hello! We could not find your number in our records yet. What is your name?"
    );
    app.stop().await;
}

/// Starts the server after storing a Zoho connection that points at the fake.
async fn spawn_with_zoho(options: Options, zoho: &FakeZoho, access: &str) -> support::TestApp {
    let place = std::sync::Arc::new(support::Place {
        dir: tempfile::tempdir().expect("a temporary folder"),
        graph: flowbot_testkit::fake_graph::FakeGraph::start().await,
    });
    let database = db_path(&place).display().to_string();
    let store = Store::open(&database, StoreOptions::default())
        .await
        .expect("the store opens");
    let key = EncryptionKey::load(Some("a test passphrase for the token store"), &database)
        .expect("the key");
    let tokens = store.token_store(key);
    let now = Utc::now();
    tokens
        .save(&Connection {
            name: "zoho".into(),
            dc: DataCentre::In,
            accounts_url: zoho.url(),
            api_domain: zoho.url(),
            client_id: FAKE_CLIENT_ID.into(),
            client_secret: Secret::new(FAKE_CLIENT_SECRET),
            refresh_token: Secret::new(FAKE_REFRESH_TOKEN),
            access_token: Secret::new(access),
            expires_at: now + chrono::Duration::seconds(if access.is_empty() { 0 } else { 120 }),
            last_refresh_at: Some(now),
            refresh_blocked_until: None,
            last_error: None,
        })
        .await
        .expect("the connection is stored");
    store.close().await;
    support::spawn_in(place, options).await
}
