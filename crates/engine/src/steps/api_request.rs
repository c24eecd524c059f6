//! The External API Request step at run time: building the request with escaping by place,
//! deciding retries, reading the answer into an outcome, and saving response paths.
//!
//! Escaping: values in the URL are percent-encoded for their component; `query:` values are
//! form-encoded by the URL library (a `+` becomes `%2B`, never a space); a JSON body is built as a
//! value and serialized; form bodies are form-encoded; a header value holding CR or LF refuses the
//! request (error outcome) before anything reaches the wire.

use std::time::Duration;

use base64::Engine as _;
use flowbot_flow::path::ResponseView;
use flowbot_flow::template::{lookup, value_to_text, Escape};
use flowbot_flow::{ApiRequest, Auth, Body, ResponseKind, SaveMap};
use serde_json::Value;

use crate::effect::{HttpRequest, HttpResult};
use crate::secrets::{is_sensitive_header, Redactor, Secrets, REDACTED};
use crate::trace::{cut, HttpTrace, TRACE_BODY_LIMIT};
use crate::turn::Outcome;

/// Longest wait a `Retry-After` answer can impose.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

/// Renders the request. The error names what made it unsafe to send.
pub fn build(
    request: &ApiRequest,
    scope: &mut Value,
    secrets: &Secrets,
) -> Result<(HttpRequest, Redactor), String> {
    // Secrets are visible to this step's templates only, for the duration of the rendering.
    if let Value::Object(map) = scope {
        map.insert("secrets".into(), secrets.to_value());
    }
    let built = render(request, scope, secrets);
    if let Value::Object(map) = scope {
        map.remove("secrets");
    }
    built
}

/// True when the path of a rendered URL has a segment that URL parsing removes or resolves:
/// `.` or `..`, also percent-encoded (`%2e`), which the WHATWG rules treat alike.
fn has_dot_segment(url: &str) -> bool {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    url[..path_end].split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

fn render(
    request: &ApiRequest,
    scope: &Value,
    secrets: &Secrets,
) -> Result<(HttpRequest, Redactor), String> {
    let mut redactor = secrets.redactor();
    let base = match &request.url.base {
        Some(name) => lookup(scope, name)
            .map(value_to_text)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string(),
        None => String::new(),
    };
    let rest = request.url.rest.render_escaped(scope, Escape::UrlComponent);
    if has_dot_segment(&rest) {
        // URL parsing would drop `x/..`: a value of `..` would move the request up the path.
        return Err("a value would make a `.` or `..` path segment".into());
    }
    let url_text = format!("{base}{rest}");
    let mut url = url::Url::parse(&url_text).map_err(|e| format!("the URL is not valid ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("the URL is not an http(s) URL with a host".into());
    }
    if !request.query.is_empty() || matches!(request.auth, Auth::ApiKeyQuery { .. }) {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &request.query {
            pairs.append_pair(name, &value.render(scope));
        }
        if let Auth::ApiKeyQuery { name, value } = &request.auth {
            let key = value.render(scope);
            redactor.add(&key);
            pairs.append_pair(name, &key);
        }
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    match &request.auth {
        Auth::None | Auth::ApiKeyQuery { .. } => {}
        Auth::Bearer(token) => {
            let token = token.render(scope);
            redactor.add(&token);
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        Auth::Basic { user, password } => {
            let password = password.render(scope);
            redactor.add(&password);
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", user.render(scope)));
            redactor.add(&encoded);
            headers.push(("Authorization".into(), format!("Basic {encoded}")));
        }
        Auth::ApiKeyHeader { name, value } => {
            let key = value.render(scope);
            redactor.add(&key);
            headers.push((name.clone(), key));
        }
    }
    for (name, value) in &request.headers {
        let rendered = value.render(scope);
        if is_sensitive_header(name) {
            redactor.add(&rendered);
        }
        headers.push((name.clone(), rendered));
    }
    for (name, value) in &headers {
        if value.contains(['\r', '\n']) {
            return Err(format!(
                "header `{name}` would contain a line break (CR or LF)"
            ));
        }
    }
    let body = match &request.body {
        Body::None => None,
        Body::Json(template) => {
            let value = crate::value::evaluate(template, scope);
            set_default_header(&mut headers, "Content-Type", "application/json");
            Some(
                serde_json::to_vec(&value)
                    .map_err(|e| format!("the JSON body could not be written ({e})"))?,
            )
        }
        Body::Form(fields) => {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                serializer.append_pair(name, &value.render(scope));
            }
            set_default_header(
                &mut headers,
                "Content-Type",
                "application/x-www-form-urlencoded",
            );
            Some(serializer.finish().into_bytes())
        }
        Body::Raw { content_type, text } => {
            set_default_header(&mut headers, "Content-Type", content_type);
            Some(text.render(scope).into_bytes())
        }
    };
    if request.response == ResponseKind::Json {
        set_default_header(&mut headers, "Accept", "application/json");
    }
    Ok((
        HttpRequest {
            method: request.method.as_str().into(),
            url: url.to_string(),
            headers,
            body,
            timeout: request.timeout,
            max_response: request.max_response,
        },
        redactor,
    ))
}

fn set_default_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
        headers.push((name.into(), value.into()));
    }
}

/// Whether this result may be retried: connection errors, timeouts, 429 and 5xx, while attempts
/// remain, and for POST/PATCH only with `retry_unsafe`.
pub fn should_retry(request: &ApiRequest, result: &HttpResult, attempt: u32) -> bool {
    if attempt >= request.retry_attempts {
        return false;
    }
    if !request.method.is_idempotent() && !request.retry_unsafe {
        return false;
    }
    match result {
        HttpResult::Timeout | HttpResult::Connection(_) => true,
        HttpResult::Response(response) => response.status == 429 || response.status >= 500,
        HttpResult::TooLarge => false,
    }
}

/// A `Retry-After` header in seconds, if the answer had one.
pub fn retry_after(result: &HttpResult) -> Option<Duration> {
    let HttpResult::Response(response) = result else {
        return None;
    };
    let (_, value) = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with a deterministic jitter of up to 25 % (seeded by the message id, so
/// replays are reproducible); `Retry-After` wins when longer, up to [`RETRY_AFTER_CAP`].
pub fn backoff(
    request: &ApiRequest,
    attempt: u32,
    retry_after: Option<Duration>,
    seed: &str,
) -> Duration {
    let base = request
        .retry_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(8));
    let hash = seed.bytes().fold(attempt, |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    let jitter = base.mul_f64(f64::from(hash % 250) / 1000.0);
    let computed = base + jitter;
    match retry_after {
        Some(wait) => computed.max(wait.min(RETRY_AFTER_CAP)),
        None => computed,
    }
}

/// The answer read as an outcome.
pub struct Answer {
    pub outcome: Outcome,
    /// `$error`: http_status, invalid_json, too_large, timeout or connection.
    pub error: Option<&'static str>,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body_text: String,
    pub json: Option<Value>,
}

impl Answer {
    pub fn view(&self) -> ResponseView<'_> {
        ResponseView {
            status: self.status,
            headers: &self.headers,
            body_text: &self.body_text,
            json: self.json.as_ref(),
            error: self.error,
        }
    }
}

/// Reads the result: 2xx with content goes on; 204, an empty body, or a first `save` path that
/// finds nothing is `empty`; non-2xx, a non-JSON body when JSON was expected, a body over the cap
/// and connection failures are `error`; no answer in time is `timeout`.
pub fn interpret(request: &ApiRequest, result: &HttpResult) -> Answer {
    let failed = |outcome, error| Answer {
        outcome,
        error: Some(error),
        status: None,
        headers: Vec::new(),
        body_text: String::new(),
        json: None,
    };
    let response = match result {
        HttpResult::Timeout => return failed(Outcome::Timeout, "timeout"),
        HttpResult::TooLarge => return failed(Outcome::Error, "too_large"),
        HttpResult::Connection(_) => return failed(Outcome::Error, "connection"),
        HttpResult::Response(response) => response,
    };
    let body_text = String::from_utf8_lossy(&response.body).into_owned();
    let mut answer = Answer {
        outcome: Outcome::Ok,
        error: None,
        status: Some(response.status),
        headers: response.headers.clone(),
        body_text,
        json: None,
    };
    if !(200..300).contains(&response.status) {
        answer.outcome = Outcome::Error;
        answer.error = Some("http_status");
        answer.json = serde_json::from_slice(&response.body).ok();
        return answer;
    }
    if response.status == 204 || answer.body_text.trim().is_empty() {
        answer.outcome = Outcome::Empty;
        return answer;
    }
    if request.response == ResponseKind::Json {
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(json) => answer.json = Some(json),
            Err(_) => {
                answer.outcome = Outcome::Error;
                answer.error = Some("invalid_json");
                return answer;
            }
        }
    }
    // `empty` looks at the first path into the body; `$error`, `$status`, `$headers.*` and `$body`
    // are always there and say nothing about whether the API found something.
    let first_body_path = request
        .save
        .iter()
        .find(|(_, path)| matches!(path, flowbot_flow::path::ResponsePath::Json { .. }));
    if let Some((_, first)) = first_body_path {
        if first
            .read(&answer.view())
            .is_none_or(|v| crate::value_is_empty_list(&v))
        {
            answer.outcome = Outcome::Empty;
        }
    }
    answer
}

/// A view for a request that never went out.
pub fn failure_view(error: &'static str) -> ResponseView<'static> {
    ResponseView {
        status: None,
        headers: &[],
        body_text: "",
        json: None,
        error: Some(error),
    }
}

/// Applies every `save` entry: what a path finds is saved, the rest is set empty (null).
pub fn apply_saves(saves: &SaveMap, view: &ResponseView<'_>, mut save: impl FnMut(&str, Value)) {
    for (var, path) in saves {
        save(var, path.read(view).unwrap_or(Value::Null));
    }
}

/// The trace of one attempt, with secrets and sensitive headers redacted.
pub fn trace(
    step: &str,
    attempt: u32,
    request: &HttpRequest,
    result: &HttpResult,
    redactor: &Redactor,
) -> HttpTrace {
    let request_headers = request
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if is_sensitive_header(k) {
                    REDACTED.to_string()
                } else {
                    redactor.redact(v)
                },
            )
        })
        .collect();
    let request_body = request
        .body
        .as_ref()
        .map(|b| redactor.redact(&cut(&String::from_utf8_lossy(b), TRACE_BODY_LIMIT)));
    let mut trace = HttpTrace {
        step: step.into(),
        attempt,
        method: request.method.clone(),
        url: redactor.redact(&request.url),
        request_headers,
        request_body,
        status: None,
        response_headers: Vec::new(),
        response_body: None,
        duration_ms: 0,
        error: None,
    };
    match result {
        HttpResult::Response(response) => {
            trace.status = Some(response.status);
            trace.response_headers = response
                .headers
                .iter()
                .filter(|(k, _)| !is_sensitive_header(k))
                .map(|(k, v)| (k.clone(), redactor.redact(v)))
                .collect();
            trace.response_body = Some(redactor.redact(&cut(
                &String::from_utf8_lossy(&response.body),
                TRACE_BODY_LIMIT,
            )));
            trace.duration_ms = u64::try_from(response.duration.as_millis()).unwrap_or(u64::MAX);
            if !(200..300).contains(&response.status) {
                trace.error = Some("http_status".into());
            }
        }
        HttpResult::Timeout => trace.error = Some("timeout".into()),
        HttpResult::TooLarge => trace.error = Some("too_large".into()),
        HttpResult::Connection(reason) => {
            trace.error = Some(format!("connection: {}", redactor.redact(reason)))
        }
    }
    trace
}
