//! The flowbot interpreter: runs conversations turn by turn over compiled flows.
//!
//! Sans-I/O: a [`Turn`] runs steps until it needs something from outside, returns that need as an
//! [`Effect`] and is resumed with the [`EffectResult`]. The server, `flowbot chat` and the replay
//! runner drive the same turns; nothing here does I/O, reads a clock or sleeps.
//!
//! - [`engine`]: [`Engine`] (flows, settings, secrets) and [`EngineConfig`].
//! - [`turn`]: the state machine of one turn; [`TurnResult`].
//! - [`conversation`]: [`Conversation`], the state kept between turns.
//! - [`message`]: [`Contact`], [`Inbound`], [`Outbound`].
//! - [`effect`]: [`Effect`] and [`EffectResult`] (HTTP, sleep, Zoho search).
//! - [`steps`]: answer validation, the External API Request step, the Zoho step.
//! - [`trace`]: [`TraceEvent`], what each step did, secrets redacted.
//! - [`secrets`]: [`Secrets`] and the [`secrets::Redactor`].
//! - [`drive`]: [`drive()`], the driver loop over an [`EffectHandler`].
//! - [`text`], [`value`]: splitting long texts; evaluating value templates.
//!
//! Invariant: a flow that validates never panics at run time; a failed step is an outcome the
//! flow can branch on, and an unhandled one ends the conversation politely.

pub mod conversation;
pub mod drive;
pub mod effect;
pub mod engine;
pub mod message;
pub mod secrets;
pub mod steps;
pub mod text;
pub mod trace;
pub mod turn;
pub mod value;

pub use conversation::{Conversation, Status};
pub use drive::{drive, EffectHandler};
pub use effect::*;
pub use engine::{Engine, EngineConfig};
pub use message::{Contact, Inbound, Outbound, OutboundChoice, OutboundSection};
pub use secrets::Secrets;
pub use trace::TraceEvent;
pub use turn::{Outcome, Poll, Turn, TurnResult};

/// An empty list counts as "found nothing" for the `empty` outcome.
pub(crate) fn value_is_empty_list(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::Array(items) if items.is_empty())
}
