//! WhatsApp's inbound messages in the engine's uniform shape: [`InboundMessage`] →
//! [`NewInbound`] (contact + [`Inbound`]).
//!
//! `kind` is [`InboundMessage::type_name`], `text` and `choice` come from the WhatsApp crate, and
//! every type-specific field lands in `extra` (readable in flows as `message.NAME`): `media_id`,
//! `mime_type`, `caption`, `filename`, `latitude`, `longitude`, `name`, `address`, `emoji`,
//! `reacted_message_id`, `contacts` (JSON), `description`, `body`, `new_wa_id`, `errors` (JSON),
//! `unknown_type`, `context_id`, `forwarded`, `referral` (JSON), `user_id`. The timestamp is the
//! message's own. Nothing here touches the network or the database.

use chrono::{DateTime, Utc};
use flowbot_engine::{Contact, Inbound};
use flowbot_store::NewInbound;
use flowbot_whatsapp::webhook::{ApiErrorInfo, MessageContent};
use flowbot_whatsapp::InboundMessage;
use serde_json::{json, Map, Value};

/// The channel name stored with WhatsApp messages.
pub const CHANNEL: &str = "whatsapp";

/// The message as the store records it, or `None` when it names no sender at all (neither a
/// `wa_id` nor a business-scoped user id), so nobody could be answered.
pub fn to_new_inbound(message: &InboundMessage) -> Option<NewInbound> {
    let phone = message
        .from
        .clone()
        .or_else(|| message.user_id.clone())
        .filter(|p| !p.is_empty())?;
    Some(NewInbound {
        channel: CHANNEL.to_owned(),
        business_id: message.phone_number_id.clone(),
        contact: Contact {
            phone,
            name: message.profile_name.clone(),
        },
        message: to_inbound(message),
    })
}

/// The engine's view of one WhatsApp message.
pub fn to_inbound(message: &InboundMessage) -> Inbound {
    let mut extra = Map::new();
    match &message.content {
        MessageContent::Text { .. }
        | MessageContent::ButtonReply { .. }
        | MessageContent::TemplateButton { .. } => {}
        MessageContent::ListReply { description, .. } => {
            put(&mut extra, "description", description.as_deref());
        }
        MessageContent::Media {
            id,
            mime_type,
            caption,
            filename,
            ..
        } => {
            put(&mut extra, "media_id", Some(id));
            put(&mut extra, "mime_type", mime_type.as_deref());
            put(&mut extra, "caption", caption.as_deref());
            put(&mut extra, "filename", filename.as_deref());
        }
        MessageContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => {
            extra.insert("latitude".into(), json!(latitude));
            extra.insert("longitude".into(), json!(longitude));
            put(&mut extra, "name", name.as_deref());
            put(&mut extra, "address", address.as_deref());
        }
        MessageContent::Contacts { contacts } => {
            let cards: Vec<Value> = contacts
                .iter()
                .map(|card| {
                    let phones: Vec<Value> = card
                        .phones
                        .iter()
                        .map(|p| json!({ "phone": p.phone, "wa_id": p.wa_id, "type": p.kind }))
                        .collect();
                    json!({ "name": card.name, "phones": phones })
                })
                .collect();
            extra.insert("contacts".into(), Value::Array(cards));
        }
        MessageContent::Reaction { message_id, emoji } => {
            extra.insert("emoji".into(), json!(emoji));
            extra.insert("reacted_message_id".into(), json!(message_id));
        }
        MessageContent::System { body, new_wa_id } => {
            extra.insert("body".into(), json!(body));
            put(&mut extra, "new_wa_id", new_wa_id.as_deref());
        }
        MessageContent::Unsupported { errors } => {
            extra.insert("errors".into(), errors_json(errors));
        }
        MessageContent::Unknown { type_name } => {
            extra.insert("unknown_type".into(), json!(type_name));
        }
    }
    put(&mut extra, "context_id", message.context_id.as_deref());
    if message.forwarded {
        extra.insert("forwarded".into(), json!(true));
    }
    if let Some(referral) = &message.referral {
        extra.insert(
            "referral".into(),
            json!({
                "source_url": referral.source_url,
                "source_id": referral.source_id,
                "source_type": referral.source_type,
                "headline": referral.headline,
                "body": referral.body,
                "ctwa_clid": referral.ctwa_clid,
            }),
        );
    }
    put(&mut extra, "user_id", message.user_id.as_deref());
    Inbound {
        id: message.id.clone(),
        kind: message.type_name().to_owned(),
        text: message.text().map(str::to_owned),
        choice: message.choice().map(str::to_owned),
        extra,
        timestamp: timestamp(message.timestamp),
    }
}

/// Unix seconds as a time; an impossible value becomes "now" rather than an error.
pub fn timestamp(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_else(Utc::now)
}

/// One line about a WhatsApp error object, for logs and the outbox row.
pub fn describe_error(error: &ApiErrorInfo) -> String {
    let mut text = error
        .code
        .map_or_else(|| "error".to_owned(), |c| format!("error {c}"));
    for part in [&error.title, &error.message, &error.details]
        .into_iter()
        .flatten()
    {
        text.push_str(": ");
        text.push_str(part);
    }
    text
}

fn errors_json(errors: &[ApiErrorInfo]) -> Value {
    Value::Array(
        errors
            .iter()
            .map(|e| json!({ "code": e.code, "title": e.title, "message": e.message, "details": e.details }))
            .collect(),
    )
}

fn put(extra: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        extra.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use flowbot_whatsapp::parse_notification;

    use super::*;

    fn first(fixture: &str) -> InboundMessage {
        let path = format!(
            "{}/../../tests/fixtures/whatsapp/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        );
        let raw = std::fs::read(path).unwrap();
        parse_notification(&raw).unwrap().messages.remove(0)
    }

    #[test]
    fn text_keeps_body_contact_and_timestamp() {
        let new = to_new_inbound(&first("text.json")).unwrap();
        assert_eq!(new.channel, "whatsapp");
        assert_eq!(new.business_id, "123456789012345");
        assert_eq!(new.contact.phone, "919820000001");
        assert_eq!(new.contact.name.as_deref(), Some("Anika Rao"));
        assert_eq!(new.message.kind, "text");
        assert_eq!(
            new.message.text.as_deref(),
            Some("Hi, I need help with my order")
        );
        assert_eq!(new.message.timestamp.timestamp(), 1_796_289_300);
    }

    #[test]
    fn every_type_maps_to_a_uniform_message() {
        let image = to_inbound(&first("image.json"));
        assert_eq!(image.kind, "image");
        assert!(image.extra.contains_key("media_id"));
        assert!(image.extra.contains_key("mime_type"));

        let location = to_inbound(&first("location.json"));
        assert_eq!(location.kind, "location");
        assert!(location.extra["latitude"].is_number());
        assert_eq!(location.text, None);

        let button = to_inbound(&first("button_reply.json"));
        assert_eq!(button.kind, "button");
        assert!(button.choice.is_some());
        assert!(button.extra.contains_key("context_id"));

        let reaction = to_inbound(&first("reaction.json"));
        assert!(reaction.extra.contains_key("emoji"));
        assert!(reaction.extra.contains_key("reacted_message_id"));

        let contacts = to_inbound(&first("contacts.json"));
        assert!(contacts.extra["contacts"].is_array());

        let document = to_inbound(&first("document.json"));
        assert!(document.extra.contains_key("filename"));

        let unsupported = to_inbound(&first("unsupported.json"));
        assert_eq!(unsupported.kind, "unsupported");
        assert!(unsupported.extra["errors"].is_array());
    }
}
