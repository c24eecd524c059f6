//! Builders for signed WhatsApp webhook notifications, as Meta would POST them.
//!
//! [`text_notification`] produces the exact shape (and, with the same values, the exact bytes) of
//! `tests/fixtures/whatsapp/text.json`; [`button_notification`] and [`list_notification`] produce the
//! interactive replies. [`signature_header`] gives the `X-Hub-Signature-256` value for a body. The
//! business number is always [`PHONE_NUMBER_ID`] / [`DISPLAY_PHONE_NUMBER`], as in the fixtures.
//!
//! This module builds bytes only; it neither sends them nor parses them.

use flowbot_whatsapp::notification::{self, Business, Sender};

/// The WhatsApp Business Account id used by the fixtures.
pub const WABA_ID: &str = "987654321098765";
/// The business phone number id used by the fixtures.
pub const PHONE_NUMBER_ID: &str = "123456789012345";
/// The business phone number used by the fixtures.
pub const DISPLAY_PHONE_NUMBER: &str = "15550100200";
/// The app secret of `tests/fixtures/whatsapp/signature_vector.txt`.
pub const APP_SECRET: &str = "test_app_secret_not_real_0001";

const BUSINESS: Business<'static> = Business {
    waba_id: WABA_ID,
    phone_number_id: PHONE_NUMBER_ID,
    display_phone_number: DISPLAY_PHONE_NUMBER,
};

/// A text message from `from` (wa_id digits) named `name`, sent at `timestamp` (Unix seconds).
pub fn text_notification(
    from: &str,
    name: &str,
    text: &str,
    wamid: &str,
    timestamp: i64,
) -> Vec<u8> {
    notification::text(
        &BUSINESS,
        &Sender {
            from,
            name,
            wamid,
            timestamp,
        },
        text,
    )
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
    notification::button_reply(
        &BUSINESS,
        &Sender {
            from,
            name,
            wamid,
            timestamp,
        },
        button_id,
        title,
        context_wamid,
    )
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
    notification::list_reply(
        &BUSINESS,
        &Sender {
            from,
            name,
            wamid,
            timestamp,
        },
        row_id,
        title,
        context_wamid,
    )
}

/// A status notification (`sent`, `delivered`, `read`, `failed`) for our message `wamid` to
/// `recipient_id`, from the business number `phone_number_id`, echoing `biz_opaque_callback_data`
/// when given: the shape of `tests/fixtures/whatsapp/status_sent.json`, timestamped now.
pub fn status_notification(
    phone_number_id: &str,
    wamid: &str,
    status: &str,
    recipient_id: &str,
    biz_opaque_callback_data: Option<&str>,
) -> Vec<u8> {
    let business = Business {
        phone_number_id,
        ..BUSINESS
    };
    notification::status(
        &business,
        wamid,
        status,
        chrono::Utc::now().timestamp(),
        recipient_id,
        biz_opaque_callback_data,
    )
}

/// The `X-Hub-Signature-256` header value Meta would send for `body` signed with `app_secret`.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    flowbot_whatsapp::signature::sign(app_secret.as_bytes(), body)
}
