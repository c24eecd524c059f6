//! One module per command; [`run`] dispatches.

mod chat;
mod conversations;
mod graph;
mod handoff;
mod send;
mod serve;
mod state;
mod test;
mod validate;
mod zoho;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => validate::run(&paths),
        Command::Chat(args) => runtime()?.block_on(chat::run(args)),
        Command::Test { paths } => runtime()?.block_on(test::run(&paths)),
        Command::Graph { flow } => graph::run(&flow),
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::Send(args) => runtime()?.block_on(send::run(args)),
        Command::Zoho { command } => runtime()?.block_on(zoho::run(command)),
        Command::Conversations { command } => runtime()?.block_on(conversations::run(command)),
        Command::Handoff { command } => runtime()?.block_on(handoff::run(command)),
        Command::Schema => {
            println!("{}", flowbot_flow::schema::flow_schema_json());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
