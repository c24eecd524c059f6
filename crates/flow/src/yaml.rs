//! The one place that parses YAML text into the flow model, so that replacing serde_yaml (marked
//! deprecated upstream) with a maintained fork is a one-line change.

pub use serde_yaml::Error;

/// Deserializes a YAML document.
pub fn from_str<T: serde::de::DeserializeOwned>(source: &str) -> Result<T, Error> {
    serde_yaml::from_str(source)
}
