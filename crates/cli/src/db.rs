//! Choosing the store from the database URL.

use anyhow::{bail, Result};
use std::path::PathBuf;

/// A database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
}

impl DbUrl {
    /// `sqlite:PATH`, `sqlite://PATH` or a bare path.
    pub fn parse(s: &str) -> Result<DbUrl> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            bail!("PostgreSQL is not supported by this build yet; use a SQLite file path");
        }
        let path = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")).unwrap_or(s);
        if path.is_empty() {
            bail!("empty database path");
        }
        Ok(DbUrl::Sqlite(PathBuf::from(path)))
    }
}

/// Opens the store named by `$settings` and runs `$body` with it bound to `$store`
/// (an `Arc` of the backend's type), for every backend.
#[macro_export]
macro_rules! with_store {
    ($settings:expr, |$store:ident| $body:expr) => {{
        let settings: &$crate::settings::StoreSettings = &$settings;
        match $crate::db::DbUrl::parse(&settings.db)? {
            $crate::db::DbUrl::Sqlite(path) => {
                let options =
                    viewlog_store_sqlite::SqliteOptions { readers: settings.sqlite_readers, ..Default::default() };
                let $store = std::sync::Arc::new(
                    viewlog_store_sqlite::SqliteStore::open(&path, options)
                        .await
                        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?,
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
    }
}
