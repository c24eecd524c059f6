//! Deciding whether an inbound message answers an `ask`, and what is saved.
//!
//! With options (buttons or a list), a reply is accepted by the option's id (a tap, or a template
//! quick-reply payload), or by its title or its number typed as text, case-insensitively; the id
//! is saved. Otherwise `expect` decides: text, number, email, phone or any. A message of the wrong
//! kind (an image when text is expected) is simply not an answer.

use std::sync::LazyLock;

use flowbot_flow::{Ask, Expect};
use regex::Regex;
use serde_json::Value;

use crate::message::Inbound;

/// The value to save when the message answers the question; `None` when it does not.
pub fn accept(ask: &Ask, inbound: &Inbound) -> Option<Value> {
    let choices = ask.prompt.options.choices();
    if !choices.is_empty() {
        if let Some(id) = &inbound.choice {
            if let Some(choice) = choices.iter().find(|c| &c.id == id) {
                return Some(Value::String(choice.id.clone()));
            }
        }
        let typed = inbound.text.as_deref().map(str::trim).unwrap_or("");
        if !typed.is_empty() {
            let found = choices
                .iter()
                .find(|c| {
                    c.title.eq_ignore_ascii_case(typed)
                        || c.title.to_lowercase() == typed.to_lowercase()
                        || c.id.eq_ignore_ascii_case(typed)
                })
                .or_else(|| {
                    let number: usize = typed.trim_end_matches('.').parse().ok()?;
                    choices.get(number.checked_sub(1)?)
                });
            if let Some(choice) = found {
                return Some(Value::String(choice.id.clone()));
            }
        }
        if ask.expect == Expect::Choice {
            return None;
        }
    }
    let text = inbound.text.as_deref().map(str::trim).unwrap_or("");
    let accepted = match ask.expect {
        Expect::Any => {
            return Some(match &inbound.text {
                Some(text) => Value::String(text.clone()),
                None => Value::String(inbound.kind.clone()),
            })
        }
        Expect::Choice => false,
        Expect::Text => !text.is_empty(),
        Expect::Number => is_number(text),
        Expect::Email => EMAIL.is_match(text),
        Expect::Phone => is_phone(text),
    };
    let matches_pattern = ask.pattern.as_ref().is_none_or(|p| p.is_match(text));
    (accepted && matches_pattern).then(|| Value::String(text.to_string()))
}

/// The retry text when the author wrote none.
pub fn default_retry(ask: &Ask) -> String {
    match ask.expect {
        Expect::Choice => "Please choose one of the options.".into(),
        Expect::Number => "Please reply with a number.".into(),
        Expect::Email => "Please reply with an email address, like name@example.com.".into(),
        Expect::Phone => "Please reply with a phone number, with country code.".into(),
        Expect::Text | Expect::Any => "Please reply with a text message.".into(),
    }
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$").expect("static regex"));

fn is_number(text: &str) -> bool {
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != ' ').collect();
    !cleaned.is_empty() && cleaned.parse::<f64>().is_ok_and(f64::is_finite)
}

fn is_phone(text: &str) -> bool {
    let allowed = text
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = text.chars().filter(char::is_ascii_digit).count();
    allowed && (7..=15).contains(&digits)
}
