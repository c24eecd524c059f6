//! Evaluating value templates (`set:` values and JSON bodies): strings rendered, single
//! placeholders keeping the variable's type, lists and objects built as JSON values.

use flowbot_flow::template::lookup;
use flowbot_flow::ValueTemplate;
use serde_json::{Map, Value};

/// The JSON value of a template over the variables.
pub fn evaluate(template: &ValueTemplate, vars: &Value) -> Value {
    match template {
        ValueTemplate::Literal(value) => value.clone(),
        ValueTemplate::Text(text) => Value::String(text.render(vars)),
        ValueTemplate::Variable(name) => lookup(vars, name).cloned().unwrap_or(Value::Null),
        ValueTemplate::Array(items) => {
            Value::Array(items.iter().map(|i| evaluate(i, vars)).collect())
        }
        ValueTemplate::Object(fields) => {
            let map: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), evaluate(v, vars)))
                .collect();
            Value::Object(map)
        }
    }
}
