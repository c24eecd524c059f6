//! The flowbot flow language: what authors write and what the interpreter runs.
//!
//! Pure: no I/O, no async, no HTTP, SQL or WhatsApp. Reading files is the caller's job.
//!
//! - [`model`]: the YAML shapes, deserialized strictly (unknown keys rejected).
//! - [`compile`]: one file → a checked [`Flow`] plus [`Diagnostic`]s with file:line:column and hints.
//! - [`api_request`]: compiling the External API Request step (URL trust rules, auth, body, limits).
//! - [`flowset`]: several files together: one default flow, unique keywords, trigger matching.
//! - [`flow`]: the compiled model the engine runs (targets resolved to indexes).
//! - [`template`]: `{{name}}` templates, escaping by place, helpers.
//! - [`condition`]: branch conditions and their comparison rules.
//! - [`path`]: response paths (`data[0].Owner.name`, `$status`, …).
//! - [`positions`]: line and column of every YAML node, for diagnostics.
//! - [`limits`]: WhatsApp's limits on messages.
//! - [`mermaid`]: a flow as a Mermaid flowchart. [`schema`]: the JSON Schema of the language.
//! - [`yaml`]: the one place YAML text is parsed.

pub mod api_request;
pub mod compile;
pub mod condition;
pub mod diagnostic;
pub mod flow;
pub mod flowset;
pub mod limits;
pub mod mermaid;
pub mod model;
pub mod path;
pub mod positions;
pub mod schema;
pub mod template;
pub mod yaml;

pub use compile::{load_flow, LoadedFlow};
pub use diagnostic::{Diagnostic, Severity};
pub use flow::*;
pub use flowset::{FlowSet, FlowSource};
pub use template::{Escape, Template};
