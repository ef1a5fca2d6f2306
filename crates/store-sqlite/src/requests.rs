//! Replay records (request ids seen per access key) in a file of their own, beside the
//! database: `<database>-requests`.
//!
//! Every signed API request writes one. Kept in the database file, each of those writes changed
//! its write-ahead log, and a SQLite connection that finds the log changed when it starts a
//! read drops its cache and its memory map of the file: every query then began by faulting in
//! again each page it touched (a month's search on a store of 10,000,000 events spent most of
//! its time there), and every request queued for the one write lock behind whatever ingest
//! held it. In their own file, replay records change neither: the events file's readers keep
//! their map, and the records have a writer of their own. The records are short-lived; losing
//! the file only forgets which recent requests were seen.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use viewlog_store::StoreError;

use crate::conn::in_write_tx;
use crate::error::Fail;

/// `PRAGMA application_id` of a requests file ("vwlr").
const APPLICATION_ID: i32 = 0x7677_6c72;

/// The requests file of the database at `db`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-requests");
    PathBuf::from(name)
}

/// Refuses a file that is not a requests file; puts it in WAL mode and creates the table in a
/// new one.
pub(crate) fn prepare(db: &Connection) -> Result<(), Fail> {
    let app_id: i32 = db.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!("not a viewlog requests file (application_id {app_id:#x})")).into());
    }
    let mode: String = db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(
            format!("could not switch the requests file to WAL mode (journal_mode={mode})").into(),
        )
        .into());
    }
    in_write_tx(db, |db| {
        Ok(db.execute_batch(
            "CREATE TABLE IF NOT EXISTS seen_requests (
                 access_key  TEXT    NOT NULL,
                 request_id  TEXT    NOT NULL,
                 expires_at  INTEGER NOT NULL,
                 PRIMARY KEY (access_key, request_id)
             ) STRICT, WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS seen_requests_by_expiry ON seen_requests (expires_at);",
        )?)
    })?;
    db.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}

/// Moves the replay records a database kept itself before schema version 5 into the requests
/// file (run before the migration that drops them; running it twice changes nothing).
pub(crate) fn adopt(main: &Connection, requests: &Connection) -> Result<(), Fail> {
    let has: bool = main.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'seen_requests')",
        [],
        |r| r.get(0),
    )?;
    if !has {
        return Ok(());
    }
    let mut read = main.prepare("SELECT access_key, request_id, expires_at FROM seen_requests")?;
    let rows: Vec<(String, String, i64)> =
        read.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    in_write_tx(requests, |db| {
        let mut insert =
            db.prepare("INSERT OR IGNORE INTO seen_requests (access_key, request_id, expires_at) VALUES (?1, ?2, ?3)")?;
        for (key, id, expires) in &rows {
            insert.execute(params![key, id, expires])?;
        }
        Ok(())
    })
}

/// Records `request_id` for `access_key` until `expires_at`; `false` if it is recorded and
/// unexpired (a replay).
pub(crate) fn remember(
    tx: &Connection,
    access_key: &str,
    request_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, Fail> {
    // A record that expired before now counts as absent: it is overwritten.
    let changed = tx
        .prepare_cached(
            "INSERT INTO seen_requests (access_key, request_id, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (access_key, request_id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE seen_requests.expires_at < ?4",
        )?
        .execute(params![access_key, request_id, expires_at, now])?;
    Ok(changed == 1)
}

/// Deletes the records that expired before `now`; returns how many.
pub(crate) fn purge(tx: &Connection, now: i64) -> Result<u64, Fail> {
    Ok(tx.prepare_cached("DELETE FROM seen_requests WHERE expires_at < ?1")?.execute([now])? as u64)
}
