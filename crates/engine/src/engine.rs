//! The engine: the loaded flows, the behaviour settings and the secrets, shared by every turn.

use std::sync::Arc;

use flowbot_flow::FlowSet;

use crate::conversation::Conversation;
use crate::message::{Contact, Inbound};
use crate::secrets::Secrets;
use crate::turn::Turn;

/// Behaviour settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// A message equal to this word ends the current conversation and starts anew.
    pub reset_word: String,
    /// The loop guard: steps a turn may run without waiting.
    pub max_steps_per_turn: usize,
    /// Sent when a turn cannot go on (an unhandled error outcome, the loop guard).
    pub fallback_text: String,
    /// Sent after the last failed try of an `ask` that has no `on_fail`.
    pub failed_ask_text: String,
    /// Sent when a conversation waits at a step that no longer exists (flows were reloaded).
    pub step_missing_text: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            reset_word: "restart".into(),
            max_steps_per_turn: 100,
            fallback_text: "Sorry, something went wrong on our side. Please try again in a little while.".into(),
            failed_ask_text: "Sorry, I could not understand your answer. Send a new message whenever you are ready to try again.".into(),
            step_missing_text: "Sorry, this conversation was updated on our side. Please send your message again to start over.".into(),
        }
    }
}

/// Runs conversations. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct Engine {
    flows: FlowSet,
    config: Arc<EngineConfig>,
    secrets: Arc<Secrets>,
}

impl Engine {
    pub fn new(flows: FlowSet, config: EngineConfig, secrets: Secrets) -> Engine {
        Engine {
            flows,
            config: Arc::new(config),
            secrets: Arc::new(secrets),
        }
    }

    pub fn flows(&self) -> &FlowSet {
        &self.flows
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The same engine with other flows (a reload); conversations keep running.
    pub fn with_flows(&self, flows: FlowSet) -> Engine {
        Engine {
            flows,
            config: self.config.clone(),
            secrets: self.secrets.clone(),
        }
    }

    /// Starts the turn for one inbound message. The turn's clock is the message's timestamp.
    pub fn start_turn(
        &self,
        conversation: Option<Conversation>,
        contact: &Contact,
        inbound: &Inbound,
    ) -> Turn {
        Turn::new(
            self.flows.clone(),
            self.config.clone(),
            self.secrets.clone(),
            conversation,
            contact.clone(),
            inbound.clone(),
        )
    }
}
