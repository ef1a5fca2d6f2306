//! Scratch databases on the test server named by `VIEWLOG_TEST_POSTGRES_URL`.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// The variable naming the test server: a URL of a role that may create databases, such as
/// `postgres://viewlog@127.0.0.1:54320/postgres` (what `.ci/postgres.sh` prints).
pub const ENV: &str = "VIEWLOG_TEST_POSTGRES_URL";

/// The test server's URL. Without one the tests fail: they are never skipped silently.
pub fn admin_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{ENV} is not set: the PostgreSQL store's tests need a PostgreSQL server and a role that may \
             create databases. Start a throwaway one with `eval \"$(bash .ci/postgres.sh)\"` (as root), \
             or point {ENV} at your own, e.g. postgres://viewlog@127.0.0.1:5432/postgres"
        ),
    }
}

/// The variable naming the PEM file of the authority that signed the test server's certificate
/// (what `.ci/postgres.sh` prints).
pub const CA_ENV: &str = "VIEWLOG_TEST_POSTGRES_CA";

/// The test server's authority. Without one the TLS tests fail: they are never skipped silently.
pub fn ca_file() -> String {
    match std::env::var(CA_ENV) {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "{CA_ENV} is not set: the TLS tests of the PostgreSQL store need a server with ssl=on and the PEM \
             file of the authority that signed its certificate (`.ci/postgres.sh` makes both)"
        ),
    }
}

/// The same URL with another database.
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

/// An open connection to the test server (the database of its URL).
pub async fn admin() -> tokio_postgres::Client {
    connect(&admin_url()).await
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

/// A new, empty database, dropped when this guard is.
pub struct ScratchDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl ScratchDb {
    /// Creates one with a name no other test (in this or another process) uses.
    pub async fn create() -> ScratchDb {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("viewlog_test_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos);
        let admin = admin().await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        ScratchDb { url: with_database(&admin_url(), &name), name }
    }
}

impl Drop for ScratchDb {
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

#[test]
fn urls_get_another_database() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgresql://u:p@h/db?sslmode=disable", "x"), "postgresql://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://h?connect_timeout=5", "x"), "postgres://h/x?connect_timeout=5");
}
