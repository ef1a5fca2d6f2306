//! Event ids: what makes ingest idempotent (migration 11).
//!
//! An event id is stored once per account: an event whose id the account holds is a duplicate,
//! counted and not stored. Ids are whatever the sender made them, usually hashes or random
//! strings, so any b-tree of them is in random order: a batch of 10,000 new events changes a
//! page of it per event, wherever it is. Until migration 11 that b-tree was a unique index on
//! `view_events` (and on `late_events`), and it was most of what a batch wrote: some 4,700 of
//! the 5,800 pages a batch changed in a store of a million events, each written to the
//! write-ahead log at the commit and into the database at the checkpoint.
//!
//! The ids now live in two tables of their own, split like the events are (`late.rs`):
//! - `recent_ids`: the ids stored since the account's last fold, a small table, so that a batch
//!   changes its few pages rather than thousands;
//! - `event_ids`: all the others, read to look for an id, written only by a fold.
//!
//! An insert claims each event's id ([`Claims::claim`]): a lookup in `event_ids` (a read) and
//! an insert into `recent_ids` that a repeated id (also one repeated within the batch) leaves
//! unchanged. `accounts.recent_ids` counts an account's recent ids. Once they reach an eighth of
//! its folded ones ([`fold_at`]), the insert that gets there **folds** them: it moves them into
//! `event_ids` in key order, in the same transaction, so that each page of `event_ids` is
//! written once for all of them. An eighth balances the two costs: a batch rewrites about all of
//! `recent_ids` (bigger the later the fold), and a fold rewrites about all of the account's
//! `event_ids` (rarer the later the fold).
//!
//! The rows of `view_events` and `late_events` carry their ids too (a page shows them); no
//! index on either table holds them. A bulk import into an empty store claims nothing while it
//! loads and fills `event_ids` at the end from the rows it stored ([`fill`]), which is a sort.

use rusqlite::{params, CachedStatement, Connection, OptionalExtension};
use viewlog_store::StoreError;

use crate::error::Fail;

/// Recent ids an account may hold before a fold is due, however few its folded ones: the
/// default of `SqliteOptions::id_fold_min`.
pub(crate) const FOLD_MIN: i64 = 50_000;

/// The most recent ids an account holds before a fold is due, however many its folded ones.
pub(crate) const FOLD_MAX: i64 = 1_000_000;

/// An insert's claims on the ids of its events, in its write transaction.
pub(crate) struct Claims<'c> {
    folded: CachedStatement<'c>,
    add: CachedStatement<'c>,
    /// How many ids this insert claimed.
    pub(crate) added: i64,
}

impl<'c> Claims<'c> {
    /// Prepares the claims of an insert in the write transaction `tx`.
    pub(crate) fn new(tx: &'c Connection) -> Result<Claims<'c>, Fail> {
        Ok(Claims { folded: tx.prepare_cached(FOLDED)?, add: tx.prepare_cached(ADD)?, added: 0 })
    }

    /// Claims `event_id` for `account`: whether the account did not hold it (it does now).
    pub(crate) fn claim(&mut self, account: i64, event_id: &str) -> Result<bool, Fail> {
        if self.folded.query_row(params![account, event_id], |r| r.get::<_, bool>(0))? {
            return Ok(false);
        }
        let added = self.add.execute(params![account, event_id])? == 1;
        self.added += i64::from(added);
        Ok(added)
    }

    /// Counts this insert's claims in `accounts.recent_ids`; whether a fold of the account's
    /// recent ids is due, the fewest that make one due being `min` (see [`fold_at`]).
    /// `last_seq` is the account's after the insert: its number of events, as seqs are dense.
    pub(crate) fn finish(self, tx: &Connection, account: i64, last_seq: i64, min: i64) -> Result<bool, Fail> {
        if self.added == 0 {
            return Ok(false);
        }
        let recent: i64 = tx
            .prepare_cached("UPDATE accounts SET recent_ids = recent_ids + ?2 WHERE id = ?1 RETURNING recent_ids")?
            .query_row(params![account, self.added], |r| r.get(0))?;
        Ok(recent >= fold_at(last_seq - recent, min))
    }
}

/// Whether the account's folded ids hold an id.
pub(crate) const FOLDED: &str = "SELECT EXISTS (SELECT 1 FROM event_ids WHERE account_id = ?1 AND event_id = ?2)";

/// Adds a recent id; one the table holds changes no row.
pub(crate) const ADD: &str = "INSERT INTO recent_ids (account_id, event_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

/// A fold's move, in key order (the plan test in `events.rs` holds it to reading the primary
/// key, without sorting).
pub(crate) const FOLD: &str = "INSERT INTO event_ids (account_id, event_id) \
     SELECT account_id, event_id FROM recent_ids WHERE account_id = ?1 ORDER BY account_id, event_id";

/// How many recent ids an account with `folded` folded ones may hold before a fold is due: an
/// eighth of them, at least `min` and at most [`FOLD_MAX`] (or `min`, if that is more).
pub(crate) fn fold_at(folded: i64, min: i64) -> i64 {
    (folded / 8).min(FOLD_MAX).max(min)
}

/// Moves the account's recent ids into `event_ids`, in the caller's write transaction; returns
/// how many moved.
pub(crate) fn fold(tx: &Connection, account: i64) -> Result<u64, Fail> {
    let moved = tx.prepare_cached(FOLD)?.execute([account])?;
    let removed = tx.prepare_cached("DELETE FROM recent_ids WHERE account_id = ?1")?.execute([account])?;
    if moved != removed {
        return Err(StoreError::Corrupt(format!(
            "folding account {account}'s recent event ids moved {moved} but removed {removed}"
        ))
        .into());
    }
    let noted: Option<i64> = tx
        .prepare_cached("UPDATE accounts SET recent_ids = 0 WHERE id = ?1 RETURNING ?2 - recent_ids")?
        .query_row(params![account, moved as i64], |r| r.get(0))
        .optional()?;
    if noted.is_some_and(|off| off != 0) {
        tracing::warn!(account, moved, "the count of recent event ids disagreed with the table; folded all");
    }
    Ok(moved as u64)
}

/// Fills `event_ids` with the ids of the account's stored events, for a bulk import that
/// claimed none while it loaded into a store without events. Fails with a unique violation if
/// an id repeats.
pub(crate) fn fill(tx: &Connection, account: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO event_ids (account_id, event_id) \
         SELECT account_id, event_id FROM view_events WHERE account_id = ?1 \
         UNION ALL SELECT account_id, event_id FROM late_events WHERE account_id = ?1 \
         ORDER BY 1, 2",
    )?
    .execute([account])
}
