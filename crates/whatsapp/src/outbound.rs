//! Outbound messages the engine produces, and their exact Cloud API request bodies.
//!
//! [`OutboundMessage`] covers what a flow can say: text, reply buttons, lists and templates.
//! [`OutboundMessage::to_request_json`] builds the `POST /{phone_number_id}/messages` body as a
//! `serde_json::Value` (so quotes, newlines and emoji in customer data can never break it), and
//! [`OutboundMessage::validate`] checks WhatsApp's size limits before sending, so a too-long title is
//! a clear local error instead of a Graph error 100 at run time. [`mark_read_json`] builds the
//! mark-as-read body.
//!
//! This module does no I/O; sending is [`crate::client`]. It does not decide *whether* a free-form
//! message may be sent (see [`crate::window`]).

use serde_json::{json, Map, Value};

/// The most reply buttons one interactive message can carry.
pub const MAX_BUTTONS: usize = 3;
/// The most characters in a reply button title.
pub const MAX_BUTTON_TITLE: usize = 20;
/// The most characters in a reply button id.
pub const MAX_BUTTON_ID: usize = 256;
/// The most rows in a list message, counted across all its sections.
pub const MAX_LIST_ROWS: usize = 10;
/// The most sections in a list message.
pub const MAX_LIST_SECTIONS: usize = 10;
/// The most characters in a list row title.
pub const MAX_ROW_TITLE: usize = 24;
/// The most characters in a list row id.
pub const MAX_ROW_ID: usize = 200;
/// The most characters in a list row description.
pub const MAX_ROW_DESCRIPTION: usize = 72;
/// The most characters in a list section title.
pub const MAX_SECTION_TITLE: usize = 24;
/// The most characters in the label of the button that opens a list.
pub const MAX_LIST_BUTTON_LABEL: usize = 20;
/// The most characters in an interactive message body. Meta documents 4096 for lists, but older
/// documents say 1024 for both; the safe value is used.
pub const MAX_INTERACTIVE_BODY: usize = 1024;
/// The most characters in an interactive header or footer.
pub const MAX_HEADER_FOOTER: usize = 60;
/// The most characters in a text message body.
pub const MAX_TEXT_BODY: usize = 4096;
/// The most characters in `biz_opaque_callback_data` (echoed back in the message's status webhooks).
pub const MAX_CALLBACK_DATA: usize = 512;

/// A message the bot sends.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundMessage {
    /// Free-form text. `preview_url: None` leaves the field out (Meta's default is no preview).
    Text {
        body: String,
        preview_url: Option<bool>,
    },
    /// Interactive reply buttons (at most [`MAX_BUTTONS`]).
    Buttons {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    /// An interactive list: `button` is the label of the button that opens it.
    List {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        button: String,
        sections: Vec<Section>,
    },
    /// An approved template; the only kind allowed outside the 24-hour window. Each quick-reply
    /// payload goes to the button at the same index.
    Template {
        name: String,
        language: String,
        body_params: Vec<String>,
        quick_reply_payloads: Vec<String>,
    },
}

/// One reply button: `id` comes back in the customer's `button_reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// A titled group of rows in a list message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: Option<String>,
    pub rows: Vec<Row>,
}

/// One choice in a list message: `id` comes back in the customer's `list_reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

/// A WhatsApp limit a message breaks; sending it would fail with Graph error 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{what} is empty")]
    Empty { what: String },
    #[error("{what} has {actual} characters, more than the {limit} WhatsApp allows")]
    TooLong {
        what: String,
        actual: usize,
        limit: usize,
    },
    #[error("{what}: {actual} given, WhatsApp allows {limit}")]
    TooMany {
        what: String,
        actual: usize,
        limit: usize,
    },
    #[error("{what} {value:?} is used twice; WhatsApp requires them to be unique")]
    Duplicate { what: String, value: String },
    #[error("{what} {value:?} has leading or trailing spaces")]
    Untrimmed { what: String, value: String },
}

impl ReplyButton {
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        ReplyButton {
            id: id.into(),
            title: title.into(),
        }
    }
}

impl Row {
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        description: Option<String>,
    ) -> Self {
        Row {
            id: id.into(),
            title: title.into(),
            description,
        }
    }
}

impl OutboundMessage {
    /// Plain text without a link preview flag.
    pub fn text(body: impl Into<String>) -> Self {
        OutboundMessage::Text {
            body: body.into(),
            preview_url: None,
        }
    }

    /// The short name of the kind, for logs and metrics: `text`, `buttons`, `list` or `template`.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundMessage::Text { .. } => "text",
            OutboundMessage::Buttons { .. } => "buttons",
            OutboundMessage::List { .. } => "list",
            OutboundMessage::Template { .. } => "template",
        }
    }

    /// Whether this message may only be sent inside the 24-hour customer service window.
    pub fn needs_open_window(&self) -> bool {
        !matches!(self, OutboundMessage::Template { .. })
    }

    /// The request body for `POST /{phone_number_id}/messages` to `to` (digits or +E.164), quoting
    /// the message `reply_to` when given.
    pub fn to_request_json(&self, to: &str, reply_to: Option<&str>) -> Value {
        self.to_request_json_with_callback_data(to, reply_to, None)
    }

    /// [`OutboundMessage::to_request_json`] with `biz_opaque_callback_data`: a string (at most
    /// [`MAX_CALLBACK_DATA`] characters) Graph echoes in every status webhook of this message, so
    /// a status can be matched to the send even when the send's answer was never received. `None`
    /// leaves the field out (the body is then exactly `to_request_json`'s).
    pub fn to_request_json_with_callback_data(
        &self,
        to: &str,
        reply_to: Option<&str>,
        biz_opaque_callback_data: Option<&str>,
    ) -> Value {
        let mut request = Map::new();
        request.insert("messaging_product".into(), json!("whatsapp"));
        request.insert("recipient_type".into(), json!("individual"));
        request.insert("to".into(), json!(to));
        if let Some(message_id) = reply_to {
            request.insert("context".into(), json!({ "message_id": message_id }));
        }
        match self {
            OutboundMessage::Text { body, preview_url } => {
                let mut text = Map::new();
                if let Some(preview_url) = preview_url {
                    text.insert("preview_url".into(), json!(preview_url));
                }
                text.insert("body".into(), json!(body));
                request.insert("type".into(), json!("text"));
                request.insert("text".into(), Value::Object(text));
            }
            OutboundMessage::Buttons {
                header,
                body,
                footer,
                buttons,
            } => {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|button| json!({ "type": "reply", "reply": { "id": button.id, "title": button.title } }))
                    .collect();
                let action = json!({ "buttons": buttons });
                request.insert("type".into(), json!("interactive"));
                request.insert(
                    "interactive".into(),
                    interactive("button", header, body, footer, action),
                );
            }
            OutboundMessage::List {
                header,
                body,
                footer,
                button,
                sections,
            } => {
                let sections: Vec<Value> = sections.iter().map(section_json).collect();
                let action = json!({ "button": button, "sections": sections });
                request.insert("type".into(), json!("interactive"));
                request.insert(
                    "interactive".into(),
                    interactive("list", header, body, footer, action),
                );
            }
            OutboundMessage::Template {
                name,
                language,
                body_params,
                quick_reply_payloads,
            } => {
                request.insert("type".into(), json!("template"));
                request.insert(
                    "template".into(),
                    template_json(name, language, body_params, quick_reply_payloads),
                );
            }
        }
        if let Some(data) = biz_opaque_callback_data {
            request.insert("biz_opaque_callback_data".into(), json!(data));
        }
        Value::Object(request)
    }

    /// Checks the message against WhatsApp's documented limits (characters, not bytes).
    pub fn validate(&self) -> Result<(), OutboundError> {
        match self {
            OutboundMessage::Text { body, .. } => {
                non_empty("text body", body)?;
                max_chars("text body", body, MAX_TEXT_BODY)
            }
            OutboundMessage::Buttons {
                header,
                body,
                footer,
                buttons,
            } => {
                check_frame(header, body, footer)?;
                if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
                    return Err(OutboundError::TooMany {
                        what: "buttons".into(),
                        actual: buttons.len(),
                        limit: MAX_BUTTONS,
                    });
                }
                for button in buttons {
                    check_id("button id", &button.id, MAX_BUTTON_ID)?;
                    non_empty("button title", &button.title)?;
                    max_chars("button title", &button.title, MAX_BUTTON_TITLE)?;
                }
                unique(
                    "button title",
                    buttons.iter().map(|button| button.title.as_str()),
                )?;
                unique("button id", buttons.iter().map(|button| button.id.as_str()))
            }
            OutboundMessage::List {
                header,
                body,
                footer,
                button,
                sections,
            } => {
                check_frame(header, body, footer)?;
                non_empty("list button label", button)?;
                max_chars("list button label", button, MAX_LIST_BUTTON_LABEL)?;
                if sections.is_empty() || sections.len() > MAX_LIST_SECTIONS {
                    let actual = sections.len();
                    return Err(OutboundError::TooMany {
                        what: "list sections".into(),
                        actual,
                        limit: MAX_LIST_SECTIONS,
                    });
                }
                let rows: Vec<&Row> = sections.iter().flat_map(|section| &section.rows).collect();
                if rows.is_empty() || rows.len() > MAX_LIST_ROWS {
                    return Err(OutboundError::TooMany {
                        what: "list rows".into(),
                        actual: rows.len(),
                        limit: MAX_LIST_ROWS,
                    });
                }
                for section in sections {
                    if let Some(title) = &section.title {
                        max_chars("list section title", title, MAX_SECTION_TITLE)?;
                    }
                }
                for row in &rows {
                    check_id("list row id", &row.id, MAX_ROW_ID)?;
                    non_empty("list row title", &row.title)?;
                    max_chars("list row title", &row.title, MAX_ROW_TITLE)?;
                    if let Some(description) = &row.description {
                        max_chars("list row description", description, MAX_ROW_DESCRIPTION)?;
                    }
                }
                unique("list row id", rows.iter().map(|row| row.id.as_str()))
            }
            OutboundMessage::Template { name, language, .. } => {
                non_empty("template name", name)?;
                non_empty("template language", language)
            }
        }
    }
}

/// The body that marks `message_id` (and every earlier message of that chat) as read.
pub fn mark_read_json(message_id: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id })
}

/// Like [`mark_read_json`], and also shows the customer a typing indicator (until we reply or 25 s pass).
pub fn mark_read_with_typing_json(message_id: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
        "typing_indicator": { "type": "text" }
    })
}

fn interactive(
    kind: &str,
    header: &Option<String>,
    body: &str,
    footer: &Option<String>,
    action: Value,
) -> Value {
    let mut interactive = Map::new();
    interactive.insert("type".into(), json!(kind));
    if let Some(header) = header {
        interactive.insert("header".into(), json!({ "type": "text", "text": header }));
    }
    interactive.insert("body".into(), json!({ "text": body }));
    if let Some(footer) = footer {
        interactive.insert("footer".into(), json!({ "text": footer }));
    }
    interactive.insert("action".into(), action);
    Value::Object(interactive)
}

fn section_json(section: &Section) -> Value {
    let rows: Vec<Value> = section
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            object.insert("id".into(), json!(row.id));
            object.insert("title".into(), json!(row.title));
            if let Some(description) = &row.description {
                object.insert("description".into(), json!(description));
            }
            Value::Object(object)
        })
        .collect();
    let mut object = Map::new();
    if let Some(title) = &section.title {
        object.insert("title".into(), json!(title));
    }
    object.insert("rows".into(), Value::Array(rows));
    Value::Object(object)
}

fn template_json(
    name: &str,
    language: &str,
    body_params: &[String],
    quick_reply_payloads: &[String],
) -> Value {
    let mut components = Vec::new();
    if !body_params.is_empty() {
        let parameters: Vec<Value> = body_params
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        components.push(json!({ "type": "body", "parameters": parameters }));
    }
    for (index, payload) in quick_reply_payloads.iter().enumerate() {
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": index.to_string(),
            "parameters": [{ "type": "payload", "payload": payload }]
        }));
    }
    let mut template = Map::new();
    template.insert("name".into(), json!(name));
    template.insert("language".into(), json!({ "code": language }));
    if !components.is_empty() {
        template.insert("components".into(), Value::Array(components));
    }
    Value::Object(template)
}

fn check_frame(
    header: &Option<String>,
    body: &str,
    footer: &Option<String>,
) -> Result<(), OutboundError> {
    non_empty("interactive body", body)?;
    max_chars("interactive body", body, MAX_INTERACTIVE_BODY)?;
    if let Some(header) = header {
        max_chars("interactive header", header, MAX_HEADER_FOOTER)?;
    }
    if let Some(footer) = footer {
        max_chars("interactive footer", footer, MAX_HEADER_FOOTER)?;
    }
    Ok(())
}

fn check_id(what: &str, id: &str, limit: usize) -> Result<(), OutboundError> {
    non_empty(what, id)?;
    max_chars(what, id, limit)?;
    if id.trim() != id {
        return Err(OutboundError::Untrimmed {
            what: what.into(),
            value: id.into(),
        });
    }
    Ok(())
}

fn non_empty(what: &str, value: &str) -> Result<(), OutboundError> {
    if value.trim().is_empty() {
        return Err(OutboundError::Empty { what: what.into() });
    }
    Ok(())
}

fn max_chars(what: &str, value: &str, limit: usize) -> Result<(), OutboundError> {
    let actual = value.chars().count();
    if actual > limit {
        return Err(OutboundError::TooLong {
            what: what.into(),
            actual,
            limit,
        });
    }
    Ok(())
}

fn unique<'a>(what: &str, values: impl Iterator<Item = &'a str>) -> Result<(), OutboundError> {
    let mut seen = std::collections::HashSet::new();
    for value in values {
        if !seen.insert(value) {
            return Err(OutboundError::Duplicate {
                what: what.into(),
                value: value.into(),
            });
        }
    }
    Ok(())
}
