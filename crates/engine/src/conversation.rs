//! A conversation's state between turns: which flow, where it waits, its variables and clocks.
//! Stores persist it as it is (serde); the engine reads and returns it, never stores it itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state of one contact's conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub flow: String,
    /// The step it waits at (an `ask`), by id, so that reloaded flows still find it.
    pub step: Option<String>,
    pub status: Status,
    /// Saved variables (built-ins such as `contact` and `message` are not kept).
    pub vars: Map<String, Value>,
    /// Failed answers to the current `ask`.
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// After this instant the conversation is over.
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the customer's answer to an `ask`.
    Waiting,
    /// Handed to a person: the bot stays silent until released or timed out.
    Handoff,
}

impl Conversation {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now > self.expires_at
    }

    pub fn status_name(&self) -> &'static str {
        match self.status {
            Status::Waiting => "waiting",
            Status::Handoff => "handoff",
        }
    }
}
