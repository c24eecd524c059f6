//! [`Secret`]: a string that cannot leak by accident. Its `Debug` prints `[redacted]`, it has no
//! `Display`, and the value is reachable only through [`Secret::expose`], so every use of a token is
//! visible in the code. It serializes transparently, so a token store can persist it (encrypting is
//! the store's job).

use serde::{Deserialize, Serialize};

/// A secret string: access token, refresh token, client secret or grant code.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Never pass it to a log line, an error or a trace.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_is_transparent() {
        let secret = Secret::new("1000.abc");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"1000.abc\"");
        let back: Secret = serde_json::from_str("\"1000.abc\"").unwrap();
        assert_eq!(back.expose(), "1000.abc");
    }
}
