//! The server's typed configuration: [`ServerConfig`], read from an optional TOML or YAML file and
//! then from `FLOWBOT_*` environment variables (the environment wins), with defaults for the rest.
//!
//! Secrets (the app secret, the verify token, the Graph access token, the token-store key) are
//! [`SecretString`]s: `Debug` shows them as redacted and nothing in this crate logs them. The
//! environment is passed in as an iterator, never read here directly, so tests configure a server
//! without touching the process environment. Flow secrets (`FLOWBOT_SECRET_<NAME>`) are captured
//! from the same iterator into [`ServerConfig::flow_secrets`].
//!
//! This module does not bind sockets, open the database or read flows; it only says what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flowbot_engine::Secrets;
use secrecy::SecretString;
use serde::Deserialize;

/// The default address `flowbot serve` listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "flowbot.db";
/// The default flows folder.
pub const DEFAULT_FLOWS: &str = "flows";
/// The default largest webhook body accepted (1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// How long transcripts and done inbox rows are kept by default.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// How long shutdown waits for the sender to flush by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a webhook body may take to arrive (Meta sends a whole notification at once).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// How long start-up waits for a status webhook to confirm a send that was in flight at a crash.
pub const DEFAULT_UNCERTAIN_SEND_GRACE: Duration = Duration::from_secs(30);

/// Everything `flowbot serve` needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen (`--listen`, `FLOWBOT_LISTEN`). The CLI binds it; `run` takes the listener.
    pub listen: SocketAddr,
    /// A SQLite file path or `sqlite://` URL (`FLOWBOT_DATABASE_URL`).
    pub database_url: String,
    /// The folder of `*.yaml` / `*.yml` flow files (`FLOWBOT_FLOWS`).
    pub flows: PathBuf,
    pub whatsapp: WhatsAppConfig,
    /// The key that encrypts Zoho tokens at rest (`FLOWBOT_SECRET_KEY`); without it the key file
    /// beside the database is used (created on first use).
    pub secret_key: Option<SecretString>,
    /// `text` or `json` (`FLOWBOT_LOG_FORMAT`); the CLI sets up the subscriber with it.
    pub log_format: LogFormat,
    /// The largest webhook body accepted, in bytes; larger ones get 413 (`FLOWBOT_BODY_LIMIT`).
    pub body_limit: usize,
    /// How long a webhook body may take to arrive once its headers are in; slower ones get 408
    /// and their connection is closed (`FLOWBOT_BODY_READ_TIMEOUT_SECONDS`).
    pub body_read_timeout: Duration,
    /// Worker queues (contacts are hashed onto them); 0 means the default, 64
    /// (`FLOWBOT_WORKERS`). A worker runs one turn at a time and mostly waits on outside calls, so
    /// this bounds how many conversations wait on a slow API at once, not CPU use.
    pub workers: usize,
    /// Capacity of each worker queue and of the sender's queue.
    pub queue_capacity: usize,
    /// Conversations kept in memory, all workers together.
    pub conversation_cache: usize,
    /// Transcripts and done inbox rows older than this are pruned hourly
    /// (`FLOWBOT_RETENTION_DAYS`).
    pub retention_days: u32,
    /// SQLite `synchronous=FULL` (safe against power loss) instead of `NORMAL`
    /// (`FLOWBOT_SYNCHRONOUS_FULL`).
    pub synchronous_full: bool,
    /// How long shutdown waits for the sender to flush (`FLOWBOT_SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// At start-up, how long a reply whose send was in flight when the last run stopped waits for
    /// a status webhook to confirm that Graph took it, before it is sent again (its recipient's
    /// later replies wait behind it) (`FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS`).
    pub uncertain_send_grace: Duration,
    /// Allow flows' outside calls to link-local and cloud metadata addresses
    /// (`FLOWBOT_ALLOW_LINK_LOCAL`). Off by default.
    pub allow_link_local: bool,
    /// Validate the configuration and the flows, then return without serving (`serve --check`).
    pub check_only: bool,
    /// Values for `{{secrets.NAME}}` in flows, from `FLOWBOT_SECRET_<NAME>` variables.
    pub flow_secrets: Secrets,
}

/// The WhatsApp Cloud API side.
#[derive(Clone, Debug)]
pub struct WhatsAppConfig {
    /// Checks `X-Hub-Signature-256` (`FLOWBOT_WHATSAPP_APP_SECRET`). Without it the server listens
    /// on loopback only and says loudly that signatures are not checked.
    pub app_secret: Option<SecretString>,
    /// Answers the `GET /webhooks/whatsapp` handshake (`FLOWBOT_WHATSAPP_VERIFY_TOKEN`).
    pub verify_token: Option<SecretString>,
    /// Sends replies (`FLOWBOT_WHATSAPP_ACCESS_TOKEN`). Without it replies are recorded, logged
    /// ("would send to …") and marked sent with a local id, so the server can be tried locally.
    pub access_token: Option<SecretString>,
    /// `FLOWBOT_WHATSAPP_API_BASE`, default `https://graph.facebook.com`.
    pub api_base: String,
    /// `FLOWBOT_WHATSAPP_API_VERSION`, default `v21.0`.
    pub api_version: String,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A configuration that cannot be used; the message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration file {path}: unknown extension (use .toml, .yaml or .yml)")]
    UnknownFormat { path: PathBuf },
    #[error("{name}: {message}")]
    Invalid { name: String, message: String },
}

/// Worker queues when `FLOWBOT_WORKERS` is 0 or unset.
pub const DEFAULT_WORKERS: usize = 64;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            flows: PathBuf::from(DEFAULT_FLOWS),
            whatsapp: WhatsAppConfig::default(),
            secret_key: None,
            log_format: LogFormat::Text,
            body_limit: DEFAULT_BODY_LIMIT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            workers: 0,
            queue_capacity: 1024,
            conversation_cache: 16_384,
            retention_days: DEFAULT_RETENTION_DAYS,
            synchronous_full: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            uncertain_send_grace: DEFAULT_UNCERTAIN_SEND_GRACE,
            allow_link_local: false,
            check_only: false,
            flow_secrets: Secrets::default(),
        }
    }
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        WhatsAppConfig {
            app_secret: None,
            verify_token: None,
            access_token: None,
            api_base: flowbot_whatsapp::client::DEFAULT_API_BASE.to_owned(),
            api_version: flowbot_whatsapp::client::DEFAULT_API_VERSION.to_owned(),
        }
    }
}

impl ServerConfig {
    /// Reads the optional file, then the `FLOWBOT_*` variables of `env` over it.
    ///
    /// The CLI calls `ServerConfig::load(config_path, std::env::vars())` and then applies its
    /// flags (`--listen`, `--log-format`, `--check`) to the public fields.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut config = ServerConfig::default();
        if let Some(path) = file {
            config.apply_file(path, read_file(path)?)?;
        }
        for (name, value) in &env {
            config.apply_env(name, value)?;
        }
        config.flow_secrets = Secrets::from_env_vars(env);
        config.check()?;
        Ok(config)
    }

    /// Only the environment (no file).
    pub fn from_env(
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig, ConfigError> {
        ServerConfig::load(None, env)
    }

    /// The number of worker queues to run.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        DEFAULT_WORKERS
    }

    /// Checks values that parse but make no sense together.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.body_limit == 0 {
            return Err(invalid("FLOWBOT_BODY_LIMIT", "must be more than 0 bytes"));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if self.database_url.trim().is_empty() {
            return Err(invalid("FLOWBOT_DATABASE_URL", "must not be empty"));
        }
        let base = self.whatsapp.api_base.as_str();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid(
                "FLOWBOT_WHATSAPP_API_BASE",
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }

    fn apply_file(&mut self, path: &Path, file: FileConfig) -> Result<(), ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        if let Some(listen) = file.listen {
            self.listen = listen
                .parse()
                .map_err(|error| parse_error(format!("listen {listen:?}: {error}")))?;
        }
        if let Some(value) = file.database_url {
            self.database_url = value;
        }
        if let Some(value) = file.flows {
            self.flows = value;
        }
        if let Some(value) = file.secret_key {
            self.secret_key = Some(SecretString::from(value));
        }
        if let Some(value) = file.log_format {
            self.log_format = parse_log_format(&value).map_err(parse_error)?;
        }
        if let Some(value) = file.body_limit {
            self.body_limit = value;
        }
        if let Some(value) = file.workers {
            self.workers = value;
        }
        if let Some(value) = file.queue_capacity {
            self.queue_capacity = value;
        }
        if let Some(value) = file.conversation_cache {
            self.conversation_cache = value;
        }
        if let Some(value) = file.retention_days {
            self.retention_days = value;
        }
        if let Some(value) = file.synchronous_full {
            self.synchronous_full = value;
        }
        if let Some(value) = file.shutdown_grace_seconds {
            self.shutdown_grace = Duration::from_secs_f64(value.max(0.0));
        }
        if let Some(value) = file.body_read_timeout_seconds {
            self.body_read_timeout = Duration::from_secs_f64(value.max(0.001));
        }
        if let Some(value) = file.uncertain_send_grace_seconds {
            self.uncertain_send_grace = Duration::try_from_secs_f64(value.max(0.0))
                .map_err(|error| parse_error(format!("uncertain_send_grace_seconds: {error}")))?;
        }
        if let Some(value) = file.allow_link_local {
            self.allow_link_local = value;
        }
        if let Some(whatsapp) = file.whatsapp {
            if let Some(value) = whatsapp.app_secret {
                self.whatsapp.app_secret = non_empty_secret(value);
            }
            if let Some(value) = whatsapp.verify_token {
                self.whatsapp.verify_token = non_empty_secret(value);
            }
            if let Some(value) = whatsapp.access_token {
                self.whatsapp.access_token = non_empty_secret(value);
            }
            if let Some(value) = whatsapp.api_base {
                self.whatsapp.api_base = value;
            }
            if let Some(value) = whatsapp.api_version {
                self.whatsapp.api_version = value;
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "FLOWBOT_LISTEN" => {
                self.listen = value.trim().parse().map_err(|error| {
                    invalid(name, format!("{value:?} is not host:port ({error})"))
                })?;
            }
            "FLOWBOT_DATABASE_URL" => self.database_url = value.to_owned(),
            "FLOWBOT_FLOWS" => self.flows = PathBuf::from(value),
            "FLOWBOT_SECRET_KEY" => self.secret_key = non_empty_secret(value.to_owned()),
            "FLOWBOT_LOG_FORMAT" => {
                self.log_format =
                    parse_log_format(value).map_err(|message| invalid(name, message))?;
            }
            "FLOWBOT_BODY_LIMIT" => self.body_limit = parse_number(name, value)?,
            "FLOWBOT_WORKERS" => self.workers = parse_number(name, value)?,
            "FLOWBOT_RETENTION_DAYS" => self.retention_days = parse_number(name, value)?,
            "FLOWBOT_SYNCHRONOUS_FULL" => self.synchronous_full = parse_bool(name, value)?,
            "FLOWBOT_ALLOW_LINK_LOCAL" => self.allow_link_local = parse_bool(name, value)?,
            "FLOWBOT_BODY_READ_TIMEOUT_SECONDS" => {
                let seconds: f64 = parse_number(name, value)?;
                self.body_read_timeout = Duration::from_secs_f64(seconds.max(0.001));
            }
            "FLOWBOT_SHUTDOWN_GRACE_SECONDS" => {
                let seconds: f64 = parse_number(name, value)?;
                self.shutdown_grace = Duration::from_secs_f64(seconds.max(0.0));
            }
            "FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS" => {
                let seconds: f64 = parse_number(name, value)?;
                self.uncertain_send_grace = Duration::try_from_secs_f64(seconds.max(0.0))
                    .map_err(|error| invalid(name, format!("{value:?}: {error}")))?;
            }
            "FLOWBOT_WHATSAPP_APP_SECRET" => {
                self.whatsapp.app_secret = non_empty_secret(value.to_owned());
            }
            "FLOWBOT_WHATSAPP_VERIFY_TOKEN" => {
                self.whatsapp.verify_token = non_empty_secret(value.to_owned());
            }
            "FLOWBOT_WHATSAPP_ACCESS_TOKEN" => {
                self.whatsapp.access_token = non_empty_secret(value.to_owned());
            }
            "FLOWBOT_WHATSAPP_API_BASE" => self.whatsapp.api_base = value.trim().to_owned(),
            "FLOWBOT_WHATSAPP_API_VERSION" => self.whatsapp.api_version = value.trim().to_owned(),
            _ => {}
        }
        Ok(())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        parse_log_format(value)
    }
}

/// The configuration file's shape: every key optional, unknown keys refused (a typo is an error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    flows: Option<PathBuf>,
    secret_key: Option<String>,
    log_format: Option<String>,
    body_limit: Option<usize>,
    workers: Option<usize>,
    queue_capacity: Option<usize>,
    conversation_cache: Option<usize>,
    retention_days: Option<u32>,
    synchronous_full: Option<bool>,
    shutdown_grace_seconds: Option<f64>,
    body_read_timeout_seconds: Option<f64>,
    uncertain_send_grace_seconds: Option<f64>,
    allow_link_local: Option<bool>,
    whatsapp: Option<FileWhatsApp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWhatsApp {
    app_secret: Option<String>,
    verify_token: Option<String>,
    access_token: Option<String>,
    api_base: Option<String>,
    api_version: Option<String>,
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    match extension.as_str() {
        "toml" => toml::from_str(&text).map_err(|error| parse_error(error.to_string())),
        "yaml" | "yml" => {
            if text.trim().is_empty() {
                return Ok(FileConfig::default());
            }
            serde_yaml::from_str(&text).map_err(|error| parse_error(error.to_string()))
        }
        _ => Err(ConfigError::UnknownFormat {
            path: path.to_owned(),
        }),
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn non_empty_secret(value: String) -> Option<SecretString> {
    (!value.trim().is_empty()).then(|| SecretString::from(value))
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" | "pretty" | "" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("log format {other:?} is not text or json")),
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|error| invalid(name, format!("{value:?} is not a number ({error})")))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(invalid(name, format!("{value:?} is not true or false"))),
    }
}

fn invalid(name: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_file_or_environment() {
        let config = ServerConfig::from_env(Vec::new()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.database_url, "flowbot.db");
        assert_eq!(config.flows, PathBuf::from("flows"));
        assert_eq!(config.body_limit, 1024 * 1024);
        assert_eq!(config.retention_days, 30);
        assert_eq!(config.whatsapp.api_base, "https://graph.facebook.com");
        assert!(config.whatsapp.app_secret.is_none());
        assert!(config.worker_count() >= 1);
        assert_eq!(config.uncertain_send_grace, Duration::from_secs(30));
    }

    #[test]
    fn the_uncertain_send_grace_is_read_from_file_and_environment() {
        let config =
            ServerConfig::from_env(env(&[("FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS", "0.5")]))
                .unwrap();
        assert_eq!(config.uncertain_send_grace, Duration::from_millis(500));
        let error = ServerConfig::from_env(env(&[("FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS", "inf")]))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("FLOWBOT_UNCERTAIN_SEND_GRACE_SECONDS"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowbot.toml");
        std::fs::write(&path, "uncertain_send_grace_seconds = 5\n").unwrap();
        let config = ServerConfig::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(config.uncertain_send_grace, Duration::from_secs(5));
    }

    #[test]
    fn environment_names_are_read_and_secrets_never_debug_printed() {
        let config = ServerConfig::from_env(env(&[
            ("FLOWBOT_WHATSAPP_APP_SECRET", "app-secret-value"),
            ("FLOWBOT_WHATSAPP_VERIFY_TOKEN", "verify-token-value"),
            ("FLOWBOT_WHATSAPP_ACCESS_TOKEN", "access-token-value"),
            ("FLOWBOT_WHATSAPP_API_BASE", "http://127.0.0.1:9"),
            ("FLOWBOT_WHATSAPP_API_VERSION", "v22.0"),
            ("FLOWBOT_DATABASE_URL", "/tmp/x.db"),
            ("FLOWBOT_FLOWS", "/tmp/flows"),
            ("FLOWBOT_LISTEN", "0.0.0.0:9000"),
            ("FLOWBOT_SECRET_KEY", "secret-key-value"),
            ("FLOWBOT_LOG_FORMAT", "json"),
            ("FLOWBOT_SECRET_SHOP_TOKEN", "shop-token-value"),
        ]))
        .unwrap();
        assert_eq!(
            config.whatsapp.app_secret.as_ref().unwrap().expose_secret(),
            "app-secret-value"
        );
        assert_eq!(config.whatsapp.api_version, "v22.0");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.flow_secrets.names().collect::<Vec<_>>(),
            vec!["shop_token"]
        );
        let debug = format!("{config:?}");
        for secret in [
            "app-secret-value",
            "verify-token-value",
            "access-token-value",
            "secret-key-value",
            "shop-token-value",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }

    #[test]
    fn file_then_environment_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("flowbot.toml");
        std::fs::write(
            &toml_path,
            "listen = \"127.0.0.1:9100\"\nretention_days = 7\n[whatsapp]\nverify_token = \"from-file\"\napi_version = \"v20.0\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&toml_path),
            env(&[("FLOWBOT_WHATSAPP_API_VERSION", "v23.0")]),
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.retention_days, 7);
        assert_eq!(
            config
                .whatsapp
                .verify_token
                .as_ref()
                .unwrap()
                .expose_secret(),
            "from-file"
        );
        assert_eq!(config.whatsapp.api_version, "v23.0");

        let yaml_path = dir.path().join("flowbot.yaml");
        std::fs::write(&yaml_path, "flows: ./my-flows\nbody_limit: 2048\n").unwrap();
        let config = ServerConfig::load(Some(&yaml_path), Vec::new()).unwrap();
        assert_eq!(config.flows, PathBuf::from("./my-flows"));
        assert_eq!(config.body_limit, 2048);
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowbot.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:1\"\n").unwrap();
        let error = ServerConfig::load(Some(&path), Vec::new()).unwrap_err();
        assert!(error.to_string().contains("listne"), "{error}");

        let error = ServerConfig::from_env(env(&[("FLOWBOT_LISTEN", "nowhere")])).unwrap_err();
        assert!(error.to_string().contains("FLOWBOT_LISTEN"), "{error}");
        let error =
            ServerConfig::from_env(env(&[("FLOWBOT_WHATSAPP_API_BASE", "graph.facebook.com")]))
                .unwrap_err();
        assert!(
            error.to_string().contains("FLOWBOT_WHATSAPP_API_BASE"),
            "{error}"
        );
    }
}
