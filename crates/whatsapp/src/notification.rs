//! Building inbound webhook notifications, the inverse of [`crate::webhook`]: the exact envelope Meta
//! POSTs (`object`, `entry[].changes[].value` with `metadata`, `contacts` and `messages`),
//! pretty-printed with a final newline like the documented samples.
//!
//! [`status`] builds a delivery status notification, as Graph POSTs for the business's own messages.
//!
//! `flowbot send` uses it to stand in for WhatsApp when trying flowbot locally; tests and the
//! benchmark use it to produce real-format input. It builds bytes only; signing is
//! [`crate::signature::sign`].

use serde_json::{json, Value};

/// The business side of a notification.
#[derive(Clone, Copy, Debug)]
pub struct Business<'a> {
    /// The WhatsApp Business Account id (`entry[].id`).
    pub waba_id: &'a str,
    /// The business number's id (`metadata.phone_number_id`): replies go out from it.
    pub phone_number_id: &'a str,
    /// The business number as digits (`metadata.display_phone_number`).
    pub display_phone_number: &'a str,
}

/// The customer side: who wrote, and when.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    /// wa_id digits with country code, no `+`.
    pub from: &'a str,
    /// The WhatsApp profile name.
    pub name: &'a str,
    /// The message id (wamid).
    pub wamid: &'a str,
    /// Unix seconds (sent as a string, as Meta does).
    pub timestamp: i64,
}

/// A text message.
pub fn text(business: &Business<'_>, sender: &Sender<'_>, body: &str) -> Vec<u8> {
    let message = json!({
        "from": sender.from,
        "id": sender.wamid,
        "timestamp": sender.timestamp.to_string(),
        "text": { "body": body },
        "type": "text"
    });
    envelope(business, sender, message)
}

/// A tap on the reply button `id` titled `title` of the business message `context_wamid`.
pub fn button_reply(
    business: &Business<'_>,
    sender: &Sender<'_>,
    id: &str,
    title: &str,
    context_wamid: &str,
) -> Vec<u8> {
    interactive(business, sender, "button_reply", id, title, context_wamid)
}

/// A pick of the list row `id` titled `title` of the business message `context_wamid`.
pub fn list_reply(
    business: &Business<'_>,
    sender: &Sender<'_>,
    id: &str,
    title: &str,
    context_wamid: &str,
) -> Vec<u8> {
    interactive(business, sender, "list_reply", id, title, context_wamid)
}

fn interactive(
    business: &Business<'_>,
    sender: &Sender<'_>,
    kind: &str,
    id: &str,
    title: &str,
    context_wamid: &str,
) -> Vec<u8> {
    let message = json!({
        "context": { "from": business.display_phone_number, "id": context_wamid },
        "from": sender.from,
        "id": sender.wamid,
        "timestamp": sender.timestamp.to_string(),
        "type": "interactive",
        "interactive": { "type": kind, kind: { "id": id, "title": title } }
    });
    envelope(business, sender, message)
}

/// A status notification for the business's own message `id` (a wamid) to `recipient_id`:
/// `status` is `sent`, `delivered`, `read` or `failed`. `biz_opaque_callback_data` is echoed as
/// Graph echoes the send's. The shape is `tests/fixtures/whatsapp/status_sent.json`'s (with an
/// invented conversation id).
pub fn status(
    business: &Business<'_>,
    id: &str,
    status: &str,
    timestamp: i64,
    recipient_id: &str,
    biz_opaque_callback_data: Option<&str>,
) -> Vec<u8> {
    let mut update = json!({
        "id": id,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": recipient_id,
        "conversation": {
            "id": "c0ffee00000000000000000000000001",
            "expiration_timestamp": (timestamp + 86_400).to_string(),
            "origin": { "type": "service" }
        },
        "pricing": { "billable": true, "pricing_model": "CBP", "category": "service" }
    });
    if let (Some(data), Some(object)) = (biz_opaque_callback_data, update.as_object_mut()) {
        object.insert("biz_opaque_callback_data".into(), json!(data));
    }
    wrap(business, json!({ "statuses": [update] }))
}

/// Wraps one message in the notification envelope.
fn envelope(business: &Business<'_>, sender: &Sender<'_>, message: Value) -> Vec<u8> {
    wrap(
        business,
        json!({
            "contacts": [{ "profile": { "name": sender.name }, "wa_id": sender.from }],
            "messages": [message]
        }),
    )
}

/// The notification envelope around a change's `contacts`/`messages` or `statuses`, pretty-printed
/// with a final newline like the documented samples.
fn wrap(business: &Business<'_>, fields: Value) -> Vec<u8> {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": business.display_phone_number,
            "phone_number_id": business.phone_number_id
        }
    });
    if let (Some(value), Value::Object(fields)) = (value.as_object_mut(), fields) {
        value.extend(fields);
    }
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": business.waba_id,
            "changes": [{ "value": value, "field": "messages" }]
        }]
    });
    let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_statuses_parse_back_with_their_callback_data() {
        let business = Business {
            waba_id: "987654321098765",
            phone_number_id: "123456789012345",
            display_phone_number: "15550100200",
        };
        let parsed = crate::parse_notification(&status(
            &business,
            "wamid.S1",
            "sent",
            1_796_289_302,
            "919820000001",
            Some("flowbot-outbox-3"),
        ))
        .expect("parses");
        let update = &parsed.statuses[0];
        assert_eq!(update.id, "wamid.S1");
        assert_eq!(update.status, crate::DeliveryStatus::Sent);
        assert_eq!(update.recipient_id.as_deref(), Some("919820000001"));
        assert_eq!(
            update.biz_opaque_callback_data.as_deref(),
            Some("flowbot-outbox-3")
        );
        let without = crate::parse_notification(&status(
            &business,
            "wamid.S2",
            "read",
            1,
            "919820000001",
            None,
        ))
        .expect("parses");
        assert_eq!(without.statuses[0].biz_opaque_callback_data, None);
    }

    #[test]
    fn built_notifications_parse_back_to_the_same_message() {
        let business = Business {
            waba_id: "987654321098765",
            phone_number_id: "123456789012345",
            display_phone_number: "15550100200",
        };
        let sender = Sender {
            from: "919820000001",
            name: "Priya",
            wamid: "wamid.X1",
            timestamp: 1_796_289_300,
        };
        let parsed = crate::parse_notification(&text(&business, &sender, "Hi")).expect("parses");
        assert_eq!(parsed.messages[0].text(), Some("Hi"));
        assert_eq!(parsed.messages[0].profile_name.as_deref(), Some("Priya"));
        let tapped = crate::parse_notification(&button_reply(
            &business,
            &sender,
            "order",
            "Order status",
            "wamid.B1",
        ))
        .expect("parses");
        assert_eq!(tapped.messages[0].choice(), Some("order"));
        let picked = crate::parse_notification(&list_reply(
            &business, &sender, "south", "South", "wamid.B1",
        ))
        .expect("parses");
        assert_eq!(picked.messages[0].choice(), Some("south"));
    }
}
