//! Running one replay file: load its flow, play each user turn through the engine with the fakes,
//! and compare what the bot said (and, where asked, the variables) with what the file expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flowbot_engine::{
    drive, Contact, Conversation, Engine, EngineConfig, Inbound, Outbound, Secrets, TraceEvent,
};
use flowbot_flow::{FlowSet, FlowSource};
use serde_json::{Map, Value};

use crate::effects::ReplayEffects;
use crate::expect::compare_replies;
use crate::fakes::Fakes;
use crate::format::{ReplayFile, TurnSpec, UserSpec};

/// The result of one replay file.
#[derive(Clone, Debug)]
pub struct ReplayOutcome {
    pub name: String,
    pub file: PathBuf,
    /// Readable descriptions of every difference; empty when the replay passed.
    pub failures: Vec<String>,
}

impl ReplayOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Every `.yaml` / `.yml` file under the given files and folders, sorted.
pub fn find_replay_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut found)?;
        } else {
            found.push(path.to_path_buf());
        }
    }
    found.sort();
    Ok(found)
}

fn collect(path: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(path)? {
        let entry = entry?.path();
        if entry.is_dir() {
            collect(&entry, found)?;
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(entry);
        }
    }
    Ok(())
}

/// Runs one replay file.
pub async fn run_replay_file(path: &Path) -> ReplayOutcome {
    let display = path.display().to_string();
    let fail = |name: String, failure: String| ReplayOutcome {
        name,
        file: path.to_path_buf(),
        failures: vec![failure],
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return fail(display.clone(), format!("cannot read {display}: {error}")),
    };
    let replay: ReplayFile = match serde_yaml::from_str(&text) {
        Ok(replay) => replay,
        Err(error) => {
            let at = error
                .location()
                .map_or(String::new(), |l| format!(":{}:{}", l.line(), l.column()));
            return fail(
                display.clone(),
                format!("{display}{at}: not a replay file: {error}"),
            );
        }
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    match run_replay(&replay, &base).await {
        Ok(failures) => ReplayOutcome {
            name: replay.name,
            file: path.to_path_buf(),
            failures,
        },
        Err(error) => fail(replay.name, error),
    }
}

/// Loads the flows a replay names.
pub fn load_replay_flows(replay: &ReplayFile, base: &Path) -> Result<FlowSet, String> {
    let mut sources = Vec::new();
    for relative in std::iter::once(&replay.flow).chain(replay.other_flows.iter()) {
        // Relative to the replay file; else relative to the working folder (exports name flows so).
        let beside = base.join(relative);
        let path = if beside.exists() || !Path::new(relative).exists() {
            beside
        } else {
            PathBuf::from(relative)
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read flow {}: {e}", path.display()))?;
        sources.push(FlowSource {
            file: path.display().to_string(),
            text,
        });
    }
    let (set, diagnostics) = FlowSet::load(&sources);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(format!(
            "the flow does not validate:\n{}",
            errors.join("\n")
        ))
    }
}

async fn run_replay(replay: &ReplayFile, base: &Path) -> Result<Vec<String>, String> {
    let flows = load_replay_flows(replay, base)?;
    let engine = Engine::new(
        flows,
        EngineConfig::default(),
        Secrets::from_map(replay.secrets.clone()),
    );
    let fakes = Fakes::new(&replay.http, base, replay.now)?;
    let effects = ReplayEffects::new(fakes.clone(), replay.zoho.as_ref(), replay.now);
    let contact = Contact {
        phone: replay.contact.phone.clone(),
        name: replay.contact.name.clone(),
    };
    let mut conversation: Option<Conversation> = None;
    let mut vars = Map::new();
    let mut last_replies: Vec<Outbound> = Vec::new();
    let mut failures = Vec::new();
    for (index, turn) in replay.turns.iter().enumerate() {
        if let Some(at) = turn.at {
            fakes.set_now(at);
        }
        let inbound = inbound_for(turn, index, fakes.now(), &last_replies);
        let started = engine.start_turn(conversation.clone(), &contact, &inbound);
        let result = drive(started, &effects).await;
        let mut turn_failures = compare_replies(&turn.bot, &result.outbound);
        if !turn_failures.is_empty() && result.outbound.is_empty() {
            for event in &result.trace {
                if let TraceEvent::Silent { reason } = event {
                    turn_failures.push(format!("(the bot said nothing: {reason})"));
                }
            }
        }
        turn_failures.extend(fakes.take_failures());
        vars = vars_after(vars, &result.trace, result.conversation.as_ref());
        if let Some(expected) = &turn.vars {
            turn_failures.extend(compare_vars(expected, &vars));
        }
        if !turn_failures.is_empty() {
            failures.push(format!(
                "turn {} (user: {}):\n{}",
                index + 1,
                describe_user(&turn.user),
                indent(&turn_failures.join("\n"))
            ));
        }
        conversation = result.conversation;
        last_replies = result.outbound;
    }
    failures.extend(fakes.unused());
    Ok(failures)
}

/// The inbound message of a turn.
pub fn inbound_for(
    turn: &TurnSpec,
    index: usize,
    now: DateTime<Utc>,
    last_replies: &[Outbound],
) -> Inbound {
    let default_id = format!("wamid.replay.{}", index + 1);
    let rich = match &turn.user {
        UserSpec::Text(text) => return Inbound::text(default_id, text.clone(), now),
        UserSpec::Rich(rich) => rich,
    };
    let mut inbound = Inbound::text(
        rich.id.clone().unwrap_or(default_id),
        rich.text.clone().unwrap_or_default(),
        rich.timestamp.unwrap_or(now),
    );
    if rich.text.is_none() {
        inbound.text = None;
    }
    let title_of = |id: &str| option_title(last_replies, id);
    if let Some(id) = &rich.button {
        inbound.kind = "button".into();
        inbound.choice = Some(id.clone());
        inbound.text = title_of(id).or(inbound.text);
    } else if let Some(id) = &rich.list {
        inbound.kind = "list".into();
        inbound.choice = Some(id.clone());
        inbound.text = title_of(id).or(inbound.text);
    } else if let Some(payload) = &rich.template_button {
        inbound.kind = "template_button".into();
        inbound.choice = Some(payload.clone());
        inbound.text = Some(payload.clone());
    } else if let Some(image) = &rich.image {
        inbound.kind = "image".into();
        inbound.text = image.caption.clone();
        inbound.extra.insert(
            "media_id".into(),
            Value::String(format!("media.{}", index + 1)),
        );
        inbound.extra.insert(
            "mime_type".into(),
            Value::String(
                image
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "image/jpeg".into()),
            ),
        );
        inbound.extra.insert(
            "caption".into(),
            image.caption.clone().map_or(Value::Null, Value::String),
        );
    } else if let Some(emoji) = &rich.reaction {
        inbound.kind = "reaction".into();
        inbound.text = None;
        inbound
            .extra
            .insert("emoji".into(), Value::String(emoji.clone()));
    } else if let Some(location) = &rich.location {
        inbound.kind = "location".into();
        inbound
            .extra
            .insert("latitude".into(), Value::from(location.latitude));
        inbound
            .extra
            .insert("longitude".into(), Value::from(location.longitude));
        inbound.extra.insert(
            "name".into(),
            location.name.clone().map_or(Value::Null, Value::String),
        );
        inbound.extra.insert(
            "address".into(),
            location.address.clone().map_or(Value::Null, Value::String),
        );
    }
    inbound
}

fn option_title(replies: &[Outbound], id: &str) -> Option<String> {
    replies.iter().rev().find_map(|reply| match reply {
        Outbound::Buttons { buttons, .. } => {
            buttons.iter().find(|b| b.id == id).map(|b| b.title.clone())
        }
        Outbound::List { sections, .. } => sections
            .iter()
            .flat_map(|s| s.rows.iter())
            .find(|r| r.id == id)
            .map(|r| r.title.clone()),
        Outbound::Text { .. } => None,
    })
}

/// Variables after a turn: the kept conversation's, or (when it ended) what the turn saved.
fn vars_after(
    previous: Map<String, Value>,
    trace: &[TraceEvent],
    conversation: Option<&Conversation>,
) -> Map<String, Value> {
    if let Some(conversation) = conversation {
        return conversation.vars.clone();
    }
    let restarted = trace
        .iter()
        .any(|e| matches!(e, TraceEvent::FlowStarted { .. }));
    let mut vars = if restarted { Map::new() } else { previous };
    for event in trace {
        if let TraceEvent::Saved { var, value, .. } = event {
            vars.insert(var.clone(), value.clone());
        }
    }
    vars
}

fn compare_vars(expected: &BTreeMap<String, Value>, actual: &Map<String, Value>) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, want) in expected {
        let got = flowbot_flow::template::lookup(&Value::Object(actual.clone()), name).cloned();
        let ok = match (want, &got) {
            (Value::Null, None) | (Value::Null, Some(Value::Null)) => true,
            (want, Some(got)) => {
                want == got
                    || (want.is_string() != got.is_string()
                        && flowbot_flow::template::value_to_text(want)
                            == flowbot_flow::template::value_to_text(got)
                        && !want.is_null())
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "variable {name}: expected {want}, got {}",
                got.map_or("nothing".into(), |g| g.to_string())
            ));
        }
    }
    failures
}

fn describe_user(user: &UserSpec) -> String {
    let rich = match user {
        UserSpec::Text(text) => return format!("{text:?}"),
        UserSpec::Rich(rich) => rich,
    };
    if let Some(id) = &rich.button {
        format!("button {id}")
    } else if let Some(id) = &rich.list {
        format!("list {id}")
    } else if let Some(payload) = &rich.template_button {
        format!("template button {payload}")
    } else if rich.image.is_some() {
        "an image".into()
    } else if rich.location.is_some() {
        "a location".into()
    } else if let Some(emoji) = &rich.reaction {
        format!("reaction {emoji}")
    } else {
        format!("{:?}", rich.text.clone().unwrap_or_default())
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
