//! Messages as the engine sees them: the contact, one inbound message in a uniform shape whatever
//! its WhatsApp type, and the outbound messages a turn produces. Providers map their payloads to
//! and from these types; the engine knows nothing of their JSON.

use chrono::{DateTime, Utc};
use flowbot_flow::{Choice, Section};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who the conversation is with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Digits with country code, as WhatsApp sends it (`919820000001`).
    pub phone: String,
    pub name: Option<String>,
}

/// One inbound message, uniform over WhatsApp's types.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The provider's message id (wamid).
    pub id: String,
    /// text, button, list, template_button, image, video, audio, document, sticker, location,
    /// contacts, reaction, system, unsupported, unknown.
    pub kind: String,
    /// The text body; the title of a tapped option; a media caption.
    pub text: Option<String>,
    /// The id of a tapped button or list row, or a template button's payload.
    pub choice: Option<String>,
    /// Type-specific fields (media_id, mime_type, caption, latitude, longitude, name, address, emoji…),
    /// readable as `message.NAME`.
    #[serde(default)]
    pub extra: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
}

impl Inbound {
    /// A plain text message.
    pub fn text(
        id: impl Into<String>,
        text: impl Into<String>,
        timestamp: DateTime<Utc>,
    ) -> Inbound {
        Inbound {
            id: id.into(),
            kind: "text".into(),
            text: Some(text.into()),
            choice: None,
            extra: Map::new(),
            timestamp,
        }
    }

    /// The `message` variable of templates and conditions.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("type".into(), Value::String(self.kind.clone()));
        map.insert(
            "text".into(),
            self.text.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "choice".into(),
            self.choice.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "button_id".into(),
            self.choice.clone().map_or(Value::Null, Value::String),
        );
        for (key, value) in &self.extra {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(map)
    }
}

/// A message the bot sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    Text {
        body: String,
    },
    Buttons {
        body: String,
        buttons: Vec<OutboundChoice>,
    },
    List {
        body: String,
        button: String,
        sections: Vec<OutboundSection>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundChoice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<OutboundChoice>,
}

impl Outbound {
    /// The message's text.
    pub fn body(&self) -> &str {
        match self {
            Outbound::Text { body }
            | Outbound::Buttons { body, .. }
            | Outbound::List { body, .. } => body,
        }
    }

    /// Titles of the options, in order.
    pub fn option_titles(&self) -> Vec<&str> {
        match self {
            Outbound::Text { .. } => Vec::new(),
            Outbound::Buttons { buttons, .. } => buttons.iter().map(|b| b.title.as_str()).collect(),
            Outbound::List { sections, .. } => sections
                .iter()
                .flat_map(|s| s.rows.iter().map(|r| r.title.as_str()))
                .collect(),
        }
    }

    /// How a customer sees it in a terminal: the text, then numbered options.
    pub fn to_display(&self) -> String {
        let mut out = self.body().to_string();
        if let Outbound::List { button, .. } = self {
            out.push_str(&format!("\n  [{button}]"));
        }
        for (index, title) in self.option_titles().iter().enumerate() {
            out.push_str(&format!("\n  {}. {title}", index + 1));
        }
        out
    }
}

impl From<&Choice> for OutboundChoice {
    fn from(choice: &Choice) -> Self {
        OutboundChoice {
            id: choice.id.clone(),
            title: choice.title.clone(),
            description: choice.description.clone(),
        }
    }
}

impl From<&Section> for OutboundSection {
    fn from(section: &Section) -> Self {
        OutboundSection {
            title: section.title.clone(),
            rows: section.rows.iter().map(OutboundChoice::from).collect(),
        }
    }
}
