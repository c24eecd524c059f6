//! Test support shared by flowbot's tests and its benchmark: fake outside services that are real HTTP
//! servers on 127.0.0.1 (random ports), so tests exercise the same code paths as production.
//!
//! - [`fake_zoho`]: Zoho accounts server and CRM search API, enforcing `Zoho-oauthtoken` and expiry.
//! - [`fake_graph`]: the WhatsApp Cloud (Graph) API messages endpoint, recording every request.
//!
//! Nothing in the product depends on this crate.

pub mod fake_graph;
pub mod fake_zoho;
pub mod webhook;
