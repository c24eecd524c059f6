//! Phone numbers: from a WhatsApp number (digits with country code, no `+`) to the forms people
//! store in Zoho, and from a stored Zoho value back to digits-with-country-code for an exact compare.
//!
//! The country code is found by longest-prefix match in a small table of common calling codes
//! ([`CALLING_CODES`]); each entry says whether the country dials a leading trunk `0` nationally.
//!
//! What cannot match (by design, documented):
//! - a number whose country code is not in the table: only the digits and `+digits` forms are
//!   searched, and only stored values written with `+` or `00` (or the bare digits) match;
//! - stored values with letters or extension marks (`ext. 12`, `x12`, `#12`, `;`, `,`): ignored;
//! - national forms that differ in more than separators, a trunk `0` or a `(0)`, e.g. Russia's `8`
//!   trunk prefix or Italy's numbers whose significant part starts with `0`;
//! - values Zoho does not return for any searched form: Zoho documents no normalisation of phone
//!   fields, so `+91 98200 00001` is found only if Zoho's `equals` ignores the spaces (it is
//!   contains-like in v8); the client then post-filters exactly with [`PhoneForms::matches_stored`].

use std::fmt;

/// `(calling code, dials a trunk 0 nationally)`.
pub const CALLING_CODES: &[(&str, bool)] = &[
    ("1", false),
    ("7", false),
    ("20", true),
    ("27", true),
    ("30", false),
    ("31", true),
    ("32", true),
    ("33", true),
    ("34", false),
    ("36", false),
    ("39", false),
    ("40", true),
    ("41", true),
    ("43", true),
    ("44", true),
    ("45", false),
    ("46", true),
    ("47", false),
    ("48", false),
    ("49", true),
    ("51", false),
    ("52", false),
    ("54", true),
    ("55", true),
    ("56", false),
    ("57", false),
    ("60", true),
    ("61", true),
    ("62", true),
    ("63", true),
    ("64", true),
    ("65", false),
    ("66", true),
    ("81", true),
    ("82", true),
    ("84", true),
    ("86", true),
    ("90", true),
    ("91", true),
    ("92", true),
    ("93", true),
    ("94", true),
    ("95", true),
    ("98", true),
    ("212", true),
    ("213", true),
    ("216", false),
    ("233", true),
    ("234", true),
    ("254", true),
    ("255", true),
    ("256", true),
    ("351", false),
    ("353", true),
    ("852", false),
    ("880", true),
    ("886", true),
    ("961", true),
    ("962", true),
    ("965", false),
    ("966", true),
    ("968", false),
    ("971", true),
    ("972", true),
    ("973", false),
    ("974", false),
    ("977", true),
];

/// The phone fields searched with `criteria` (Zoho allows at most 10 conditions: 4 forms × 2).
pub const SEARCHED_FIELDS: [&str; 2] = ["Phone", "Mobile"];

/// The phone fields checked by the post-filter, when present in a record.
pub const FILTERED_FIELDS: [&str; 5] =
    ["Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone"];

/// The customer's number could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPhone {
    pub input: String,
    pub reason: &'static str,
}

impl fmt::Display for InvalidPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a phone number with country code: {}",
            self.input, self.reason
        )
    }
}

/// A customer's number and the forms it may be stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneForms {
    /// Digits with country code, no `+`: `919820000001`.
    pub digits: String,
    /// The calling code, if it is in [`CALLING_CODES`]: `91`.
    pub country_code: Option<&'static str>,
    /// The national significant number: `9820000001`.
    pub national: Option<String>,
    trunk_zero: bool,
}

impl PhoneForms {
    /// From a WhatsApp number: `919820000001`; `+91 98200 00001`, `0091…` and
    /// `whatsapp:+919820000001` are accepted too.
    pub fn from_whatsapp(input: &str) -> Result<PhoneForms, InvalidPhone> {
        let invalid = |reason| InvalidPhone {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let text = text.strip_prefix("whatsapp:").unwrap_or(text);
        if text
            .chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.')))
        {
            return Err(invalid(
                "only digits, +, spaces, dashes, dots and parentheses are allowed",
            ));
        }
        let mut digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if !text.starts_with('+') && digits.starts_with("00") {
            digits.drain(..2);
        }
        if digits.len() < 7 || digits.len() > 15 {
            return Err(invalid("a number with country code has 7 to 15 digits"));
        }
        let found = [3, 2, 1].iter().find_map(|&len| {
            let prefix = digits.get(..len)?;
            CALLING_CODES.iter().find(|(code, _)| *code == prefix)
        });
        let (country_code, national, trunk_zero) = match found {
            Some((code, trunk_zero)) => {
                let national = digits[code.len()..].to_owned();
                (Some(*code), Some(national), *trunk_zero)
            }
            None => (None, None, false),
        };
        Ok(PhoneForms {
            digits,
            country_code,
            national,
            trunk_zero,
        })
    }

    /// `+919820000001`
    pub fn e164(&self) -> String {
        format!("+{}", self.digits)
    }

    /// The forms to search, most specific first: digits, E.164, national, national with trunk 0.
    pub fn search_forms(&self) -> Vec<String> {
        let mut forms = vec![self.digits.clone(), self.e164()];
        if let Some(national) = &self.national {
            forms.push(national.clone());
            if self.trunk_zero {
                forms.push(format!("0{national}"));
            }
        }
        forms.dedup();
        forms
    }

    /// A stored value normalised to digits with country code, read with this customer's country
    /// code for national forms. `None` when the value cannot be a plain phone number.
    pub fn normalise_stored(&self, stored: &str) -> Option<String> {
        let text = stored.trim().replace("(0)", "");
        let allowed = |c: char| {
            c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}')
        };
        if text.is_empty() || !text.chars().all(allowed) {
            return None;
        }
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        if text.starts_with('+') {
            return Some(digits);
        }
        if let Some(rest) = digits.strip_prefix("00") {
            return Some(rest.to_owned());
        }
        let (Some(code), Some(national)) = (self.country_code, &self.national) else {
            return Some(digits);
        };
        if self.trunk_zero {
            if let Some(rest) = digits.strip_prefix('0') {
                return Some(format!("{code}{rest}"));
            }
        }
        if digits.len() == national.len() {
            return Some(format!("{code}{digits}"));
        }
        Some(digits)
    }

    /// Whether a stored value is this customer's number.
    pub fn matches_stored(&self, stored: &str) -> bool {
        self.normalise_stored(stored)
            .is_some_and(|digits| digits == self.digits)
    }

    /// Whether a stored value is written in full international form (`+919820000001` or
    /// `919820000001`, no separators): such records sort first.
    pub fn is_exact(&self, stored: &str) -> bool {
        let stored = stored.trim();
        stored == self.digits || stored == self.e164()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indian_number_forms() {
        let forms = PhoneForms::from_whatsapp("919820000001").unwrap();
        assert_eq!(forms.country_code, Some("91"));
        assert_eq!(
            forms.search_forms(),
            ["919820000001", "+919820000001", "9820000001", "09820000001"]
        );
    }

    #[test]
    fn longest_prefix_and_no_trunk_zero() {
        let uae = PhoneForms::from_whatsapp("971501234567").unwrap();
        assert_eq!(uae.country_code, Some("971"));
        assert_eq!(uae.national.as_deref(), Some("501234567"));
        let us = PhoneForms::from_whatsapp("14155550123").unwrap();
        assert_eq!(
            us.search_forms(),
            ["14155550123", "+14155550123", "4155550123"]
        );
        let unknown = PhoneForms::from_whatsapp("999123456789").unwrap();
        assert_eq!(unknown.country_code, None);
        assert_eq!(unknown.search_forms(), ["999123456789", "+999123456789"]);
    }

    #[test]
    fn accepts_other_spellings_and_rejects_junk() {
        for input in [
            "+91 98200 00001",
            "whatsapp:+919820000001",
            "0091 9820000001",
        ] {
            assert_eq!(
                PhoneForms::from_whatsapp(input).unwrap().digits,
                "919820000001",
                "{input}"
            );
        }
        assert!(PhoneForms::from_whatsapp("12").is_err());
        assert!(PhoneForms::from_whatsapp("abc919820000001").is_err());
        assert!(PhoneForms::from_whatsapp("").is_err());
    }

    #[test]
    fn stored_values_normalise_with_the_customers_country_code() {
        let forms = PhoneForms::from_whatsapp("919820000001").unwrap();
        for stored in [
            "+91 98200 00001",
            "09820000001",
            "9820000001",
            "+919820000001",
            "919820000001",
            "0091 98200 00001",
            "98200-00001",
            "(+91) 98200.00001",
        ] {
            assert!(forms.matches_stored(stored), "{stored}");
        }
        for stored in [
            "+91 98200 00002",
            "9820000001 ext 5",
            "022 2000 0001",
            "",
            "n/a",
            "+1 9820000001",
        ] {
            assert!(!forms.matches_stored(stored), "{stored}");
        }
        assert!(forms.is_exact("+919820000001"));
        assert!(!forms.is_exact("09820000001"));
    }

    #[test]
    fn uk_numbers_with_a_bracketed_trunk_zero() {
        let forms = PhoneForms::from_whatsapp("447700900123").unwrap();
        assert!(forms.matches_stored("+44 (0)7700 900123"));
        assert!(forms.matches_stored("07700 900123"));
        assert_eq!(forms.search_forms()[3], "07700900123");
    }
}
