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
//!
//! A record is a 16-byte key (the first bytes of SHA-256 over the access key and the request
//! id) and its expiry, in a table without a second index, in 1 KiB pages: a record changes one
//! small page (the first layout, the two strings under a primary key and an index on the
//! expiry, wrote two 4 KiB pages, some 17 KiB of disk writes per request with its
//! checkpoints). Expired records are purged by walking the keys in chunks, one short
//! transaction each ([`purge_chunk`]), so requests are never held up for long.
//!
//! The file is held by one connection in one process ([`open`]: `locking_mode=EXCLUSIVE`, set
//! before its first access in WAL mode, so its write-ahead log's index lives in that process's
//! memory). A commit then takes no file locks: with shared locking each request's replay record
//! took a dozen `fcntl` calls, a sixth of the server's time under a page load once the pages
//! themselves were cheap. One SQLite database is served by one server process (its rate limits
//! live in memory too); a second server on the same file is refused when it opens the file.
//!
//! Records are committed in groups ([`join_group`], [`commit_group`]): a request inserts its
//! record into the connection's open transaction (the first one to find none begins it and
//! schedules its commit on the runtime, behind the tasks queued there then) and is answered
//! once that transaction has committed. Under load one commit serves every request that arrived
//! meanwhile; a lone request waits for its own commit as before. A record that conflicts with
//! one not committed yet is a replay all the same: the first request holds it. Should the
//! commit fail, every request of the group fails with it; none was answered before.

use std::path::{Path, PathBuf};

use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use viewlog_store::{StoreError, StoreResult};

use crate::conn::{begin_write, commit, in_write_tx, roll_back_open, use_wal, Conn, ConnConfig, Durability, Kind};
use crate::error::Fail;

/// `PRAGMA application_id` of a requests file ("vwlr").
const APPLICATION_ID: i32 = 0x7677_6c72;

/// The requests file of the database at `db`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-requests");
    PathBuf::from(name)
}

/// Page size of a new requests file: a record is some 30 bytes, and every request's commit
/// writes the page it lands in.
const PAGE_SIZE: i64 = 1024;

/// Pages in the requests file's write-ahead log before it is checkpointed (SQLite's default is
/// 1,000). Each request's commit adds about one 1 KiB page, and its record lands on a random leaf
/// of the table: the longer the log, the more of its pages a checkpoint writes once for several
/// commits, and the fewer syncs. 10 MiB of log at most; +4.5% on the page benchmark in three A/B
/// pairs, its p99 at 32 connections 7.6 → 5.2 ms.
pub(crate) const AUTOCHECKPOINT: i64 = 10_000;

/// Purged expired records are looked for this many keys at a time, one transaction each.
pub(crate) const PURGE_CHUNK: usize = 4096;

/// The key of a record: the first 16 bytes of SHA-256 over the access key, a zero byte and the
/// request id.
fn record_key(access_key: &str, request_id: &str) -> [u8; 16] {
    let digest = Sha256::new().chain_update(access_key).chain_update([0u8]).chain_update(request_id).finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Opens the requests file and holds it: no other connection, in this process or another, can
/// use it until the returned one is closed. A file another process holds is refused with an
/// error that says so (after the busy timeout).
pub(crate) fn open(config: &ConnConfig) -> Result<Conn, Fail> {
    // `Conn::open` takes the exclusive lock: opening the log in exclusive locking mode locks the
    // file, and `prepare` writes to it. A second server fails at its start, not at its first
    // request.
    Conn::open(config, Kind::Requests).map_err(|fail| match fail {
        Fail::Db(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => StoreError::Backend(
            format!(
                "{} is held by another process (or another store of this one): one viewlog \
                 server per SQLite database (several servers share a PostgreSQL database)",
                config.path.display()
            )
            .into(),
        )
        .into(),
        other => other,
    })
}

/// Whether the database still keeps replay records itself (schema before version 5), which
/// [`adopt`] moves into the requests file.
pub(crate) fn kept_in(main: &Connection) -> Result<bool, Fail> {
    has_table(main, "seen_requests")
}

/// Refuses a file that is not a requests file; puts it in WAL mode and creates the table in a
/// new one; moves the records of the first layout (`seen_requests`) into it. `db` is in
/// exclusive locking mode already.
pub(crate) fn prepare(db: &Connection) -> Result<(), Fail> {
    let app_id: i32 = db.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!("not a viewlog requests file (application_id {app_id:#x})")).into());
    }
    // Only takes on a file without tables (and before WAL mode); an older file keeps its pages.
    db.pragma_update(None, "page_size", PAGE_SIZE)?;
    use_wal(db, "the requests file")?;
    in_write_tx(db, |db| {
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS replay_keys (
                 key         BLOB    NOT NULL PRIMARY KEY,
                 expires_at  INTEGER NOT NULL
             ) STRICT, WITHOUT ROWID;",
        )?;
        // The first layout's records, from a file written before the keys were hashed.
        if has_table(db, "seen_requests")? {
            insert_all(db, &first_layout_records(db)?)?;
            db.execute_batch("DROP TABLE seen_requests;")?;
        }
        Ok(())
    })?;
    db.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}

fn has_table(db: &Connection, name: &str) -> Result<bool, Fail> {
    Ok(db.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)", [name], |r| {
        r.get(0)
    })?)
}

/// The records of a `seen_requests` table (the first layout, in a requests file or, before
/// schema version 5, in the database): access key, request id, expiry.
fn first_layout_records(db: &Connection) -> Result<Vec<(String, String, i64)>, Fail> {
    let mut read = db.prepare("SELECT access_key, request_id, expires_at FROM seen_requests")?;
    let rows = read.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Inserts moved records; of a record inserted twice, the later expiry stays (moving records,
/// not judging requests).
fn insert_all(db: &Connection, records: &[(String, String, i64)]) -> Result<(), Fail> {
    let mut insert = db.prepare_cached(
        "INSERT INTO replay_keys (key, expires_at) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    )?;
    for (access_key, request_id, expires_at) in records {
        insert.execute(params![record_key(access_key, request_id), expires_at])?;
    }
    Ok(())
}

/// Moves the replay records a database kept itself before schema version 5 into the requests
/// file (run before the migration that drops them; running it twice changes nothing).
pub(crate) fn adopt(main: &Connection, requests: &Connection) -> Result<(), Fail> {
    if !kept_in(main)? {
        return Ok(());
    }
    let records = first_layout_records(main)?;
    in_write_tx(requests, |db| insert_all(db, &records))
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
            "INSERT INTO replay_keys (key, expires_at) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_keys.expires_at < ?3",
        )?
        .execute(params![record_key(access_key, request_id), expires_at, now])?;
    Ok(changed == 1)
}

/// Deletes the records that expired before `now` among the next [`PURGE_CHUNK`] keys after
/// `after` (from the first key if `None`); returns how many went and the last key looked at,
/// `None` once the walk has reached the end.
pub(crate) fn purge_chunk(tx: &Connection, now: i64, after: Option<&[u8]>) -> Result<(u64, Option<Vec<u8>>), Fail> {
    // The empty blob sorts before every key: both statements are ranges of the primary key.
    let after = after.unwrap_or(&[]);
    let last: Option<Vec<u8>> = tx
        .prepare_cached("SELECT max(key) FROM (SELECT key FROM replay_keys WHERE key > ?1 ORDER BY key LIMIT ?2)")?
        .query_row(params![after, PURGE_CHUNK as i64], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(last) = last else {
        return Ok((0, None));
    };
    let purged = tx
        .prepare_cached("DELETE FROM replay_keys WHERE key > ?1 AND key <= ?2 AND expires_at < ?3")?
        .execute(params![after, last, now])?;
    Ok((purged as u64, Some(last)))
}

/// What waiting for a group's commit gives: `Err` with the reason if it did not commit.
type GroupDone = Result<(), String>;

/// The replay records of the requests connection's open transaction, not yet committed, and
/// the requests waiting for that commit (`Conn::replay_group`).
pub(crate) struct Group {
    done: oneshot::Sender<GroupDone>,
    committed: Committed,
}

/// Resolves when a group's transaction has committed (or failed to: every waiter is told).
/// Should the group be dropped unfinished (its connection lost to a panic), it resolves as
/// cancelled.
pub(crate) type Committed = Shared<oneshot::Receiver<GroupDone>>;

impl Group {
    fn new() -> Group {
        let (done, committed) = oneshot::channel();
        Group { done, committed: committed.shared() }
    }

    fn finish(self, done: GroupDone) {
        // No waiter left is no one to tell.
        let _ = self.done.send(done);
    }
}

/// A request's replay record, written into the open group.
pub(crate) struct Joined {
    /// `false` if the request id was seen (a replay).
    pub(crate) fresh: bool,
    /// Whether this request began the group, and so must schedule its [`commit_group`].
    pub(crate) leads: bool,
    /// The group's commit, which the request must wait for before it is answered.
    pub(crate) committed: Committed,
}

/// Writes the replay record of `request_id` into the connection's open group, beginning one
/// if there is none (see the module docs). The caller waits for [`Joined::committed`]; if
/// [`Joined::leads`], it first schedules [`commit_group`]. On error the record is not written
/// and no commit is owed.
pub(crate) fn join_group(
    conn: &mut Conn,
    access_key: &str,
    request_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<Joined, Fail> {
    let leads = conn.db.is_autocommit();
    if leads {
        // A group whose transaction SQLite ended (an I/O error rolls a transaction back) is
        // finished here: its records are gone, its requests fail.
        finish_group(conn, Err("the replay records' transaction was rolled back".into()));
        conn.set_durability(Durability::Normal)?;
        begin_write(&conn.db)?;
        conn.replay_group = Some(Group::new());
    }
    let written = remember(&conn.db, access_key, request_id, expires_at, now);
    let committed = conn.replay_group.as_ref().map(|group| group.committed.clone());
    match (written, committed) {
        (Ok(fresh), Some(committed)) => Ok(Joined { fresh, leads, committed }),
        (written, _) => {
            if leads {
                // Nobody else joined: the transaction this request began ends here.
                let _ = commit_group(conn);
            }
            match written {
                Ok(_) => Err(StoreError::Backend("the replay records' group was lost".into()).into()),
                Err(fail) => Err(fail),
            }
        }
    }
}

/// Commits the connection's open group, if any, and tells its requests how that went; `false`
/// if there was none.
pub(crate) fn commit_group(conn: &mut Conn) -> bool {
    if conn.replay_group.is_none() {
        return false;
    }
    let done = if conn.db.is_autocommit() {
        Err("the replay records' transaction was rolled back".to_owned())
    } else {
        commit(&conn.db).map_err(|fail| fail.into_store().to_string())
    };
    if done.is_err() {
        roll_back_open(&conn.db);
    }
    finish_group(conn, done);
    true
}

fn finish_group(conn: &mut Conn, done: GroupDone) {
    if let Some(group) = conn.replay_group.take() {
        group.finish(done);
    }
}

/// Waits for a group's commit.
pub(crate) async fn committed(group: Committed) -> StoreResult<()> {
    match group.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(StoreError::Backend(format!("recording the request id failed: {reason}").into())),
        Err(oneshot::Canceled) => {
            Err(StoreError::Backend("recording the request id failed: its transaction was abandoned".into()))
        }
    }
}
