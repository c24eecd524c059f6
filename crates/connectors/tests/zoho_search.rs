//! The `zoho_search` step over real HTTP: whole turns driven by [`flowbot_connectors::LiveEffects`]
//! with a real Zoho client against the fake Zoho of `flowbot-testkit`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowbot_engine::TraceEvent;
use flowbot_testkit::fake_zoho::{
    FakeResponse, FakeZoho, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_REFRESH_TOKEN,
};
use flowbot_zoho::{
    ClientConfig, Connection, DataCentre, MemoryTokenStore, ReqwestTransport, Secret, ZohoClient,
};
use serde_json::{json, Value};
use support::*;

type Client = ZohoClient<ReqwestTransport, Arc<MemoryTokenStore>>;

/// The lead-status flow of the design, shortened. `fields` leaves out Phone on purpose: the
/// number is stored there, and the search must still find the contact.
const FLOW: &str = r#"
flow: lead_status
triggers:
  default: true
steps:
  - id: lookup
    zoho_search:
      phone: "{{contact.phone}}"
      fields: [First_Name, Owner]
    save:
      first_name: data[0].First_Name
      assigned_to: data[0].Owner.name
    on:
      empty: unknown
      error: unavailable
  - id: greet
    say: "Hi {{first_name}}, your account manager is {{assigned_to}}."
    next: done
  - id: unknown
    say: "We could not find you."
    next: done
  - id: unavailable
    say: "Our CRM is unavailable."
  - id: done
    ask: "Anything else?"
"#;

fn anika() -> Value {
    json!({
        "id": "4876876000002200101",
        "First_Name": "Anika",
        "Last_Name": "Rao",
        "Phone": "+91 98200 00001",
        "Mobile": null,
        "Owner": {"name": "Rohan Iyer", "id": "4876876000000315001", "email": "rohan.iyer@example.com"},
        "Modified_Time": "2026-11-28T16:02:11+05:30"
    })
}

/// A client already connected to the fake, with a valid access token; also returns the token.
fn connected(fake: &FakeZoho) -> (Arc<Client>, String) {
    let token = fake.issue_token(Duration::from_secs(3600));
    let connection = Connection {
        name: "zoho".into(),
        dc: DataCentre::In,
        accounts_url: fake.url(),
        api_domain: fake.url(),
        client_id: FAKE_CLIENT_ID.into(),
        client_secret: Secret::new(FAKE_CLIENT_SECRET),
        refresh_token: Secret::new(FAKE_REFRESH_TOKEN),
        access_token: Secret::new(&token),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        last_refresh_at: None,
        refresh_blocked_until: None,
        last_error: None,
    };
    let store = Arc::new(MemoryTokenStore::with_connections([connection]));
    let transport = ReqwestTransport::new().expect("a transport");
    (
        Arc::new(ZohoClient::new(transport, store, ClientConfig::default())),
        token,
    )
}

fn zoho_error(run: &Run) -> Option<String> {
    run.result.trace.iter().find_map(|event| match event {
        TraceEvent::Zoho(zoho) => zoho.error.clone(),
        _ => None,
    })
}

#[tokio::test]
async fn a_known_contact_is_found_and_its_owner_saved() {
    let fake = FakeZoho::with_records(vec![anika()]).await;
    let (client, token) = connected(&fake);
    let run = run_with(FLOW, "hi", live(Some(client))).await;
    assert_eq!(
        run.texts(),
        [
            "Hi Anika, your account manager is Rohan Iyer.",
            "Anything else?"
        ]
    );
    assert_eq!(run.var("assigned_to"), json!("Rohan Iyer"));
    assert_eq!(fake.searches(), 1);
    let trace = run.trace_json();
    assert!(
        !trace.contains(&token),
        "the access token is in the trace: {trace}"
    );
    assert!(
        !trace.contains(FAKE_REFRESH_TOKEN),
        "the refresh token is in the trace"
    );
}

#[tokio::test]
async fn no_match_204_takes_the_empty_branch() {
    let fake = FakeZoho::with_records(vec![]).await;
    let (client, _) = connected(&fake);
    let run = run_with(FLOW, "hi", live(Some(client))).await;
    assert_eq!(run.texts(), ["We could not find you.", "Anything else?"]);
    assert_eq!(run.var("assigned_to"), json!(null));
}

#[tokio::test]
async fn zoho_failing_takes_the_error_branch_with_the_cause_in_the_trace() {
    let fake = FakeZoho::with_records(vec![anika()]).await;
    fake.respond_to_next_searches(3, FakeResponse::bad_gateway_html());
    let (client, _) = connected(&fake);
    let run = run_with(FLOW, "hi", live(Some(client))).await;
    assert_eq!(run.texts(), ["Our CRM is unavailable.", "Anything else?"]);
    let error = zoho_error(&run).expect("an error in the trace");
    assert!(error.contains("HTTP 502"), "{error}");
}

#[tokio::test]
async fn without_a_zoho_connection_the_search_is_an_error_that_says_how_to_connect() {
    let run = run_with(FLOW, "hi", live(None::<Arc<Client>>)).await;
    assert_eq!(run.texts(), ["Our CRM is unavailable.", "Anything else?"]);
    let error = zoho_error(&run).expect("an error in the trace");
    assert!(
        error.contains("flowbot zoho connect --name zoho"),
        "{error}"
    );
}
