//! The server under test: a temporary folder with the flows and the SQLite file, a Zoho
//! connection seeded into the store (as `flowbot zoho connect` leaves it) pointing at the fake
//! Zoho, and the server itself, either in this process (`Server::build` + `run_until_stopped`) or
//! as a child `flowbot serve` process, so that its memory can be read apart from the load
//! generator's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use flowbot_server::{Server, ServerConfig, ServerError};
use flowbot_store::{EncryptionKey, Store, StoreOptions};
use flowbot_testkit::webhook::APP_SECRET;
use flowbot_zoho::store::{Connection, TokenStore};
use flowbot_zoho::{DataCentre, Secret};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fakes::{GRAPH_TOKEN, ZOHO_TOKEN};
use crate::http;

/// The token store's passphrase in benchmark runs.
const SECRET_KEY: &str = "a benchmark passphrase for the token store";

/// How to set the server up.
pub struct TargetOptions<'a> {
    /// Flow files: (file name, YAML text).
    pub flows: Vec<(String, String)>,
    pub graph_url: &'a str,
    /// The fake Zoho's URL, or `None` for no Zoho connection.
    pub zoho_url: Option<&'a str>,
    /// `FLOWBOT_WORKERS` (0: the server's default).
    pub workers: usize,
    /// Worker and sender queue capacity (the server's default is 1,024).
    pub queue_capacity: Option<usize>,
    /// Run this `flowbot` binary as a child process instead of the server in this process.
    pub server_bin: Option<&'a Path>,
}

/// A running server and the folder it works in.
pub struct Target {
    pub addr: SocketAddr,
    pub dir: TempDir,
    /// From spawning (or `Server::build`) to the first 200 from /readyz.
    pub startup: Duration,
    running: Running,
}

enum Running {
    InProcess {
        shutdown: oneshot::Sender<()>,
        task: JoinHandle<Result<(), ServerError>>,
    },
    Child {
        child: tokio::process::Child,
        log: PathBuf,
    },
}

/// Memory figures of the server process, in MiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

impl Target {
    /// Prepares a folder and a database, then starts the server and waits until it is ready.
    pub async fn start(options: TargetOptions<'_>) -> Result<Target> {
        let dir = tempfile::tempdir().context("a temporary folder")?;
        Target::start_in(dir, options).await
    }

    /// Like [`Target::start`] in an existing folder (its database may already hold data).
    pub async fn start_in(dir: TempDir, options: TargetOptions<'_>) -> Result<Target> {
        let flows = dir.path().join("flows");
        std::fs::create_dir_all(&flows)?;
        for (name, text) in &options.flows {
            std::fs::write(flows.join(name), text)?;
        }
        let database = dir.path().join("flowbot.db").display().to_string();
        if let Some(zoho_url) = options.zoho_url {
            seed_zoho_connection(&database, zoho_url).await?;
        }
        let mut env = vec![
            ("FLOWBOT_DATABASE_URL".to_owned(), database),
            ("FLOWBOT_FLOWS".to_owned(), flows.display().to_string()),
            (
                "FLOWBOT_WHATSAPP_API_BASE".to_owned(),
                options.graph_url.to_owned(),
            ),
            (
                "FLOWBOT_WHATSAPP_ACCESS_TOKEN".to_owned(),
                GRAPH_TOKEN.to_owned(),
            ),
            (
                "FLOWBOT_WHATSAPP_APP_SECRET".to_owned(),
                APP_SECRET.to_owned(),
            ),
            ("FLOWBOT_SECRET_KEY".to_owned(), SECRET_KEY.to_owned()),
        ];
        if options.workers > 0 {
            env.push(("FLOWBOT_WORKERS".to_owned(), options.workers.to_string()));
        }
        match options.server_bin {
            None => start_in_process(dir, env, options.queue_capacity).await,
            Some(bin) => start_child(dir, env, options.queue_capacity, bin).await,
        }
    }

    /// True when the server runs in this process (its memory then includes the load generator).
    pub fn in_process(&self) -> bool {
        matches!(self.running, Running::InProcess { .. })
    }

    /// The server's resident and peak resident memory (`/proc/<pid>/status`, VmRSS and VmHWM);
    /// in-process, those of this whole process.
    pub fn memory(&self) -> Memory {
        let pid = match &self.running {
            Running::InProcess { .. } => None,
            Running::Child { child, .. } => child.id(),
        };
        read_memory(pid).unwrap_or_default()
    }

    /// Size on disk of the database and its WAL, in bytes.
    pub fn database_bytes(&self) -> u64 {
        database_bytes(&self.dir.path().join("flowbot.db"))
    }

    /// Stops the server gracefully (SIGTERM for a child) and gives back its folder.
    pub async fn stop(self) -> Result<TempDir> {
        match self.running {
            Running::InProcess { shutdown, task } => {
                let _ = shutdown.send(());
                task.await.context("the server task")??;
            }
            Running::Child { mut child, log } => {
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on the id of a child we spawned and have not reaped.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGTERM);
                    }
                }
                match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
                    Ok(status) => {
                        let status = status?;
                        if !status.success() {
                            bail!(
                                "flowbot serve exited with {status}; its log: {}",
                                log.display()
                            );
                        }
                    }
                    Err(_) => {
                        child.kill().await?;
                        bail!("flowbot serve did not stop within 20 s after SIGTERM");
                    }
                }
            }
        }
        Ok(self.dir)
    }
}

async fn start_in_process(
    dir: TempDir,
    env: Vec<(String, String)>,
    queue_capacity: Option<usize>,
) -> Result<Target> {
    let mut config = ServerConfig::from_env(env).context("the server configuration")?;
    if let Some(capacity) = queue_capacity {
        config.queue_capacity = capacity;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    let server = Server::build(config, listener)
        .await
        .context("the server starts")?;
    let addr = server.local_addr();
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until_stopped(async move {
        let _ = stop.await;
    }));
    wait_ready(addr, Duration::from_secs(30)).await?;
    Ok(Target {
        addr,
        dir,
        startup: started.elapsed(),
        running: Running::InProcess { shutdown, task },
    })
}

async fn start_child(
    dir: TempDir,
    env: Vec<(String, String)>,
    queue_capacity: Option<usize>,
    bin: &Path,
) -> Result<Target> {
    // A free port: bind, read it, let it go (the child binds it a moment later).
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let config = dir.path().join("flowbot.toml");
    let mut config_text = String::new();
    if let Some(capacity) = queue_capacity {
        config_text.push_str(&format!("queue_capacity = {capacity}\n"));
    }
    std::fs::write(&config, config_text)?;
    let log = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log)?;
    let started = Instant::now();
    let child = tokio::process::Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(addr.to_string())
        .envs(env)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} serve", bin.display()))?;
    if let Err(error) = wait_ready(addr, Duration::from_secs(30)).await {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("{error:#}; flowbot serve said:\n{text}");
    }
    Ok(Target {
        addr,
        dir,
        startup: started.elapsed(),
        running: Running::Child { child, log },
    })
}

/// Polls /readyz until it answers 200.
pub async fn wait_ready(addr: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(200) = http::get_status(addr, "/readyz").await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{addr}/readyz did not answer 200 within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Stores a Zoho connection the way `flowbot zoho connect` leaves it, pointing at `zoho_url`,
/// with an access token valid for a day (so no refresh happens during a run).
pub async fn seed_zoho_connection(database: &str, zoho_url: &str) -> Result<()> {
    let store = Store::open(database, StoreOptions::default()).await?;
    let key = EncryptionKey::load(Some(SECRET_KEY), database)?;
    let tokens = store.token_store(key);
    let now = Utc::now();
    tokens
        .save(&Connection {
            name: "zoho".into(),
            dc: DataCentre::In,
            accounts_url: zoho_url.to_owned(),
            api_domain: zoho_url.to_owned(),
            client_id: "1000.BENCHCLIENTID".into(),
            client_secret: Secret::new("bench-client-secret"),
            refresh_token: Secret::new("1000.benchrefreshtoken"),
            access_token: Secret::new(ZOHO_TOKEN),
            expires_at: now + chrono::Duration::hours(24),
            last_refresh_at: Some(now),
            refresh_blocked_until: None,
            last_error: None,
        })
        .await
        .map_err(|error| anyhow::anyhow!("storing the Zoho connection: {error}"))?;
    store.close().await;
    Ok(())
}

/// VmRSS and VmHWM of a process (`None`: this one).
fn read_memory(pid: Option<u32>) -> Option<Memory> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        rss_mib: field("VmRSS:")?,
        peak_rss_mib: field("VmHWM:")?,
    })
}

/// Bytes of a SQLite file plus its `-wal` and `-shm` files.
pub fn database_bytes(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|meta| meta.len())
        .sum()
}
