//! The Zoho CRM search between the engine and `flowbot-zoho`: the engine's
//! [`ZohoSearchRequest`] as the client's [`SearchRequest`] ([`zoho_request`]), and the client's
//! [`SearchReport`] as the engine's [`ZohoSearchResult`] ([`zoho_search_result`]).
//!
//! Pure mapping: tokens, phone forms, retries and the HTTP calls belong to the Zoho client. Errors
//! become their cause-and-fix text (`ZohoError`'s `Display`, which never holds a token); a transport
//! timeout becomes the `timeout` outcome so flows can branch on it.

use flowbot_engine::{CallRecord, ZohoOutcome, ZohoSearchRequest, ZohoSearchResult};
use flowbot_zoho::phone::FILTERED_FIELDS;
use flowbot_zoho::{
    SearchOutcome, SearchQuery, SearchReport, SearchRequest, TransportErrorKind, ZohoError,
};

/// The engine's Zoho request as the client's. `by` is `phone`, `email`, `word` or `criteria` (the
/// only values the engine produces); anything else searches for the value as a word.
///
/// A phone search with a `fields:` list also asks for the phone fields and `Modified_Time`:
/// without them the client's exact-number filter would drop every record (a flow listing
/// `fields: [First_Name, Owner]` would never find anyone).
pub fn zoho_request(request: &ZohoSearchRequest) -> SearchRequest {
    let value = request.value.clone();
    let mut fields = request.fields.clone();
    let query = match request.by.as_str() {
        "phone" => {
            if !fields.is_empty() {
                // The client keeps only records whose phone fields hold the customer's number,
                // newest first: it must see those fields and the modification time.
                for needed in FILTERED_FIELDS.into_iter().chain(["Modified_Time"]) {
                    if !fields.iter().any(|field| field.trim() == needed) {
                        fields.push(needed.to_owned());
                    }
                }
            }
            SearchQuery::Phone(value)
        }
        "email" => SearchQuery::Email(value),
        "criteria" => SearchQuery::Criteria(value),
        _ => SearchQuery::Word(value),
    };
    SearchRequest {
        connection: request.connection.clone(),
        module: request.module.clone(),
        query,
        fields,
    }
}

/// The client's report as the engine's result (errors as their cause-and-fix text).
pub fn zoho_search_result(report: SearchReport) -> ZohoSearchResult {
    let outcome = match report.result {
        Ok(SearchOutcome::Found(body)) => ZohoOutcome::Found(body),
        Ok(SearchOutcome::Empty) => ZohoOutcome::Empty,
        Err(ZohoError::Transport { error, .. }) if error.kind == TransportErrorKind::Timeout => {
            ZohoOutcome::Timeout
        }
        Err(error) => ZohoOutcome::Error(error.to_string()),
    };
    ZohoSearchResult {
        outcome,
        calls: report.calls.into_iter().map(call_record).collect(),
    }
}

fn call_record(call: flowbot_zoho::CallRecord) -> CallRecord {
    CallRecord {
        method: call.method,
        url: call.url,
        status: call.status,
        duration_ms: call.duration_ms,
        note: Some(call.note).filter(|note| !note.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use flowbot_zoho::TransportError;

    use super::*;

    fn engine_request(by: &str, value: &str) -> ZohoSearchRequest {
        ZohoSearchRequest {
            connection: "zoho".into(),
            module: "Leads".into(),
            by: by.into(),
            value: value.into(),
            fields: vec!["Owner".into()],
        }
    }

    #[test]
    fn a_phone_search_also_asks_for_the_fields_its_filter_reads() {
        let mapped = zoho_request(&engine_request("phone", "919820000001"));
        assert_eq!(mapped.query, SearchQuery::Phone("919820000001".into()));
        assert_eq!(
            mapped.fields,
            [
                "Owner",
                "Phone",
                "Mobile",
                "Home_Phone",
                "Other_Phone",
                "Asst_Phone",
                "Modified_Time"
            ]
        );
        let mut all_fields = engine_request("phone", "919820000001");
        all_fields.fields.clear();
        assert!(
            zoho_request(&all_fields).fields.is_empty(),
            "no list: Zoho returns its default set"
        );
    }

    #[test]
    fn every_other_kind_of_search_maps_to_its_query() {
        let cases = [
            ("email", SearchQuery::Email("919820000001".into())),
            ("word", SearchQuery::Word("919820000001".into())),
            ("criteria", SearchQuery::Criteria("919820000001".into())),
        ];
        for (by, query) in cases {
            let mapped = zoho_request(&engine_request(by, "919820000001"));
            assert_eq!(
                mapped,
                SearchRequest {
                    connection: "zoho".into(),
                    module: "Leads".into(),
                    query,
                    fields: vec!["Owner".into()]
                }
            );
        }
    }

    fn report(result: Result<SearchOutcome, ZohoError>) -> SearchReport {
        SearchReport {
            result,
            calls: vec![flowbot_zoho::CallRecord {
                method: "GET".into(),
                url: "https://www.zohoapis.in/crm/v8/Contacts/search".into(),
                status: None,
                duration_ms: 7,
                note: String::new(),
            }],
        }
    }

    #[test]
    fn outcomes_map_and_a_transport_timeout_is_the_timeout_outcome() {
        let body = serde_json::json!({"data": [{"id": "1"}]});
        assert_eq!(
            zoho_search_result(report(Ok(SearchOutcome::Found(body.clone())))).outcome,
            ZohoOutcome::Found(body)
        );
        assert_eq!(
            zoho_search_result(report(Ok(SearchOutcome::Empty))).outcome,
            ZohoOutcome::Empty
        );
        let timeout = ZohoError::Transport {
            url: "https://www.zohoapis.in/crm/v8/Contacts/search".into(),
            error: TransportError::new(TransportErrorKind::Timeout, "timed out"),
        };
        let result = zoho_search_result(report(Err(timeout)));
        assert_eq!(result.outcome, ZohoOutcome::Timeout);
        assert_eq!(result.calls[0].note, None);
        assert_eq!(result.calls[0].duration_ms, 7);
    }

    #[test]
    fn errors_carry_the_cause_and_the_fix() {
        let error = ZohoError::NotConnected {
            name: "zoho".into(),
        };
        let ZohoOutcome::Error(message) = zoho_search_result(report(Err(error))).outcome else {
            panic!("an error outcome");
        };
        assert!(
            message.contains("flowbot zoho connect --name zoho"),
            "{message}"
        );
    }
}
