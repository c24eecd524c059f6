//! `flowbot conversations list | show PHONE | export PHONE`: what the store kept, for people and as
//! replay files. An export holds the turns, the bot's replies, the outside calls with their recorded
//! answers as `http:` fakes and the clock, so `flowbot test` passes it unchanged; it never holds a
//! secret (traces are redacted before they are stored, and secrets get placeholder values).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use flowbot_engine::trace::{HttpTrace, ZohoTrace};
use flowbot_engine::{Inbound, Outbound, TraceEvent};
use flowbot_flow::{Auth, FlowSet, StepKind};
use flowbot_replay::format::{
    BotMatch, BotSpec, ContactSpec, FakeMatch, FakeSpec, LocationSpec, MediaSpec, ReplayFile,
    RichUser, TurnSpec, UserSpec, ZohoSpec,
};
use flowbot_store::{TranscriptEntry, TranscriptEvent};

use super::state::open_existing_store;
use crate::cli::ConversationsCommand;
use crate::flow_files::read_flow_sources;

pub async fn run(command: ConversationsCommand) -> Result<ExitCode> {
    match command {
        ConversationsCommand::List { db } => {
            let store = open_existing_store(&db.database).await?;
            let conversations = store.list_conversations().await?;
            store.close().await;
            if conversations.is_empty() {
                println!("no conversations in progress (finished ones keep their transcript: `flowbot conversations show PHONE`)");
            }
            for c in conversations {
                println!(
                    "{:<16} {:<20} {:<20} {:<16} {:<8} updated {}  expires {}",
                    c.phone,
                    c.name.unwrap_or_default(),
                    c.flow,
                    c.step.unwrap_or_else(|| "-".into()),
                    c.status,
                    c.updated_at.to_rfc3339(),
                    c.expires_at.to_rfc3339()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConversationsCommand::Show { phone, db } => {
            let store = open_existing_store(&db.database).await?;
            let events = store.transcript(&phone, None).await?;
            store.close().await;
            if events.is_empty() {
                println!("no transcript for {phone}");
                return Ok(ExitCode::from(1));
            }
            for event in events {
                print!("{}", show_event(&event));
            }
            Ok(ExitCode::SUCCESS)
        }
        ConversationsCommand::Export {
            phone,
            since,
            flows,
            db,
        } => {
            let store = open_existing_store(&db.database).await?;
            let events = store.transcript(&phone, since).await?;
            store.close().await;
            if events.is_empty() {
                bail!(
                    "no transcript for {phone}{}",
                    since.map_or(String::new(), |s| format!(" since {s}"))
                );
            }
            let replay = export(&phone, &events, &flows)?;
            print!("{}", serde_yaml::to_string(&replay)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show_event(event: &TranscriptEvent) -> String {
    let at = event.at.format("%Y-%m-%d %H:%M:%S");
    match &event.entry {
        TranscriptEntry::Inbound { message, .. } => {
            let text = message
                .text
                .clone()
                .unwrap_or_else(|| format!("[{}]", message.kind));
            format!(
                "{at}  customer> {}\n",
                indent_after_first(&text, "                     ")
            )
        }
        TranscriptEntry::Outbound { message } => {
            format!(
                "{at}  bot>      {}\n",
                indent_after_first(&message.to_display(), "                     ")
            )
        }
        TranscriptEntry::Trace { event } => format!("{at}    · {}\n", event.describe()),
    }
}

fn indent_after_first(text: &str, indent: &str) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

/// Builds a replay file from a transcript.
fn export(phone: &str, events: &[TranscriptEvent], flows_dir: &Path) -> Result<ReplayFile> {
    let mut contact = ContactSpec {
        phone: phone.to_string(),
        name: None,
    };
    let mut turns: Vec<TurnSpec> = Vec::new();
    let mut fakes: Vec<FakeSpec> = Vec::new();
    let mut flow_names: Vec<String> = Vec::new();
    let mut uses_zoho = false;
    let mut start: Option<DateTime<Utc>> = None;
    for event in events {
        match &event.entry {
            TranscriptEntry::Inbound {
                message,
                contact: who,
            } => {
                contact.name = who.name.clone().or(contact.name);
                let at = message.timestamp;
                let first = start.is_none();
                start.get_or_insert(at);
                turns.push(TurnSpec {
                    at: (!first).then_some(at),
                    user: user_spec(message),
                    bot: Vec::new(),
                    vars: None,
                });
            }
            TranscriptEntry::Outbound { message } => {
                if let Some(turn) = turns.last_mut() {
                    turn.bot.push(bot_spec(message));
                }
            }
            TranscriptEntry::Trace { event } => match event {
                TraceEvent::FlowStarted { flow, .. } if !flow_names.contains(flow) => {
                    flow_names.push(flow.clone())
                }
                TraceEvent::Http(http) => fakes.push(http_fake(http)),
                TraceEvent::Zoho(zoho) => {
                    uses_zoho = true;
                    fakes.push(zoho_fake(zoho));
                }
                _ => {}
            },
        }
    }
    let Some(now) = start else {
        bail!("the transcript of {phone} has no inbound message")
    };
    // Find the flow files by flow name.
    let sources = read_flow_sources(&[flows_dir.to_path_buf()])?;
    let (set, _) = FlowSet::load(&sources);
    let mut files = Vec::new();
    for name in &flow_names {
        match set.by_name(name) {
            Some(flow) => files.push(flow.file.clone()),
            None => bail!(
                "flow `{name}` is not in {} (pass --flows)",
                flows_dir.display()
            ),
        }
    }
    if files.is_empty() {
        bail!("no flow started in this transcript");
    }
    let mut secrets = BTreeMap::new();
    for flow in set.flows().iter().filter(|f| flow_names.contains(&f.name)) {
        for name in secret_names(flow) {
            let value = if name.1 {
                format!("https://{}.secret.invalid", name.0.replace('_', "-"))
            } else {
                format!("exported-{}", name.0)
            };
            secrets.insert(name.0, value);
        }
    }
    Ok(ReplayFile {
        name: format!("recorded conversation with {phone}"),
        flow: files[0].clone(),
        other_flows: files[1..].to_vec(),
        contact,
        now,
        secrets,
        zoho: uses_zoho.then(|| ZohoSpec {
            access_token: Some("exported-access-token".into()),
            expires_at: Some(now + chrono::Duration::days(365)),
            ..ZohoSpec::default()
        }),
        http: fakes,
        turns,
    })
}

/// Secret names a flow's outside calls read; `true` when the secret is a whole base URL.
fn secret_names(flow: &flowbot_flow::Flow) -> Vec<(String, bool)> {
    let mut names = Vec::new();
    for step in &flow.steps {
        let StepKind::ApiRequest(request) = &step.kind else {
            continue;
        };
        if let Some(base) = request
            .url
            .base
            .as_deref()
            .and_then(|b| b.strip_prefix("secrets."))
        {
            names.push((base.to_string(), true));
        }
        let mut templates = flowbot_flow::api_request::templates(request);
        if let Auth::Bearer(t) = &request.auth {
            templates.push(t);
        }
        for template in templates {
            for variable in template.variables() {
                if let Some(name) = variable.strip_prefix("secrets.") {
                    names.push((name.to_string(), false));
                }
            }
        }
    }
    names
}

fn user_spec(message: &Inbound) -> UserSpec {
    let rich = |r: RichUser| UserSpec::Rich(Box::new(r));
    match message.kind.as_str() {
        "button" | "list" | "template_button" => {
            let id = message.choice.clone().unwrap_or_default();
            match message.kind.as_str() {
                "button" => rich(RichUser {
                    button: Some(id),
                    ..RichUser::default()
                }),
                "list" => rich(RichUser {
                    list: Some(id),
                    ..RichUser::default()
                }),
                _ => rich(RichUser {
                    template_button: Some(id),
                    ..RichUser::default()
                }),
            }
        }
        "image" => rich(RichUser {
            image: Some(MediaSpec {
                caption: message.text.clone(),
                mime_type: message
                    .extra
                    .get("mime_type")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            }),
            ..RichUser::default()
        }),
        "location" => rich(RichUser {
            location: Some(LocationSpec {
                latitude: message
                    .extra
                    .get("latitude")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or_default(),
                longitude: message
                    .extra
                    .get("longitude")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or_default(),
                name: None,
                address: None,
            }),
            ..RichUser::default()
        }),
        _ => UserSpec::Text(message.text.clone().unwrap_or_default()),
    }
}

fn bot_spec(message: &Outbound) -> BotSpec {
    match message {
        Outbound::Text { body } => BotSpec::Exact(body.clone()),
        Outbound::Buttons { body, .. } => BotSpec::Match(BotMatch {
            text: Some(body.clone()),
            buttons: Some(
                message
                    .option_titles()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            ..BotMatch::default()
        }),
        Outbound::List { body, .. } => BotSpec::Match(BotMatch {
            text: Some(body.clone()),
            list: Some(
                message
                    .option_titles()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            ..BotMatch::default()
        }),
    }
}

/// A fake that answers the recorded request as it was answered.
fn http_fake(http: &HttpTrace) -> FakeSpec {
    let when = if http.url.contains(secrets_marker()) {
        let rest = http.url.rsplit(secrets_marker()).next().unwrap_or_default();
        let path = rest.split('?').next().unwrap_or_default();
        FakeMatch {
            method: Some(http.method.clone()),
            url_contains: (!path.is_empty()).then(|| path.to_string()),
            ..FakeMatch::default()
        }
    } else {
        FakeMatch {
            method: Some(http.method.clone()),
            url: Some(http.url.clone()),
            ..FakeMatch::default()
        }
    };
    let mut fake = FakeSpec {
        when,
        ..FakeSpec::default()
    };
    match (http.status, http.error.as_deref()) {
        (Some(status), _) => {
            fake.status = Some(status);
            fake.body = http.response_body.clone().filter(|b| !b.is_empty());
            fake.headers = http
                .response_headers
                .iter()
                .filter(|(k, _)| {
                    k.eq_ignore_ascii_case("content-type")
                        || k.to_ascii_lowercase().starts_with("x-")
                })
                .cloned()
                .collect();
        }
        (None, Some("timeout")) => fake.delay = Some("60s".into()),
        (None, _) => {
            // A connection failure cannot be replayed as such; an error status takes the same branch.
            fake.status = Some(503);
        }
    }
    fake
}

fn secrets_marker() -> &'static str {
    flowbot_engine::secrets::REDACTED
}

/// A fake for the Zoho search a `zoho_search` step made.
fn zoho_fake(zoho: &ZohoTrace) -> FakeSpec {
    let mut fake = FakeSpec {
        when: FakeMatch {
            method: Some("GET".into()),
            url_contains: Some(format!("/crm/v8/{}/search", zoho.module)),
            ..FakeMatch::default()
        },
        ..FakeSpec::default()
    };
    match zoho.outcome.as_str() {
        "found" => {
            fake.status = Some(200);
            fake.json = zoho.body.clone();
        }
        "empty" => fake.status = Some(204),
        "timeout" => fake.delay = Some("60s".into()),
        _ => {
            fake.status = Some(400);
            fake.json = Some(
                serde_json::json!({"code": "INVALID_QUERY", "status": "error", "message": "recorded failure", "details": {}}),
            );
        }
    }
    fake
}
