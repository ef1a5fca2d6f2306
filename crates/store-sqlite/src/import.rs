//! Storing an import ([`viewlog_store::Store::import_events`]): batches pulled from a stream by
//! the writer, committed in large transactions; into a store without events, in one
//! transaction that fills the table of event ids once at the end.
//!
//! Claiming ids one event at a time (`ids.rs`) costs b-tree descents and page changes in
//! random order; filled from all the rows at once, `event_ids` is a sort. That is only right
//! when the ids do not repeat (the rows go in unchecked) and the account holds no ids yet: a
//! store with no events at all and an import whose caller promises unique ids. A broken promise
//! fails the fill and the whole transaction rolls back.
//!
//! Such a bulk load also leaves WAL mode for its transaction when it can. Through the WAL every
//! page is written twice, into the log at the commit and into the database at the checkpoint
//! (together ~30% of an import's storing). With a rollback journal, the pages the import adds
//! past the end of the file are written once, into the file, and the journal keeps only the
//! old contents of the few pages it changes (the schema's, the account's): a crash or a failure
//! still rolls the whole import back. Leaving WAL needs the file to itself: this store's idle
//! readers are closed first (they open again at their next use), and if any other connection
//! has the file open (a server, say) the import stays in WAL mode.
//!
//! Out of WAL mode the transaction is exclusive (`BEGIN EXCLUSIVE`): in rollback mode a commit
//! must wait for every reader to finish, so a reader let in halfway (a backup, the `sqlite3`
//! shell) could make the import's commit time out. Until the import commits, another process
//! opening the database waits for it, up to its lock timeout (5 s for viewlog's), then fails
//! with "database is locked". The commit is the journal's deletion, so the directory is synced
//! after it (`synchronous=EXTRA`): an acknowledged import survives a power loss. WAL mode is
//! restored at the end, whatever the outcome.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures_core::Stream;
use rusqlite::Connection;
use viewlog_store::{ImportOptions, InsertOutcome, StoreError, ViewEvent};

use crate::conn::{begin_write, commit, roll_back_open, use_wal, Conn, Ctx, Durability, Pool, Stats};
use crate::error::{is_busy, is_unique_violation, Fail};
use crate::events::{self, IdCheck};
use crate::{ids, late};

/// What a bulk load needs to take the file out of WAL mode: the store's other connections to
/// the file, to close those idle, and its counters.
pub(crate) struct OtherConns {
    /// The store's pools of readers.
    pub(crate) readers: Vec<Arc<Pool>>,
    /// Where `imports_outside_wal` is counted.
    pub(crate) stats: Arc<Stats>,
    /// See `SqliteOptions::id_fold_min`.
    pub(crate) id_fold_min: i64,
}

/// Stores the import; on failure, rolls back the open transaction (earlier commits stay).
pub(crate) fn import<B>(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    account: i64,
    mut batches: B,
    options: ImportOptions,
    others: &OtherConns,
) -> Result<InsertOutcome, Fail>
where
    B: Stream<Item = Vec<ViewEvent>> + Unpin,
{
    // `store` checks again, inside its transaction, whether it is a bulk load.
    let outside_wal = options.unique_ids && !holds_events(&conn.db)? && leave_wal(&conn.db, others)?;
    let durable = conn.set_durability(if outside_wal { Durability::Extra } else { Durability::Full });
    let db = &conn.db;
    let counted = std::cell::Cell::new(false);
    let begin = |db: &Connection| -> Result<(), Fail> {
        if !outside_wal {
            return begin_write(db);
        }
        db.prepare_cached("BEGIN EXCLUSIVE")?.execute([])?;
        // Another process may have opened the file, and switched it back to WAL, between the
        // switch and this transaction: then the import goes through the WAL after all.
        let mode: String = db.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("delete") && !counted.replace(true) {
            others.stats.imports_outside_wal.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    };
    let done = durable.and_then(|()| store(db, ctx, account, &mut batches, options, others.id_fold_min, begin));
    if done.is_err() {
        roll_back_open(db);
    }
    if outside_wal {
        if let Err(fail) = use_wal(db, "the database after an import") {
            // Every connection, this store's and other processes', still reads and writes
            // correctly; a writer opened later switches the file back.
            tracing::warn!(error = %fail.into_store(), "the database stays out of WAL mode for now");
        }
    }
    done
}

fn holds_events(db: &Connection) -> Result<bool, Fail> {
    Ok(db.query_row("SELECT EXISTS (SELECT 1 FROM view_events) OR EXISTS (SELECT 1 FROM late_events)", [], |r| {
        r.get(0)
    })?)
}

/// Switches `db` to a rollback journal if no other connection has the file open, without
/// waiting for one to close; whether it did.
fn leave_wal(db: &Connection, others: &OtherConns) -> Result<bool, Fail> {
    for pool in &others.readers {
        pool.close_idle();
    }
    // The attempt does not wait for another process; the connection's timeout is restored after.
    let waits: u64 = db.pragma_query_value(None, "busy_timeout", |r| r.get(0))?;
    db.busy_timeout(Duration::ZERO)?;
    let mode = db.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
    db.busy_timeout(Duration::from_millis(waits))?;
    let left = match mode {
        Ok(mode) => mode.eq_ignore_ascii_case("delete"),
        Err(e) if is_busy(&e) => false,
        Err(e) => return Err(e.into()),
    };
    if !left {
        tracing::debug!("another connection has the database open: the import goes through the WAL");
    }
    Ok(left)
}

/// Stores the batches, starting each transaction with `begin`.
fn store<B>(
    db: &Connection,
    ctx: &Ctx<'_>,
    account: i64,
    batches: &mut B,
    options: ImportOptions,
    id_fold_min: i64,
    begin: impl Fn(&Connection) -> Result<(), Fail>,
) -> Result<InsertOutcome, Fail>
where
    B: Stream<Item = Vec<ViewEvent>> + Unpin,
{
    begin(db)?;
    let bulk = options.unique_ids && !holds_events(db)?;
    let check = if bulk { IdCheck::Deferred } else { IdCheck::Claim { fold_min: id_fold_min } };
    let mut total = InsertOutcome::default();
    let mut since_commit = 0usize;
    // This thread is the writer's blocking thread: waiting here for the next batch is what it
    // is for.
    while let Some(batch) = futures::executor::block_on(batches.next()) {
        ctx.check()?;
        let outcome = events::insert(db, ctx, account, &batch, check)?.outcome;
        total.inserted += outcome.inserted;
        total.duplicates += outcome.duplicates;
        since_commit += batch.len();
        if !bulk && since_commit >= options.per_commit {
            commit(db)?;
            begin(db)?;
            since_commit = 0;
        }
    }
    if bulk {
        match ids::fill(db, account) {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "an event id repeats within an import that promised unique ids; none of it was stored".into(),
                )
                .into())
            }
            other => {
                other?;
            }
        }
    }
    commit(db)?;
    // An import into a store that held later events left its older ones late: folded now, in
    // one pass over the table, rather than by the next server to compact the store.
    if !bulk {
        begin(db)?;
        let folded = late::fold(db, account)?;
        commit(db)?;
        if folded > 0 {
            tracing::info!(folded, "moved the import's late events into the time-ordered table");
        }
    }
    Ok(total)
}
