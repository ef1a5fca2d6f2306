//! Events per account and hour of `viewed`: what makes counting a long range cheap.
//!
//! The first page of a query answers `totalCount`, the number of events of its range. Counting a
//! month of a busy account row by row reads tens of thousands of rows for every first page; the
//! `event_hours` table (migration 3) holds how many events each hour has, kept by the transaction
//! that inserts them. A count of the latest snapshot sums the whole hours inside the range and
//! counts only the rows of the two partial hours at its ends. A count of an older snapshot (a
//! query whose first page was answered before newer events came in) cannot use the sums, which
//! hold the newer events too, and counts row by row as before.
//!
//! `event_days` (migration 6) holds the same counts per day: a month's count sums 30 rows
//! instead of 720, a year's 365 instead of 8,760. A range's whole days come from the days, the
//! whole hours of its partial first and last days from the hours, and only the seconds of its
//! partial first and last hours from the rows.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use viewlog_store::hours::{day_of, hour_of, whole_days, whole_hours, DAY, HOUR};

use crate::error::Fail;

/// Adds inserted events, given by their `viewed`, to their hours' and days' counts.
pub(crate) fn add(tx: &Connection, account: i64, viewed: impl Iterator<Item = i64>) -> Result<(), Fail> {
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for v in viewed {
        *per_hour.entry(hour_of(v)).or_default() += 1;
    }
    let mut per_day: BTreeMap<i64, i64> = BTreeMap::new();
    for (&hour, &n) in &per_hour {
        *per_day.entry(day_of(hour * HOUR)).or_default() += n;
    }
    add_counts(tx, "event_hours", "hour", account, per_hour)?;
    add_counts(tx, "event_days", "day", account, per_day)
}

/// Adds each `(bucket, events)` of `counts` to `table` (`event_hours` or `event_days`), whose
/// bucket column is `column`.
fn add_counts(
    tx: &Connection,
    table: &'static str,
    column: &'static str,
    account: i64,
    counts: BTreeMap<i64, i64>,
) -> Result<(), Fail> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO {table} (account_id, {column}, events) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account_id, {column}) DO UPDATE SET events = events + excluded.events"
    ))?;
    for (bucket, n) in counts {
        stmt.execute(params![account, bucket, n])?;
    }
    Ok(())
}

/// Fills `event_days` from `event_hours` (migration 6).
pub(crate) const FILL_DAYS: &str = "INSERT INTO event_days (account_id, day, events) \
     SELECT account_id, CASE WHEN hour >= 0 THEN hour / 24 ELSE (hour - 23) / 24 END AS d, sum(events) \
     FROM event_hours GROUP BY account_id, d";

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
    const DAYS: &str =
        "SELECT coalesce(sum(events), 0) FROM event_days WHERE account_id = ?1 AND day >= ?2 AND day < ?3";
    const HOURS: &str =
        "SELECT coalesce(sum(events), 0) FROM event_hours WHERE account_id = ?1 AND hour >= ?2 AND hour < ?3";
    let Some((first, past)) = whole_days(start, end) else {
        return count_by_hours(db, account, start, end, &scan);
    };
    let sum: i64 = db.prepare_cached(DAYS)?.query_row(params![account, first, past], |r| r.get(0))?;
    let mut total = sum.max(0) as u64;
    total += count_by_hours(db, account, start, first * DAY - 1, &scan)?;
    total += count_by_hours(db, account, past * DAY, end, &scan)?;
    return Ok(total);

    /// The range's whole hours from their sums, its partial ends row by row; 0 for an empty range.
    fn count_by_hours(
        db: &Connection,
        account: i64,
        start: i64,
        end: i64,
        scan: &impl Fn(i64, i64) -> Result<u64, Fail>,
    ) -> Result<u64, Fail> {
        if start > end {
            return Ok(0);
        }
        let Some((first, past)) = whole_hours(start, end) else {
            return scan(start, end);
        };
        let sum: i64 = db.prepare_cached(HOURS)?.query_row(params![account, first, past], |r| r.get(0))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts from the sums agree with counting the events one by one, for ranges starting and
    /// ending on, just before and just after day and hour boundaries, before and after 1970.
    #[test]
    fn counts_from_days_and_hours_agree_with_counting_events() {
        let db = Connection::open_in_memory().expect("db");
        db.execute_batch(crate::schema::MIGRATIONS[2]).expect("event_hours");
        db.execute_batch(crate::schema::MIGRATIONS[5]).expect("event_days");
        let marks: Vec<i64> = [-2 * DAY, -DAY, -HOUR, 0, HOUR, 5 * HOUR, DAY, DAY + 7 * HOUR, 3 * DAY]
            .iter()
            .flat_map(|m| [m - 1, *m, m + 1, m + 1_800])
            .collect();
        // Events on every mark, two on some, in two transactions; another account's in between.
        let viewed: Vec<i64> = marks.iter().chain(marks.iter().step_by(3)).copied().collect();
        add(&db, 1, viewed[..10].iter().copied()).expect("add");
        add(&db, 2, marks.iter().copied()).expect("other account");
        add(&db, 1, viewed[10..].iter().copied()).expect("add");
        let scan = |start: i64, end: i64| Ok(viewed.iter().filter(|v| (start..=end).contains(v)).count() as u64);
        for &start in &marks {
            for &end in &marks {
                let got = count(&db, 1, start, end, scan).expect("count");
                let expected = if start <= end { scan(start, end).expect("scan") } else { 0 };
                assert_eq!(got, expected, "[{start}, {end}]");
            }
        }
    }
}
