//! The command line: every command, flag and environment variable, declared with clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// flowbot: WhatsApp conversations written as YAML flows.
#[derive(Debug, Parser)]
#[command(name = "flowbot", version, about, long_about = None)]
pub struct Cli {
    /// Log format: human-readable text or JSON lines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "FLOWBOT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flow files: every problem as file:line:column with a hint. Exit 1 on errors.
    Validate {
        /// Flow files or folders (default: flows/).
        paths: Vec<PathBuf>,
    },
    /// Chat with a flow in the terminal: each line you type is a WhatsApp text message.
    Chat(ChatArgs),
    /// Replay conversation files and compare the bot's replies. Exit 1 on any failure.
    Test {
        /// Replay files or folders (default: tests/conversations/).
        paths: Vec<PathBuf>,
    },
    /// Print a flow as a Mermaid flowchart.
    Graph {
        /// The flow file.
        flow: PathBuf,
    },
    /// Print the JSON Schema of the flow language (for editors' YAML support).
    Schema,
}

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The flow file to chat with (it starts on your first message, whatever its keywords).
    pub flow: PathBuf,
    /// Your WhatsApp number: digits with country code.
    #[arg(long, default_value = "919820000001")]
    pub phone: String,
    /// Your WhatsApp profile name.
    #[arg(long)]
    pub name: Option<String>,
    /// Answer outside calls from the `http:` fakes (and `zoho:`, `secrets:`) of a replay file instead
    /// of calling real services. Lets you try a flow with no accounts at all.
    #[arg(long)]
    pub fakes: Option<PathBuf>,
    /// Show each step, branch, saved variable and outside call.
    #[arg(long, short)]
    pub verbose: bool,
}
