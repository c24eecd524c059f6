//! A fake Zoho: the accounts server (`/oauth/v2/token`, `/oauth/v2/token/revoke`) and the CRM search
//! API (`/crm/v8/{module}/search`) as a real axum server on `127.0.0.1:0`. Use [`FakeZoho::url`] both
//! as the accounts URL and as the API domain: token answers name the fake's own URL as `api_domain`.
//!
//! It behaves like Zoho where the client depends on it: token errors come with HTTP 200 and
//! `{"error": ...}` (shapes of `tests/fixtures/zoho/`), grant codes work once, searches need
//! `Authorization: Zoho-oauthtoken <valid unexpired token>`, no match is a 204 with an empty body,
//! `criteria` is parsed with Zoho's backslash escapes and a query's `+` decodes to a space. Phone
//! fields compare with `equals` exactly (by default ignoring spaces, dashes, dots and parentheses in
//! the stored value; see [`PhoneMatch`]); other fields compare contains-like, as Zoho v8 does.
//!
//! Knobs for failure tests: throttle the next N refreshes, revoke refresh tokens, answer the next N
//! searches with a canned [`FakeResponse`] (429, 500, an HTML 502, INVALID_TOKEN), add latency,
//! expire every token. Counters and a log of received requests let tests assert what was sent.
//!
//! Time is the real clock: tokens expire by `chrono::Utc::now()`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const FAKE_CLIENT_ID: &str = "1000.FAKECLIENTID0000000000000000";
pub const FAKE_CLIENT_SECRET: &str = "fakeclientsecret0123456789abcdef0123456789";
pub const FAKE_GRANT_CODE: &str =
    "1000.fakegrantcode0000000000000000.00000000000000000000000000000000";
pub const FAKE_REFRESH_TOKEN: &str =
    "1000.fakerefreshtoken00000000000000.00000000000000000000000000000000";

/// The phone fields of a Contacts record.
pub const PHONE_FIELDS: [&str; 6] = [
    "Phone",
    "Mobile",
    "Home_Phone",
    "Other_Phone",
    "Asst_Phone",
    "Fax",
];

/// How `equals` compares a phone field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneMatch {
    /// The stored text must equal the value exactly.
    Exact,
    /// Spaces, dashes, dots and parentheses in the stored text are ignored (`+91 98200 00001`
    /// equals `+919820000001`); a `+` and leading zeros still count.
    IgnoreFormatting,
}

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeZohoConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Grant codes that can be exchanged once each.
    pub grant_codes: Vec<String>,
    /// Refresh tokens that are valid from the start.
    pub refresh_tokens: Vec<String>,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Answer `expires_in` in milliseconds plus `expires_in_sec` (the legacy shape).
    pub legacy_ms_expires_in: bool,
    /// Records searched, in the shape of `search_found.json`'s `data` items.
    pub records: Vec<Value>,
    /// Modules that exist; others get INVALID_MODULE.
    pub modules: Vec<String>,
    pub phone_match: PhoneMatch,
    /// Added to every search answer.
    pub latency: Duration,
}

impl Default for FakeZohoConfig {
    fn default() -> Self {
        FakeZohoConfig {
            client_id: FAKE_CLIENT_ID.to_owned(),
            client_secret: FAKE_CLIENT_SECRET.to_owned(),
            grant_codes: vec![FAKE_GRANT_CODE.to_owned()],
            refresh_tokens: vec![FAKE_REFRESH_TOKEN.to_owned()],
            token_lifetime: Duration::from_secs(3600),
            legacy_ms_expires_in: false,
            records: Vec::new(),
            modules: ["Contacts", "Leads", "Accounts", "Deals"]
                .map(String::from)
                .to_vec(),
            phone_match: PhoneMatch::IgnoreFormatting,
            latency: Duration::ZERO,
        }
    }
}

/// A canned answer for the next searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeResponse {
    pub fn json(status: u16, body: Value) -> Self {
        FakeResponse {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: body.to_string(),
        }
    }

    pub fn html(status: u16, body: &str) -> Self {
        FakeResponse {
            status,
            headers: vec![("content-type".into(), "text/html".into())],
            body: body.to_owned(),
        }
    }

    /// A Zoho error body `{"code","details","message","status":"error"}`.
    pub fn zoho_error(status: u16, code: &str, message: &str) -> Self {
        FakeResponse::json(status, zoho_error_body(code, message))
    }

    pub fn too_many_requests() -> Self {
        FakeResponse::zoho_error(
            429,
            "TOO_MANY_REQUESTS",
            "The number of requests has exceeded the allowed limit",
        )
    }

    pub fn internal_error() -> Self {
        FakeResponse::zoho_error(500, "INTERNAL_ERROR", "Internal Server Error")
    }

    pub fn bad_gateway_html() -> Self {
        FakeResponse::html(502, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>")
    }

    pub fn invalid_token() -> Self {
        FakeResponse::zoho_error(401, "INVALID_TOKEN", "invalid oauth token")
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, still percent-encoded.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeZoho {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    url: String,
    inner: Mutex<Inner>,
}

struct Inner {
    client_id: String,
    client_secret: String,
    grant_codes: HashSet<String>,
    refresh_tokens: HashSet<String>,
    access_tokens: HashMap<String, DateTime<Utc>>,
    token_lifetime: Duration,
    legacy_ms_expires_in: bool,
    records: Vec<Value>,
    modules: Vec<String>,
    phone_match: PhoneMatch,
    latency: Duration,
    throttle_refreshes: u32,
    search_overrides: VecDeque<FakeResponse>,
    issued: u64,
    refreshes: u32,
    grants: u32,
    searches: u32,
    revokes: u32,
    in_flight: u32,
    max_in_flight: u32,
    requests: Vec<ReceivedRequest>,
}

impl FakeZoho {
    /// Bind `127.0.0.1:0` and serve. Panics if the port cannot be bound (tests only).
    pub async fn start(config: FakeZohoConfig) -> FakeZoho {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let url = format!("http://{addr}");
        let inner = Inner {
            client_id: config.client_id,
            client_secret: config.client_secret,
            grant_codes: config.grant_codes.into_iter().collect(),
            refresh_tokens: config.refresh_tokens.into_iter().collect(),
            access_tokens: HashMap::new(),
            token_lifetime: config.token_lifetime,
            legacy_ms_expires_in: config.legacy_ms_expires_in,
            records: config.records,
            modules: config.modules,
            phone_match: config.phone_match,
            latency: config.latency,
            throttle_refreshes: 0,
            search_overrides: VecDeque::new(),
            issued: 0,
            refreshes: 0,
            grants: 0,
            searches: 0,
            revokes: 0,
            in_flight: 0,
            max_in_flight: 0,
            requests: Vec::new(),
        };
        let shared = Arc::new(Shared {
            url: url.clone(),
            inner: Mutex::new(inner),
        });
        let app = app(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeZoho { url, shared, task }
    }

    /// A default fake holding these records.
    pub async fn with_records(records: Vec<Value>) -> FakeZoho {
        FakeZoho::start(FakeZohoConfig {
            records,
            ..FakeZohoConfig::default()
        })
        .await
    }

    /// `http://127.0.0.1:PORT`: the accounts URL and the API domain.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Issue an access token valid for `lifetime` (seed an already-connected client).
    pub fn issue_token(&self, lifetime: Duration) -> String {
        let mut inner = self.shared.lock();
        let expires_at =
            Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        inner.issue_access_token(expires_at)
    }

    /// Every access token issued so far stops working now.
    pub fn expire_all_tokens(&self) {
        let mut inner = self.shared.lock();
        let past = Utc::now() - chrono::Duration::seconds(1);
        for expiry in inner.access_tokens.values_mut() {
            *expiry = past;
        }
    }

    /// The next `count` refresh requests get `{"error":"Access Denied", ...}` (HTTP 200).
    pub fn throttle_next_refreshes(&self, count: u32) {
        self.shared.lock().throttle_refreshes = count;
    }

    /// This refresh token stops working (refreshes answer `invalid_code`).
    pub fn revoke_refresh_token(&self, token: &str) {
        self.shared.lock().refresh_tokens.remove(token);
    }

    pub fn add_refresh_token(&self, token: &str) {
        self.shared.lock().refresh_tokens.insert(token.to_owned());
    }

    pub fn add_grant_code(&self, code: &str) {
        self.shared.lock().grant_codes.insert(code.to_owned());
    }

    /// The next `count` searches get `response` (before any auth check).
    pub fn respond_to_next_searches(&self, count: u32, response: FakeResponse) {
        let mut inner = self.shared.lock();
        for _ in 0..count {
            inner.search_overrides.push_back(response.clone());
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    pub fn set_records(&self, records: Vec<Value>) {
        self.shared.lock().records = records;
    }

    pub fn set_phone_match(&self, phone_match: PhoneMatch) {
        self.shared.lock().phone_match = phone_match;
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = lifetime;
    }

    pub fn set_legacy_ms_expires_in(&self, legacy: bool) {
        self.shared.lock().legacy_ms_expires_in = legacy;
    }

    /// Refresh requests received (throttled and failed ones included).
    pub fn refreshes(&self) -> u32 {
        self.shared.lock().refreshes
    }

    /// Grant-code exchanges received.
    pub fn grants(&self) -> u32 {
        self.shared.lock().grants
    }

    /// Search requests received.
    pub fn searches(&self) -> u32 {
        self.shared.lock().searches
    }

    /// Revoke requests received.
    pub fn revokes(&self) -> u32 {
        self.shared.lock().revokes
    }

    /// The most searches that were being answered at the same time (use with latency).
    pub fn max_concurrent_searches(&self) -> u32 {
        self.shared.lock().max_in_flight
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Whether a refresh token is still valid.
    pub fn refresh_token_is_valid(&self, token: &str) -> bool {
        self.shared.lock().refresh_tokens.contains(token)
    }
}

impl Drop for FakeZoho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Inner {
    fn next_token(&mut self, kind: &str) -> String {
        self.issued += 1;
        let digest = Sha256::digest(format!(
            "{kind}-{}-{:?}",
            self.issued,
            std::time::SystemTime::now()
        ));
        let hex = hex::encode(digest);
        format!("1000.{}.{}", &hex[..32], &hex[32..])
    }

    fn issue_access_token(&mut self, expires_at: DateTime<Utc>) -> String {
        let token = self.next_token("access");
        self.access_tokens.insert(token.clone(), expires_at);
        token
    }

    fn token_answer(&mut self, api_domain: &str, refresh_token: Option<String>) -> Value {
        let lifetime = self.token_lifetime;
        let expires_at =
            Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        let access_token = self.issue_access_token(expires_at);
        let mut answer = serde_json::Map::new();
        answer.insert("access_token".into(), json!(access_token));
        if let Some(refresh_token) = refresh_token {
            answer.insert("refresh_token".into(), json!(refresh_token));
        }
        if self.legacy_ms_expires_in {
            answer.insert("expires_in_sec".into(), json!(lifetime.as_secs()));
        }
        answer.insert("api_domain".into(), json!(api_domain));
        answer.insert("token_type".into(), json!("Bearer"));
        let expires_in = if self.legacy_ms_expires_in {
            lifetime.as_millis() as u64
        } else {
            lifetime.as_secs()
        };
        answer.insert("expires_in".into(), json!(expires_in));
        Value::Object(answer)
    }
}

fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/v2/token", post(token))
        .route("/oauth/v2/token/revoke", post(revoke))
        .route("/crm/v8/{module}/search", get(search))
        .with_state(shared)
}

fn record(
    inner: &mut Inner,
    method: &Method,
    path: String,
    query: &Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) {
    inner.requests.push(ReceivedRequest {
        method: method.to_string(),
        path,
        query: query.clone(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space), without another dependency.
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json;charset=UTF-8")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn zoho_error_body(code: &str, message: &str) -> Value {
    json!({"code": code, "details": {}, "message": message, "status": "error"})
}

async fn token(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params: HashMap<String, String> = HashMap::new();
    for (key, value) in parse_pairs(query.as_deref().unwrap_or("")) {
        params.insert(key, value);
    }
    for (key, value) in parse_pairs(&String::from_utf8_lossy(&body)) {
        params.insert(key, value);
    }
    let get = |key: &str| params.get(key).cloned().unwrap_or_default();
    let mut inner = shared.lock();
    record(
        &mut inner,
        &method,
        "/oauth/v2/token".into(),
        &query,
        &headers,
        &body,
    );
    let grant_type = get("grant_type");
    match grant_type.as_str() {
        "authorization_code" => inner.grants += 1,
        "refresh_token" => inner.refreshes += 1,
        _ => {}
    }
    if grant_type == "refresh_token" && inner.throttle_refreshes > 0 {
        inner.throttle_refreshes -= 1;
        return json_response(
            200,
            &json!({
                "error_description": "You have made too many requests continuously. Please try again after some time.",
                "error": "Access Denied"
            }),
        );
    }
    if get("client_id") != inner.client_id || get("client_secret") != inner.client_secret {
        return json_response(200, &json!({"error": "invalid_client"}));
    }
    match grant_type.as_str() {
        "authorization_code" => {
            if !inner.grant_codes.remove(&get("code")) {
                return json_response(200, &json!({"error": "invalid_code"}));
            }
            let refresh_token = inner.next_token("refresh");
            inner.refresh_tokens.insert(refresh_token.clone());
            let answer = inner.token_answer(&shared.url, Some(refresh_token));
            json_response(200, &answer)
        }
        "refresh_token" => {
            if !inner.refresh_tokens.contains(&get("refresh_token")) {
                return json_response(200, &json!({"error": "invalid_code"}));
            }
            let answer = inner.token_answer(&shared.url, None);
            json_response(200, &answer)
        }
        _ => json_response(200, &json!({"error": "unsupported_grant_type"})),
    }
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut inner = shared.lock();
    record(
        &mut inner,
        &method,
        "/oauth/v2/token/revoke".into(),
        &query,
        &headers,
        &body,
    );
    inner.revokes += 1;
    let token = parse_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
        .unwrap_or_default();
    if inner.refresh_tokens.remove(&token) {
        json_response(200, &json!({"status": "success"}))
    } else {
        json_response(200, &json!({"error": "invalid_code"}))
    }
}

async fn search(
    State(shared): State<Arc<Shared>>,
    Path(module): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (latency, override_response) = {
        let mut inner = shared.lock();
        record(
            &mut inner,
            &method,
            format!("/crm/v8/{module}/search"),
            &query,
            &headers,
            &[],
        );
        inner.searches += 1;
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (inner.latency, inner.search_overrides.pop_front())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    shared.lock().in_flight -= 1;
    if let Some(canned) = override_response {
        let mut builder = Response::builder().status(
            StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        for (name, value) in &canned.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        return builder.body(Body::from(canned.body)).unwrap_or_default();
    }
    let inner = shared.lock();
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if let Some(token) = authorization.strip_prefix("Zoho-oauthtoken ") {
        let valid = inner
            .access_tokens
            .get(token.trim())
            .is_some_and(|expiry| *expiry > Utc::now());
        if !valid {
            return json_response(
                401,
                &zoho_error_body("INVALID_TOKEN", "invalid oauth token"),
            );
        }
    } else if authorization.starts_with("Bearer ") {
        return json_response(
            401,
            &zoho_error_body("INVALID_TOKEN", "invalid oauth token"),
        );
    } else {
        return json_response(
            401,
            &zoho_error_body("AUTHENTICATION_FAILURE", "Authentication failed"),
        );
    }
    if !inner.modules.iter().any(|known| known == &module) {
        return json_response(
            400,
            &json!({"code": "INVALID_MODULE", "details": {"resource_path_index": 0}, "message": "the module name given seems to be invalid", "status": "error"}),
        );
    }
    let params = parse_pairs(query.as_deref().unwrap_or(""));
    let param = |key: &str| {
        params
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    };
    let matcher: Box<dyn Fn(&Value) -> bool> = if let Some(criteria) = param("criteria") {
        match parse_criteria(&criteria) {
            Ok(expr) => {
                let phone_match = inner.phone_match;
                Box::new(move |record: &Value| expr.matches(record, phone_match))
            }
            Err(reason) => {
                return json_response(
                    400,
                    &json!({"code": "INVALID_QUERY", "details": {"reason": reason}, "message": "invalid query formed", "status": "error"}),
                );
            }
        }
    } else if let Some(email) = param("email") {
        Box::new(move |record: &Value| {
            record.as_object().is_some_and(|fields| {
                fields.iter().any(|(name, value)| {
                    name.contains("Email")
                        && value
                            .as_str()
                            .is_some_and(|stored| stored.eq_ignore_ascii_case(email.trim()))
                })
            })
        })
    } else if let Some(phone) = param("phone") {
        let wanted = strip_formatting(phone.trim());
        Box::new(move |record: &Value| {
            PHONE_FIELDS.iter().any(|field| {
                record
                    .get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|stored| strip_formatting(stored) == wanted)
            })
        })
    } else if let Some(word) = param("word") {
        let word = word.trim().to_lowercase();
        Box::new(move |record: &Value| {
            record.as_object().is_some_and(|fields| {
                fields.values().any(|value| {
                    value
                        .as_str()
                        .is_some_and(|text| text.to_lowercase().contains(&word))
                })
            })
        })
    } else {
        return json_response(
            400,
            &json!({"code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "criteria"}, "message": "One of the expected parameter is missing", "status": "error"}),
        );
    };
    let fields: Option<Vec<String>> = param("fields").map(|list| {
        list.split(',')
            .map(|field| field.trim().to_owned())
            .filter(|field| !field.is_empty())
            .collect()
    });
    let data: Vec<Value> = inner
        .records
        .iter()
        .filter(|record| matcher(record))
        .map(|record| project(record, fields.as_deref()))
        .collect();
    if data.is_empty() {
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let count = data.len();
    json_response(
        200,
        &json!({
            "data": data,
            "info": {"per_page": 200, "count": count, "page": 1, "sort_by": "id", "sort_order": "desc", "more_records": false}
        }),
    )
}

fn project(record: &Value, fields: Option<&[String]>) -> Value {
    let (Some(fields), Some(object)) = (fields, record.as_object()) else {
        return record.clone();
    };
    let mut projected = serde_json::Map::new();
    for (name, value) in object {
        if name == "id" || fields.iter().any(|field| field == name) {
            projected.insert(name.clone(), value.clone());
        }
    }
    Value::Object(projected)
}

fn strip_formatting(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect()
}

/// A parsed `criteria` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    Condition {
        field: String,
        operator: String,
        value: String,
    },
    And(Box<Criteria>, Box<Criteria>),
    Or(Box<Criteria>, Box<Criteria>),
}

const OPERATORS: [&str; 9] = [
    "equals",
    "not_equal",
    "starts_with",
    "in",
    "greater_than",
    "greater_equal",
    "less_than",
    "less_equal",
    "between",
];

/// Parse `((Field:equals:value)or(...))` with Zoho's backslash escapes in values.
pub fn parse_criteria(text: &str) -> Result<Criteria, String> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut position = 0;
    let expr = parse_group(&chars, &mut position)?;
    if position != chars.len() {
        return Err(format!("unexpected text after position {position}"));
    }
    Ok(expr)
}

fn parse_group(chars: &[char], position: &mut usize) -> Result<Criteria, String> {
    if chars.get(*position) != Some(&'(') {
        return Err(format!("expected ( at position {position}"));
    }
    *position += 1;
    if chars.get(*position) != Some(&'(') {
        return parse_condition(chars, position);
    }
    let mut expr = parse_group(chars, position)?;
    loop {
        match chars.get(*position) {
            Some(')') => {
                *position += 1;
                return Ok(expr);
            }
            Some(_) => {
                let rest: String = chars[*position..]
                    .iter()
                    .take(3)
                    .collect::<String>()
                    .to_lowercase();
                let is_and = rest.starts_with("and");
                let is_or = rest.starts_with("or");
                if !is_and && !is_or {
                    return Err(format!("expected and/or at position {position}"));
                }
                *position += if is_and { 3 } else { 2 };
                let right = parse_group(chars, position)?;
                expr = if is_and {
                    Criteria::And(Box::new(expr), Box::new(right))
                } else {
                    Criteria::Or(Box::new(expr), Box::new(right))
                };
            }
            None => return Err("missing )".into()),
        }
    }
}

/// After the `(`: `Field:operator:value)` with `\` escaping the next character of the value.
fn parse_condition(chars: &[char], position: &mut usize) -> Result<Criteria, String> {
    let mut parts: Vec<String> = vec![String::new()];
    loop {
        let Some(&c) = chars.get(*position) else {
            return Err("missing ) after a condition".into());
        };
        *position += 1;
        match c {
            '\\' => {
                let Some(&next) = chars.get(*position) else {
                    return Err("a value ends with a lone backslash".into());
                };
                *position += 1;
                if let Some(last) = parts.last_mut() {
                    last.push(next);
                }
            }
            ':' if parts.len() < 3 => parts.push(String::new()),
            ')' => break,
            '(' | ',' if parts.len() == 3 => return Err(format!("unescaped {c} in a value")),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    let [field, operator, value]: [String; 3] = parts
        .try_into()
        .map_err(|_| "a condition is Field:operator:value".to_string())?;
    if !OPERATORS.contains(&operator.as_str()) {
        return Err(format!("invalid operator found: {operator}"));
    }
    Ok(Criteria::Condition {
        field,
        operator,
        value,
    })
}

impl Criteria {
    pub fn matches(&self, record: &Value, phone_match: PhoneMatch) -> bool {
        match self {
            Criteria::And(left, right) => {
                left.matches(record, phone_match) && right.matches(record, phone_match)
            }
            Criteria::Or(left, right) => {
                left.matches(record, phone_match) || right.matches(record, phone_match)
            }
            Criteria::Condition {
                field,
                operator,
                value,
            } => {
                let stored = match record.get(field) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Number(number)) => number.to_string(),
                    Some(Value::Bool(flag)) => flag.to_string(),
                    Some(Value::Object(object)) => object
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    _ => return operator == "not_equal",
                };
                let is_phone = PHONE_FIELDS.contains(&field.as_str());
                let stored = if is_phone && phone_match == PhoneMatch::IgnoreFormatting {
                    strip_formatting(&stored)
                } else {
                    stored
                };
                let equals = |wanted: &str| {
                    if is_phone {
                        stored == wanted
                    } else {
                        stored.to_lowercase().contains(&wanted.to_lowercase())
                    }
                };
                match operator.as_str() {
                    "equals" => equals(value),
                    "not_equal" => !equals(value),
                    "starts_with" => stored.to_lowercase().starts_with(&value.to_lowercase()),
                    "in" => value.split(',').any(|one| equals(one.trim())),
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_with_escapes() {
        let expr =
            parse_criteria("((Last_Name:equals:Burns\\,B)or(Phone:equals:+91\\(0\\)))").unwrap();
        let record = json!({"Last_Name": "Burns,B", "Phone": "+91(0)"});
        assert!(expr.matches(&record, PhoneMatch::Exact));
        assert!(parse_criteria("((Mobile:contains:1))").is_err());
        assert!(parse_criteria("(Mobile:equals:1").is_err());
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("%2B91+98"), "+91 98");
        assert_eq!(form_decode("a%"), "a%");
    }
}
