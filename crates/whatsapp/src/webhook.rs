//! Inbound webhook notifications (`POST /webhooks/whatsapp` bodies) as typed values.
//!
//! [`parse_notification`] turns the raw body of one notification into a flat [`Notification`]: every
//! message and every status update of every entry and change, each tagged with the business number
//! (`phone_number_id`) it belongs to. Parsing is tolerant, because Meta adds fields and message types
//! without notice: unknown fields are ignored, anything not in every sample is an `Option`, unknown
//! message types become [`MessageContent::Unknown`], and one malformed message or status is skipped
//! and reported in [`Notification::skipped`] instead of failing its whole batch (a 400 would make Meta
//! redeliver the same bytes for days). Only a body that is not JSON, or not a WhatsApp notification at
//! all, is a [`ParseError`].
//!
//! This module does not check the signature (see [`crate::signature`]), deduplicate, order messages or
//! decide anything: that is the server's and the engine's job.

use serde::Deserialize;
use serde_json::Value;

/// Everything one webhook POST carried, flattened over `entry[]` and `changes[]`, in payload order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notification {
    /// Messages from customers.
    pub messages: Vec<InboundMessage>,
    /// Status updates (sent, delivered, read, failed) about messages we sent.
    pub statuses: Vec<StatusUpdate>,
    /// Out-of-band errors reported at `entry[].changes[].value.errors`.
    pub errors: Vec<ApiErrorInfo>,
    /// Items that could not be understood and were left out, with the reason (for a log line).
    pub skipped: Vec<SkippedItem>,
}

/// A message a customer sent to one of our business numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The WhatsApp message id (`wamid....`, at most 128 characters); the deduplication key.
    pub id: String,
    /// The sender's `wa_id`: digits with country code, no `+`. `None` for users known only by a
    /// business-scoped user id (usernames), who cannot be looked up by phone.
    pub from: Option<String>,
    /// The business-scoped user id (`from_user_id`, or `contacts[].user_id`), when present.
    pub user_id: Option<String>,
    /// The sender's WhatsApp profile name, from `contacts[]` matched by `wa_id` (or user id).
    pub profile_name: Option<String>,
    /// The business number that received the message (`metadata.phone_number_id`); replies go from it.
    pub phone_number_id: String,
    /// The business number as digits (`metadata.display_phone_number`).
    pub display_phone_number: Option<String>,
    /// When the customer sent it, in Unix seconds (Meta sends a string).
    pub timestamp: i64,
    /// The id of the message this one replies to or quotes (`context.id`), usually one of ours.
    pub context_id: Option<String>,
    /// `context.forwarded` or `context.frequently_forwarded`.
    pub forwarded: bool,
    /// Click-to-WhatsApp ad details, when the conversation started from an ad.
    pub referral: Option<Referral>,
    /// What the message says.
    pub content: MessageContent,
}

/// The payload of an inbound message, one variant per kind a flow can react to.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// `type=text`.
    Text { body: String },
    /// `type=interactive`, `interactive.type=button_reply`: the customer tapped one of our buttons.
    ButtonReply { id: String, title: String },
    /// `type=interactive`, `interactive.type=list_reply`: the customer picked a row of our list.
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// `type=button`: the customer tapped a quick-reply button of a template.
    TemplateButton { payload: String, text: String },
    /// `type=image|video|audio|document|sticker`.
    Media {
        kind: MediaKind,
        id: String,
        mime_type: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// `type=location`: a chosen place (with name and address) or a bare current location.
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// `type=contacts`: shared contact cards.
    Contacts { contacts: Vec<SharedContact> },
    /// `type=reaction`. An empty `emoji` means the customer removed their reaction.
    Reaction { message_id: String, emoji: String },
    /// `type=system`, e.g. `user_changed_number` (then `new_wa_id` is the new number).
    System {
        body: String,
        new_wa_id: Option<String>,
    },
    /// `type=unsupported`, or a known type that arrived without its body; `errors` says why.
    Unsupported { errors: Vec<ApiErrorInfo> },
    /// A type this crate does not know yet (`order`, `nfm_reply`, `request_welcome`, ...). The
    /// `type_name` is the payload's `type`, or `interactive.<subtype>` for unknown interactive replies.
    Unknown { type_name: String },
}

/// The kinds of media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

/// One contact card of a `contacts` message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedContact {
    /// `name.formatted_name`, else first and last name joined.
    pub name: Option<String>,
    pub phones: Vec<SharedPhone>,
}

/// One phone number on a shared contact card.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedPhone {
    /// As typed on the card (`+91 98200 00009`).
    pub phone: Option<String>,
    /// Present when the number is on WhatsApp.
    pub wa_id: Option<String>,
    /// `CELL`, `WORK`, `HOME`, ...
    pub kind: Option<String>,
}

/// The Click-to-WhatsApp `referral` object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Referral {
    pub source_url: Option<String>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub headline: Option<String>,
    pub body: Option<String>,
    pub ctwa_clid: Option<String>,
}

/// A status update about a message we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The wamid of *our* message, as returned by the send call.
    pub id: String,
    pub status: DeliveryStatus,
    /// Unix seconds. Statuses arrive out of order: order them by this, not by arrival.
    pub timestamp: i64,
    /// The customer's `wa_id`.
    pub recipient_id: Option<String>,
    /// The business number that sent the message.
    pub phone_number_id: Option<String>,
    /// Why a `failed` message failed (131047 window closed, 131026 undeliverable, ...).
    pub errors: Vec<ApiErrorInfo>,
    /// The `biz_opaque_callback_data` the send carried, echoed by Graph; `None` when absent (or
    /// not a string).
    pub biz_opaque_callback_data: Option<String>,
}

/// The `status` of a [`StatusUpdate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Anything else (`played`, `deleted`, future values), kept verbatim.
    Other(String),
}

/// An error object as Meta reports it in webhooks (`code`, `title`, `message`, `error_data.details`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiErrorInfo {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

/// Something in a notification that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedItem {
    /// Where it was, e.g. `entry[0].changes[1].value.messages[2]`.
    pub path: String,
    pub reason: String,
}

/// Why a body is not a WhatsApp notification at all. The server answers 400.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, not the expected top-level shape, or nested too deeply.
    #[error("webhook body is not a WhatsApp notification: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but for another Graph object than `whatsapp_business_account`.
    #[error("webhook body is for object {object:?}, not whatsapp_business_account")]
    WrongObject { object: String },
}

/// Parses one webhook POST body (the exact raw bytes; verify the signature on them first).
pub fn parse_notification(raw: &[u8]) -> Result<Notification, ParseError> {
    let envelope: RawNotification = serde_json::from_slice(raw)?;
    if let Some(object) = envelope.object {
        if object != "whatsapp_business_account" {
            return Err(ParseError::WrongObject { object });
        }
    }
    let mut notification = Notification::default();
    for (entry_index, entry) in envelope.entry.iter().enumerate() {
        for (change_index, change) in entry.changes.iter().flatten().enumerate() {
            let path = format!("entry[{entry_index}].changes[{change_index}].value");
            collect_change(change, &path, &mut notification);
        }
    }
    Ok(notification)
}

impl InboundMessage {
    /// The text a person would read as "what the customer said": the text body, the title of the
    /// tapped button or list row, a template button's text, or a media caption.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            MessageContent::Text { body } => Some(body),
            MessageContent::ButtonReply { title, .. } | MessageContent::ListReply { title, .. } => {
                Some(title)
            }
            MessageContent::TemplateButton { text, .. } => Some(text),
            MessageContent::Media { caption, .. } => caption.as_deref(),
            _ => None,
        }
    }

    /// The id the customer chose: a button or list row id we sent, or a template button's payload.
    pub fn choice(&self) -> Option<&str> {
        match &self.content {
            MessageContent::ButtonReply { id, .. } | MessageContent::ListReply { id, .. } => {
                Some(id)
            }
            MessageContent::TemplateButton { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// A flat type name for flows (`message.type`): one of `text`, `button`, `list`,
    /// `template_button`, `image`, `video`, `audio`, `document`, `sticker`, `location`, `contacts`,
    /// `reaction`, `system`, `unsupported`, `unknown`.
    pub fn type_name(&self) -> &'static str {
        self.content.type_name()
    }
}

impl MessageContent {
    /// See [`InboundMessage::type_name`].
    pub fn type_name(&self) -> &'static str {
        match self {
            MessageContent::Text { .. } => "text",
            MessageContent::ButtonReply { .. } => "button",
            MessageContent::ListReply { .. } => "list",
            MessageContent::TemplateButton { .. } => "template_button",
            MessageContent::Media { kind, .. } => kind.as_str(),
            MessageContent::Location { .. } => "location",
            MessageContent::Contacts { .. } => "contacts",
            MessageContent::Reaction { .. } => "reaction",
            MessageContent::System { .. } => "system",
            MessageContent::Unsupported { .. } => "unsupported",
            MessageContent::Unknown { .. } => "unknown",
        }
    }
}

impl MediaKind {
    /// The Cloud API's name for this kind (`image`, `video`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

impl DeliveryStatus {
    fn from_wire(status: &str) -> Self {
        match status {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            other => DeliveryStatus::Other(other.to_owned()),
        }
    }

    /// The wire name (`sent`, `delivered`, `read`, `failed`, or the unknown value itself).
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other(other) => other,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Wire shapes. The envelope down to `value` is typed; messages, statuses, contacts and errors are kept
// as `Value` first and then read one by one, so one odd item cannot reject its whole batch.

#[derive(Deserialize)]
struct RawNotification {
    object: Option<String>,
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    changes: Option<Vec<RawChange>>,
}

#[derive(Deserialize)]
struct RawChange {
    field: Option<String>,
    value: Option<Value>,
}

#[derive(Deserialize)]
struct RawValue {
    metadata: Option<RawMetadata>,
    contacts: Option<Vec<Value>>,
    messages: Option<Vec<Value>>,
    statuses: Option<Vec<Value>>,
    errors: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct RawMetadata {
    display_phone_number: Option<String>,
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct RawContact {
    profile: Option<RawProfile>,
    wa_id: Option<String>,
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct RawProfile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    from: Option<String>,
    from_user_id: Option<String>,
    timestamp: Option<Value>,
    #[serde(rename = "type")]
    type_name: Option<String>,
    context: Option<RawContext>,
    referral: Option<RawReferral>,
    text: Option<RawText>,
    interactive: Option<RawInteractive>,
    button: Option<RawTemplateButton>,
    image: Option<RawMedia>,
    video: Option<RawMedia>,
    audio: Option<RawMedia>,
    document: Option<RawMedia>,
    sticker: Option<RawMedia>,
    location: Option<RawLocation>,
    contacts: Option<Vec<RawSharedContact>>,
    reaction: Option<RawReaction>,
    system: Option<RawSystem>,
    errors: Option<Vec<RawError>>,
}

#[derive(Deserialize)]
struct RawContext {
    id: Option<String>,
    forwarded: Option<bool>,
    frequently_forwarded: Option<bool>,
}

#[derive(Deserialize)]
struct RawReferral {
    source_url: Option<String>,
    source_id: Option<String>,
    source_type: Option<String>,
    headline: Option<String>,
    body: Option<String>,
    ctwa_clid: Option<String>,
}

#[derive(Deserialize)]
struct RawText {
    body: Option<String>,
}

#[derive(Deserialize)]
struct RawInteractive {
    #[serde(rename = "type")]
    type_name: Option<String>,
    button_reply: Option<RawReply>,
    list_reply: Option<RawReply>,
}

#[derive(Deserialize)]
struct RawReply {
    id: Option<String>,
    title: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawTemplateButton {
    payload: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawMedia {
    id: Option<String>,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
struct RawLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct RawSharedContact {
    name: Option<RawContactName>,
    phones: Option<Vec<RawSharedPhone>>,
}

#[derive(Deserialize)]
struct RawContactName {
    formatted_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct RawSharedPhone {
    phone: Option<String>,
    wa_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawReaction {
    message_id: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct RawSystem {
    body: Option<String>,
    wa_id: Option<String>,
    new_wa_id: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: Option<String>,
    timestamp: Option<Value>,
    recipient_id: Option<String>,
    errors: Option<Vec<RawError>>,
    /// Kept as any value so an odd type drops only this field, not the status.
    biz_opaque_callback_data: Option<Value>,
}

#[derive(Deserialize)]
struct RawError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<RawErrorData>,
}

#[derive(Deserialize)]
struct RawErrorData {
    details: Option<String>,
}

// ---------------------------------------------------------------------------------------------------
// Conversion.

fn collect_change(change: &RawChange, path: &str, out: &mut Notification) {
    if change
        .field
        .as_deref()
        .is_some_and(|field| field != "messages")
    {
        // Other subscriptions (template status, account updates) share the endpoint; not ours.
        return;
    }
    let Some(value) = &change.value else {
        return;
    };
    let value = match RawValue::deserialize(value) {
        Ok(value) => value,
        Err(error) => {
            out.skipped.push(SkippedItem {
                path: path.to_owned(),
                reason: error.to_string(),
            });
            return;
        }
    };
    let metadata = value.metadata.as_ref();
    let phone_number_id = metadata.and_then(|m| m.phone_number_id.clone());
    let display_phone_number = metadata.and_then(|m| m.display_phone_number.clone());
    let contacts: Vec<RawContact> = value
        .contacts
        .iter()
        .flatten()
        .filter_map(|contact| RawContact::deserialize(contact).ok())
        .collect();

    for (index, raw) in value.messages.iter().flatten().enumerate() {
        let item_path = format!("{path}.messages[{index}]");
        let Some(phone_number_id) = phone_number_id.clone() else {
            let reason =
                "metadata.phone_number_id is missing, so no reply could be sent".to_owned();
            out.skipped.push(SkippedItem {
                path: item_path,
                reason,
            });
            continue;
        };
        let context = MessageContext {
            phone_number_id,
            display_phone_number: display_phone_number.clone(),
            contacts: &contacts,
        };
        match to_inbound_message(raw, &context) {
            Ok(message) => out.messages.push(message),
            Err(reason) => out.skipped.push(SkippedItem {
                path: item_path,
                reason,
            }),
        }
    }
    for (index, raw) in value.statuses.iter().flatten().enumerate() {
        match to_status_update(raw, phone_number_id.clone()) {
            Ok(status) => out.statuses.push(status),
            Err(reason) => out.skipped.push(SkippedItem {
                path: format!("{path}.statuses[{index}]"),
                reason,
            }),
        }
    }
    for raw in value.errors.iter().flatten() {
        if let Ok(error) = RawError::deserialize(raw) {
            out.errors.push(error.into());
        }
    }
}

struct MessageContext<'a> {
    phone_number_id: String,
    display_phone_number: Option<String>,
    contacts: &'a [RawContact],
}

fn to_inbound_message(raw: &Value, context: &MessageContext<'_>) -> Result<InboundMessage, String> {
    let message = RawMessage::deserialize(raw).map_err(|error| error.to_string())?;
    let timestamp = parse_timestamp(message.timestamp.as_ref())?;
    let sender = context.contacts.iter().find(|contact| {
        let same_wa_id = message.from.is_some() && contact.wa_id == message.from;
        let same_user_id =
            message.from_user_id.is_some() && contact.user_id == message.from_user_id;
        same_wa_id || same_user_id
    });
    let user_id = message
        .from_user_id
        .clone()
        .or_else(|| sender.and_then(|contact| contact.user_id.clone()));
    let profile_name = sender
        .and_then(|contact| contact.profile.as_ref())
        .and_then(|profile| profile.name.clone());
    let (context_id, forwarded) = match &message.context {
        Some(ctx) => (
            ctx.id.clone(),
            ctx.forwarded == Some(true) || ctx.frequently_forwarded == Some(true),
        ),
        None => (None, false),
    };
    let referral = message.referral.as_ref().map(|referral| Referral {
        source_url: referral.source_url.clone(),
        source_id: referral.source_id.clone(),
        source_type: referral.source_type.clone(),
        headline: referral.headline.clone(),
        body: referral.body.clone(),
        ctwa_clid: referral.ctwa_clid.clone(),
    });
    let content = to_content(&message);
    Ok(InboundMessage {
        id: message.id,
        from: message.from,
        user_id,
        profile_name,
        phone_number_id: context.phone_number_id.clone(),
        display_phone_number: context.display_phone_number.clone(),
        timestamp,
        context_id,
        forwarded,
        referral,
        content,
    })
}

fn to_content(message: &RawMessage) -> MessageContent {
    let type_name = message.type_name.as_deref().unwrap_or_default();
    let content = match type_name {
        "text" => message.text.as_ref().map(|text| MessageContent::Text {
            body: text.body.clone().unwrap_or_default(),
        }),
        "interactive" => message.interactive.as_ref().map(to_interactive_content),
        "button" => message
            .button
            .as_ref()
            .map(|button| MessageContent::TemplateButton {
                payload: button.payload.clone().unwrap_or_default(),
                text: button.text.clone().unwrap_or_default(),
            }),
        "image" => media(MediaKind::Image, message.image.as_ref()),
        "video" => media(MediaKind::Video, message.video.as_ref()),
        "audio" => media(MediaKind::Audio, message.audio.as_ref()),
        "document" => media(MediaKind::Document, message.document.as_ref()),
        "sticker" => media(MediaKind::Sticker, message.sticker.as_ref()),
        "location" => message.location.as_ref().and_then(|location| {
            Some(MessageContent::Location {
                latitude: location.latitude?,
                longitude: location.longitude?,
                name: location.name.clone(),
                address: location.address.clone(),
            })
        }),
        "contacts" => message
            .contacts
            .as_ref()
            .map(|contacts| MessageContent::Contacts {
                contacts: contacts.iter().map(to_shared_contact).collect(),
            }),
        "reaction" => message
            .reaction
            .as_ref()
            .map(|reaction| MessageContent::Reaction {
                message_id: reaction.message_id.clone().unwrap_or_default(),
                emoji: reaction.emoji.clone().unwrap_or_default(),
            }),
        "system" => message
            .system
            .as_ref()
            .map(|system| MessageContent::System {
                body: system.body.clone().unwrap_or_default(),
                new_wa_id: system.new_wa_id.clone().or_else(|| system.wa_id.clone()),
            }),
        "unsupported" => Some(MessageContent::Unsupported {
            errors: errors_of(message),
        }),
        _ => Some(MessageContent::Unknown {
            type_name: type_name.to_owned(),
        }),
    };
    // A known type without its body: Meta documents this for interactive messages, with `errors`.
    content.unwrap_or_else(|| MessageContent::Unsupported {
        errors: errors_of(message),
    })
}

fn to_interactive_content(interactive: &RawInteractive) -> MessageContent {
    let subtype = interactive.type_name.as_deref().unwrap_or_default();
    let reply = match subtype {
        "button_reply" => interactive.button_reply.as_ref(),
        "list_reply" => interactive.list_reply.as_ref(),
        _ => None,
    };
    let Some(reply) = reply else {
        return MessageContent::Unknown {
            type_name: format!("interactive.{subtype}"),
        };
    };
    let id = reply.id.clone().unwrap_or_default();
    let title = reply.title.clone().unwrap_or_default();
    if subtype == "button_reply" {
        MessageContent::ButtonReply { id, title }
    } else {
        MessageContent::ListReply {
            id,
            title,
            description: reply.description.clone(),
        }
    }
}

fn media(kind: MediaKind, media: Option<&RawMedia>) -> Option<MessageContent> {
    let media = media?;
    Some(MessageContent::Media {
        kind,
        id: media.id.clone()?,
        mime_type: media.mime_type.clone(),
        caption: media.caption.clone(),
        filename: media.filename.clone(),
    })
}

fn to_shared_contact(contact: &RawSharedContact) -> SharedContact {
    let name = contact.name.as_ref().and_then(|name| {
        name.formatted_name.clone().or_else(|| {
            let parts: Vec<&str> = [name.first_name.as_deref(), name.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    let phones = contact
        .phones
        .iter()
        .flatten()
        .map(|phone| SharedPhone {
            phone: phone.phone.clone(),
            wa_id: phone.wa_id.clone(),
            kind: phone.kind.clone(),
        })
        .collect();
    SharedContact { name, phones }
}

fn errors_of(message: &RawMessage) -> Vec<ApiErrorInfo> {
    message
        .errors
        .iter()
        .flatten()
        .map(ApiErrorInfo::from)
        .collect()
}

fn to_status_update(raw: &Value, phone_number_id: Option<String>) -> Result<StatusUpdate, String> {
    let status = RawStatus::deserialize(raw).map_err(|error| error.to_string())?;
    Ok(StatusUpdate {
        timestamp: parse_timestamp(status.timestamp.as_ref())?,
        status: DeliveryStatus::from_wire(status.status.as_deref().unwrap_or_default()),
        recipient_id: status.recipient_id,
        phone_number_id,
        errors: status
            .errors
            .iter()
            .flatten()
            .map(ApiErrorInfo::from)
            .collect(),
        biz_opaque_callback_data: match status.biz_opaque_callback_data {
            Some(Value::String(data)) => Some(data),
            _ => None,
        },
        id: status.id,
    })
}

/// Meta sends Unix seconds as a string; a bare number is accepted too.
fn parse_timestamp(value: Option<&Value>) -> Result<i64, String> {
    match value {
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map_err(|_| format!("timestamp {text:?} is not Unix seconds")),
        Some(Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| format!("timestamp {number} is not Unix seconds")),
        Some(_) => Err("timestamp is neither a string nor a number".to_owned()),
        None => Err("timestamp is missing".to_owned()),
    }
}

impl From<&RawError> for ApiErrorInfo {
    fn from(error: &RawError) -> Self {
        ApiErrorInfo {
            code: error.code,
            title: error.title.clone(),
            message: error.message.clone(),
            details: error
                .error_data
                .as_ref()
                .and_then(|data| data.details.clone()),
        }
    }
}

impl From<RawError> for ApiErrorInfo {
    fn from(error: RawError) -> Self {
        ApiErrorInfo::from(&error)
    }
}
