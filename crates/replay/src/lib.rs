//! Replay tests for flowbot flows: `flowbot test` and `cargo test` run conversation files offline.
//!
//! - [`format`]: the file format (turns, expected replies, variables, `http:` fakes, `zoho:`).
//! - [`runner`]: plays a file through the engine and lists every difference.
//! - [`expect`]: comparing replies with expectations.
//! - [`fakes`]: the fakes and the virtual clock; [`effects`]: the effect handler over them,
//!   including the real Zoho client on a faked transport.

pub mod effects;
pub mod expect;
pub mod fakes;
pub mod format;
pub mod runner;

pub use effects::ReplayEffects;
pub use fakes::Fakes;
pub use format::ReplayFile;
pub use runner::{find_replay_files, load_replay_flows, run_replay_file, ReplayOutcome};
