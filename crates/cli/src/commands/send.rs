//! `flowbot send`: posts a signed Cloud API text notification to a running server, as WhatsApp
//! would, and prints the replies the bot gave.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use flowbot_server::{send_local, LocalMessage, ReplyState};
use secrecy::SecretString;

use crate::cli::SendArgs;

pub async fn run(args: SendArgs) -> Result<ExitCode> {
    let mut message = LocalMessage::new(args.url.clone(), args.from.clone(), args.text.clone());
    message.name = args.name.clone();
    message.app_secret = std::env::var("FLOWBOT_WHATSAPP_APP_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(SecretString::from);
    message.timeout = Duration::from_secs(args.wait);
    let report = send_local(&message).await?;
    for reply in &report.replies {
        let text = reply.to_display();
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            println!("bot> {first}");
        }
        for line in lines {
            println!("     {line}");
        }
    }
    if report.state != ReplyState::Done {
        eprintln!(
            "(the turn for {} had not finished after {} s; more replies may follow)",
            report.wamid, args.wait
        );
        return Ok(ExitCode::from(1));
    }
    if report.replies.is_empty() {
        eprintln!(
            "(no reply: no flow answered this message, or the conversation is with a person)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
