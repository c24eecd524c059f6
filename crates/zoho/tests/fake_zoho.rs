//! The Zoho client against the fake Zoho over real HTTP: connect, search outcomes, phone forms,
//! token refresh (expiry, INVALID_TOKEN, single flight, throttling, revocation), retries, and the
//! rule that no secret ever reaches an error, a Debug output or a call record.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowbot_testkit::fake_zoho::{
    FakeResponse, FakeZoho, FakeZohoConfig, PhoneMatch, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET,
    FAKE_GRANT_CODE, FAKE_REFRESH_TOKEN,
};
use flowbot_zoho::{
    CallRecord, ClientConfig, ConnectRequest, Connection, ConnectionState, DataCentre, ManualClock,
    MemoryTokenStore, ReqwestTransport, SearchOutcome, SearchQuery, SearchReport, SearchRequest,
    Secret, TokenStore, ZohoClient, ZohoError,
};
use serde_json::{json, Value};

type Client = ZohoClient<ReqwestTransport, Arc<MemoryTokenStore>>;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/zoho/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap()
}

/// The Anika Rao record of search_found.json with its phone fields replaced.
fn contact(id: &str, phone: Option<&str>, mobile: Option<&str>, modified: &str) -> Value {
    let mut record = fixture("search_found.json")["data"][0].clone();
    record["id"] = json!(id);
    record["Phone"] = json!(phone);
    record["Mobile"] = json!(mobile);
    record["Modified_Time"] = json!(modified);
    record
}

fn client(store: Arc<MemoryTokenStore>) -> Client {
    ZohoClient::new(
        ReqwestTransport::new().unwrap(),
        store,
        ClientConfig::default(),
    )
}

fn client_with_clock(store: Arc<MemoryTokenStore>, clock: Arc<ManualClock>) -> Client {
    let transport = ReqwestTransport::new().unwrap().with_manual_clock(clock);
    ZohoClient::new(transport, store, ClientConfig::default())
}

fn connect_request(fake: &FakeZoho) -> ConnectRequest {
    ConnectRequest {
        name: "zoho".into(),
        dc: DataCentre::In,
        accounts_url: Some(fake.url()),
        client_id: FAKE_CLIENT_ID.into(),
        client_secret: Secret::new(FAKE_CLIENT_SECRET),
        grant_code: Secret::new(FAKE_GRANT_CODE),
        redirect_uri: None,
    }
}

/// A stored connection using the fake's preset refresh token and the given access token.
fn seeded(fake: &FakeZoho, access_token: &str, expires_in: chrono::Duration) -> Connection {
    Connection {
        name: "zoho".into(),
        dc: DataCentre::In,
        accounts_url: fake.url(),
        api_domain: fake.url(),
        client_id: FAKE_CLIENT_ID.into(),
        client_secret: Secret::new(FAKE_CLIENT_SECRET),
        refresh_token: Secret::new(FAKE_REFRESH_TOKEN),
        access_token: Secret::new(access_token),
        expires_at: Utc::now() + expires_in,
        last_refresh_at: None,
        refresh_blocked_until: None,
        last_error: None,
    }
}

fn valid_store(fake: &FakeZoho) -> Arc<MemoryTokenStore> {
    let token = fake.issue_token(Duration::from_secs(3600));
    Arc::new(MemoryTokenStore::with_connections([seeded(
        fake,
        &token,
        chrono::Duration::hours(1),
    )]))
}

fn expired_store(fake: &FakeZoho) -> Arc<MemoryTokenStore> {
    let token = fake.issue_token(Duration::from_secs(3600));
    fake.expire_all_tokens();
    Arc::new(MemoryTokenStore::with_connections([seeded(
        fake,
        &token,
        chrono::Duration::minutes(-1),
    )]))
}

fn phone(number: &str) -> SearchRequest {
    SearchRequest {
        connection: "zoho".into(),
        module: "Contacts".into(),
        query: SearchQuery::Phone(number.into()),
        fields: vec![
            "First_Name".into(),
            "Last_Name".into(),
            "Phone".into(),
            "Mobile".into(),
            "Modified_Time".into(),
        ],
    }
}

fn found(report: &SearchReport) -> &Value {
    match &report.result {
        Ok(SearchOutcome::Found(body)) => body,
        other => panic!("expected Found, got {other:?}; calls {:#?}", report.calls),
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_owned())
        .collect()
}

fn failure(report: SearchReport) -> ZohoError {
    match report.result {
        Err(error) => error,
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
    }
}

/// Every secret the fake knows or issued: client secret, grant code, refresh tokens, access tokens.
fn secrets(fake: &FakeZoho, extra: &[String]) -> Vec<String> {
    let mut all = vec![
        FAKE_CLIENT_SECRET.to_owned(),
        FAKE_GRANT_CODE.to_owned(),
        FAKE_REFRESH_TOKEN.to_owned(),
    ];
    for request in fake.requests() {
        if let Some(token) = request
            .header("authorization")
            .and_then(|value| value.split_whitespace().nth(1))
        {
            all.push(token.to_owned());
        }
    }
    all.extend(extra.iter().cloned());
    all
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into: {text}"
        );
        // The 32-hex middle part of a Zoho token is enough to leak it.
        if let Some(middle) = secret.split('.').nth(1).filter(|part| part.len() >= 16) {
            assert!(
                !text.contains(middle),
                "part of a secret leaked into: {text}"
            );
        }
    }
}

#[tokio::test]
async fn connect_stores_the_api_domain_and_tokens_and_hides_them() {
    let fake = FakeZoho::start(FakeZohoConfig::default()).await;
    let store = Arc::new(MemoryTokenStore::new());
    let zoho = client(store.clone());

    let connection = zoho.connect(connect_request(&fake)).await.unwrap();

    assert_eq!(connection.api_domain, fake.url());
    assert_eq!(connection.accounts_url, fake.url());
    assert!(!connection.access_token.is_empty() && !connection.refresh_token.is_empty());
    let lifetime = connection.expires_at - Utc::now();
    assert!(
        lifetime > chrono::Duration::minutes(59) && lifetime <= chrono::Duration::minutes(60),
        "{lifetime}"
    );
    assert_eq!(
        store.load("zoho").await.unwrap().as_ref(),
        Some(&connection)
    );
    assert_eq!(fake.grants(), 1);
    let debug = format!("{connection:?}");
    assert!(debug.contains("[redacted]"));
    let extra = [
        connection.access_token.expose().to_owned(),
        connection.refresh_token.expose().to_owned(),
    ];
    assert_no_secret(&debug, &secrets(&fake, &extra));
    let token_request = &fake.requests()[0];
    assert!(
        token_request.body.contains("grant_type=authorization_code"),
        "{}",
        token_request.body
    );

    // The grant code works once: the second exchange tells how to get a new one.
    let again = zoho.connect(connect_request(&fake)).await.unwrap_err();
    assert!(
        matches!(again, ZohoError::GrantCodeExpired { .. }),
        "{again:?}"
    );
    assert!(
        again
            .to_string()
            .contains("generate a new one in the Self Client"),
        "{again}"
    );

    // The stored connection serializes field by field, secrets as plain strings for the store.
    let stored = serde_json::to_value(&connection).unwrap();
    assert_eq!(stored["dc"], "in");
    assert_eq!(stored["refresh_token"], connection.refresh_token.expose());
}

#[tokio::test]
async fn legacy_millisecond_expires_in_is_read_through_expires_in_sec() {
    let fake = FakeZoho::start(FakeZohoConfig {
        legacy_ms_expires_in: true,
        ..FakeZohoConfig::default()
    })
    .await;
    let zoho = client(Arc::new(MemoryTokenStore::new()));
    let connection = zoho.connect(connect_request(&fake)).await.unwrap();
    let lifetime = connection.expires_at - Utc::now();
    assert!(
        lifetime > chrono::Duration::minutes(59) && lifetime <= chrono::Duration::minutes(60),
        "{lifetime}"
    );
    assert!(fake.requests().len() == 1);
}

#[tokio::test]
async fn wrong_data_centre_is_named_in_the_error() {
    let fake = FakeZoho::start(FakeZohoConfig::default()).await;
    let zoho = client(Arc::new(MemoryTokenStore::new()));
    let mut request = connect_request(&fake);
    request.client_id = "1000.CLIENTOFANOTHERDC".into();
    let error = zoho.connect(request).await.unwrap_err();
    assert!(
        matches!(error, ZohoError::InvalidClient { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("wrong data centre"), "{message}");
    assert!(
        message.contains(&fake.url().replace("http://", "")),
        "names the accounts host tried: {message}"
    );
    assert!(message.contains("--dc in"), "{message}");
}

#[tokio::test]
async fn search_by_phone_finds_the_contact_with_zoho_oauthtoken_and_encoded_plus() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let zoho = client(valid_store(&fake));

    let report = zoho.search(&phone("919820000001")).await;

    let body = found(&report);
    assert_eq!(ids(body), ["4876876000002200101"]);
    assert_eq!(body["data"][0]["First_Name"], "Anika");
    assert_eq!(body["info"]["count"], 1);
    assert!(
        body["data"][0].get("Owner").is_none(),
        "fields= is honoured"
    );
    assert_eq!(report.calls.len(), 1);
    assert_eq!(report.calls[0].status, Some(200));
    assert_eq!(report.calls[0].method, "GET");
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/crm/v8/Contacts/search");
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Zoho-oauthtoken 1000."));
    let query = request.query.as_deref().unwrap();
    assert!(
        query.starts_with("criteria=%28%28Phone%3Aequals%3A919820000001%29or%28Mobile"),
        "{query}"
    );
    assert!(
        query.contains("%2B919820000001") && !query.contains('+'),
        "{query}"
    );
    assert!(query.contains("09820000001"), "{query}");
    assert!(
        query.ends_with("&fields=First_Name,Last_Name,Phone,Mobile,Modified_Time"),
        "{query}"
    );
}

#[tokio::test]
async fn no_match_is_a_204_and_empty() {
    let fake = FakeZoho::with_records(vec![contact(
        "1",
        None,
        Some("+919820000001"),
        "2026-01-01T00:00:00+05:30",
    )])
    .await;
    let zoho = client(valid_store(&fake));
    let report = zoho.search(&phone("919820000077")).await;
    assert_eq!(report.result, Ok(SearchOutcome::Empty));
    assert_eq!(report.calls[0].status, Some(204));
}

#[tokio::test]
async fn two_matches_come_exact_first_then_most_recent() {
    let mut records = fixture("search_two_matches.json")["data"]
        .as_array()
        .unwrap()
        .clone();
    // The fixture lists the national-form record (…155) after the exact one (…202); put it first
    // and add a more recently modified national-form record to check both sort keys.
    records.reverse();
    records.push(contact(
        "recent",
        Some("98200 00002"),
        None,
        "2026-12-01T09:00:00+05:30",
    ));
    let fake = FakeZoho::with_records(records).await;
    let zoho = client(valid_store(&fake));

    let report = zoho.search(&phone("919820000002")).await;

    let body = found(&report);
    assert_eq!(
        ids(body),
        ["4876876000002200202", "recent", "4876876000001900155"]
    );
    assert_eq!(body["info"]["count"], 3);
}

#[tokio::test]
async fn every_usual_stored_form_is_found_and_a_different_number_is_not() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let zoho = client(valid_store(&fake));
    for stored in [
        "+91 98200 00001",
        "09820000001",
        "9820000001",
        "+919820000001",
    ] {
        fake.set_records(vec![contact(
            "x",
            None,
            Some(stored),
            "2026-01-01T00:00:00+05:30",
        )]);
        let report = zoho.search(&phone("919820000001")).await;
        assert_eq!(ids(found(&report)), ["x"], "stored as {stored}");
        fake.set_records(vec![contact(
            "x",
            Some(stored),
            None,
            "2026-01-01T00:00:00+05:30",
        )]);
        let report = zoho.search(&phone("919820000001")).await;
        assert_eq!(ids(found(&report)), ["x"], "stored in Phone as {stored}");
    }
    fake.set_records(vec![contact(
        "other",
        None,
        Some("+91 98200 00002"),
        "2026-01-01T00:00:00+05:30",
    )]);
    assert_eq!(
        zoho.search(&phone("919820000001")).await.result,
        Ok(SearchOutcome::Empty)
    );

    // Documented limit: if Zoho compared the stored text exactly, a number typed with spaces
    // could not be found by any of the searched forms.
    fake.set_phone_match(PhoneMatch::Exact);
    fake.set_records(vec![contact(
        "spaced",
        None,
        Some("+91 98200 00001"),
        "2026-01-01T00:00:00+05:30",
    )]);
    assert_eq!(
        zoho.search(&phone("919820000001")).await.result,
        Ok(SearchOutcome::Empty)
    );
}

#[tokio::test]
async fn the_post_filter_drops_records_zoho_matched_loosely() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let zoho = client(valid_store(&fake));
    // Zoho's equals is contains-like: it may return 919820000001 for the form 9820000001, etc.
    let loose = json!({
        "data": [contact("longer", None, Some("+91 98200 000011"), "2026-01-01T00:00:00+05:30")],
        "info": {"count": 1}
    });
    fake.respond_to_next_searches(1, FakeResponse::json(200, loose));
    assert_eq!(
        zoho.search(&phone("919820000001")).await.result,
        Ok(SearchOutcome::Empty)
    );
}

#[tokio::test]
async fn email_word_and_criteria_are_not_post_filtered() {
    let mut record = contact(
        "a",
        None,
        Some("+919820000001"),
        "2026-01-01T00:00:00+05:30",
    );
    record["Last_Name"] = json!("Burns,B");
    let fake = FakeZoho::with_records(vec![record]).await;
    let zoho = client(valid_store(&fake));
    let mut request = phone("unused");
    request.query = SearchQuery::Email("anika.rao@example.com".into());
    assert_eq!(ids(found(&zoho.search(&request).await)), ["a"]);
    request.query = SearchQuery::Word("Anika".into());
    assert_eq!(ids(found(&zoho.search(&request).await)), ["a"]);
    request.query = SearchQuery::Criteria("(Last_Name:equals:Burns\\,B)".into());
    assert_eq!(ids(found(&zoho.search(&request).await)), ["a"]);
    let query = fake.requests().last().unwrap().query.clone().unwrap();
    assert!(
        query.starts_with("criteria=%28Last_Name%3Aequals%3ABurns%5C%2CB%29"),
        "{query}"
    );
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_before_the_call() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let store = expired_store(&fake);
    let zoho = client(store.clone());

    let report = zoho.search(&phone("919820000001")).await;

    found(&report);
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.searches(), 1);
    let notes: Vec<&str> = report.calls.iter().map(|call| call.note.as_str()).collect();
    assert_eq!(notes, ["token refresh", "search"]);
    assert_eq!(
        report.calls[0].url,
        format!("{}/oauth/v2/token", fake.url())
    );
    let connection = store.load("zoho").await.unwrap().unwrap();
    assert!(connection.expires_at > Utc::now() + chrono::Duration::minutes(59));
    assert!(connection.last_refresh_at.is_some());
    let refresh = &fake.requests()[0];
    assert!(
        refresh.body.contains("grant_type=refresh_token"),
        "{}",
        refresh.body
    );
}

#[tokio::test]
async fn fifty_concurrent_lookups_with_an_expired_token_cause_one_refresh() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let zoho = Arc::new(client(expired_store(&fake)));

    let lookups = (0..50).map(|_| {
        let zoho = zoho.clone();
        tokio::spawn(async move { zoho.search(&phone("919820000001")).await })
    });
    let reports = futures::future::join_all(lookups).await;

    for report in reports {
        found(&report.unwrap());
    }
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.searches(), 50);
}

#[tokio::test]
async fn two_processes_sharing_a_store_refresh_once_through_the_lease() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let store = expired_store(&fake);
    let config = ClientConfig {
        lease_poll: Duration::from_millis(5),
        ..ClientConfig::default()
    };
    let first = Arc::new(ZohoClient::new(
        ReqwestTransport::new().unwrap(),
        store.clone(),
        config.clone(),
    ));
    let second = Arc::new(ZohoClient::new(
        ReqwestTransport::new().unwrap(),
        store.clone(),
        ClientConfig {
            holder: "other-process".into(),
            ..config
        },
    ));
    assert_ne!(first.config().holder, second.config().holder);

    let lookups = (0..20).map(|index| {
        let (first, second) = (first.clone(), second.clone());
        tokio::spawn(async move {
            let zoho = if index % 2 == 0 { first } else { second };
            zoho.search(&phone("919820000001")).await
        })
    });
    for report in futures::future::join_all(lookups).await {
        found(&report.unwrap());
    }
    assert_eq!(fake.refreshes(), 1);
}

#[tokio::test]
async fn invalid_token_once_means_refresh_and_retry() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let zoho = client(valid_store(&fake));
    fake.respond_to_next_searches(
        1,
        FakeResponse::json(401, fixture("error_invalid_token.json")),
    );

    let report = zoho.search(&phone("919820000001")).await;

    found(&report);
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.searches(), 2);
    let summary: Vec<(Option<u16>, &str)> = report
        .calls
        .iter()
        .map(|call| (call.status, call.note.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Some(401), "search: INVALID_TOKEN"),
            (Some(200), "token refresh"),
            (Some(200), "search after token refresh")
        ]
    );
}

#[tokio::test]
async fn a_token_rejected_after_refresh_is_not_refreshed_again() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let zoho = client(valid_store(&fake));
    fake.respond_to_next_searches(
        5,
        FakeResponse::zoho_error(400, "INVALID_TOKEN", "invalid oauth token"),
    );

    let error = failure(zoho.search(&phone("919820000001")).await);

    assert!(
        matches!(error, ZohoError::TokenRejected { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("flowbot zoho connect --name zoho"),
        "{error}"
    );
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.searches(), 2);
}

#[tokio::test]
async fn a_wrong_auth_scheme_is_authentication_failure_at_the_fake() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let token = fake.issue_token(Duration::from_secs(60));
    let http = reqwest::Client::new();
    let url = format!("{}/crm/v8/Contacts/search?phone=919820000001", fake.url());
    let bearer = http
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    assert_eq!(
        bearer.json::<Value>().await.unwrap()["code"],
        "INVALID_TOKEN"
    );
    let basic = http
        .get(&url)
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        basic.json::<Value>().await.unwrap(),
        fixture("error_authentication_failure.json")
    );
    let good = http
        .get(&url)
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 204);
    assert!(good.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_revoked_refresh_token_asks_to_reconnect() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let store = expired_store(&fake);
    fake.revoke_refresh_token(FAKE_REFRESH_TOKEN);
    let zoho = client(store.clone());

    let error = failure(zoho.search(&phone("919820000001")).await);

    assert!(
        matches!(error, ZohoError::RefreshTokenRevoked { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("reconnect with `flowbot zoho connect"),
        "{error}"
    );
    assert_eq!(fake.searches(), 0);
    let status = zoho.status().await.unwrap();
    assert_eq!(status[0].state, ConnectionState::Failing);
    assert!(status[0].hint.contains("reconnect"), "{}", status[0].hint);
}

#[tokio::test]
async fn a_throttled_refresh_blocks_refreshing_for_at_least_a_minute() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let store = expired_store(&fake);
    let clock = ManualClock::new(Utc::now());
    let zoho = client_with_clock(store.clone(), clock.clone());
    fake.throttle_next_refreshes(1);

    let first = failure(zoho.search(&phone("919820000001")).await);
    assert!(matches!(first, ZohoError::Throttled { .. }), "{first:?}");
    assert!(first.to_string().contains("wait a few minutes"), "{first}");
    assert_eq!(fake.refreshes(), 1);
    let blocked_until = store
        .load("zoho")
        .await
        .unwrap()
        .unwrap()
        .refresh_blocked_until
        .unwrap();
    assert!(blocked_until >= clock.now() + chrono::Duration::seconds(60));

    // Within the block: fail fast, no call to Zoho at all.
    clock.advance(Duration::from_secs(59));
    let report = zoho.search(&phone("919820000001")).await;
    assert!(report.calls.is_empty(), "{:?}", report.calls);
    assert!(matches!(failure(report), ZohoError::Throttled { .. }));
    assert_eq!(
        zoho.status().await.unwrap()[0].state,
        ConnectionState::Throttled
    );
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.searches(), 0);

    // After the block the next lookup refreshes and succeeds.
    clock.set(blocked_until + chrono::Duration::seconds(1));
    found(&zoho.search(&phone("919820000001")).await);
    assert_eq!(fake.refreshes(), 2);
    let connection = store.load("zoho").await.unwrap().unwrap();
    assert_eq!(connection.refresh_blocked_until, None);
    assert_eq!(connection.last_error, None);
}

#[tokio::test]
async fn too_many_requests_then_success_is_retried_with_backoff() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let clock = ManualClock::new(Utc::now());
    let zoho = client_with_clock(valid_store(&fake), clock.clone());
    fake.respond_to_next_searches(
        1,
        FakeResponse::json(429, fixture("error_too_many_requests.json")),
    );
    let before = clock.now();

    let report = zoho.search(&phone("919820000001")).await;

    found(&report);
    let statuses: Vec<Option<u16>> = report.calls.iter().map(|call| call.status).collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
    assert_eq!(report.calls[1].note, "search retry 1");
    let waited = clock.now() - before;
    assert!(
        waited >= chrono::Duration::milliseconds(150)
            && waited <= chrono::Duration::milliseconds(250),
        "{waited}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_five_seconds_and_retries_are_bounded() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let clock = ManualClock::new(Utc::now());
    let zoho = client_with_clock(valid_store(&fake), clock.clone());
    fake.respond_to_next_searches(
        1,
        FakeResponse::too_many_requests().with_header("Retry-After", "3"),
    );
    fake.respond_to_next_searches(1, FakeResponse::bad_gateway_html());
    let before = clock.now();
    found(&zoho.search(&phone("919820000001")).await);
    assert!(clock.now() - before >= chrono::Duration::seconds(3));
    assert_eq!(fake.searches(), 3);

    fake.respond_to_next_searches(3, FakeResponse::internal_error());
    let report = zoho.search(&phone("919820000001")).await;
    assert_eq!(report.calls.len(), 3);
    let error = failure(report);
    assert!(
        matches!(
            error,
            ZohoError::ServerError {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );

    fake.respond_to_next_searches(
        3,
        FakeResponse::too_many_requests().with_header("Retry-After", "600"),
    );
    let before = clock.now();
    let error = failure(zoho.search(&phone("919820000001")).await);
    assert!(
        matches!(error, ZohoError::RateLimited { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(
        clock.now() - before <= chrono::Duration::seconds(10),
        "Retry-After is capped"
    );
}

#[tokio::test]
async fn zoho_errors_name_the_fix() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let zoho = client(valid_store(&fake));
    let mut request = phone("919820000001");
    request.module = "Widgets".into();
    let invalid_module = failure(zoho.search(&request).await);
    assert!(
        matches!(invalid_module, ZohoError::InvalidModule { .. }),
        "{invalid_module:?}"
    );

    fake.respond_to_next_searches(
        1,
        FakeResponse::json(401, fixture("error_oauth_scope_mismatch.json")),
    );
    let scope = failure(zoho.search(&phone("919820000001")).await).to_string();
    assert!(
        scope.contains("ZohoCRM.modules.contacts.READ")
            && scope.contains("ZohoSearch.securesearch.READ"),
        "{scope}"
    );

    fake.respond_to_next_searches(
        1,
        FakeResponse::json(400, fixture("error_invalid_query.json")),
    );
    let query = failure(zoho.search(&phone("919820000001")).await);
    assert!(matches!(query, ZohoError::InvalidQuery { .. }), "{query:?}");
    assert!(
        query.to_string().contains("invalid operator found"),
        "{query}"
    );

    let mut missing = phone("919820000001");
    missing.connection = "crm".into();
    let not_connected = failure(zoho.search(&missing).await).to_string();
    assert!(
        not_connected.contains("flowbot zoho connect --name crm"),
        "{not_connected}"
    );

    let bad_number = failure(zoho.search(&phone("12")).await);
    assert!(
        matches!(bad_number, ZohoError::InvalidRequest { .. }),
        "{bad_number:?}"
    );
    assert_eq!(fake.searches(), 3);
}

#[tokio::test]
async fn disconnect_revokes_then_deletes() {
    let fake = FakeZoho::start(FakeZohoConfig::default()).await;
    let store = Arc::new(MemoryTokenStore::new());
    let zoho = client(store.clone());
    let connection = zoho.connect(connect_request(&fake)).await.unwrap();
    assert!(fake.refresh_token_is_valid(connection.refresh_token.expose()));

    let report = zoho.disconnect("zoho").await.unwrap();

    assert!(report.revoked, "{report:?}");
    assert_eq!(fake.revokes(), 1);
    assert!(!fake.refresh_token_is_valid(connection.refresh_token.expose()));
    assert_eq!(store.load("zoho").await.unwrap(), None);
    assert_eq!(
        report.calls[0].url,
        format!("{}/oauth/v2/token/revoke?token=[redacted]", fake.url())
    );
    let revoke = fake
        .requests()
        .into_iter()
        .find(|request| request.path.ends_with("/revoke"))
        .unwrap();
    assert_eq!(revoke.method, "POST");
    assert!(matches!(
        zoho.disconnect("zoho").await,
        Err(ZohoError::NotConnected { .. })
    ));
}

#[tokio::test]
async fn status_shows_health_without_tokens() {
    let fake = FakeZoho::start(FakeZohoConfig::default()).await;
    let zoho = client(Arc::new(MemoryTokenStore::new()));
    let connection = zoho.connect(connect_request(&fake)).await.unwrap();
    let status = zoho.status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, ConnectionState::Ready);
    assert_eq!(status[0].api_domain, fake.url());
    assert!(status[0].expires_in_secs > 3500);
    let refreshed = zoho.refresh("zoho").await.unwrap();
    assert_eq!(fake.refreshes(), 1);
    assert!(refreshed.last_refresh_at.is_some());
    let text = format!(
        "{status:?} {refreshed:?} {}",
        serde_json::to_string(&status).unwrap()
    );
    let extra = [
        connection.access_token.expose().to_owned(),
        connection.refresh_token.expose().to_owned(),
    ];
    assert_no_secret(&text, &secrets(&fake, &extra));
}

#[tokio::test]
async fn no_secret_in_any_error_debug_or_call_record() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let store = Arc::new(MemoryTokenStore::new());
    let zoho = client(store.clone());
    let mut texts: Vec<String> = Vec::new();
    let mut calls: Vec<CallRecord> = Vec::new();
    let keep = |error: ZohoError, texts: &mut Vec<String>| {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    };

    let connection = zoho.connect(connect_request(&fake)).await.unwrap();
    texts.push(format!("{connection:?}"));
    keep(
        zoho.connect(connect_request(&fake)).await.unwrap_err(),
        &mut texts,
    );
    let mut wrong_client = connect_request(&fake);
    wrong_client.client_id = "nope".into();
    keep(zoho.connect(wrong_client).await.unwrap_err(), &mut texts);

    fake.respond_to_next_searches(2, FakeResponse::invalid_token());
    let report = zoho.search(&phone("919820000001")).await;
    texts.push(format!("{report:?}"));
    calls.extend(report.calls.clone());
    keep(failure(report), &mut texts);

    fake.respond_to_next_searches(3, FakeResponse::bad_gateway_html());
    let report = zoho.search(&phone("919820000001")).await;
    calls.extend(report.calls.clone());
    keep(failure(report), &mut texts);

    fake.throttle_next_refreshes(1);
    fake.expire_all_tokens();
    let mut expired = store.load("zoho").await.unwrap().unwrap();
    expired.expires_at = Utc::now();
    store.save(&expired).await.unwrap();
    let report = zoho.search(&phone("919820000001")).await;
    calls.extend(report.calls.clone());
    keep(failure(report), &mut texts);
    texts.push(format!("{:?}", store.load("zoho").await.unwrap()));
    texts.push(format!("{:?}", zoho.status().await.unwrap()));

    let disconnected = zoho.disconnect("zoho").await.unwrap();
    calls.extend(disconnected.calls.clone());
    texts.push(format!("{disconnected:?}"));

    texts.push(serde_json::to_string(&calls).unwrap());
    texts.push(format!("{calls:?}"));
    let extra = [
        connection.access_token.expose().to_owned(),
        connection.refresh_token.expose().to_owned(),
    ];
    let all_secrets = secrets(&fake, &extra);
    assert!(all_secrets.len() >= 6);
    for text in &texts {
        assert_no_secret(text, &all_secrets);
    }
    assert!(calls.len() >= 6, "{calls:#?}");
}

#[tokio::test]
async fn concurrent_calls_per_connection_are_bounded() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    fake.set_latency(Duration::from_millis(50));
    let config = ClientConfig {
        max_concurrency: 3,
        ..ClientConfig::default()
    };
    let zoho = Arc::new(ZohoClient::new(
        ReqwestTransport::new().unwrap(),
        valid_store(&fake),
        config,
    ));
    let lookups = (0..12).map(|_| {
        let zoho = zoho.clone();
        tokio::spawn(async move { zoho.search(&phone("919820000001")).await })
    });
    for report in futures::future::join_all(lookups).await {
        found(&report.unwrap());
    }
    assert_eq!(fake.searches(), 12);
    assert_eq!(fake.max_concurrent_searches(), 3);
}

#[tokio::test]
async fn an_unreachable_zoho_is_a_transport_error_after_bounded_retries() {
    let fake = FakeZoho::with_records(Vec::new()).await;
    let store = valid_store(&fake);
    drop(fake);
    let zoho = client_with_clock(store, ManualClock::new(Utc::now()));
    let report = zoho.search(&phone("919820000001")).await;
    assert_eq!(report.calls.len(), 3);
    assert!(
        report.calls.iter().all(|call| call.status.is_none()),
        "{:?}",
        report.calls
    );
    let error = failure(report);
    assert!(matches!(error, ZohoError::Transport { .. }), "{error:?}");
    assert!(
        error.to_string().contains("could not reach Zoho"),
        "{error}"
    );
}

#[tokio::test]
async fn while_refreshing_is_blocked_a_token_inside_the_margin_is_still_used() {
    let fake = FakeZoho::with_records(
        fixture("search_found.json")["data"]
            .as_array()
            .unwrap()
            .clone(),
    )
    .await;
    let token = fake.issue_token(Duration::from_secs(3600));
    let store = Arc::new(MemoryTokenStore::with_connections([seeded(
        &fake,
        &token,
        chrono::Duration::minutes(2),
    )]));
    fake.throttle_next_refreshes(1);
    let zoho = client(store.clone());

    // The proactive refresh is throttled; the call goes on with the still-valid token, and the
    // next call does not try to refresh again.
    let first = zoho.search(&phone("919820000001")).await;
    found(&first);
    assert_eq!(first.calls.len(), 2, "{:?}", first.calls);
    let stored = store.load("zoho").await.unwrap().unwrap();
    assert!(stored.refresh_blocked_until.is_some());
    let second = zoho.search(&phone("919820000001")).await;
    found(&second);
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(second.calls.len(), 1);
}
