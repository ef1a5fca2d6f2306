//! Late events: those viewed well before the newest event their account holds (migration 10).
//!
//! `view_events` is clustered by account and time, so an event viewed last March, arriving
//! after December's, lands in the middle of the table: a page of it changed, written to the
//! write-ahead log at the commit and into the database at the checkpoint. A batch spread over a
//! year (a backfill) changes one page per event, some 8 KiB written for a row of 800 bytes,
//! which made such a batch four to five times slower than one viewed in the last minutes.
//!
//! Such an event goes to `late_events` instead, clustered by account and seq: appended in
//! arrival order, whatever its time (its index by time is small while the table is). Every read merges the two tables (`events.rs`): a page reads both ranges in
//! time order, a count adds both, a row found by the text index is looked for in both. A
//! **fold** later moves an account's late events into `view_events` in one transaction, in time
//! order, so that each page of the table they land in is written once for all of them:
//! - when the account has taken no late event since the compaction cutoff (the server's
//!   compaction, a few minutes after a backfill ends: [`to_fold`]);
//! - when it holds as many as a quarter of its other events ([`fold_at`]): the insert that
//!   crosses that line asks for a fold right away (`SqliteStore::insert_events`), so that a long
//!   backfill folds as it goes, each fold writing the table once for a quarter of it anew;
//! - at the end of an import (`import.rs`).
//!
//! An event id is stored once per account whichever table holds the event: ids are claimed in
//! tables of their own (`ids.rs`, migration 11). The hour and day sums count events wherever
//! they are, and seqs are the account's, so a fold changes no count, no seq and no page token.

use rusqlite::{params, Connection, OptionalExtension};
use viewlog_store::StoreError;

use crate::error::Fail;

/// An event viewed more than this many seconds before its account's newest event (or before
/// now, if that is in the future) is late. Events a feed reports minutes after their view go to
/// the end of `view_events`, where appending is cheap.
pub(crate) const SLACK: i64 = 3600;

/// A fold is due once an account holds at least this many late events, or a quarter of its
/// other events if that is more, up to [`FOLD_MAX`] (see [`fold_at`]): the default of
/// `SqliteOptions::late_fold_min`.
pub(crate) const FOLD_MIN: i64 = 100_000;

/// The most late events an account holds before a fold is due, however big its table: a fold
/// writes most of the account's pages, in one transaction that ingest waits for.
pub(crate) const FOLD_MAX: i64 = 1_000_000;

/// The columns both tables share, in the order [`INSERT_MAIN`] and [`INSERT_LATE`] bind them.
macro_rules! columns {
    () => {
        "account_id, viewed, seq, event_id, content_viewed, discovery_case, message_date, viewer_ip, message_id, \
         action, case_id, record"
    };
}

/// The insert of an event that is not late (its id claimed first: `ids.rs`).
pub(crate) const INSERT_MAIN: &str =
    concat!("INSERT INTO view_events (", columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");

/// The insert of a late event (its id claimed first: `ids.rs`).
pub(crate) const INSERT_LATE: &str =
    concat!("INSERT INTO late_events (", columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");

/// A fold's move, in time order (the plan test in `events.rs` holds it to the time index).
pub(crate) const FOLD: &str = concat!(
    "INSERT INTO view_events (",
    columns!(),
    ") SELECT ",
    columns!(),
    " FROM late_events WHERE account_id = ?1 ORDER BY account_id, viewed, seq"
);

/// Where one insert puts each event of its batch.
pub(crate) struct Router {
    /// Events viewed before this are late; `None` while the account's table is empty.
    edge: Option<i64>,
    /// Late events this insert added.
    pub(crate) added: i64,
}

impl Router {
    /// The routing of an insert for `account` at `now`, in the caller's write transaction.
    pub(crate) fn new(tx: &Connection, account: i64, now: i64) -> Result<Router, Fail> {
        let newest: Option<i64> = tx
            .prepare_cached("SELECT max(viewed) FROM view_events WHERE account_id = ?1")?
            .query_row([account], |r| r.get(0))?;
        Ok(Router { edge: newest.map(|newest| newest.min(now).saturating_sub(SLACK)), added: 0 })
    }

    /// Whether an event viewed at `viewed` is late.
    pub(crate) fn is_late(&self, viewed: i64) -> bool {
        self.edge.is_some_and(|edge| viewed < edge)
    }

    /// Records this insert's late events in `late_accounts`; how many the account now holds,
    /// if it took any, and how many it holds in `view_events` (see [`fold_at`]). `last_seq` is
    /// the account's after the insert.
    pub(crate) fn finish(&self, tx: &Connection, account: i64, last_seq: i64, now: i64) -> Result<Option<Held>, Fail> {
        if self.added == 0 {
            return Ok(None);
        }
        let held: i64 = tx
            .prepare_cached(
                "INSERT INTO late_accounts (account_id, events, last_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account_id) DO UPDATE SET events = events + excluded.events, last_at = excluded.last_at \
                 RETURNING events",
            )?
            .query_row(params![account, self.added, now], |r| r.get(0))?;
        Ok(Some(Held { late: held, others: last_seq - held }))
    }
}

/// How many events an account holds in each table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    /// In `late_events`.
    pub(crate) late: i64,
    /// In `view_events` (seqs are dense: the account's last seq less its late events).
    pub(crate) others: i64,
}

impl Held {
    /// Whether a fold is due, the fewest late events that make one due being `min`.
    pub(crate) fn fold_due(self, min: i64) -> bool {
        self.late >= fold_at(self.others, min)
    }
}

/// Whether the account holds late events viewed in `[start, end]`: whether a read of that range
/// must merge the two tables.
pub(crate) fn in_range(db: &Connection, account: i64, start: i64, end: i64) -> Result<bool, Fail> {
    Ok(db
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM late_events WHERE account_id = ?1 AND viewed >= ?2 AND viewed <= ?3)",
        )?
        .query_row(params![account, start, end], |r| r.get(0))?)
}

/// How many late events an account with `others` events in `view_events` may hold before a
/// fold is due: a quarter of them, at least `min` and at most [`FOLD_MAX`] (or `min`, if that
/// is more). A fold writes about every page of the account's table, so it is worth it once per
/// a quarter of the table's events: some 3 KiB written per late event, against a page of 8 KiB
/// each without.
pub(crate) fn fold_at(others: i64, min: i64) -> i64 {
    (others / 4).min(FOLD_MAX).max(min)
}

/// The accounts whose late events are due a fold: those that took none since `quiet_since`,
/// and those holding enough of them ([`Held::fold_due`], the fewest being `min`).
pub(crate) fn to_fold(db: &Connection, quiet_since: i64, min: i64) -> Result<Vec<i64>, Fail> {
    let mut stmt = db.prepare_cached(
        "SELECT l.account_id, l.events, l.last_at, a.last_seq FROM late_accounts l \
         JOIN accounts a ON a.id = l.account_id ORDER BY l.account_id",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)))?;
    let mut due = Vec::new();
    for row in rows {
        let (account, events, last_at, last_seq) = row?;
        if last_at < quiet_since || (Held { late: events, others: last_seq - events }).fold_due(min) {
            due.push(account);
        }
    }
    Ok(due)
}

/// Moves the account's late events into `view_events`, in the caller's write transaction;
/// returns how many moved.
pub(crate) fn fold(tx: &Connection, account: i64) -> Result<u64, Fail> {
    let moved = tx.prepare_cached(FOLD)?.execute([account])?;
    let removed = tx.prepare_cached("DELETE FROM late_events WHERE account_id = ?1")?.execute([account])?;
    if moved != removed {
        return Err(StoreError::Corrupt(format!(
            "folding account {account}'s late events moved {moved} rows but removed {removed}"
        ))
        .into());
    }
    let noted: Option<i64> = tx
        .prepare_cached("DELETE FROM late_accounts WHERE account_id = ?1 RETURNING events")?
        .query_row([account], |r| r.get(0))
        .optional()?;
    if moved > 0 && noted != Some(moved as i64) {
        tracing::warn!(account, moved, noted, "the count of late events disagreed with the table; folded all");
    }
    Ok(moved as u64)
}
