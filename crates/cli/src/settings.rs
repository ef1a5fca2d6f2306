//! Layered configuration for `viewlog serve` (and the commands that open a store): built-in
//! defaults, then a TOML file, then `VIEWLOG_*` environment variables, then flags.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use viewlog_core::vault::MasterKey;
use viewlog_core::CoreConfig;
use viewlog_server::ServerConfig;
use viewlog_store::RatePolicy;

/// The default database.
pub const DEFAULT_DB: &str = "./viewlog.db";

/// Where the store is and how to unlock its secrets; shared by every command that opens a store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The database: a SQLite file path (or `sqlite:PATH`), or `postgres://USER@HOST:PORT/DB`
    /// for a PostgreSQL database that several servers share (with TLS, the server's certificate
    /// verified: `?sslmode=verify-full`, and `&sslrootcert=CA.pem` for a private authority).
    /// [default: ./viewlog.db]
    #[arg(long, env = "VIEWLOG_DB", global = true)]
    pub db: Option<String>,
    /// The file holding the master key that seals secrets at rest; created (mode 0600) if
    /// missing. [default: the database path + `.key`]
    #[arg(long, env = "VIEWLOG_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// A TOML configuration file (see README, "Configuration").
    #[arg(long, env = "VIEWLOG_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// The settings of `viewlog serve` that flags and the environment can override.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "VIEWLOG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The base URL clients use, when it differs from the Host header they send.
    #[arg(long, env = "VIEWLOG_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Believe X-Forwarded-For/-Proto/-Host (only behind a proxy that sets them).
    #[arg(long, env = "VIEWLOG_TRUST_FORWARDED")]
    pub trust_forwarded: Option<bool>,
    /// Allowed distance of x-mc-date from the server clock, in seconds. [default: 900]
    #[arg(long, env = "VIEWLOG_CLOCK_SKEW_SECS")]
    pub clock_skew_secs: Option<u64>,
    /// Requests a user (or client address) may burst. [default: 1000]
    #[arg(long, env = "VIEWLOG_RATE_CAPACITY")]
    pub rate_capacity: Option<u64>,
    /// Requests added back per second. [default: 20]
    #[arg(long, env = "VIEWLOG_RATE_REFILL_PER_SEC")]
    pub rate_refill_per_sec: Option<f64>,
    /// Deadline of one store query, in milliseconds. [default: 10000]
    #[arg(long, env = "VIEWLOG_QUERY_DEADLINE_MS")]
    pub query_deadline_ms: Option<u64>,
    /// Store queries running at once. [default: 8]
    #[arg(long, env = "VIEWLOG_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,
    /// SQLite reader connections. [default: 4]
    #[arg(long, env = "VIEWLOG_SQLITE_READERS")]
    pub sqlite_readers: Option<usize>,
    /// Log format: `text` or `json`. [default: text]
    #[arg(long, env = "VIEWLOG_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// The web console's origin, the only one browsers may call the API from (CORS).
    #[arg(long, env = "VIEWLOG_CONSOLE_ORIGIN")]
    pub console_origin: Option<String>,
    /// Failed sign-ins allowed before they are slowed down. [default: 3]
    #[arg(long, env = "VIEWLOG_LOGIN_FREE_ATTEMPTS")]
    pub login_free_attempts: Option<u32>,
    /// Failed sign-ins from one client address before it is locked out. [default: 10]
    #[arg(long, env = "VIEWLOG_LOGIN_LOCKOUT_AFTER")]
    pub login_lockout_after: Option<u32>,
    /// How long a lock-out lasts (and failures are remembered), in seconds. [default: 900]
    #[arg(long, env = "VIEWLOG_LOGIN_LOCKOUT_SECS")]
    pub login_lockout_secs: Option<u64>,
    /// Inject faults for testing collectors, e.g. `429=0.1,500=0.05,418=0.01,slow=0.1,slow-ms=2000,drop=0.05`
    /// (shares of API requests).
    #[arg(long, env = "VIEWLOG_FAULTS")]
    pub faults: Option<String>,
}

/// The configuration file's contents; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--db`.
    pub db: Option<String>,
    /// See `--master-key-file`.
    pub master_key_file: Option<PathBuf>,
    /// See `--listen`.
    pub listen: Option<SocketAddr>,
    /// See `--public-base-url`.
    pub public_base_url: Option<String>,
    /// See `--trust-forwarded`.
    pub trust_forwarded: Option<bool>,
    /// See `--clock-skew-secs`.
    pub clock_skew_secs: Option<u64>,
    /// See `--rate-capacity`.
    pub rate_capacity: Option<u64>,
    /// See `--rate-refill-per-sec`.
    pub rate_refill_per_sec: Option<f64>,
    /// See `--query-deadline-ms`.
    pub query_deadline_ms: Option<u64>,
    /// See `--max-concurrent-queries`.
    pub max_concurrent_queries: Option<usize>,
    /// See `--sqlite-readers`.
    pub sqlite_readers: Option<usize>,
    /// See `--log-format`.
    pub log_format: Option<String>,
    /// See `--console-origin`.
    pub console_origin: Option<String>,
    /// See `--login-free-attempts`.
    pub login_free_attempts: Option<u32>,
    /// See `--login-lockout-after`.
    pub login_lockout_after: Option<u32>,
    /// See `--login-lockout-secs`.
    pub login_lockout_secs: Option<u64>,
}

/// Reads the configuration file, if one is named.
pub fn load_file(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// Where the store is, resolved.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The database location as given.
    pub db: String,
    /// The master key file.
    pub master_key_file: PathBuf,
    /// SQLite reader connections.
    pub sqlite_readers: usize,
    /// The SQLite writer's page cache in KiB; `None` for the store's default.
    pub sqlite_cache_kib: Option<u32>,
    /// Whether a server opens the store: a SQLite store then holds its requests file from the
    /// start, and a second server on the same file is refused.
    pub serving: bool,
}

impl StoreArgs {
    /// Resolves the store settings from flags, environment, file and defaults.
    pub fn resolve(&self, file: &FileConfig) -> StoreSettings {
        let db = self.db.clone().or_else(|| file.db.clone()).unwrap_or_else(|| DEFAULT_DB.to_owned());
        let master_key_file = self
            .master_key_file
            .clone()
            .or_else(|| file.master_key_file.clone())
            .unwrap_or_else(|| default_key_file(&db));
        StoreSettings {
            db,
            master_key_file,
            sqlite_readers: file.sqlite_readers.unwrap_or(4),
            sqlite_cache_kib: None,
            serving: false,
        }
    }
}

/// `<db path>.key` for a SQLite file; `./viewlog.key` otherwise.
pub fn default_key_file(db: &str) -> PathBuf {
    match crate::db::DbUrl::parse(db) {
        Ok(crate::db::DbUrl::Sqlite(path)) => {
            let mut p = path.into_os_string();
            p.push(".key");
            PathBuf::from(p)
        }
        _ => PathBuf::from("./viewlog.key"),
    }
}

impl StoreSettings {
    /// Loads the master key from `VIEWLOG_MASTER_KEY` or the key file (creating the file).
    pub fn master_key(&self) -> Result<MasterKey> {
        if let Ok(text) = std::env::var("VIEWLOG_MASTER_KEY") {
            return MasterKey::from_base64(&text).context("VIEWLOG_MASTER_KEY");
        }
        let (key, created) = MasterKey::load_or_create(&self.master_key_file)?;
        if created {
            tracing::info!(file = %self.master_key_file.display(), "generated a new master key");
        }
        Ok(key)
    }
}

/// Resolves the server's settings.
pub fn server_config(args: &ServeArgs, file: &FileConfig) -> Result<(ServerConfig, String)> {
    let defaults = ServerConfig::default();
    let core_defaults = CoreConfig::default();
    let capacity = args.rate_capacity.or(file.rate_capacity).unwrap_or(core_defaults.rate.capacity);
    let refill = args.rate_refill_per_sec.or(file.rate_refill_per_sec).unwrap_or(core_defaults.rate.refill_per_sec);
    if capacity == 0 || !(refill > 0.0 && refill.is_finite()) {
        bail!("the rate limit needs a capacity of at least 1 and a positive refill rate");
    }
    let log_format = args.log_format.clone().or_else(|| file.log_format.clone()).unwrap_or_else(|| "text".into());
    if log_format != "text" && log_format != "json" {
        bail!("--log-format must be text or json, not {log_format:?}");
    }
    let core = CoreConfig {
        clock_skew: args
            .clock_skew_secs
            .or(file.clock_skew_secs)
            .map(Duration::from_secs)
            .unwrap_or(core_defaults.clock_skew),
        rate: RatePolicy { capacity, refill_per_sec: refill },
        query_deadline: args
            .query_deadline_ms
            .or(file.query_deadline_ms)
            .map(Duration::from_millis)
            .unwrap_or(core_defaults.query_deadline),
        max_concurrent_queries: args
            .max_concurrent_queries
            .or(file.max_concurrent_queries)
            .unwrap_or(core_defaults.max_concurrent_queries),
        login: viewlog_core::throttle::LoginThrottle {
            free_attempts: args
                .login_free_attempts
                .or(file.login_free_attempts)
                .unwrap_or(core_defaults.login.free_attempts),
            lockout_after: args
                .login_lockout_after
                .or(file.login_lockout_after)
                .unwrap_or(core_defaults.login.lockout_after),
            lockout: args.login_lockout_secs.or(file.login_lockout_secs).unwrap_or(core_defaults.login.lockout),
            ..core_defaults.login
        },
        token_lifetime: core_defaults.token_lifetime,
    };
    let faults = match &args.faults {
        Some(spec) => viewlog_server::faults::Faults::parse(spec).map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
        None => Default::default(),
    };
    let config = ServerConfig {
        faults,
        console_origin: args.console_origin.clone().or_else(|| file.console_origin.clone()),
        listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
        public_base_url: args.public_base_url.clone().or_else(|| file.public_base_url.clone()),
        trust_forwarded: args.trust_forwarded.or(file.trust_forwarded).unwrap_or(false),
        core,
        ..defaults
    };
    Ok((config, log_format))
}
