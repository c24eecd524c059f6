//! The `http:` fakes of a replay and the virtual clock they run on.
//!
//! Every outside call of a replay — `api_request` steps through the engine's `Effect::Http`, and
//! the Zoho client's token and search calls through its `Transport` — is answered here: the first
//! unused fake whose `when:` matches answers (a `repeat: true` fake answers every time). A request
//! no fake matches is a test failure that prints the request; a fake never used (unless
//! `optional: true`) is one too. Time is virtual: `delay:` and retry back-offs move the clock, so
//! timeouts are exercised without waiting.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::Value;

use crate::format::{FakeExpect, FakeSpec};

/// A request as the fakes see it.
#[derive(Clone, Debug)]
pub struct FakeRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    pub timeout: Duration,
}

/// A fake's answer.
#[derive(Clone, Debug)]
pub enum FakeAnswer {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        took: Duration,
    },
    Timeout,
    NoMatch,
}

struct Fake {
    spec: FakeSpec,
    url_regex: Option<Regex>,
    body: Vec<u8>,
    delay: Duration,
    uses: usize,
}

struct State {
    fakes: Vec<Fake>,
    now: DateTime<Utc>,
    failures: Vec<String>,
}

/// The fakes of one replay. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Fakes {
    state: Arc<Mutex<State>>,
}

impl Fakes {
    /// Prepares the fakes; `base` is the replay file's folder (for `file:` bodies).
    pub fn new(specs: &[FakeSpec], base: &Path, now: DateTime<Utc>) -> Result<Fakes, String> {
        let mut fakes = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let url_regex = match &spec.when.url_matches {
                Some(pattern) => Some(
                    Regex::new(pattern)
                        .map_err(|e| format!("http[{index}].when.url_matches: {e}"))?,
                ),
                None => None,
            };
            let body = match (&spec.json, &spec.body, &spec.file) {
                (Some(json), _, _) => serde_json::to_vec(json).map_err(|e| e.to_string())?,
                (None, Some(text), _) => text.clone().into_bytes(),
                (None, None, Some(file)) => std::fs::read(base.join(file))
                    .map_err(|e| format!("http[{index}].file {file}: {e}"))?,
                (None, None, None) => Vec::new(),
            };
            let delay = match &spec.delay {
                Some(text) => humantime::parse_duration(text)
                    .map_err(|e| format!("http[{index}].delay `{text}`: {e}"))?,
                None => Duration::from_millis(0),
            };
            fakes.push(Fake {
                spec: spec.clone(),
                url_regex,
                body,
                delay,
                uses: 0,
            });
        }
        Ok(Fakes {
            state: Arc::new(Mutex::new(State {
                fakes,
                now,
                failures: Vec::new(),
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += chrono::Duration::from_std(by).unwrap_or_default();
    }

    /// Answers a request from the first matching fake.
    pub fn answer(&self, request: &FakeRequest<'_>) -> FakeAnswer {
        let mut state = self.lock();
        let found = state
            .fakes
            .iter()
            .position(|fake| (fake.uses == 0 || fake.spec.repeat) && matches(fake, request));
        let Some(index) = found else {
            let failure = format!(
                "no `http:` fake matches {} {}{}",
                request.method,
                request.url,
                describe_body(request.body)
            );
            state.failures.push(failure);
            return FakeAnswer::NoMatch;
        };
        state.fakes[index].uses += 1;
        let mut failures = Vec::new();
        if let Some(expect) = &state.fakes[index].spec.expect {
            check_expectations(expect, request, &mut failures);
        }
        let fake = &state.fakes[index];
        let delay = fake.delay;
        let answer = if delay >= request.timeout {
            FakeAnswer::Timeout
        } else {
            let mut headers: Vec<(String, String)> = fake
                .spec
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            if fake.spec.json.is_some() && !headers.iter().any(|(k, _)| k == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            FakeAnswer::Response {
                status: fake.spec.status.unwrap_or(200),
                headers,
                body: fake.body.clone(),
                took: delay,
            }
        };
        let advance = if matches!(answer, FakeAnswer::Timeout) {
            request.timeout
        } else {
            delay
        };
        state.now += chrono::Duration::from_std(advance).unwrap_or_default();
        for failure in failures {
            state
                .failures
                .push(format!("{} {}: {failure}", request.method, request.url));
        }
        answer
    }

    /// Failures recorded so far (unmatched requests, failed `expect:`), emptied.
    pub fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().failures)
    }

    /// Fakes that were never used and are not optional.
    pub fn unused(&self) -> Vec<String> {
        self.lock()
            .fakes
            .iter()
            .enumerate()
            .filter(|(_, f)| f.uses == 0 && !f.spec.optional)
            .map(|(i, f)| format!("http[{i}] ({}) was never used", describe_match(&f.spec)))
            .collect()
    }
}

fn matches(fake: &Fake, request: &FakeRequest<'_>) -> bool {
    let when = &fake.spec.when;
    if let Some(method) = &when.method {
        if !method.eq_ignore_ascii_case(request.method) {
            return false;
        }
    }
    if let Some(url) = &when.url {
        if url != request.url && url.trim_end_matches('/') != request.url.trim_end_matches('/') {
            return false;
        }
    }
    if let Some(part) = &when.url_contains {
        let decoded = percent_decode(request.url);
        if !request.url.contains(part.as_str()) && !decoded.contains(part.as_str()) {
            return false;
        }
    }
    if let Some(regex) = &fake.url_regex {
        if !regex.is_match(request.url) {
            return false;
        }
    }
    true
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn check_expectations(expect: &FakeExpect, request: &FakeRequest<'_>, failures: &mut Vec<String>) {
    for (name, value) in &expect.headers {
        let actual = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        if actual != Some(value.as_str()) {
            failures.push(format!(
                "expected header {name}: {value}, got {}",
                actual.map_or("nothing".into(), |a| format!("{a:?}"))
            ));
        }
    }
    if !expect.query.is_empty() {
        let query: BTreeMap<String, String> = url::Url::parse(request.url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        for (name, value) in &expect.query {
            if query.get(name) != Some(value) {
                failures.push(format!(
                    "expected query {name}={value:?}, got {:?}",
                    query.get(name)
                ));
            }
        }
    }
    let body = request.body.unwrap_or_default();
    if let Some(json) = &expect.json {
        match serde_json::from_slice::<Value>(body) {
            Ok(actual) if &actual == json => {}
            Ok(actual) => failures.push(format!("expected JSON body {json}, got {actual}")),
            Err(_) => failures.push(format!(
                "expected JSON body {json}, got {:?}",
                String::from_utf8_lossy(body)
            )),
        }
    }
    if let Some(form) = &expect.form {
        let actual: BTreeMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        if &actual != form {
            failures.push(format!("expected form {form:?}, got {actual:?}"));
        }
    }
    if let Some(text) = &expect.body {
        if body != text.as_bytes() {
            failures.push(format!(
                "expected body {text:?}, got {:?}",
                String::from_utf8_lossy(body)
            ));
        }
    }
}

fn describe_body(body: Option<&[u8]>) -> String {
    match body {
        Some(bytes) if !bytes.is_empty() => {
            format!(" with body {}", String::from_utf8_lossy(bytes))
        }
        _ => String::new(),
    }
}

fn describe_match(spec: &FakeSpec) -> String {
    let when = &spec.when;
    let mut parts = Vec::new();
    if let Some(m) = &when.method {
        parts.push(m.clone());
    }
    for value in [&when.url, &when.url_contains, &when.url_matches]
        .into_iter()
        .flatten()
    {
        parts.push(value.clone());
    }
    if parts.is_empty() {
        "any request".into()
    } else {
        parts.join(" ")
    }
}
