//! [`HttpExecutor`]: performs one `Effect::Http` of the External API Request step with reqwest.
//!
//! What it guarantees, whatever the server does:
//! - the request's `timeout` bounds the whole exchange, connecting and reading the body included
//!   (→ `HttpResult::Timeout` at the deadline, not after);
//! - the body is read in chunks and reading stops past `max_response` bytes (→ `TooLarge`), so a
//!   huge answer is never buffered whole;
//! - redirects are followed (up to [`MAX_REDIRECTS`]) only while scheme, host and port stay the
//!   same; a redirect elsewhere is returned as the 3xx answer it is;
//! - the egress rules of [`EgressPolicy`] hold, for literal IPs and for resolved names;
//! - a failure is described as `Connection(reason)` in words of our own plus the causes, never with
//!   the URL (whose query may hold an API key).
//!
//! It does not retry, render or escape anything: the engine built the request and decides retries.
//! One executor holds one `reqwest::Client`, so connections are kept alive and shared; clone it
//! freely.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowbot_engine::{HttpRequest, HttpResponse, HttpResult};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::{Attempt, Policy};
use url::Url;

use crate::egress::{system_lookup, EgressPolicy, EgressRefused, EgressResolver, Lookup};

/// Redirects followed within one origin before the 3xx answer is returned as it is.
pub const MAX_REDIRECTS: usize = 5;

/// Largest buffer reserved up front for a body, whatever its announced length.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Performs HTTP effects.
#[derive(Clone, Debug)]
pub struct HttpExecutor {
    client: reqwest::Client,
    policy: EgressPolicy,
}

impl HttpExecutor {
    /// One client for the process. Fails only if the TLS backend cannot start.
    pub fn new(policy: EgressPolicy) -> Result<HttpExecutor, String> {
        HttpExecutor::with_lookup(policy, system_lookup())
    }

    pub(crate) fn with_lookup(
        policy: EgressPolicy,
        lookup: Lookup,
    ) -> Result<HttpExecutor, String> {
        let resolver = Arc::new(EgressResolver {
            policy: policy.clone(),
            lookup,
        });
        let client = reqwest::Client::builder()
            .redirect(same_origin_redirects())
            .dns_resolver(resolver)
            // A proxy would resolve names itself, around the egress rules; calls go direct.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("flowbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("the HTTP client could not be built: {}", causes(&error)))?;
        Ok(HttpExecutor { client, policy })
    }

    /// The egress rules this executor applies.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Performs the request; never panics and never takes longer than `request.timeout`.
    pub async fn execute(&self, request: HttpRequest) -> HttpResult {
        let started = Instant::now();
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, self.exchange(request, started)).await {
            Ok(result) => result,
            Err(_elapsed) => HttpResult::Timeout,
        }
    }

    async fn exchange(&self, request: HttpRequest, started: Instant) -> HttpResult {
        let url = match Url::parse(&request.url) {
            Ok(url) => url,
            Err(error) => return HttpResult::Connection(format!("the URL is not valid ({error})")),
        };
        let destination = destination(&url);
        if let Err(reason) = self.policy.check_url(&url) {
            return HttpResult::Connection(format!(
                "destination refused by egress policy: {reason}"
            ));
        }
        let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => {
                return HttpResult::Connection(format!(
                    "`{}` is not an HTTP method",
                    request.method
                ))
            }
        };
        let headers = match header_map(&request.headers) {
            Ok(headers) => headers,
            Err(reason) => return HttpResult::Connection(reason),
        };
        let mut builder = self.client.request(method, url).headers(headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return HttpResult::Connection(describe(&error, &destination)),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let announced = response.content_length();
        if announced.is_some_and(|length| length > request.max_response) {
            return HttpResult::TooLarge;
        }
        let capacity = announced.unwrap_or(0).min(request.max_response);
        let mut body = Vec::with_capacity(
            usize::try_from(capacity)
                .unwrap_or(0)
                .min(INITIAL_BODY_CAPACITY),
        );
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > request.max_response {
                        return HttpResult::TooLarge;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return HttpResult::Connection(describe(&error, &destination)),
            }
        }
        HttpResult::Response(HttpResponse {
            status,
            headers,
            body,
            duration: started.elapsed(),
        })
    }
}

/// Follows a redirect only within the origin of the original request, at most [`MAX_REDIRECTS`]
/// times; otherwise the 3xx answer is returned as it is.
fn same_origin_redirects() -> Policy {
    Policy::custom(|attempt: Attempt<'_>| {
        let Some(first) = attempt.previous().first() else {
            return attempt.stop();
        };
        let same_origin = first.scheme() == attempt.url().scheme()
            && first.host_str() == attempt.url().host_str()
            && first.port_or_known_default() == attempt.url().port_or_known_default();
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        // from_bytes accepts UTF-8 text (obs-text) but refuses control characters, CR and LF.
        let header_value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| format!("the value of header `{name}` holds a control character"))?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// `host:port` of a URL, for messages (never the path or query).
fn destination(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(v6)) => format!("[{v6}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// A reqwest failure in our words: refused by egress, refused by the server, or the causes.
fn describe(error: &reqwest::Error, destination: &str) -> String {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<EgressRefused>() {
            return format!("destination refused by egress policy: {refused}");
        }
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return format!("connection refused by {destination}");
        }
        source = cause.source();
    }
    let what = if error.is_connect() {
        "could not connect to"
    } else if error.is_timeout() {
        "timed out talking to"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off from"
    } else {
        "the exchange failed with"
    };
    format!("{what} {destination}: {}", causes(error))
}

/// The chain of causes below a reqwest error (which itself would print the URL), with any URL's
/// query string removed in case a cause quotes one.
fn causes(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = strip_url_queries(&cause.to_string());
        if !parts
            .last()
            .is_some_and(|last: &String| last.contains(&text))
        {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push("request failed".into());
    }
    parts.join(": ")
}

/// Removes `?query` and `#fragment` from every `http://` or `https://` URL in a text.
fn strip_url_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = [rest.find("http://"), rest.find("https://")]
        .into_iter()
        .flatten()
        .min()
    {
        out.push_str(&rest[..start]);
        let url_text = &rest[start..];
        let end = url_text
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>'))
            .unwrap_or(url_text.len());
        let url_part = &url_text[..end];
        let cut = url_part.find(['?', '#']).unwrap_or(url_part.len());
        out.push_str(&url_part[..cut]);
        rest = &url_text[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn request(url: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(5),
            max_response: 1024,
        }
    }

    #[test]
    fn url_queries_are_removed_from_messages() {
        assert_eq!(
            strip_url_queries(
                "error sending request for url (http://api.test/x?api_key=s3cret#f): refused"
            ),
            "error sending request for url (http://api.test/x): refused"
        );
        assert_eq!(
            strip_url_queries("a https://h/p?k=v b http://g/?z"),
            "a https://h/p b http://g/"
        );
        assert_eq!(strip_url_queries("no url here"), "no url here");
    }

    #[test]
    fn destinations_name_host_and_port_only() {
        let url = Url::parse("https://api.test/orders?key=secret").expect("a URL");
        assert_eq!(destination(&url), "api.test:443");
        let url = Url::parse("http://[::1]:8080/x").expect("a URL");
        assert_eq!(destination(&url), "[::1]:8080");
    }

    #[tokio::test]
    async fn a_name_resolving_to_the_metadata_address_is_refused() {
        let lookup: Lookup = Arc::new(|_host: String| {
            Box::pin(async {
                Ok(vec!["169.254.169.254:0"
                    .parse::<SocketAddr>()
                    .expect("addr")])
            })
        });
        let executor = HttpExecutor::with_lookup(EgressPolicy::default(), lookup).expect("client");
        let result = executor
            .execute(request("http://metadata.test/latest/meta-data?token=abc"))
            .await;
        assert_eq!(
            result,
            HttpResult::Connection(
                "destination refused by egress policy: metadata.test resolves to 169.254.169.254, a cloud metadata address"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn a_refused_connection_names_host_and_port_without_the_query() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let executor = HttpExecutor::new(EgressPolicy::default()).expect("client");
        let result = executor
            .execute(request(&format!(
                "http://127.0.0.1:{port}/x?api_key=s3cret"
            )))
            .await;
        assert_eq!(
            result,
            HttpResult::Connection(format!("connection refused by 127.0.0.1:{port}"))
        );
    }

    #[tokio::test]
    async fn header_values_with_control_characters_are_not_sent() {
        let executor = HttpExecutor::new(EgressPolicy::default()).expect("client");
        let mut bad = request("http://127.0.0.1:9/");
        bad.headers.push(("X-Note".into(), "a\u{0}b".into()));
        assert_eq!(
            executor.execute(bad).await,
            HttpResult::Connection("the value of header `X-Note` holds a control character".into())
        );
    }
}
