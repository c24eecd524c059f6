//! `flowbot zoho connect | status | refresh | disconnect`: the Zoho CRM connections a flow's
//! `zoho_search` steps use. Tokens are stored encrypted and never printed.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use flowbot_zoho::{ConnectRequest, DataCentre, Secret};

use super::state::{open_existing_store, open_store, zoho_client};
use crate::cli::ZohoCommand;

pub async fn run(command: ZohoCommand) -> Result<ExitCode> {
    match command {
        ZohoCommand::Connect {
            name,
            dc,
            client_id,
            client_secret,
            code,
            accounts_url,
            db,
        } => {
            let dc: DataCentre = dc.parse().map_err(|e| anyhow!("--dc {dc}: {e}"))?;
            let store = open_store(&db.database).await?;
            let client = zoho_client(&store, &db.database)?;
            let request = ConnectRequest {
                name: name.clone(),
                dc,
                accounts_url,
                client_id,
                client_secret: Secret::new(client_secret),
                grant_code: Secret::new(code),
                redirect_uri: None,
            };
            let connection = client.connect(request).await.map_err(|e| anyhow!("{e}"))?;
            store.close().await;
            println!(
                "connected `{}` (data centre {}, API {}); the access token is refreshed automatically",
                connection.name,
                connection.dc.code(),
                connection.api_domain
            );
            Ok(ExitCode::SUCCESS)
        }
        ZohoCommand::Status { db } => {
            let store = open_existing_store(&db.database).await?;
            let client = zoho_client(&store, &db.database)?;
            let statuses = client.status().await.map_err(|e| anyhow!("{e}"))?;
            store.close().await;
            if statuses.is_empty() {
                println!("no Zoho connection; create one with `flowbot zoho connect --name zoho --dc in --client-id ... --client-secret ... --code ...`");
            }
            for status in statuses {
                println!("{}", status.name);
                println!("  data centre:   {}", status.dc.code());
                println!("  accounts:      {}", status.accounts_url);
                println!("  api domain:    {}", status.api_domain);
                println!(
                    "  access token:  {}",
                    describe_expiry(status.expires_in_secs)
                );
                println!(
                    "  last refresh:  {}",
                    status
                        .last_refresh_at
                        .map_or("never".into(), |t| t.to_rfc3339())
                );
                println!("  state:         {:?}", status.state);
                if let Some(error) = &status.last_error {
                    println!("  last error:    {error}");
                }
                if !status.hint.is_empty() {
                    println!("  hint:          {}", status.hint);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ZohoCommand::Refresh { name, db } => {
            let store = open_existing_store(&db.database).await?;
            let client = zoho_client(&store, &db.database)?;
            let status = client.refresh(&name).await.map_err(|e| anyhow!("{e}"))?;
            store.close().await;
            println!(
                "refreshed `{name}`: {}",
                describe_expiry(status.expires_in_secs)
            );
            Ok(ExitCode::SUCCESS)
        }
        ZohoCommand::Disconnect { name, db } => {
            let store = open_existing_store(&db.database).await?;
            let client = zoho_client(&store, &db.database)?;
            let report = client.disconnect(&name).await.map_err(|e| anyhow!("{e}"))?;
            store.close().await;
            if report.revoked {
                println!(
                    "disconnected `{name}`: the refresh token was revoked at Zoho and deleted here"
                );
            } else {
                println!(
                    "disconnected `{name}`: deleted here{}",
                    report.note.map_or(String::new(), |n| format!(" ({n})"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe_expiry(seconds: i64) -> String {
    if seconds <= 0 {
        "expired (refreshed on the next lookup)".into()
    } else {
        format!("valid for {} min {} s", seconds / 60, seconds % 60)
    }
}
