//! Builders for signed WhatsApp webhook notifications, as Meta would POST them.
//!
//! [`text_notification`] produces the exact shape (and, with the same values, the exact bytes) of
//! `tests/fixtures/whatsapp/text.json`; [`button_notification`] and [`list_notification`] produce the
//! interactive replies. [`signature_header`] gives the `X-Hub-Signature-256` value for a body. The
//! business number is always [`PHONE_NUMBER_ID`] / [`DISPLAY_PHONE_NUMBER`], as in the fixtures.
//!
//! This module builds bytes only; it neither sends them nor parses them.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The WhatsApp Business Account id used by the fixtures.
pub const WABA_ID: &str = "987654321098765";
/// The business phone number id used by the fixtures.
pub const PHONE_NUMBER_ID: &str = "123456789012345";
/// The business phone number used by the fixtures.
pub const DISPLAY_PHONE_NUMBER: &str = "15550100200";
/// The app secret of `tests/fixtures/whatsapp/signature_vector.txt`.
pub const APP_SECRET: &str = "test_app_secret_not_real_0001";

/// A text message from `from` (wa_id digits) named `name`, sent at `timestamp` (Unix seconds).
pub fn text_notification(
    from: &str,
    name: &str,
    text: &str,
    wamid: &str,
    timestamp: i64,
) -> Vec<u8> {
    let message = json!({
        "from": from,
        "id": wamid,
        "timestamp": timestamp.to_string(),
        "text": { "body": text },
        "type": "text"
    });
    notification(from, name, message)
}

/// A tap on the reply button `button_id` titled `title`, of our message `context_wamid`.
pub fn button_notification(
    from: &str,
    name: &str,
    button_id: &str,
    title: &str,
    context_wamid: &str,
    wamid: &str,
    timestamp: i64,
) -> Vec<u8> {
    let message = json!({
        "context": { "from": DISPLAY_PHONE_NUMBER, "id": context_wamid },
        "from": from,
        "id": wamid,
        "timestamp": timestamp.to_string(),
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": { "id": button_id, "title": title }
        }
    });
    notification(from, name, message)
}

/// A pick of the list row `row_id` titled `title`, of our message `context_wamid`.
pub fn list_notification(
    from: &str,
    name: &str,
    row_id: &str,
    title: &str,
    context_wamid: &str,
    wamid: &str,
    timestamp: i64,
) -> Vec<u8> {
    let message = json!({
        "context": { "from": DISPLAY_PHONE_NUMBER, "id": context_wamid },
        "from": from,
        "id": wamid,
        "timestamp": timestamp.to_string(),
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": { "id": row_id, "title": title }
        }
    });
    notification(from, name, message)
}

/// The `X-Hub-Signature-256` header value Meta would send for `body` signed with `app_secret`.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Wraps one message in the envelope of `text.json`, pretty-printed with a final newline like the
/// fixtures.
fn notification(from: &str, name: &str, message: Value) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": WABA_ID,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": DISPLAY_PHONE_NUMBER,
                        "phone_number_id": PHONE_NUMBER_ID
                    },
                    "contacts": [{ "profile": { "name": name }, "wa_id": from }],
                    "messages": [message]
                },
                "field": "messages"
            }]
        }]
    });
    let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
