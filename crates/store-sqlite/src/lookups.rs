//! The signature check's lookups (application by app id, principal by access key), kept per
//! connection until the database changes.
//!
//! Every signed request asks for the same two rows; reading them is a join of five tables and
//! some twenty strings. Each lookup connection keeps the answers it read, tagged with the
//! connection's `PRAGMA data_version`, which changes whenever any other connection (of this
//! process or another: the command-line tool revoking a key beside a running server) commits
//! to the file. A lookup reads the version in the same read transaction it would read the rows
//! in: a cached answer is used only while nothing at all was committed since it was read, so it
//! is exactly what reading the rows again would give. Ingest commits empty the cache too, which
//! costs one join per connection and per key after each commit.

use std::collections::HashMap;

use rusqlite::Connection;
use viewlog_store::{Application, Principal};

use crate::conn::ReadTx;
use crate::error::Fail;

/// The answer of `Store::signed_lookup`.
pub(crate) type Found = (Option<Application>, Option<Principal>);

/// More keys than this and the cache starts again empty.
const MAX_ENTRIES: usize = 4096;

/// One connection's cached lookups, and the data version they were read at.
#[derive(Default)]
pub(crate) struct LookupCache {
    version: Option<i64>,
    entries: HashMap<(String, String), Found>,
}

impl LookupCache {
    /// The application with `app_id` and the principal of `access_key`, as of one read
    /// transaction on `db`: from the cache if nothing was committed since they were read, else
    /// read with `read` (and kept).
    pub(crate) fn lookup(
        &mut self,
        db: &Connection,
        app_id: &str,
        access_key: &str,
        read: impl FnOnce(&Connection) -> Result<Found, Fail>,
    ) -> Result<Found, Fail> {
        let _tx = ReadTx::begin(db)?;
        // Starts the read transaction: the version of the snapshot the rows would be read from.
        let version: i64 = db.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if self.version != Some(version) {
            self.entries.clear();
            self.version = Some(version);
        }
        let key = (app_id.to_owned(), access_key.to_owned());
        if let Some(found) = self.entries.get(&key) {
            return Ok(found.clone());
        }
        let found = read(db)?;
        // Only keys that name an application and a binding are kept: made-up keys (of any
        // length, before any rate limit) are read every time and never fill the cache.
        if found.0.is_some() && found.1.is_some() {
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
            self.entries.insert(key, found.clone());
        }
        Ok(found)
    }

    /// How many lookups are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
