//! Outbound request bodies equal the request fixtures, built from the fixtures' own values.

use flowbot_whatsapp::outbound::{
    mark_read_json, mark_read_with_typing_json, OutboundError, OutboundMessage, ReplyButton, Row,
    Section,
};
use serde_json::Value;

const ANIKA: &str = "919820000001";
const TEXT_WAMID: &str = "wamid.HBgMOTE5ODIwMDAwMDAxFQIAEhgUOUQ5NDIyMTIyQkRENUZDNTM1NEEA";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/whatsapp-send/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("read {path}: {error}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Equal as JSON values, and also with the same key order (serde_json keeps insertion order).
fn assert_matches_fixture(actual: &Value, name: &str) {
    let expected = fixture(name);
    assert_eq!(actual, &expected, "{name}");
    assert_eq!(
        serde_json::to_string_pretty(actual).unwrap_or_default(),
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        "{name}: key order"
    );
}

fn buttons_message() -> OutboundMessage {
    OutboundMessage::Buttons {
        header: Some("Order help".into()),
        body: "What would you like to do?".into(),
        footer: Some("Reply anytime".into()),
        buttons: vec![
            ReplyButton::new("menu.track_order", "Track order"),
            ReplyButton::new("menu.talk_agent", "Talk to an agent"),
            ReplyButton::new("menu.other", "Something else"),
        ],
    }
}

fn list_message() -> OutboundMessage {
    OutboundMessage::List {
        header: Some("Choose a branch".into()),
        body: "Which branch is closest to you?".into(),
        footer: Some("Hours shown per branch".into()),
        button: "See branches".into(),
        sections: vec![
            Section {
                title: Some("Mumbai".into()),
                rows: vec![
                    Row::new(
                        "branch.mumbai_andheri",
                        "Andheri East",
                        Some("Mon-Sat, 10am to 7pm".into()),
                    ),
                    Row::new(
                        "branch.mumbai_fort",
                        "Fort",
                        Some("Mon-Fri, 9am to 6pm".into()),
                    ),
                ],
            },
            Section {
                title: Some("Pune".into()),
                rows: vec![Row::new(
                    "branch.pune_baner",
                    "Baner",
                    Some("Mon-Sat, 10am to 6pm".into()),
                )],
            },
        ],
    }
}

#[test]
fn text_request() {
    let message = OutboundMessage::Text {
        body: "Hi Anika, your order ORD-1042 is out for delivery.".into(),
        preview_url: Some(false),
    };
    assert_eq!(message.validate(), Ok(()));
    assert_matches_fixture(&message.to_request_json(ANIKA, None), "text_request.json");
}

#[test]
fn text_reply_with_context_request() {
    let message = OutboundMessage::text("Sure, let me check that for you.");
    assert_matches_fixture(
        &message.to_request_json(ANIKA, Some(TEXT_WAMID)),
        "text_reply_with_context_request.json",
    );
}

#[test]
fn interactive_buttons_request() {
    let message = buttons_message();
    assert_eq!(message.validate(), Ok(()));
    assert_matches_fixture(
        &message.to_request_json(ANIKA, None),
        "interactive_buttons_request.json",
    );
}

#[test]
fn interactive_list_request() {
    let message = list_message();
    assert_eq!(message.validate(), Ok(()));
    assert_matches_fixture(
        &message.to_request_json(ANIKA, None),
        "interactive_list_request.json",
    );
}

#[test]
fn template_request() {
    let message = OutboundMessage::Template {
        name: "policy_renewal_reminder".into(),
        language: "en".into(),
        body_params: vec!["Dev".into(), "15 Dec 2026".into()],
        quick_reply_payloads: vec!["RENEWAL_YES".into()],
    };
    assert_eq!(message.validate(), Ok(()));
    assert!(!message.needs_open_window());
    assert_matches_fixture(
        &message.to_request_json("919820000002", None),
        "template_request.json",
    );
}

#[test]
fn mark_as_read_requests() {
    assert_matches_fixture(&mark_read_json(TEXT_WAMID), "mark_as_read_request.json");
    assert_matches_fixture(
        &mark_read_with_typing_json(TEXT_WAMID),
        "mark_as_read_with_typing_request.json",
    );
}

#[test]
fn customer_data_is_carried_verbatim_as_json_strings() {
    let tricky = "He said \"hi\"\nline2 \\ + & = ? # / {{name}} 👍 नमस्ते";
    let json = OutboundMessage::text(tricky).to_request_json("+919820000001", None);
    assert_eq!(json["text"]["body"], tricky);
    assert_eq!(json["to"], "+919820000001");
    let reparsed: Value = serde_json::from_str(&json.to_string()).unwrap_or_default();
    assert_eq!(reparsed, json);
}

#[test]
fn callback_data_is_added_only_when_given() {
    let message = OutboundMessage::text("Hi");
    assert_eq!(
        message.to_request_json_with_callback_data(ANIKA, None, None),
        message.to_request_json(ANIKA, None)
    );
    let with = message.to_request_json_with_callback_data(
        ANIKA,
        Some(TEXT_WAMID),
        Some("flowbot-outbox-42"),
    );
    assert_eq!(with["biz_opaque_callback_data"], "flowbot-outbox-42");
    let mut without = with.clone();
    if let Some(object) = without.as_object_mut() {
        object.remove("biz_opaque_callback_data");
    }
    assert_eq!(without, message.to_request_json(ANIKA, Some(TEXT_WAMID)));
}

#[test]
fn template_without_parameters_has_no_components() {
    let message = OutboundMessage::Template {
        name: "hello_world".into(),
        language: "en_US".into(),
        body_params: vec![],
        quick_reply_payloads: vec![],
    };
    let json = message.to_request_json(ANIKA, None);
    assert_eq!(
        json["template"],
        serde_json::json!({ "name": "hello_world", "language": { "code": "en_US" } })
    );
}

#[test]
fn limits_are_checked_before_sending() {
    let too_many = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: (0..4)
            .map(|i| ReplyButton::new(format!("b{i}"), format!("B{i}")))
            .collect(),
    };
    assert!(matches!(
        too_many.validate(),
        Err(OutboundError::TooMany {
            limit: 3,
            actual: 4,
            ..
        })
    ));

    let long_title = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: vec![ReplyButton::new("a", "x".repeat(21))],
    };
    assert!(matches!(
        long_title.validate(),
        Err(OutboundError::TooLong {
            limit: 20,
            actual: 21,
            ..
        })
    ));

    // Characters, not bytes: 20 emoji are a valid title.
    let emoji_title = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: vec![ReplyButton::new("a", "👍".repeat(20))],
    };
    assert_eq!(emoji_title.validate(), Ok(()));

    let duplicate_titles = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: vec![ReplyButton::new("a", "Same"), ReplyButton::new("b", "Same")],
    };
    assert!(matches!(
        duplicate_titles.validate(),
        Err(OutboundError::Duplicate { .. })
    ));

    let padded_id = OutboundMessage::Buttons {
        header: None,
        body: "Pick".into(),
        footer: None,
        buttons: vec![ReplyButton::new(" a", "A")],
    };
    assert!(matches!(
        padded_id.validate(),
        Err(OutboundError::Untrimmed { .. })
    ));

    let eleven_rows = OutboundMessage::List {
        header: None,
        body: "Pick".into(),
        footer: None,
        button: "Open".into(),
        sections: vec![
            Section {
                title: Some("A".into()),
                rows: (0..6)
                    .map(|i| Row::new(format!("a{i}"), "A", None))
                    .collect(),
            },
            Section {
                title: Some("B".into()),
                rows: (0..5)
                    .map(|i| Row::new(format!("b{i}"), "B", None))
                    .collect(),
            },
        ],
    };
    assert!(matches!(
        eleven_rows.validate(),
        Err(OutboundError::TooMany {
            limit: 10,
            actual: 11,
            ..
        })
    ));

    let long_description = OutboundMessage::List {
        header: None,
        body: "Pick".into(),
        footer: None,
        button: "Open".into(),
        sections: vec![Section {
            title: None,
            rows: vec![Row::new("a", "A", Some("d".repeat(73)))],
        }],
    };
    assert!(matches!(
        long_description.validate(),
        Err(OutboundError::TooLong { limit: 72, .. })
    ));

    let long_row_title = OutboundMessage::List {
        header: None,
        body: "Pick".into(),
        footer: None,
        button: "Open".into(),
        sections: vec![Section {
            title: None,
            rows: vec![Row::new("a", "t".repeat(25), None)],
        }],
    };
    assert!(matches!(
        long_row_title.validate(),
        Err(OutboundError::TooLong { limit: 24, .. })
    ));

    let long_label = OutboundMessage::List {
        header: None,
        body: "Pick".into(),
        footer: None,
        button: "l".repeat(21),
        sections: vec![Section {
            title: None,
            rows: vec![Row::new("a", "A", None)],
        }],
    };
    assert!(matches!(
        long_label.validate(),
        Err(OutboundError::TooLong { limit: 20, .. })
    ));

    assert!(matches!(
        OutboundMessage::text("  ").validate(),
        Err(OutboundError::Empty { .. })
    ));
    assert!(matches!(
        OutboundMessage::text("x".repeat(4097)).validate(),
        Err(OutboundError::TooLong { .. })
    ));
}
