//! `flowbot chat FLOW`: a terminal conversation with one flow. Each line read from stdin is an
//! inbound text message; the bot's messages print as a customer sees them, options numbered (type
//! the number or the title to choose). Works with piped stdin for scripts. `--fakes FILE` answers
//! outside calls from a replay file's fakes; otherwise calls are real.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use flowbot_connectors::{EgressPolicy, HttpExecutor, LiveEffects};
use flowbot_engine::{
    drive, Contact, Conversation, Effect, EffectHandler, EffectResult, Engine, EngineConfig,
    Inbound, Secrets,
};
use flowbot_flow::FlowSet;
use flowbot_replay::{Fakes, ReplayEffects, ReplayFile};
use flowbot_store::{NewInbound, SqliteTokenStore, Store, TurnCommit};
use flowbot_zoho::transport::ReqwestTransport;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::ChatArgs;
use crate::flow_files::read_flow_source;

enum ChatEffects {
    Live(LiveEffects<ReqwestTransport, SqliteTokenStore>),
    Fakes(ReplayEffects),
}

impl EffectHandler for ChatEffects {
    async fn handle(&self, effect: Effect) -> EffectResult {
        match self {
            ChatEffects::Live(live) => live.handle(effect).await,
            ChatEffects::Fakes(fakes) => fakes.handle(effect).await,
        }
    }
}

pub async fn run(args: ChatArgs) -> Result<ExitCode> {
    let source = read_flow_source(&args.flow)?;
    let loaded = flowbot_flow::load_flow(&source.file, &source.text);
    let Some(mut flow) = loaded.flow else {
        for diagnostic in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            eprintln!("{diagnostic}");
        }
        anyhow::bail!(
            "{} does not validate (run `flowbot validate {}`)",
            args.flow.display(),
            args.flow.display()
        );
    };
    // In a chat, the flow starts on any first message.
    flow.is_default = true;
    let flows = FlowSet::from_flows(vec![flow]);
    // With fakes, the clock starts at the replay file's `now` (so its tokens and times hold).
    let mut clock_start = chrono::Utc::now();
    let (effects, secrets) = match &args.fakes {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let replay: ReplayFile = serde_yaml::from_str(&text)
                .with_context(|| format!("{} is not a replay file", path.display()))?;
            let base = path.parent().unwrap_or(std::path::Path::new("."));
            clock_start = replay.now;
            let fakes = Fakes::new(&replay.http, base, replay.now).map_err(anyhow::Error::msg)?;
            let effects = ReplayEffects::new(fakes, replay.zoho.as_ref(), replay.now);
            (
                ChatEffects::Fakes(effects),
                Secrets::from_map(replay.secrets.clone()),
            )
        }
        None => {
            let http = HttpExecutor::new(EgressPolicy::default()).map_err(anyhow::Error::msg)?;
            // Zoho connections live in the database: --database, or flowbot.db when it exists.
            let zoho_database = args.database.clone().or_else(|| {
                std::path::Path::new("flowbot.db")
                    .exists()
                    .then(|| "flowbot.db".to_string())
            });
            let zoho = match &zoho_database {
                Some(database) => {
                    let store = super::state::open_store(database).await?;
                    Some(std::sync::Arc::new(super::state::zoho_client(
                        &store, database,
                    )?))
                }
                None => None,
            };
            (
                ChatEffects::Live(LiveEffects { http, zoho }),
                Secrets::from_env_vars(std::env::vars()),
            )
        }
    };
    let engine = Engine::new(flows, EngineConfig::default(), secrets);
    let contact = Contact {
        phone: args.phone.clone(),
        name: args.name.clone(),
    };
    let store: Option<Store> = match &args.database {
        Some(database) => Some(super::state::open_store(database).await?),
        None => None,
    };
    let mut conversation: Option<Conversation> = match &store {
        Some(store) => store.load_conversation("whatsapp", &contact.phone).await?,
        None => None,
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        eprintln!(
            "Chatting with {} as {}. Type a message; /quit or Ctrl-D ends.",
            args.flow.display(),
            contact.phone
        );
    }
    let mut counter = 0u64;
    let started = std::time::Instant::now();
    let started_millis = chrono::Utc::now().timestamp_millis();
    loop {
        if interactive {
            print!("you> ");
            std::io::stdout().flush().ok();
        }
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim_end_matches('\r').to_string();
        if line.trim() == "/quit" {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        if !interactive {
            println!("you> {line}");
        }
        counter += 1;
        let elapsed = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        let inbound = Inbound::text(
            format!(
                "wamid.chat.{}.{counter}",
                clock_start.timestamp_millis() + started_millis
            ),
            line,
            clock_start + elapsed,
        );
        let result = drive(
            engine.start_turn(conversation.take(), &contact, &inbound),
            &effects,
        )
        .await;
        if args.verbose {
            for event in &result.trace {
                println!("  · {}", event.describe());
                if let flowbot_engine::TraceEvent::Http(call) = event {
                    for (name, value) in &call.request_headers {
                        println!("      > {name}: {value}");
                    }
                    if let Some(body) = &call.request_body {
                        println!("      > {}", shorten(body));
                    }
                    if let Some(body) = &call.response_body {
                        println!("      < {}", shorten(body));
                    }
                }
            }
        }
        // With --fakes, a request no fake answers is a mistake in the fakes file: say so.
        if let ChatEffects::Fakes(fakes) = &effects {
            for failure in fakes.fakes.take_failures() {
                eprintln!("fakes: {failure}");
            }
        }
        for message in &result.outbound {
            let text = message.to_display();
            let mut first = true;
            for line in text.lines() {
                if first {
                    println!("bot> {line}");
                    first = false;
                } else {
                    println!("     {line}");
                }
            }
        }
        if result.conversation.is_none() && args.verbose {
            println!("  · (the conversation is over; your next message starts it again)");
        }
        if let Some(store) = &store {
            let inserted = store
                .insert_inbound(vec![NewInbound {
                    channel: "whatsapp".into(),
                    business_id: "chat".into(),
                    contact: contact.clone(),
                    message: inbound.clone(),
                }])
                .await?;
            if let Some(flowbot_store::InsertOutcome::Inserted(inbox_id)) =
                inserted.first().copied()
            {
                let rows = store
                    .commit_turn(TurnCommit {
                        inbox_id,
                        channel: "whatsapp".into(),
                        business_id: "chat".into(),
                        contact: contact.clone(),
                        conversation: result.conversation.clone(),
                        outbound: result.outbound.clone(),
                        trace: result.trace.clone(),
                        now: inbound.timestamp,
                    })
                    .await?;
                // The replies were shown here; recorded as delivered, so that a server started on
                // this database never sends text typed in a terminal to a real customer.
                for row in rows {
                    store.mark_sent(row.id, &format!("chat.{}", row.id)).await?;
                }
            }
        }
        conversation = result.conversation;
    }
    if let Some(store) = store {
        store.close().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of at most 300 characters, for `-v`.
fn shorten(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
