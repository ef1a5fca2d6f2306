//! PostgreSQL for the end-to-end tests: a fresh database per test on the server named by
//! `VIEWLOG_TEST_POSTGRES_URL` (what `.ci/postgres.sh` prints), dropped when the test ends,
//! administered and served with the real binary under one master key file.
//!
//! Without the variable the tests that use it fail, saying how to get a server: they are never
//! skipped silently.

use crate::support::*;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use tokio_postgres::NoTls;

/// The variable naming the test server: a role that may create databases.
pub const ENV: &str = "VIEWLOG_TEST_POSTGRES_URL";

/// The test server's URL; panics with directions when it is not set.
pub fn admin_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "{ENV} is not set: the PostgreSQL end-to-end tests need a PostgreSQL server and a role that may \
             create databases. Start a throwaway one with `eval \"$(bash .ci/postgres.sh)\"` (as root), or \
             point {ENV} at your own, e.g. postgres://viewlog@127.0.0.1:5432/postgres"
        ),
    }
}

/// `url` with its database replaced by `database` (the query string kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) =
        url.split_once("://").unwrap_or_else(|| panic!("{ENV} must be a postgres:// URL, not {url:?}"));
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// An open connection to `url`.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A new, empty PostgreSQL database, dropped (`WITH (FORCE)`) when this guard is, and the
/// master key file every process on it uses.
pub struct PgDb {
    /// The database's name.
    pub name: String,
    /// Its `postgres://` URL.
    pub url: String,
    /// A working directory for the processes (and the key file, unless another was given).
    pub dir: TempDir,
    /// The one master key file, passed as `--master-key-file` to every process.
    pub key_file: PathBuf,
}

impl PgDb {
    /// A fresh database whose master key file (made by the first command) lives in its own
    /// temporary directory.
    pub async fn create() -> PgDb {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        Self::create_in(dir, key_file).await
    }

    /// A fresh database served with an existing master key file (another store's).
    pub async fn with_key_file(key_file: &Path) -> PgDb {
        Self::create_in(tempfile::tempdir().unwrap(), key_file.to_owned()).await
    }

    async fn create_in(dir: TempDir, key_file: PathBuf) -> PgDb {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("viewlog_cli_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos);
        let admin = connect(&admin_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        PgDb { url: with_database(&admin_url(), &name), name, dir, key_file }
    }

    /// A direct connection to the database, for checks below the API.
    pub async fn sql(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// `viewlog ARGS[0] --db URL --master-key-file KEY ARGS[1..]`, in the working directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = viewlog(self.dir.path());
        cmd.args(&args[..1]).arg("--db").arg(&self.url).arg("--master-key-file").arg(&self.key_file);
        cmd.args(&args[1..]);
        cmd
    }

    /// Runs an admin command with `--json`; it must succeed and print JSON.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> Value {
        run(self.cmd(args).arg("--json"), None).ok().json()
    }

    /// Creates the account if needed, then a user with `role`, an application and a binding.
    #[track_caller]
    pub fn tenant(&self, account: &str, role: &str) -> Creds {
        let accounts = self.admin(&["account", "list"]);
        if !accounts.as_array().unwrap().iter().any(|a| a["name"] == account) {
            self.admin(&["account", "create", account]);
        }
        let email = format!("{}@{account}.example", uuid::Uuid::new_v4().simple());
        self.admin(&["user", "create", "--account", account, &email, "--role", role]);
        let app = self.admin(&["app", "create", "--account", account, "collector"]);
        let app_id = app["appId"].as_str().unwrap().to_owned();
        let key = self.admin(&["key", "create", "--user", &email, "--app-id", &app_id]);
        Creds {
            app_id,
            app_key: app["appKey"].as_str().unwrap().to_owned(),
            access_key: key["accessKey"].as_str().unwrap().to_owned(),
            secret_key: key["secretKey"].as_str().unwrap().to_owned(),
        }
    }

    /// `viewlog serve --db URL --master-key-file KEY --listen 127.0.0.1:0 ARGS`.
    pub async fn serve(&self, args: &[&str]) -> Server {
        let mut cmd = self.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.args(args);
        Server::serve(cmd).await
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let (name, url) = (self.name.clone(), admin_url());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let admin = connect(&url).await;
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            eprintln!("could not drop the scratch database {}: {dropped:?}", self.name);
        }
    }
}

/// Runs a command to completion like [`run`], but allowed up to `timeout` (for commands that
/// move a lot of data); returns what it printed and how long it took.
#[track_caller]
pub fn run_for(cmd: &mut Command, timeout: Duration) -> (Out, Duration) {
    let what = format!("{cmd:?}");
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}:\n{}", stderr.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    (Out { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), what }, took)
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[test]
fn urls_get_another_database() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgresql://u:p@h/db?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
}
