//! `flowbot handoff release PHONE`: the bot answers a contact again after a person took over.

use std::process::ExitCode;

use anyhow::Result;

use super::state::open_existing_store;
use crate::cli::HandoffCommand;

pub async fn run(command: HandoffCommand) -> Result<ExitCode> {
    match command {
        HandoffCommand::Release { phone, db } => {
            let store = open_existing_store(&db.database).await?;
            let released = store.release_handoff("whatsapp", &phone).await?;
            store.close().await;
            if released {
                println!("{phone}: released; the bot answers this contact again");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{phone}: no conversation is with a person");
                Ok(ExitCode::from(1))
            }
        }
    }
}
