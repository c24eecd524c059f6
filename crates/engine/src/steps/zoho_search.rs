//! The `zoho_search` step's side of the Zoho lookup: rendering what to search for, and the trace.
//! Tokens, phone forms and retries belong to the Zoho client behind the driver.

use flowbot_flow::{ZohoQuery, ZohoSearch};
use serde_json::Value;

use crate::effect::{ZohoOutcome, ZohoSearchRequest, ZohoSearchResult};
use crate::trace::ZohoTrace;

/// The search to perform.
pub fn build(search: &ZohoSearch, scope: &Value) -> ZohoSearchRequest {
    let (by, template) = match &search.query {
        ZohoQuery::Phone(t) => ("phone", t),
        ZohoQuery::Email(t) => ("email", t),
        ZohoQuery::Word(t) => ("word", t),
        ZohoQuery::Criteria(t) => ("criteria", t),
    };
    ZohoSearchRequest {
        connection: search.connection.clone(),
        module: search.module.clone(),
        by: by.into(),
        value: template.render(scope).trim().to_string(),
        fields: search.fields.clone(),
    }
}

/// The trace event of a search.
pub fn trace(step: &str, request: &ZohoSearchRequest, result: &ZohoSearchResult) -> ZohoTrace {
    let (outcome, body, error) = match &result.outcome {
        ZohoOutcome::Found(body) => ("found", Some(body.clone()), None),
        ZohoOutcome::Empty => ("empty", None, None),
        ZohoOutcome::Error(message) => ("error", None, Some(message.clone())),
        ZohoOutcome::Timeout => ("timeout", None, Some("timeout".to_string())),
    };
    ZohoTrace {
        step: step.into(),
        connection: request.connection.clone(),
        module: request.module.clone(),
        by: request.by.clone(),
        value: request.value.clone(),
        outcome: outcome.into(),
        calls: result.calls.clone(),
        body,
        error,
    }
}
