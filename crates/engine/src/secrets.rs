//! Secrets: values a flow may use in outside calls (`{{secrets.shop_token}}`) but that must never be
//! shown. They come from `FLOWBOT_SECRET_NAME` environment variables (`secrets.shop_token` reads
//! `FLOWBOT_SECRET_SHOP_TOKEN`). The [`Redactor`] removes their values from anything written down.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Named secret values. Debug output shows names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

/// What replaces a secret in traces, logs and exports.
pub const REDACTED: &str = "[redacted]";

impl Secrets {
    /// Reads every `FLOWBOT_SECRET_*` variable of an environment.
    pub fn from_env_vars(vars: impl IntoIterator<Item = (String, String)>) -> Secrets {
        let values = vars
            .into_iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("FLOWBOT_SECRET_")?;
                (!name.is_empty() && name != "KEY").then(|| (name.to_ascii_lowercase(), value))
            })
            .collect();
        Secrets { values }
    }

    /// Secrets from a map (replay files, tests).
    pub fn from_map(values: BTreeMap<String, String>) -> Secrets {
        Secrets { values }
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.values
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The `secrets` variable, for rendering outside calls only.
    pub fn to_value(&self) -> Value {
        let map: Map<String, Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Value::Object(map)
    }

    /// A redactor for these secrets plus any extra sensitive values.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.values.values().cloned())
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Replaces known sensitive values in text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| v.len() >= 3).collect();
        // Longest first, so a secret that contains another is removed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Redactor { values }
    }

    /// Adds a value (e.g. a rendered Authorization header).
    pub fn add(&mut self, value: &str) {
        if value.len() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
            let encoded = flowbot_flow::template::encode_url_component(value);
            if encoded != *value && out.contains(encoded.as_str()) {
                out = out.replace(encoded.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Headers whose values are always hidden.
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name == "proxy-authorization"
        || name == "cookie"
        || name == "set-cookie"
        || name.contains("api-key")
        || name.contains("apikey")
        || name.contains("token")
        || name.contains("secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_prefixed_variables_and_never_show_in_debug() {
        let secrets = Secrets::from_env_vars([
            (
                "FLOWBOT_SECRET_SHOP_TOKEN".to_string(),
                "tok-123456".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        assert_eq!(secrets.names().collect::<Vec<_>>(), vec!["shop_token"]);
        assert!(!format!("{secrets:?}").contains("tok-123456"));
        let redactor = secrets.redactor();
        assert_eq!(redactor.redact("Bearer tok-123456"), "Bearer [redacted]");
    }
}
