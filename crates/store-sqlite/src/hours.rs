//! Events per account and hour of `viewed`: what makes counting a long range cheap.
//!
//! The first page of a query answers `totalCount`, the number of events of its range. Counting a
//! month of a busy account row by row reads tens of thousands of rows for every first page; the
//! `event_hours` table (migration 3) holds how many events each hour has, kept by the transaction
//! that inserts them. A count of the latest snapshot sums the whole hours inside the range and
//! counts only the rows of the two partial hours at its ends. A count of an older snapshot (a
//! query whose first page was answered before newer events came in) cannot use the sums, which
//! hold the newer events too, and counts row by row as before.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use viewlog_store::hours::{hour_of, whole_hours, HOUR};

use crate::error::Fail;

/// Adds inserted events, given by their `viewed`, to their hours' counts.
pub(crate) fn add(tx: &Connection, account: i64, viewed: impl Iterator<Item = i64>) -> Result<(), Fail> {
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for v in viewed {
        *per_hour.entry(hour_of(v)).or_default() += 1;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO event_hours (account_id, hour, events) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account_id, hour) DO UPDATE SET events = events + excluded.events",
    )?;
    for (hour, n) in per_hour {
        stmt.execute(params![account, hour, n])?;
    }
    Ok(())
}

/// The SQL of [`migration_fill`]: every hour's count from the events already stored. The
/// integer division truncates toward zero, hence the adjustment for times before 1970.
pub(crate) const FILL: &str = "INSERT INTO event_hours (account_id, hour, events) \
     SELECT account_id, CASE WHEN viewed >= 0 THEN viewed / 3600 ELSE (viewed - 3599) / 3600 END AS h, count(*) \
     FROM view_events GROUP BY account_id, h";

/// How many of the account's events lie in `[start, end]`, with every stored event counted
/// (the caller has checked that the snapshot holds them all), in the caller's read
/// transaction. `scan` counts the rows of a sub-range one by one.
pub(crate) fn count(
    db: &Connection,
    account: i64,
    start: i64,
    end: i64,
    scan: impl Fn(i64, i64) -> Result<u64, Fail>,
) -> Result<u64, Fail> {
    let Some((first, past)) = whole_hours(start, end) else {
        return scan(start, end);
    };
    let sum: i64 = db
        .prepare_cached(
            "SELECT coalesce(sum(events), 0) FROM event_hours WHERE account_id = ?1 AND hour >= ?2 AND hour < ?3",
        )?
        .query_row(params![account, first, past], |r| r.get(0))?;
    let mut total = sum.max(0) as u64;
    let head_end = first * HOUR - 1;
    if start <= head_end {
        total += scan(start, head_end)?;
    }
    let tail_start = past * HOUR;
    if tail_start <= end {
        total += scan(tail_start, end)?;
    }
    Ok(total)
}
