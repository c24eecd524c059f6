//! Comparing the bot's replies with a turn's `bot:` list: complete and in order; a plain string
//! must equal the reply's text; `contains` / `starts_with` match part of it (case-sensitive unless
//! `ignore_case: true`); `buttons:` / `list:` compare option titles.

use flowbot_engine::Outbound;

use crate::format::{BotMatch, BotSpec};

/// Every difference between expected and actual replies, as readable lines.
pub fn compare_replies(expected: &[BotSpec], actual: &[Outbound]) -> Vec<String> {
    let mut failures = Vec::new();
    for index in 0..expected.len().max(actual.len()) {
        match (expected.get(index), actual.get(index)) {
            (Some(want), Some(got)) => {
                if let Some(problem) = check(want, got) {
                    failures.push(format!(
                        "reply {}: expected {}\n         got {}",
                        index + 1,
                        describe(want),
                        show(got)
                    ));
                    if !problem.is_empty() {
                        failures.push(format!("         ({problem})"));
                    }
                }
            }
            (Some(want), None) => failures.push(format!(
                "reply {}: missing; expected {}",
                index + 1,
                describe(want)
            )),
            (None, Some(got)) => {
                failures.push(format!("reply {}: unexpected {}", index + 1, show(got)))
            }
            (None, None) => {}
        }
    }
    failures
}

/// `None` when the reply matches; otherwise a short reason (possibly empty).
fn check(want: &BotSpec, got: &Outbound) -> Option<String> {
    match want {
        BotSpec::Exact(text) => (got.body() != text).then(String::new),
        BotSpec::Match(m) => check_match(m, got),
    }
}

fn check_match(m: &BotMatch, got: &Outbound) -> Option<String> {
    let fold = |s: &str| {
        if m.ignore_case {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let body = fold(got.body());
    if let Some(text) = &m.text {
        if body != fold(text) {
            return Some("the text differs".into());
        }
    }
    if let Some(part) = &m.contains {
        if !body.contains(&fold(part)) {
            return Some(String::new());
        }
    }
    if let Some(prefix) = &m.starts_with {
        if !body.starts_with(&fold(prefix)) {
            return Some(String::new());
        }
    }
    if let Some(titles) = &m.buttons {
        let actual: Vec<&str> = match got {
            Outbound::Buttons { .. } => got.option_titles(),
            _ => return Some("expected buttons".into()),
        };
        if actual != titles.iter().map(String::as_str).collect::<Vec<_>>() {
            return Some("the buttons differ".into());
        }
    }
    if let Some(titles) = &m.list {
        let actual: Vec<&str> = match got {
            Outbound::List { .. } => got.option_titles(),
            _ => return Some("expected a list".into()),
        };
        if actual != titles.iter().map(String::as_str).collect::<Vec<_>>() {
            return Some("the list rows differ".into());
        }
    }
    None
}

fn describe(want: &BotSpec) -> String {
    match want {
        BotSpec::Exact(text) => format!("{text:?}"),
        BotSpec::Match(m) => {
            let mut parts = Vec::new();
            if let Some(t) = &m.text {
                parts.push(format!("{t:?}"));
            }
            if let Some(c) = &m.contains {
                parts.push(format!("containing {c:?}"));
            }
            if let Some(s) = &m.starts_with {
                parts.push(format!("starting with {s:?}"));
            }
            if let Some(b) = &m.buttons {
                parts.push(format!("with buttons {b:?}"));
            }
            if let Some(l) = &m.list {
                parts.push(format!("with list {l:?}"));
            }
            if m.ignore_case {
                parts.push("(ignoring case)".into());
            }
            parts.join(" ")
        }
    }
}

fn show(got: &Outbound) -> String {
    let titles = got.option_titles();
    if titles.is_empty() {
        format!("{:?}", got.body())
    } else {
        format!("{:?} with options {titles:?}", got.body())
    }
}
