//! TLS to the PostgreSQL server: what the connection URL asks for, and the connector that does
//! it.
//!
//! The URL's `sslmode` and `sslrootcert` read as libpq reads them, with one difference: a
//! connection with TLS always verifies the server's certificate and name (libpq's
//! `verify-full`).
//!
//! | `sslmode` | `sslrootcert` | connection |
//! |---|---|---|
//! | `disable`, or `prefer` (the default) | — | without TLS |
//! | `require`, `verify-ca`, `verify-full` | — | TLS, the certificate signed by one of Mozilla's root authorities (`webpki-roots`) |
//! | `require`, `verify-ca`, `verify-full`, `prefer` or none | a PEM file | TLS, the certificate signed by an authority in the file (and only there) |
//! | `disable` | a PEM file | refused: the two contradict each other |
//!
//! tokio-postgres knows neither `sslrootcert` nor the `verify-*` modes, so they are taken out of
//! a `postgres://` URL before it parses the rest. A `key=value` connection string is passed on
//! as it is: there `sslmode=require` works, `sslrootcert` and the `verify-*` modes are refused.
//! The connector offers ALPN `postgresql`, which PostgreSQL 17 requires of direct TLS
//! (`sslnegotiation=direct`).

use std::path::Path;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::{CancelToken, Client, Config as PgConfig, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use viewlog_store::StoreError;

/// How the store's connections reach the server.
#[derive(Clone)]
pub(crate) enum Tls {
    /// Without TLS.
    Plain,
    /// With TLS, the server's certificate verified.
    Verified(MakeRustlsConnect),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Plain => "Plain",
            Tls::Verified(_) => "Verified",
        })
    }
}

/// A connection URL taken apart: tokio-postgres's configuration and the TLS it calls for.
pub(crate) fn parse(url: &str) -> Result<(PgConfig, Tls), StoreError> {
    let invalid = |e: String| StoreError::Backend(format!("invalid PostgreSQL URL: {e}").into());
    let (rest, root_cert) = take_tls_params(url).map_err(invalid)?;
    let config: PgConfig = rest.parse().map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
    with_root_cert(config, root_cert.as_deref())
}

/// The TLS `config`'s `sslmode` calls for, with the authorities of the PEM file `root_cert` if
/// given (which makes TLS required); `config` is set to require TLS if it is used.
pub(crate) fn with_root_cert(mut config: PgConfig, root_cert: Option<&str>) -> Result<(PgConfig, Tls), StoreError> {
    let tls = match (config.get_ssl_mode(), root_cert) {
        (SslMode::Disable, Some(_)) => {
            return Err(StoreError::Backend("invalid PostgreSQL URL: sslrootcert given with sslmode=disable".into()))
        }
        (SslMode::Disable | SslMode::Prefer, None) => Tls::Plain,
        (_, root_cert) => {
            config.ssl_mode(SslMode::Require);
            Tls::Verified(connector(root_cert.map(Path::new))?)
        }
    };
    Ok((config, tls))
}

/// `url` without `sslrootcert` (returned apart, percent-decoded), `verify-ca` and `verify-full`
/// read as `require`. Only a `postgres://` or `postgresql://` URL is rewritten.
fn take_tls_params(url: &str) -> Result<(String, Option<String>), String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    // The query starts at the first `?` after the credentials, which end at the first `@` (as
    // tokio-postgres reads them: a password may hold a `?`, not an `@`).
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(start) = url[after_credentials..].find('?').map(|i| after_credentials + i).filter(|_| is_url) else {
        return Ok((url.to_owned(), None));
    };
    let (base, query) = (&url[..start], &url[start + 1..]);
    let mut root_cert = None;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("sslrootcert", value)) => {
                let path = percent_decode(value)?;
                if path.is_empty() {
                    return Err("sslrootcert is empty".into());
                }
                root_cert = Some(path);
            }
            Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require"),
            _ => kept.push(param),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, root_cert))
}

/// Decodes `%XX` escapes (a URL query's value).
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("a bad %-escape in {value:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} is not UTF-8 once decoded"))
}

/// A connector trusting the authorities of the PEM file `root_cert`, or Mozilla's without one.
fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let failed = |what: String| StoreError::Backend(format!("sslrootcert {}: {what}", path.display()).into());
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| failed(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| failed(e.to_string()))?;
                roots.add(cert).map_err(|e| failed(format!("not a usable authority: {e}")))?;
            }
            if roots.is_empty() {
                return Err(failed("no certificate in the file".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(StoreError::backend)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

impl Tls {
    /// Opens one connection, driven by a task of its own; the task ends when the client is
    /// dropped.
    pub(crate) async fn connect(&self, config: &PgConfig) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        Ok(match self {
            Tls::Plain => {
                let (client, connection) = config.connect(NoTls).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            Tls::Verified(tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        })
    }

    /// The pool's connection manager.
    pub(crate) fn manager(&self, config: PgConfig, manager: ManagerConfig) -> Manager {
        match self {
            Tls::Plain => Manager::from_config(config, NoTls, manager),
            Tls::Verified(tls) => Manager::from_config(config, tls.clone(), manager),
        }
    }

    /// Asks the server to cancel what `token`'s connection runs, over a connection like it.
    pub(crate) async fn cancel(&self, token: CancelToken) -> Result<(), tokio_postgres::Error> {
        match self {
            Tls::Plain => token.cancel_query(NoTls).await,
            Tls::Verified(tls) => token.cancel_query(tls.clone()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(url: &str) -> (String, Option<String>) {
        take_tls_params(url).expect("parses")
    }

    #[test]
    fn tls_params_are_taken_out_of_urls() {
        assert_eq!(taken("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
        assert_eq!(
            taken("postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca%20bundle.pem&application_name=x"),
            ("postgres://u@h/db?sslmode=require&application_name=x".into(), Some("/etc/ca bundle.pem".into()))
        );
        assert_eq!(taken("postgresql://h/db?sslrootcert=ca.pem"), ("postgresql://h/db".into(), Some("ca.pem".into())));
        assert_eq!(taken("postgres://h/db?sslmode=verify-ca"), ("postgres://h/db?sslmode=require".into(), None));
        // A key=value string is left to tokio-postgres.
        assert_eq!(taken("host=h sslmode=require"), ("host=h sslmode=require".into(), None));
        assert!(take_tls_params("postgres://h/db?sslrootcert=").is_err());
        assert!(take_tls_params("postgres://h/db?sslrootcert=%zz").is_err());
        assert!(take_tls_params("postgres://h/db?sslrootcert=%ff").is_err());
        assert!(take_tls_params("postgres://h/db?sslrootcert=%+f").is_err());
        // A `?` in the password is not the query's start; a bare `?` is an empty query.
        assert_eq!(
            taken("postgres://u:pa?ss@h/db?sslrootcert=ca.pem"),
            ("postgres://u:pa?ss@h/db".into(), Some("ca.pem".into()))
        );
        assert_eq!(taken("postgres://u:pa?ss@h/db"), ("postgres://u:pa?ss@h/db".into(), None));
        assert_eq!(taken("postgres://h/db?"), ("postgres://h/db".into(), None));
    }

    #[test]
    fn the_mode_decides_the_connector() {
        let mode = |url: &str| parse(url).map(|(config, tls)| (config.get_ssl_mode(), format!("{tls:?}")));
        assert_eq!(mode("postgres://h/db").expect("plain"), (SslMode::Prefer, "Plain".into()));
        assert_eq!(mode("postgres://h/db?sslmode=disable").expect("plain"), (SslMode::Disable, "Plain".into()));
        assert_eq!(mode("postgres://h/db?sslmode=require").expect("tls"), (SslMode::Require, "Verified".into()));
        assert_eq!(mode("postgres://h/db?sslmode=verify-full").expect("tls"), (SslMode::Require, "Verified".into()));
        let err = mode("postgres://h/db?sslmode=disable&sslrootcert=ca.pem").expect_err("contradiction");
        assert!(err.to_string().contains("sslmode=disable"), "{err}");
        let err = mode("postgres://h/db?sslrootcert=/nonexistent/ca.pem").expect_err("no file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = mode("postgres://h/db?sslmode=sometimes").expect_err("bad mode");
        assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
    }

    /// The test server's URL and authority (see `tests/common`); the test fails without them.
    fn test_server() -> (String, String) {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: `eval \"$(bash .ci/postgres.sh)\"`"))
        };
        (var("VIEWLOG_TEST_POSTGRES_URL"), var("VIEWLOG_TEST_POSTGRES_CA"))
    }

    /// A cancel request sent over TLS reaches the server and stops the statement.
    #[tokio::test]
    async fn a_cancel_request_goes_over_tls() {
        let (url, ca) = test_server();
        let sep = if url.contains('?') { '&' } else { '?' };
        let (config, tls) = parse(&format!("{url}{sep}sslmode=verify-full&sslrootcert={ca}")).expect("parse");
        assert!(matches!(tls, Tls::Verified(_)));
        let (client, _task) = tls.connect(&config).await.expect("connect");
        let encrypted: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .expect("pg_stat_ssl")
            .get(0);
        assert!(encrypted);
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
        let token = client.cancel_token();
        let sleeping = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(60)").await });
        // Cancel only once the statement runs (a cancel before it would stop nothing).
        let (watcher, _watching) = Tls::Plain.connect(&url.parse().expect("url")).await.expect("connect");
        let running = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' \
                       AND query LIKE '%pg_sleep%'";
        let started = std::time::Instant::now();
        while watcher.query_one(running, &[&pid]).await.expect("pg_stat_activity").get::<_, i64>(0) == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "the statement never started");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tls.cancel(token).await.expect("cancel request");
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(20), sleeping)
            .await
            .expect("the statement stops")
            .expect("task");
        let err = outcome.expect_err("cancelled");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("viewlog-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let url = format!("postgres://h/db?sslrootcert={}", empty.display());
        let err = parse(&url).map(|_| ()).expect_err("no certificate");
        assert!(err.to_string().contains("no certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
