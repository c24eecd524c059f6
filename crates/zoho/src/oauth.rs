//! The Zoho accounts server's token endpoint, as pure functions: the URLs and form bodies for the
//! grant-code exchange, the refresh and the revoke, and the classification of its answers.
//!
//! Zoho answers token errors with HTTP 200 and `{"error": ...}` and no `access_token`, so an answer
//! is a success only when it carries an `access_token`, whatever the status. `expires_in` is in
//! seconds, except in the legacy shape that also has `expires_in_sec` (then `expires_in` is in ms).
//! The HTTP calls themselves are made by the client.

use std::time::Duration;

use serde::Deserialize;
use url::form_urlencoded;

use crate::secret::Secret;

/// The default lifetime if Zoho omits `expires_in` (it documents one hour).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A successful token answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenGrant {
    pub access_token: Secret,
    /// Present on the grant-code exchange, absent on refresh.
    pub refresh_token: Option<Secret>,
    pub api_domain: Option<String>,
    pub expires_in: Duration,
}

/// A failed token answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// `invalid_code`: grant code expired or used, or refresh token revoked.
    InvalidCode,
    /// `invalid_client` (or `invalid_client_secret`): wrong id/secret or wrong data centre.
    InvalidClient,
    /// `Access Denied` / too many requests.
    Throttled { description: Option<String> },
    /// Any other `{"error": ...}`.
    Other {
        code: String,
        description: Option<String>,
    },
    /// Not a token answer at all (HTML, empty, bad JSON).
    Unexpected { status: u16, detail: String },
}

/// `{accounts_url}/oauth/v2/token`
pub fn token_url(accounts_url: &str) -> String {
    format!("{}/oauth/v2/token", accounts_url.trim_end_matches('/'))
}

/// The revoke URL as sent: it carries the refresh token in its query, so it must never be logged.
pub fn revoke_url(accounts_url: &str, refresh_token: &Secret) -> String {
    let token: String =
        form_urlencoded::byte_serialize(refresh_token.expose().as_bytes()).collect();
    format!(
        "{}?token={token}",
        revoke_url_for_trace(accounts_url).trim_end_matches("?token=[redacted]")
    )
}

/// The revoke URL as shown in traces and errors.
pub fn revoke_url_for_trace(accounts_url: &str) -> String {
    format!(
        "{}/oauth/v2/token/revoke?token=[redacted]",
        accounts_url.trim_end_matches('/')
    )
}

/// The host of an accounts URL (`accounts.zoho.in`), for messages.
pub fn accounts_host(accounts_url: &str) -> String {
    match url::Url::parse(accounts_url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => accounts_url.to_owned(),
        },
        Err(_) => accounts_url.to_owned(),
    }
}

/// Form body for `grant_type=authorization_code`.
pub fn grant_form(
    client_id: &str,
    client_secret: &Secret,
    code: &Secret,
    redirect_uri: Option<&str>,
) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret.expose())
        .append_pair("code", code.expose());
    if let Some(redirect_uri) = redirect_uri {
        form.append_pair("redirect_uri", redirect_uri);
    }
    form.finish().into_bytes()
}

/// Form body for `grant_type=refresh_token`.
pub fn refresh_form(client_id: &str, client_secret: &Secret, refresh_token: &Secret) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret.expose())
        .append_pair("refresh_token", refresh_token.expose())
        .finish()
        .into_bytes()
}

#[derive(Deserialize)]
struct RawAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    api_domain: Option<String>,
    expires_in: Option<serde_json::Value>,
    expires_in_sec: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    error_description: Option<String>,
}

/// Classify a token-endpoint answer.
pub fn parse_token_answer(status: u16, body: &[u8]) -> Result<TokenGrant, TokenFailure> {
    let raw: RawAnswer = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(_) => {
            if status == 429 {
                return Err(TokenFailure::Throttled { description: None });
            }
            return Err(TokenFailure::Unexpected {
                status,
                detail: format!("not a JSON token answer ({} bytes)", body.len()),
            });
        }
    };
    if let Some(access_token) = raw.access_token.filter(|token| !token.is_empty()) {
        let expires_in = match (number(&raw.expires_in_sec), number(&raw.expires_in)) {
            (Some(seconds), _) => Duration::from_secs(seconds),
            (None, Some(seconds)) => Duration::from_secs(seconds),
            (None, None) => DEFAULT_LIFETIME,
        };
        return Ok(TokenGrant {
            access_token: Secret::new(access_token),
            refresh_token: raw
                .refresh_token
                .filter(|token| !token.is_empty())
                .map(Secret::new),
            api_domain: raw.api_domain.filter(|domain| !domain.is_empty()),
            expires_in,
        });
    }
    let code = match &raw.error {
        Some(serde_json::Value::String(code)) => code.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let description = raw.error_description;
    let lower = code.to_ascii_lowercase();
    let too_many = description
        .as_deref()
        .is_some_and(|text| text.to_ascii_lowercase().contains("too many requests"));
    if lower == "access denied" || lower == "access_denied" || too_many || status == 429 {
        return Err(TokenFailure::Throttled { description });
    }
    match lower.as_str() {
        "invalid_code" => Err(TokenFailure::InvalidCode),
        "invalid_client" | "invalid_client_secret" => Err(TokenFailure::InvalidClient),
        "" => Err(TokenFailure::Unexpected {
            status,
            detail: "the answer has neither access_token nor error".to_owned(),
        }),
        _ => Err(TokenFailure::Other { code, description }),
    }
}

/// A JSON number or numeric string as whole seconds (or ms); negative or junk is ignored.
fn number(value: &Option<serde_json::Value>) -> Option<u64> {
    match value {
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_legacy_milliseconds() {
        let current = br#"{"access_token":"a","refresh_token":"r","api_domain":"https://www.zohoapis.in","token_type":"Bearer","expires_in":3600}"#;
        let grant = parse_token_answer(200, current).unwrap();
        assert_eq!(grant.expires_in, Duration::from_secs(3600));
        assert_eq!(grant.refresh_token.unwrap().expose(), "r");
        let legacy = br#"{"access_token":"a","expires_in_sec":3600,"expires_in":3600000}"#;
        assert_eq!(
            parse_token_answer(200, legacy).unwrap().expires_in,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn errors_come_with_http_200() {
        assert_eq!(
            parse_token_answer(200, br#"{"error":"invalid_code"}"#),
            Err(TokenFailure::InvalidCode)
        );
        assert_eq!(
            parse_token_answer(200, br#"{"error":"invalid_client"}"#),
            Err(TokenFailure::InvalidClient)
        );
        let throttled = br#"{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied"}"#;
        assert!(matches!(
            parse_token_answer(200, throttled),
            Err(TokenFailure::Throttled { .. })
        ));
        assert!(matches!(
            parse_token_answer(502, b"<html>"),
            Err(TokenFailure::Unexpected { .. })
        ));
    }

    #[test]
    fn revoke_url_carries_the_token_but_the_trace_does_not() {
        let token = Secret::new("1000.a+b");
        assert_eq!(
            revoke_url("https://accounts.zoho.in/", &token),
            "https://accounts.zoho.in/oauth/v2/token/revoke?token=1000.a%2Bb"
        );
        assert!(!revoke_url_for_trace("https://accounts.zoho.in").contains("1000"));
        assert_eq!(
            accounts_host("https://accounts.zoho.in"),
            "accounts.zoho.in"
        );
    }
}
