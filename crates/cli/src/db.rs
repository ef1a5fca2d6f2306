//! Choosing the store from the database URL.

use anyhow::{bail, Result};
use std::path::PathBuf;

/// A database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database: the `postgres://` or `postgresql://` URL as given.
    Postgres(String),
}

impl DbUrl {
    /// `postgres://…` or `postgresql://…` for PostgreSQL; `sqlite:PATH`, `sqlite://PATH` or a
    /// bare path for SQLite.
    pub fn parse(s: &str) -> Result<DbUrl> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(s.to_owned()));
        }
        let path = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")).unwrap_or(s);
        if path.is_empty() {
            bail!("empty database path");
        }
        Ok(DbUrl::Sqlite(PathBuf::from(path)))
    }
}

/// A PostgreSQL URL fit for messages and logs: its password, if any, replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    // A password may also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| if kv.starts_with("password=") { "password=***".to_owned() } else { kv.to_owned() })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Opens the store named by `$settings` and runs `$body` with it bound to `$store`
/// (an `Arc` of the backend's type), for every backend.
#[macro_export]
macro_rules! with_store {
    ($settings:expr, |$store:ident| $body:expr) => {{
        let settings: &$crate::settings::StoreSettings = &$settings;
        match $crate::db::DbUrl::parse(&settings.db)? {
            $crate::db::DbUrl::Sqlite(path) => {
                let defaults = viewlog_store_sqlite::SqliteOptions::default();
                let options = viewlog_store_sqlite::SqliteOptions {
                    readers: settings.sqlite_readers,
                    writer_cache_kib: settings.sqlite_cache_kib.unwrap_or(defaults.writer_cache_kib),
                    hold_requests_file: settings.serving,
                    ..defaults
                };
                let $store = std::sync::Arc::new(
                    viewlog_store_sqlite::SqliteStore::open(&path, options)
                        .await
                        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?,
                );
                $body
            }
            $crate::db::DbUrl::Postgres(url) => {
                let $store = std::sync::Arc::new(
                    viewlog_store_postgres::PostgresStore::connect(&url, Default::default())
                        .await
                        .map_err(|e| anyhow::anyhow!("opening {}: {e}", $crate::db::redacted(&url)))?,
                );
                $body
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(DbUrl::parse("sqlite:/tmp/a.db").unwrap(), DbUrl::Sqlite("/tmp/a.db".into()));
        assert_eq!(DbUrl::parse("./viewlog.db").unwrap(), DbUrl::Sqlite("./viewlog.db".into()));
        assert!(DbUrl::parse("").is_err());
        assert_eq!(
            DbUrl::parse(" postgres://viewlog@127.0.0.1:5432/viewlog ").unwrap(),
            DbUrl::Postgres("postgres://viewlog@127.0.0.1:5432/viewlog".into())
        );
        assert_eq!(DbUrl::parse("postgresql://h/db").unwrap(), DbUrl::Postgres("postgresql://h/db".into()));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redacted("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redacted("postgres://h/db?user=u&password=secret"), "postgres://h/db?user=u&password=***");
        assert_eq!(redacted("postgresql://u:p@ss@h"), "postgresql://u:***@h");
    }
}
