//! The JSON Schema of the flow language, derived from the model types, for editors' YAML support.

use crate::model::FlowDef;

/// The schema as pretty JSON.
pub fn flow_schema_json() -> String {
    let schema = schemars::schema_for!(FlowDef);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
