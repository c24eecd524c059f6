//! The flow language as written: the YAML shapes, deserialized strictly (unknown keys rejected).
//!
//! These types are the contract authors write against; `flowbot schema` derives its JSON Schema from
//! them. They hold text, not meaning: [`crate::compile`] turns them into a checked [`crate::Flow`].

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::condition::ConditionDef;

/// A flow file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    /// The flow's name: letters, digits, underscore.
    pub flow: String,
    pub description: Option<String>,
    #[serde(default)]
    pub triggers: TriggersDef,
    /// Idle time after which the conversation is over, e.g. `4h`, `30m` (default 24h).
    pub session_timeout: Option<String>,
    /// Sent before starting anew when a conversation of this flow timed out.
    pub session_expired_text: Option<String>,
    /// Starting values of variables.
    #[serde(default)]
    pub vars: serde_json::Map<String, Value>,
    pub steps: Vec<StepDef>,
}

/// What starts the flow.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggersDef {
    /// Whole-message keywords, case- and whitespace-insensitive.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The fallback flow for a message no keyword matches (one flow at most).
    #[serde(default)]
    pub default: bool,
}

/// One step: `id`, exactly one kind key, and the common keys.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: String,
    /// Sends a message (text, or text with buttons or a list) and goes on.
    pub say: Option<MessageDef>,
    /// Sends a question, waits for the reply, validates it and saves it.
    pub ask: Option<AskDef>,
    /// Ordered conditions; the first that holds decides where to go, else `else`.
    pub branch: Option<Vec<WhenDef>>,
    /// Where a `branch` goes when no condition holds (default: the following step).
    #[serde(rename = "else")]
    pub else_: Option<String>,
    /// Assigns variables from templates.
    pub set: Option<serde_json::Map<String, Value>>,
    /// Ends the conversation, optionally with a last message (`end: true` or `end: "Bye!"`).
    pub end: Option<EndDef>,
    /// Hands the conversation to a person (the text is sent to the customer).
    pub handoff: Option<EndDef>,
    /// Calls any HTTP JSON API.
    pub api_request: Option<ApiRequestDef>,
    /// Searches Zoho CRM.
    pub zoho_search: Option<ZohoSearchDef>,
    /// For `ask`: the variable that receives the answer. For `api_request` / `zoho_search`:
    /// variable → response path.
    pub save: Option<SaveDef>,
    /// Outcome branches of `api_request` and `zoho_search`: `empty`, `error`, `timeout`.
    pub on: Option<OutcomesDef>,
    /// Where to go after this step (a step id, or `end`).
    pub next: Option<String>,
    /// Same as `next`; a step with only `goto` jumps.
    pub goto: Option<String>,
}

/// Message text, or text with options.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum MessageDef {
    Text(String),
    Rich(RichMessageDef),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RichMessageDef {
    pub text: String,
    /// At most 3; titles at most 20 characters.
    pub buttons: Option<Vec<ButtonDef>>,
    pub list: Option<ListDef>,
}

/// A button: a title (its id is then a slug of it) or `{ id, title }`.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum ButtonDef {
    Title(String),
    Full(ButtonFullDef),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonFullDef {
    pub id: Option<String>,
    /// At most 20 characters.
    pub title: String,
}

/// An interactive list.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDef {
    /// The label of the button that opens the list (at most 20 characters).
    pub button: String,
    pub sections: Vec<SectionDef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionDef {
    pub title: Option<String>,
    pub rows: Vec<RowDef>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowDef {
    pub id: Option<String>,
    /// At most 24 characters.
    pub title: String,
    /// At most 72 characters.
    pub description: Option<String>,
}

/// An `ask`: a question text, or a full definition.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum AskDef {
    Text(String),
    Full(Box<FullAskDef>),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullAskDef {
    pub text: String,
    pub buttons: Option<Vec<ButtonDef>>,
    pub list: Option<ListDef>,
    /// What a valid answer is: text (default), number, email, phone, choice, any.
    pub expect: Option<String>,
    /// Sent when the answer is not valid.
    pub retry: Option<String>,
    /// Tries before `on_fail` (default 3).
    pub max_attempts: Option<u32>,
    /// Where to go after the last failed try (default: a polite message and the end).
    pub on_fail: Option<String>,
    /// A regular expression a valid answer must also match, e.g. `^\d{6}$`.
    pub pattern: Option<String>,
}

/// `{ when: CONDITION, goto: STEP }`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenDef {
    pub when: ConditionDef,
    pub goto: String,
}

/// `true`, or a text to send.
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum EndDef {
    Flag(bool),
    Text(String),
}

/// `save: var` (ask) or `save: { var: path }` (outside calls).
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum SaveDef {
    Variable(String),
    Paths(BTreeMap<String, String>),
}

/// Outcome branches.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomesDef {
    pub empty: Option<String>,
    pub error: Option<String>,
    pub timeout: Option<String>,
}

/// The External API Request step.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiRequestDef {
    /// GET, POST, PUT, PATCH or DELETE (default GET).
    pub method: Option<String>,
    /// Templated URL; only the path and query may take customer data.
    pub url: String,
    /// none | { bearer: T } | { basic: { user, password } } | { api_key: { header|query, value } }
    pub auth: Option<AuthDef>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Added to the URL's query, each value encoded.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// none | { json: ANY } | { form: { k: v } } | { raw: { content_type, text } }
    pub body: Option<BodyDef>,
    /// json (default) or text.
    pub response: Option<String>,
    /// Default 10s, at most 60s.
    pub timeout: Option<String>,
    /// Default 1MiB; reading stops there (error outcome).
    pub max_response: Option<String>,
    pub retry: Option<RetryDef>,
    /// Allows retrying POST and PATCH.
    #[serde(default)]
    pub retry_unsafe: bool,
}

#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum AuthDef {
    /// `none`
    Keyword(String),
    Kind(AuthKindDef),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthKindDef {
    Bearer(String),
    Basic { user: String, password: String },
    ApiKey(ApiKeyDef),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyDef {
    pub header: Option<String>,
    pub query: Option<String>,
    pub value: String,
}

#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum BodyDef {
    /// `none`
    Keyword(String),
    Kind(BodyKindDef),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BodyKindDef {
    Json(Value),
    Form(BTreeMap<String, String>),
    Raw { content_type: String, text: String },
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Tries after the first one.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time (default 500ms).
    pub backoff: Option<String>,
}

/// The Zoho CRM search step.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZohoSearchDef {
    /// The connection made with `flowbot zoho connect` (default `zoho`).
    pub connection: Option<String>,
    /// Module API name (default `Contacts`).
    pub module: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub word: Option<String>,
    pub criteria: Option<String>,
    /// The fields Zoho returns (Zoho returns only listed fields).
    #[serde(default)]
    pub fields: Vec<String>,
}

/// Every step kind key, in the order they are documented.
pub const STEP_KINDS: &[&str] = &[
    "say",
    "ask",
    "branch",
    "set",
    "goto",
    "end",
    "handoff",
    "api_request",
    "zoho_search",
];

/// Implements `Deserialize` for "a text, or a map" enums so that a mistake inside the map is
/// reported with its own message and position (serde's untagged enums would only say that
/// nothing matched).
macro_rules! text_or_map {
    ($ty:ident, $text:ident, $map:ident, $inner:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextOrMap;
                impl<'de> Visitor<'de> for TextOrMap {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$ty, E> {
                        Ok($ty::$text(value.to_string()))
                    }
                    fn visit_i64<E: de::Error>(self, value: i64) -> Result<$ty, E> {
                        Ok($ty::$text(value.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, value: u64) -> Result<$ty, E> {
                        Ok($ty::$text(value.to_string()))
                    }
                    fn visit_f64<E: de::Error>(self, value: f64) -> Result<$ty, E> {
                        Ok($ty::$text(value.to_string()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        let inner =
                            <$inner>::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        Ok($ty::$map(inner.into()))
                    }
                }
                deserializer.deserialize_any(TextOrMap)
            }
        }
    };
}

text_or_map!(
    MessageDef,
    Text,
    Rich,
    RichMessageDef,
    "a text, or { text, buttons } / { text, list }"
);
text_or_map!(
    AskDef,
    Text,
    Full,
    FullAskDef,
    "a question text, or { text, buttons|list, expect, retry, max_attempts, on_fail }"
);
text_or_map!(
    ButtonDef,
    Title,
    Full,
    ButtonFullDef,
    "a button title, or { id, title }"
);
text_or_map!(SaveDef, Variable, Paths, BTreeMap<String, String>, "a variable name (ask), or { variable: response.path }");
text_or_map!(
    AuthDef,
    Keyword,
    Kind,
    AuthKindDef,
    "none, or { bearer: T } / { basic: { user, password } } / { api_key: { header|query, value } }"
);
text_or_map!(
    BodyDef,
    Keyword,
    Kind,
    BodyKindDef,
    "none, or { json: ... } / { form: { k: v } } / { raw: { content_type, text } }"
);

impl<'de> Deserialize<'de> for EndDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagOrText;
        impl Visitor<'_> for FlagOrText {
            type Value = EndDef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, or a last message text")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<EndDef, E> {
                Ok(EndDef::Flag(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<EndDef, E> {
                Ok(EndDef::Text(value.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EndDef, E> {
                Ok(EndDef::Flag(true))
            }
        }
        deserializer.deserialize_any(FlagOrText)
    }
}
