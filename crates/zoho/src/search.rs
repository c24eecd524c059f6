//! Search: the request and outcome types, the search URL with Zoho's criteria escaping, the
//! classification of Zoho's answers, and the phone post-filter that keeps only records whose phone
//! fields really are the customer's number (exact matches first, then most recently modified).
//!
//! Pure functions: the client does the HTTP, the retries and the token handling.

use chrono::{DateTime, FixedOffset};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ZohoError;
use crate::phone::{PhoneForms, FILTERED_FIELDS, SEARCHED_FIELDS};

/// One lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The connection name given to `flowbot zoho connect --name`.
    pub connection: String,
    /// The module's API name: `Contacts`, `Leads`, ...
    pub module: String,
    pub query: SearchQuery,
    /// Fields to return; empty means Zoho's default set.
    pub fields: Vec<String>,
}

/// What to search for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchQuery {
    /// A WhatsApp number (digits with country code); searched in its usual stored forms against
    /// Phone and Mobile, then post-filtered exactly.
    Phone(String),
    /// `email=`: all email fields of the module.
    Email(String),
    /// `word=`: a word anywhere in the record.
    Word(String),
    /// Raw `criteria`, e.g. `((Last_Name:equals:Rao)and(City:equals:Pune))`; the author escapes
    /// values with Zoho's rules, the client percent-encodes the whole parameter.
    Criteria(String),
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchOutcome {
    /// Zoho's JSON body (`data`, `info`); for phone searches `data` is post-filtered and sorted and
    /// `info.count` matches it.
    Found(Value),
    /// HTTP 204, an empty body, an empty `data` array, or nothing left after the phone post-filter.
    Empty,
}

/// Characters left as-is in a query value: RFC 3986 unreserved. Everything else, `+` included,
/// is percent-encoded (a raw `+` would reach Zoho as a space).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one query-string value.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Zoho's criteria escaping for a value: a backslash before `\`, `(`, `)` and `,`.
pub fn escape_criteria_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '(' | ')' | ',') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `((Phone:equals:F1)or(Mobile:equals:F1)or(Phone:equals:F2)...)`, not yet percent-encoded.
pub fn phone_criteria(forms: &PhoneForms) -> String {
    let conditions: Vec<String> = forms
        .search_forms()
        .iter()
        .flat_map(|form| {
            SEARCHED_FIELDS
                .iter()
                .map(move |field| format!("({field}:equals:{})", escape_criteria_value(form)))
        })
        .collect();
    format!("({})", conditions.join("or"))
}

/// A module API name is letters, digits and underscores; anything else cannot be a module and
/// would change the URL's path.
pub fn validate_module(module: &str) -> Result<(), ZohoError> {
    let valid = !module.is_empty()
        && module.len() <= 100
        && module
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ZohoError::InvalidModule {
            module: module.to_owned(),
        })
    }
}

/// The full search URL (it holds no secret).
pub fn search_url(
    api_domain: &str,
    request: &SearchRequest,
    phone: Option<&PhoneForms>,
) -> Result<String, ZohoError> {
    validate_module(&request.module)?;
    let invalid = |reason: &str| ZohoError::InvalidRequest {
        reason: reason.to_owned(),
    };
    let (param, value) = match (&request.query, phone) {
        (SearchQuery::Phone(_), Some(forms)) => ("criteria", phone_criteria(forms)),
        (SearchQuery::Phone(_), None) => {
            return Err(invalid("a phone search needs the customer's number"))
        }
        (SearchQuery::Email(email), _) => ("email", email.trim().to_owned()),
        (SearchQuery::Word(word), _) => ("word", word.trim().to_owned()),
        (SearchQuery::Criteria(criteria), _) => ("criteria", criteria.trim().to_owned()),
    };
    if value.chars().count() < 2 {
        return Err(invalid(&format!(
            "the {param} to search for is empty or shorter than 2 characters"
        )));
    }
    let mut url = format!(
        "{}/crm/v8/{}/search?{param}={}",
        api_domain.trim_end_matches('/'),
        request.module,
        encode_query_value(&value)
    );
    let fields: Vec<String> = request
        .fields
        .iter()
        .map(|field| field.trim())
        .filter(|field| !field.is_empty())
        .map(encode_query_value)
        .collect();
    if !fields.is_empty() {
        url.push_str("&fields=");
        url.push_str(&fields.join(","));
    }
    Ok(url)
}

/// What one API answer means to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Records(Value),
    Empty,
    /// INVALID_TOKEN / AUTHENTICATION_FAILURE: refresh once and retry once.
    AuthFailed {
        code: String,
    },
    /// 429 or 5xx: retry with backoff.
    Retryable {
        status: u16,
        code: Option<String>,
    },
    Failed(ZohoError),
}

/// Classify a search answer. `name` and `module` go into error messages; `url` is token-free.
pub fn classify_answer(status: u16, body: &[u8], name: &str, module: &str, url: &str) -> Answer {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if (200..300).contains(&status) {
        if status == 204 || blank {
            return Answer::Empty;
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(error) => {
                return Answer::Failed(ZohoError::UnexpectedResponse {
                    url: url.to_owned(),
                    status,
                    detail: format!("the body is not JSON: {error}"),
                })
            }
        };
        return match value.get("data") {
            Some(Value::Array(records)) if !records.is_empty() => Answer::Records(value),
            None | Some(Value::Null) | Some(Value::Array(_)) => Answer::Empty,
            Some(_) => Answer::Failed(ZohoError::UnexpectedResponse {
                url: url.to_owned(),
                status,
                detail: "`data` is not an array".to_owned(),
            }),
        };
    }
    let error: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        error
            .as_ref()
            .and_then(|value| value.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = text("code");
    let message = text("message").unwrap_or_default();
    let details = error
        .as_ref()
        .and_then(|value| value.get("details"))
        .filter(|details| details.as_object().is_some_and(|map| !map.is_empty()))
        .map(Value::to_string);
    match code.as_deref() {
        Some(code @ ("INVALID_TOKEN" | "AUTHENTICATION_FAILURE" | "INVALID_OAUTHTOKEN")) => {
            return Answer::AuthFailed {
                code: code.to_owned(),
            }
        }
        Some("OAUTH_SCOPE_MISMATCH") => {
            return Answer::Failed(ZohoError::ScopeMismatch {
                name: name.to_owned(),
                module: module.to_owned(),
            })
        }
        Some("NO_PERMISSION") => {
            return Answer::Failed(ZohoError::NoPermission {
                name: name.to_owned(),
                module: module.to_owned(),
            })
        }
        Some("INVALID_MODULE" | "NOT_SUPPORTED") => {
            return Answer::Failed(ZohoError::InvalidModule {
                module: module.to_owned(),
            })
        }
        Some(
            code @ ("INVALID_QUERY"
            | "INVALID_DATA"
            | "LIMIT_REACHED"
            | "LIMIT_EXCEEDED"
            | "EXPECTED_PARAM_MISSING"),
        ) => {
            return Answer::Failed(ZohoError::InvalidQuery {
                code: code.to_owned(),
                message,
                details,
            })
        }
        _ => {}
    }
    if status == 429 || code.as_deref() == Some("TOO_MANY_REQUESTS") || status >= 500 {
        return Answer::Retryable { status, code };
    }
    if status == 401 && code.is_none() {
        return Answer::AuthFailed {
            code: "HTTP 401".to_owned(),
        };
    }
    match code {
        Some(code) => Answer::Failed(ZohoError::Api {
            url: url.to_owned(),
            status,
            code,
            message,
        }),
        None => Answer::Failed(ZohoError::UnexpectedResponse {
            url: url.to_owned(),
            status,
            detail: if blank {
                "empty body".to_owned()
            } else {
                "the body is not a Zoho error".to_owned()
            },
        }),
    }
}

/// Keep the records whose phone fields are the customer's number; exact (international form)
/// matches first, then most recently modified; `info.count` follows.
pub fn filter_phone_matches(mut body: Value, forms: &PhoneForms) -> SearchOutcome {
    let records = match body.get_mut("data").map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => return SearchOutcome::Empty,
    };
    let phone_values = |record: &Value| -> Vec<String> {
        FILTERED_FIELDS
            .iter()
            .filter_map(|field| {
                record
                    .get(*field)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    };
    let mut kept: Vec<(bool, Option<DateTime<FixedOffset>>, Value)> = records
        .into_iter()
        .filter_map(|record| {
            let values = phone_values(&record);
            if !values.iter().any(|value| forms.matches_stored(value)) {
                return None;
            }
            let exact = values.iter().any(|value| forms.is_exact(value));
            let modified = record
                .get("Modified_Time")
                .and_then(Value::as_str)
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok());
            Some((exact, modified, record))
        })
        .collect();
    if kept.is_empty() {
        return SearchOutcome::Empty;
    }
    // Stable: equal keys keep Zoho's order.
    kept.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let count = kept.len();
    let records: Vec<Value> = kept.into_iter().map(|(_, _, record)| record).collect();
    if let Some(object) = body.as_object_mut() {
        object.insert("data".to_owned(), Value::Array(records));
        if let Some(Value::Object(info)) = object.get_mut("info") {
            info.insert("count".to_owned(), Value::from(count));
        }
    }
    SearchOutcome::Found(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn criteria_escaping_follows_zohos_rules() {
        assert_eq!(escape_criteria_value("Burns,B"), "Burns\\,B");
        assert_eq!(escape_criteria_value("a(b)c"), "a\\(b\\)c");
        assert_eq!(escape_criteria_value("ends\\"), "ends\\\\");
        assert_eq!(encode_query_value("Burns\\,B"), "Burns%5C%2CB");
        assert_eq!(
            encode_query_value("+91 a&b=c?#/\"é"),
            "%2B91%20a%26b%3Dc%3F%23%2F%22%C3%A9"
        );
    }

    #[test]
    fn phone_criteria_lists_every_form_against_phone_and_mobile() {
        let forms = PhoneForms::from_whatsapp("919820000001").unwrap();
        assert_eq!(
            phone_criteria(&forms),
            "((Phone:equals:919820000001)or(Mobile:equals:919820000001)or(Phone:equals:+919820000001)or(Mobile:equals:+919820000001)or(Phone:equals:9820000001)or(Mobile:equals:9820000001)or(Phone:equals:09820000001)or(Mobile:equals:09820000001))"
        );
        let request = SearchRequest {
            connection: "zoho".into(),
            module: "Contacts".into(),
            query: SearchQuery::Phone("919820000001".into()),
            fields: vec!["First_Name".into(), "Mobile".into()],
        };
        let url = search_url("https://www.zohoapis.in/", &request, Some(&forms)).unwrap();
        assert!(url.starts_with("https://www.zohoapis.in/crm/v8/Contacts/search?criteria=%28%28Phone%3Aequals%3A919820000001%29or"), "{url}");
        assert!(url.contains("%2B919820000001"));
        assert!(!url.contains('+'));
        assert!(url.ends_with("&fields=First_Name,Mobile"));
    }

    #[test]
    fn modules_cannot_change_the_path() {
        assert!(validate_module("Contacts").is_ok());
        assert!(validate_module("Custom_Module1").is_ok());
        assert!(validate_module("../oauth").is_err());
        assert!(validate_module("").is_err());
    }

    #[test]
    fn answers_are_classified_by_code_not_status() {
        let url = "https://x/crm/v8/Contacts/search";
        assert_eq!(
            classify_answer(204, b"", "z", "Contacts", url),
            Answer::Empty
        );
        assert_eq!(
            classify_answer(200, b"  ", "z", "Contacts", url),
            Answer::Empty
        );
        assert_eq!(
            classify_answer(200, br#"{"data":[]}"#, "z", "Contacts", url),
            Answer::Empty
        );
        let invalid_token = br#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#;
        assert!(matches!(
            classify_answer(400, invalid_token, "z", "Contacts", url),
            Answer::AuthFailed { .. }
        ));
        assert!(matches!(
            classify_answer(429, b"{}", "z", "Contacts", url),
            Answer::Retryable { status: 429, .. }
        ));
        assert!(matches!(
            classify_answer(502, b"<html>bad gateway</html>", "z", "Contacts", url),
            Answer::Retryable { status: 502, .. }
        ));
        let scope = br#"{"code":"OAUTH_SCOPE_MISMATCH","details":{},"message":"invalid oauth scope to access this URL","status":"error"}"#;
        match classify_answer(401, scope, "z", "Contacts", url) {
            Answer::Failed(error) => {
                assert!(error.to_string().contains("ZohoCRM.modules.contacts.READ"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn post_filter_drops_other_numbers_and_sorts() {
        let forms = PhoneForms::from_whatsapp("919820000002").unwrap();
        let body = json!({
            "data": [
                {"id": "old", "Phone": "09820000002", "Modified_Time": "2026-01-01T00:00:00+05:30"},
                {"id": "other", "Mobile": "+919820000003", "Modified_Time": "2026-12-01T00:00:00+05:30"},
                {"id": "new", "Mobile": "98200 00002", "Modified_Time": "2026-06-01T00:00:00+05:30"},
                {"id": "exact", "Mobile": "+919820000002", "Modified_Time": "2025-01-01T00:00:00+05:30"}
            ],
            "info": {"count": 4}
        });
        let SearchOutcome::Found(found) = filter_phone_matches(body, &forms) else {
            panic!()
        };
        let ids: Vec<&str> = found["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["exact", "new", "old"]);
        assert_eq!(found["info"]["count"], 3);
        let none =
            json!({"data": [{"id": "other", "Mobile": "+919820000003"}], "info": {"count": 1}});
        assert_eq!(filter_phone_matches(none, &forms), SearchOutcome::Empty);
    }
}
