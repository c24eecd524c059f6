//! How values become columns and back: timestamps as fixed-width RFC 3339 text (so they sort and
//! compare as text), engine values as JSON text, enums by their serde names, counters as integers.
//! Writing a value that cannot be encoded is a `Database` error; reading one that cannot be decoded
//! is `Corrupt`, naming the table and row so a person can look at it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StoreError;

/// `2024-05-01T09:30:00.000000000Z`: always UTC, always nine fractional digits.
pub(crate) fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_time(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt(format!("{what}: bad timestamp {text:?}: {error}")))
}

pub(crate) fn parse_optional_time(
    text: Option<&str>,
    what: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|text| parse_time(text, what)).transpose()
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Database(format!("cannot encode {what}: {error}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

/// The serde name of a unit enum variant (`Status::Handoff` → `handoff`).
pub(crate) fn enum_name<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(StoreError::Database(format!(
            "{what} is not a unit variant: {other}"
        ))),
        Err(error) => Err(StoreError::Database(format!(
            "cannot encode {what}: {error}"
        ))),
    }
}

pub(crate) fn parse_enum<T: DeserializeOwned>(name: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("{what}: unknown value {name:?}")))
}

/// A counter column (attempts, sequence) as the `u32` of the public types.
pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{what}: {value} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_fixed_width_and_round_trip_to_the_nanosecond() {
        let time = Utc
            .with_ymd_and_hms(2024, 5, 1, 9, 30, 0)
            .single()
            .expect("valid date")
            + chrono::Duration::nanoseconds(7);
        let text = time_text(time);
        assert_eq!(text, "2024-05-01T09:30:00.000000007Z");
        assert_eq!(parse_time(&text, "test"), Ok(time));
        let later = time_text(time + chrono::Duration::seconds(1));
        assert!(text < later, "text order is time order");
    }

    #[test]
    fn enum_names_are_the_serde_names() {
        assert_eq!(
            enum_name(&flowbot_engine::Status::Handoff, "status"),
            Ok("handoff".to_owned())
        );
        let status: flowbot_engine::Status = parse_enum("waiting", "status").expect("known");
        assert_eq!(status, flowbot_engine::Status::Waiting);
        assert!(parse_enum::<flowbot_engine::Status>("asleep", "status").is_err());
    }
}
