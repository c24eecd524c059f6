//! The Zoho data centres: where an account lives decides its accounts server (for OAuth) and its
//! default API domain. After connecting, calls always use the `api_domain` Zoho returned, so the
//! table here matters only for the token endpoint and as a fallback.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Zoho data centre. Serialized as its short code (`com`, `eu`, `in`, `com.au`, `jp`, `ca`, `sa`,
/// `uk`, `com.cn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataCentre {
    Us,
    Eu,
    In,
    Au,
    Jp,
    Ca,
    Sa,
    Uk,
    Cn,
}

impl DataCentre {
    pub const ALL: [DataCentre; 9] = [
        DataCentre::Us,
        DataCentre::Eu,
        DataCentre::In,
        DataCentre::Au,
        DataCentre::Jp,
        DataCentre::Ca,
        DataCentre::Sa,
        DataCentre::Uk,
        DataCentre::Cn,
    ];

    /// The short code, as accepted by `--dc`.
    pub fn code(self) -> &'static str {
        match self {
            DataCentre::Us => "com",
            DataCentre::Eu => "eu",
            DataCentre::In => "in",
            DataCentre::Au => "com.au",
            DataCentre::Jp => "jp",
            DataCentre::Ca => "ca",
            DataCentre::Sa => "sa",
            DataCentre::Uk => "uk",
            DataCentre::Cn => "com.cn",
        }
    }

    /// The accounts server (OAuth token endpoint host). Canada is `zohocloud.ca`, not `zoho.ca`.
    pub fn accounts_url(self) -> &'static str {
        match self {
            DataCentre::Us => "https://accounts.zoho.com",
            DataCentre::Eu => "https://accounts.zoho.eu",
            DataCentre::In => "https://accounts.zoho.in",
            DataCentre::Au => "https://accounts.zoho.com.au",
            DataCentre::Jp => "https://accounts.zoho.jp",
            DataCentre::Ca => "https://accounts.zohocloud.ca",
            DataCentre::Sa => "https://accounts.zoho.sa",
            DataCentre::Uk => "https://accounts.zoho.uk",
            DataCentre::Cn => "https://accounts.zoho.com.cn",
        }
    }

    /// The default API domain; the token answer's `api_domain` takes precedence.
    pub fn api_domain(self) -> &'static str {
        match self {
            DataCentre::Us => "https://www.zohoapis.com",
            DataCentre::Eu => "https://www.zohoapis.eu",
            DataCentre::In => "https://www.zohoapis.in",
            DataCentre::Au => "https://www.zohoapis.com.au",
            DataCentre::Jp => "https://www.zohoapis.jp",
            DataCentre::Ca => "https://www.zohoapis.ca",
            DataCentre::Sa => "https://www.zohoapis.sa",
            DataCentre::Uk => "https://www.zohoapis.uk",
            DataCentre::Cn => "https://www.zohoapis.com.cn",
        }
    }
}

impl fmt::Display for DataCentre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The text given was not a known data centre.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Zoho data centre {0:?}: use one of com (or us), eu, in, com.au (or au), jp, ca, sa, uk, com.cn (or cn)")]
pub struct UnknownDataCentre(pub String);

impl FromStr for DataCentre {
    type Err = UnknownDataCentre;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let code = text.trim().trim_start_matches('.').to_ascii_lowercase();
        Ok(match code.as_str() {
            "com" | "us" => DataCentre::Us,
            "eu" => DataCentre::Eu,
            "in" => DataCentre::In,
            "com.au" | "au" => DataCentre::Au,
            "jp" => DataCentre::Jp,
            "ca" => DataCentre::Ca,
            "sa" => DataCentre::Sa,
            "uk" => DataCentre::Uk,
            "com.cn" | "cn" => DataCentre::Cn,
            _ => return Err(UnknownDataCentre(text.to_owned())),
        })
    }
}

impl TryFrom<String> for DataCentre {
    type Error = UnknownDataCentre;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<DataCentre> for String {
    fn from(dc: DataCentre) -> String {
        dc.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_aliases() {
        for (text, dc) in [
            ("com", DataCentre::Us),
            ("us", DataCentre::Us),
            ("EU", DataCentre::Eu),
            ("in", DataCentre::In),
            ("com.au", DataCentre::Au),
            ("au", DataCentre::Au),
            ("jp", DataCentre::Jp),
            ("ca", DataCentre::Ca),
            ("sa", DataCentre::Sa),
            ("uk", DataCentre::Uk),
            ("com.cn", DataCentre::Cn),
            ("cn", DataCentre::Cn),
        ] {
            assert_eq!(text.parse::<DataCentre>().unwrap(), dc, "{text}");
        }
        assert!("de".parse::<DataCentre>().is_err());
    }

    #[test]
    fn canada_uses_zohocloud_and_codes_round_trip() {
        assert_eq!(
            DataCentre::Ca.accounts_url(),
            "https://accounts.zohocloud.ca"
        );
        for dc in DataCentre::ALL {
            assert_eq!(dc.code().parse::<DataCentre>().unwrap(), dc);
            let json = serde_json::to_string(&dc).unwrap();
            assert_eq!(serde_json::from_str::<DataCentre>(&json).unwrap(), dc);
        }
    }
}
