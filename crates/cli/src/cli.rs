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
    #[value(alias = "text")]
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
    /// Run the WhatsApp webhook service (creates and migrates the SQLite database itself).
    Serve(ServeArgs),
    /// Post a signed Cloud API text notification to a running server (a stand-in for WhatsApp) and
    /// print the bot's replies.
    Send(SendArgs),
    /// Connect, inspect, refresh or disconnect Zoho CRM accounts.
    Zoho {
        #[command(subcommand)]
        command: ZohoCommand,
    },
    /// List conversations, show one as a transcript, or export one as a replay file.
    Conversations {
        #[command(subcommand)]
        command: ConversationsCommand,
    },
    /// Give a conversation that was handed to a person back to the bot.
    Handoff {
        #[command(subcommand)]
        command: HandoffCommand,
    },
}

/// Where the state lives.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArg {
    /// SQLite database: a file path or a sqlite:// URL.
    #[arg(
        long = "database",
        env = "FLOWBOT_DATABASE_URL",
        default_value = "flowbot.db"
    )]
    pub database: String,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env FLOWBOT_LISTEN].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Folder of flow files [default: flows; env FLOWBOT_FLOWS].
    #[arg(long)]
    pub flows: Option<PathBuf>,
    /// SQLite database [default: flowbot.db; env FLOWBOT_DATABASE_URL].
    #[arg(long)]
    pub database: Option<String>,
    /// A configuration file (.toml or .yaml); FLOWBOT_* environment variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Check the configuration and the flows, then exit.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The message text.
    #[arg(long)]
    pub text: String,
    /// The customer's number: digits with country code.
    #[arg(long, default_value = "919820000001")]
    pub from: String,
    /// The customer's WhatsApp profile name.
    #[arg(long)]
    pub name: Option<String>,
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Seconds to wait for the replies.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
}

#[derive(Debug, Subcommand)]
pub enum ZohoCommand {
    /// Exchange a Self Client grant code for tokens and store them (encrypted).
    Connect {
        /// A name for the connection; flows refer to it (`connection: zoho`).
        #[arg(long, default_value = "zoho")]
        name: String,
        /// Data centre of the Zoho account: com (US), eu, in, com.au, jp, ca, sa, uk, com.cn.
        #[arg(long)]
        dc: String,
        #[arg(long, env = "FLOWBOT_ZOHO_CLIENT_ID")]
        client_id: String,
        #[arg(long, env = "FLOWBOT_ZOHO_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// The grant code from the Self Client (valid a few minutes).
        #[arg(long)]
        code: String,
        /// Overrides the data centre's accounts server (tests, proxies).
        #[arg(long)]
        accounts_url: Option<String>,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Connections, data centre, API domain, time to expiry, last refresh (never a token).
    Status {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Refresh the access token now.
    Refresh {
        #[arg(long, default_value = "zoho")]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke the refresh token at Zoho, then delete the connection.
    Disconnect {
        #[arg(long, default_value = "zoho")]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConversationsCommand {
    /// Conversations in progress (waiting for an answer, or with a person); finished ones keep
    /// their transcript for `show` and `export`.
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// One contact's transcript as a person reads it, step traces included.
    Show {
        phone: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// One contact's conversation as a replay file for `flowbot test` (secrets never included).
    Export {
        phone: String,
        /// Only what happened at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// The folder of flow files, to name the flow file in the replay.
        #[arg(long, default_value = "flows")]
        flows: PathBuf,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum HandoffCommand {
    /// The bot answers this contact again.
    Release {
        phone: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
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
    /// Keep the conversation (and its transcript) in this SQLite database across runs; Zoho
    /// connections are read from it too. Never taken from FLOWBOT_DATABASE_URL: a chat should not
    /// write into a production database by accident.
    #[arg(long)]
    pub database: Option<String>,
}
