//! The WhatsApp Cloud API, as flowbot needs it: nothing here knows about flows, SQL or the engine.
//!
//! - [`signature`]: the `X-Hub-Signature-256` HMAC check on raw webhook bodies (and signing, for tests).
//! - [`webhook`]: tolerant parsing of webhook notifications into [`InboundMessage`]s and
//!   [`StatusUpdate`]s, over every entry, change, message and status of a batch.
//! - [`notification`]: building notifications in the same shape (for `flowbot send`, tests and the
//!   benchmark).
//! - [`outbound`]: the messages the bot sends ([`OutboundMessage`]), their limits and their exact
//!   request JSON.
//! - [`client`]: [`CloudApiClient`], which sends them and classifies Graph errors into [`SendError`].
//! - [`window`]: the 24-hour customer service window as a pure function.
//!
//! Invariants: the access token never appears in `Debug` or `Display` output; no input from the
//! network can make this crate panic; signatures are checked on the exact bytes received.

pub mod client;
pub mod notification;
pub mod outbound;
pub mod signature;
pub mod webhook;
pub mod window;

pub use client::{CloudApiClient, CloudApiConfig, GraphError, SendError, SentMessage};
pub use outbound::{OutboundError, OutboundMessage, ReplyButton, Row, Section};
pub use signature::SignatureError;
pub use webhook::{
    parse_notification, ApiErrorInfo, DeliveryStatus, InboundMessage, MediaKind, MessageContent,
    Notification, ParseError, StatusUpdate,
};
