//! View events: ingest, paging, counting and reading in seq order.
//!
//! A page or count without a text filter reads the primary key's range; with one, the text index
//! ([`segments`]) finds the matching events and the rows are then read by key. Counting the
//! latest snapshot sums whole hours ([`hours`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};
use viewlog_store::{Direction, EventFilter, InsertOutcome, PageRequest, StoreError, StoredEvent, ViewEvent};

use crate::conn::{Ctx, ReadTx};
use crate::error::Fail;
use crate::records::{self, PageRows};
use crate::search::{Search, Sink};
use crate::segments;
use crate::{hours, ids, late, text};

/// How many rows an ingest inserts between two cancellation checks.
const CHECK_EVERY: usize = 1024;

/// The conditions every event query shares after the account (and, paging, the cursor):
/// range and snapshot.
const FILTER: &str = " AND viewed >= :start AND viewed <= :end AND seq <= :snapshot";

/// Batches of at least this many events have their text index built on a second thread while
/// their rows are inserted (building it is about a sixth of an ingest's work).
pub(crate) const BUILD_AHEAD_MIN: usize = 2048;

/// What an insert did.
pub(crate) struct Inserted {
    /// The events stored and those already stored.
    pub(crate) outcome: InsertOutcome,
    /// How many late events the account holds now, if this insert added any.
    pub(crate) late: Option<late::Held>,
}

/// How an insert treats the ids of its events.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdCheck {
    /// Claims each id ([`ids::Claims`]): an id the account holds is a duplicate. The account's
    /// recent ids are folded once they reach [`ids::fold_at`], the fewest being `fold_min`.
    Claim {
        /// See `SqliteOptions::id_fold_min`.
        fold_min: i64,
    },
    /// Claims none: a bulk import into a store without events, whose ids are unique and are
    /// put in `event_ids` at its end ([`ids::fill`]).
    Deferred,
}

/// Inserts a batch in the caller's transaction; new events take the account's next seqs. An
/// event viewed well before the account's newest goes to `late_events` ([`late`]).
pub(crate) fn insert(
    tx: &Connection,
    ctx: &Ctx<'_>,
    account: i64,
    events: &[ViewEvent],
    check: IdCheck,
) -> Result<Inserted, Fail> {
    let last_seq: i64 = tx
        .prepare_cached("SELECT last_seq FROM accounts WHERE id = ?1")?
        .query_row([account], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    std::thread::scope(|scope| {
        // Built as if every event were new: used if they all are, which is the common case.
        // Should no thread be had, the index is built here, event by event.
        let built = (events.len() >= BUILD_AHEAD_MIN)
            .then(|| {
                std::thread::Builder::new()
                    .name("text-index".into())
                    .spawn_scoped(scope, || index_of(events.iter(), last_seq + 1))
                    .ok()
            })
            .flatten();
        let ahead = built.is_some();
        let mut outcome = InsertOutcome::default();
        let mut next = last_seq + 1;
        let now = viewlog_protocol::dates::unix_now();
        let mut router = late::Router::new(tx, account, now)?;
        let mut claims = ids::Claims::new(tx)?;
        let mut to_main = tx.prepare_cached(late::INSERT_MAIN)?;
        let mut to_late = tx.prepare_cached(late::INSERT_LATE)?;
        let mut text_index = segments::Builder::default();
        let mut viewed = Vec::with_capacity(events.len());
        let mut record = Vec::with_capacity(512);
        let mut new = Vec::with_capacity(if ahead { events.len() } else { 0 });
        for (i, e) in events.iter().enumerate() {
            if i % CHECK_EVERY == CHECK_EVERY - 1 {
                ctx.check()?;
            }
            // An id the account holds, also from earlier in this batch, is a duplicate.
            if let IdCheck::Claim { .. } = check {
                if !claims.claim(account, &e.event_id)? {
                    if ahead {
                        new.push(false);
                    }
                    outcome.duplicates += 1;
                    continue;
                }
            }
            let is_late = router.is_late(e.viewed);
            let record = records::render(e, &mut record)?;
            let stmt = if is_late { &mut to_late } else { &mut to_main };
            stmt.execute(params![
                account,
                e.viewed,
                next,
                e.event_id,
                e.content_viewed,
                e.discovery_case,
                e.message_date,
                e.viewer_ip,
                e.message_id,
                e.action,
                e.case_id,
                record,
            ])?;
            if ahead {
                new.push(true);
            }
            if is_late {
                router.added += 1;
            }
            if !ahead {
                text_index.push(e.viewed, next, fields(e))?;
            }
            viewed.push(e.viewed);
            outcome.inserted += 1;
            next += 1;
        }
        if let Some(built) = built {
            let built =
                built.join().map_err(|_| StoreError::Backend("building the text index of a batch failed".into()))?;
            text_index = if outcome.duplicates == 0 {
                built?
            } else {
                index_of(events.iter().zip(&new).filter(|(_, new)| **new).map(|(e, _)| e), last_seq + 1)?
            };
        }
        let mut held = None;
        if outcome.inserted > 0 {
            tx.prepare_cached("UPDATE accounts SET last_seq = ?2 WHERE id = ?1")?
                .execute(params![account, next - 1])?;
            hours::add(tx, account, viewed.into_iter())?;
            text_index.write(tx, ctx, account, now)?;
            held = router.finish(tx, account, next - 1, now)?;
        }
        if let IdCheck::Claim { fold_min } = check {
            if claims.finish(tx, account, next - 1, fold_min)? {
                let moved = ids::fold(tx, account)?;
                tracing::debug!(account, moved, "folded recent event ids");
            }
        }
        Ok(Inserted { outcome, late: held })
    })
}

/// The searchable fields of an event, in the text index's order.
fn fields(e: &ViewEvent) -> [&str; 4] {
    [&e.viewer, &e.from, &e.to, &e.subject]
}

/// The text index of `events`, stored with seqs from `first_seq` on.
fn index_of<'e>(events: impl Iterator<Item = &'e ViewEvent>, first_seq: i64) -> Result<segments::Builder, Fail> {
    let mut builder = segments::Builder::default();
    for (seq, e) in (first_seq..).zip(events) {
        builder.push(e.viewed, seq, fields(e))?;
    }
    Ok(builder)
}

/// The account's snapshot bound: its last assigned seq.
pub(crate) fn snapshot(db: &Connection, account: i64) -> Result<i64, Fail> {
    Ok(db
        .prepare_cached("SELECT last_seq FROM accounts WHERE id = ?1")?
        .query_row([account], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The `WHERE` conditions of a filter, `cursor` (if any) right after the account: SQLite's
/// planner takes the first usable bound on `viewed` it meets as the start of the range scan,
/// and for a page that must be the cursor (the plan test below holds it to that).
fn filter_sql(cursor: &str) -> String {
    let mut sql = String::with_capacity(200);
    sql.push_str("account_id = :account");
    sql.push_str(cursor);
    sql.push_str(FILTER);
    sql
}

/// The parameters [`filter_sql`] binds.
fn filter_params<'a>(
    account: &'a i64,
    start: &'a i64,
    end: &'a i64,
    snapshot: &'a i64,
) -> Vec<(&'static str, &'a dyn ToSql)> {
    vec![(":account", account), (":start", start), (":end", end), (":snapshot", snapshot)]
}

/// The query of one page: keyset paging with row values, so that the cursor starts a range
/// of the primary key `(account_id, viewed, seq)` and no row before it is read. With `late`,
/// the same range of `late_events` (its time index) merged in: SQLite runs the two as
/// co-routines and merges their ordered rows, stopping at the limit.
fn page_sql(columns: &str, direction: Direction, cursor: bool, late: bool) -> String {
    let (after, order) = match direction {
        Direction::Older => (" AND (viewed, seq) < (:cursor_viewed, :cursor_seq)", " ORDER BY viewed DESC, seq DESC"),
        Direction::Newer => (" AND (viewed, seq) > (:cursor_viewed, :cursor_seq)", " ORDER BY viewed ASC, seq ASC"),
    };
    let filter = filter_sql(if cursor { after } else { "" });
    if late {
        format!(
            "SELECT {columns} FROM view_events WHERE {filter} \
             UNION ALL SELECT {columns} FROM late_events WHERE {filter}{order} LIMIT :limit"
        )
    } else {
        format!("SELECT {columns} FROM view_events WHERE {filter}{order} LIMIT :limit")
    }
}

/// One page, newest first, read into `O` (events, or their records as the wire shows them).
pub(crate) fn page<O: PageRows>(
    db: &Connection,
    ctx: &Ctx<'_>,
    account: i64,
    request: &PageRequest,
) -> Result<O, Fail> {
    if request.limit == 0 {
        return Ok(O::with_capacity(0));
    }
    let filter = &request.filter;
    if let Some(needle) = text::needle(filter.text.as_deref()) {
        return text_page(db, ctx, account, request, &needle);
    }
    let limit = i64::from(request.limit);
    let cursor = request.cursor.map(|c| (c.viewed, c.seq));
    // The range clamped to the cursor too: should the planner ever start from the range's
    // bound instead, it still starts at the cursor's second.
    let (start, end) = match (request.direction, cursor) {
        (Direction::Older, Some((viewed, _))) => (filter.start, filter.end.min(viewed)),
        (Direction::Newer, Some((viewed, _))) => (filter.start.max(viewed), filter.end),
        (_, None) => (filter.start, filter.end),
    };
    let mut params = filter_params(&account, &start, &end, &filter.snapshot);
    if let Some((viewed, seq)) = &cursor {
        params.push((":cursor_viewed", viewed));
        params.push((":cursor_seq", seq));
    }
    params.push((":limit", &limit));
    let late = late::in_range(db, account, start, end)?;
    let sql = page_sql(O::COLUMNS, request.direction, cursor.is_some(), late);
    let mut stmt = db.prepare_cached(&sql)?;
    let mut rows = stmt.query(params.as_slice())?;
    let mut out = O::with_capacity(request.limit as usize);
    while let Some(row) = rows.next()? {
        out.push_row(row)?;
    }
    if request.direction == Direction::Newer {
        // Read ascending from the cursor; the caller gets newest-first like every page.
        out.reverse();
    }
    Ok(out)
}

/// One page of a text filter: the text index finds the matches, a day at a time from the
/// cursor on, until a page is full; their rows are then read by primary key.
fn text_page<O: PageRows>(
    db: &Connection,
    ctx: &Ctx<'_>,
    account: i64,
    request: &PageRequest,
    needle: &str,
) -> Result<O, Fail> {
    let filter = &request.filter;
    let search = Search {
        needle,
        start: filter.start,
        end: filter.end,
        snapshot: filter.snapshot,
        cursor: request.cursor.map(|c| (c.viewed, c.seq)),
        direction: request.direction,
    };
    let limit = request.limit as usize;
    let mut sink = Collect { keys: Vec::new(), limit };
    search.run(db, ctx, account, &mut sink)?;
    let mut keys = sink.keys;
    // Newest first; the page is the `limit` nearest the cursor.
    keys.sort_unstable_by(|a, b| b.cmp(a));
    match request.direction {
        Direction::Older => keys.truncate(limit),
        Direction::Newer => {
            let skip = keys.len().saturating_sub(limit);
            keys.drain(..skip);
        }
    }
    read_by_keys(db, account, keys)
}

/// The events of `keys` (`(viewed, seq)`, found by the text index), in that order: each from
/// `view_events`, or else from `late_events`.
fn read_by_keys<O: PageRows>(db: &Connection, account: i64, keys: Vec<(i64, i64)>) -> Result<O, Fail> {
    let mut main = db.prepare_cached(O::BY_KEY)?;
    let mut from_late = None;
    let mut out = O::with_capacity(keys.len());
    for (viewed, seq) in keys {
        let mut rows = main.query(params![account, viewed, seq])?;
        if let Some(row) = rows.next()? {
            out.push_row(row)?;
            continue;
        }
        let stmt = match &mut from_late {
            Some(stmt) => stmt,
            None => from_late.insert(db.prepare_cached(O::BY_KEY_LATE)?),
        };
        let mut rows = stmt.query(params![account, viewed, seq])?;
        match rows.next()? {
            Some(row) => out.push_row(row)?,
            None => {
                return Err(StoreError::Corrupt(format!(
                    "the text index holds event (viewed {viewed}, seq {seq}) that the events tables lack"
                ))
                .into())
            }
        }
    }
    Ok(out)
}

/// The index [`after`] reads. Not made by a migration: it costs ingest some 10% of its speed
/// (an extra b-tree insert per event, measured by the `measure_seq_index_cost` test), and only
/// copying a store needs it, so the first `events_after` creates it (the store's `Inner`
/// remembers that it did). From then on ingest maintains it. Seqs only grow, so its entries go
/// to the end of the account's range.
pub(crate) const SEQ_INDEX: &str = "CREATE INDEX IF NOT EXISTS view_events_by_seq ON view_events (account_id, seq)";

/// The query of [`after`] (the columns [`records::read_event`] reads): a range of [`SEQ_INDEX`],
/// in its order, merged with the same range of `late_events`' primary key.
const AFTER: &str = concat!(
    "SELECT ",
    records::event_columns!(),
    " FROM view_events WHERE account_id = ?1 AND seq > ?2 UNION ALL SELECT ",
    records::event_columns!(),
    " FROM late_events WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
);

/// At most `limit` of the account's events with a seq above `after_seq`, in seq order.
pub(crate) fn after(db: &Connection, account: i64, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, Fail> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = db.prepare_cached(AFTER)?;
    let mut rows = stmt.query(params![account, after_seq, i64::from(limit)])?;
    let mut out = Vec::with_capacity(limit.min(1000) as usize);
    while let Some(row) = rows.next()? {
        out.push(records::read_event(row)?);
    }
    Ok(out)
}

/// How many events match: with a text filter, the text index's matches; otherwise, for the
/// latest snapshot, the hour sums and the rows of the range's partial hours; for an older one,
/// the rows of the range. One read transaction, so that the snapshot check and the sums agree.
pub(crate) fn count(db: &Connection, ctx: &Ctx<'_>, account: i64, filter: &EventFilter) -> Result<u64, Fail> {
    let _tx = ReadTx::begin(db)?;
    count_in(db, ctx, account, filter, snapshot(db, account)?)
}

/// A query's start in one read transaction (see `Store::first_page`): the snapshot, the total
/// and the first page, read into `O`.
pub(crate) fn first_page<O: PageRows>(
    db: &Connection,
    ctx: &Ctx<'_>,
    account: i64,
    filter: EventFilter,
    limit: u32,
) -> Result<(i64, u64, O), Fail> {
    let _tx = ReadTx::begin(db)?;
    let snapshot = snapshot(db, account)?;
    let filter = EventFilter { snapshot, ..filter };
    if let Some(needle) = text::needle(filter.text.as_deref()) {
        // One pass of the text index gives both the count and the newest matches (a count and
        // then a page would scan the range twice when the term is rare).
        let search = Search {
            needle: &needle,
            start: filter.start,
            end: filter.end,
            snapshot,
            cursor: None,
            direction: Direction::Older,
        };
        let limit = limit as usize;
        let mut sink = CountAndNewest { total: 0, newest: BinaryHeap::with_capacity(limit.min(1024) + 1), limit };
        search.run(db, ctx, account, &mut sink)?;
        let mut keys: Vec<(i64, i64)> = sink.newest.into_iter().map(|Reverse(key)| key).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        return Ok((snapshot, sink.total, read_by_keys(db, account, keys)?));
    }
    let total = count_in(db, ctx, account, &filter, snapshot)?;
    let request = PageRequest { filter, cursor: None, direction: Direction::Older, limit };
    Ok((snapshot, total, page(db, ctx, account, &request)?))
}

/// [`count`] inside the caller's read transaction, in which the account's latest snapshot is
/// `latest`.
fn count_in(db: &Connection, ctx: &Ctx<'_>, account: i64, filter: &EventFilter, latest: i64) -> Result<u64, Fail> {
    if let Some(needle) = text::needle(filter.text.as_deref()) {
        let search = Search {
            needle: &needle,
            start: filter.start,
            end: filter.end,
            snapshot: filter.snapshot,
            cursor: None,
            direction: Direction::Older,
        };
        let mut sink = Count(0);
        search.run(db, ctx, account, &mut sink)?;
        return Ok(sink.0);
    }
    let scan = |start: i64, end: i64| -> Result<u64, Fail> {
        let params = filter_params(&account, &start, &end, &filter.snapshot);
        let mut n: i64 = db.prepare_cached(COUNT)?.query_row(params.as_slice(), |r| r.get(0))?;
        if late::in_range(db, account, start, end)? {
            n += db.prepare_cached(COUNT_LATE)?.query_row(params.as_slice(), |r| r.get::<_, i64>(0))?;
        }
        Ok(n.max(0) as u64)
    };
    if filter.snapshot >= latest {
        hours::count(db, account, filter.start, filter.end, scan)
    } else {
        scan(filter.start, filter.end)
    }
}

/// A page's matches: every one, a day at a time, until there are `limit`.
struct Collect {
    keys: Vec<(i64, i64)>,
    limit: usize,
}

impl Sink for Collect {
    fn wants_keys(&self) -> bool {
        true
    }
    fn found(&mut self, viewed: i64, seq: i64) {
        self.keys.push((viewed, seq));
    }
    fn counted(&mut self, _: u64) {}
    fn room(&self) -> usize {
        // Every match of a day is kept, then the newest `limit` of all: no more of one segment.
        self.limit
    }
    fn enough(&self) -> bool {
        self.keys.len() >= self.limit
    }
}

/// A first page's matches: all counted, the newest `limit` kept. Days come newest first, so
/// once `limit` are kept an older day's matches are only counted.
struct CountAndNewest {
    total: u64,
    newest: BinaryHeap<Reverse<(i64, i64)>>,
    limit: usize,
}

impl Sink for CountAndNewest {
    fn wants_keys(&self) -> bool {
        self.newest.len() < self.limit
    }
    fn found(&mut self, viewed: i64, seq: i64) {
        self.total += 1;
        if self.newest.len() >= self.limit && self.newest.peek().is_some_and(|Reverse(oldest)| *oldest >= (viewed, seq))
        {
            // Older than every one kept: it would be the one dropped.
            return;
        }
        self.newest.push(Reverse((viewed, seq)));
        if self.newest.len() > self.limit {
            self.newest.pop();
        }
    }
    fn counted(&mut self, n: u64) {
        self.total += n;
    }
    fn room(&self) -> usize {
        // Only the newest `limit` of all are kept: no more of one segment can be among them.
        self.limit
    }
    fn enough(&self) -> bool {
        false
    }
}

/// A count's matches.
struct Count(u64);

impl Sink for Count {
    fn wants_keys(&self) -> bool {
        false
    }
    fn found(&mut self, _: i64, _: i64) {
        self.0 += 1;
    }
    fn counted(&mut self, n: u64) {
        self.0 += n;
    }
    fn room(&self) -> usize {
        0
    }
    fn enough(&self) -> bool {
        false
    }
}

/// Counts the rows of a range one by one (the parameters of [`filter_params`]).
const COUNT: &str = "SELECT count(*) FROM view_events \
     WHERE account_id = :account AND viewed >= :start AND viewed <= :end AND seq <= :snapshot";

/// [`COUNT`] of `late_events` (its time index holds every column it reads).
const COUNT_LATE: &str = "SELECT count(*) FROM late_events \
     WHERE account_id = :account AND viewed >= :start AND viewed <= :end AND seq <= :snapshot";

#[cfg(test)]
mod tests {
    use super::*;

    /// `EXPLAIN QUERY PLAN` of `sql` (parameters left unbound), one detail per line.
    fn explain(db: &Connection, sql: &str) -> String {
        let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt.query_map(rusqlite::params_from_iter(unbound), |r| r.get::<_, String>(3)).expect("query");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
    }

    /// Every page query is one range search of the primary key, in index order (no sort step),
    /// and the cursor is part of the range (not a filter over rows read from the range start).
    #[test]
    fn pages_are_primary_key_range_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::conn::ConnConfig {
            path: dir.path().join("plan.db"),
            busy_timeout: std::time::Duration::from_secs(1),
            writer_cache_kib: 2048,
            dictionaries: Default::default(),
        };
        let mut conn = crate::conn::Conn::open(&config, crate::conn::Kind::Writer).expect("open");
        crate::schema::migrate(&mut conn.db).expect("migrate");
        let shapes = [<Vec<StoredEvent> as PageRows>::COLUMNS, <crate::records::RecordRows as PageRows>::COLUMNS];
        for direction in [Direction::Older, Direction::Newer] {
            for cursor in [false, true] {
                for columns in shapes {
                    let plan = explain(&conn.db, &page_sql(columns, direction, cursor, false));
                    let merged = explain(&conn.db, &page_sql(columns, direction, cursor, true));
                    assert!(!plan.contains("TEMP B-TREE"), "{direction:?} {cursor}: {plan}");
                    let expected = match (direction, cursor) {
                        (_, false) => "USING PRIMARY KEY (account_id=? AND viewed>? AND viewed<?)",
                        (Direction::Older, true) => {
                            "USING PRIMARY KEY (account_id=? AND viewed>? AND (viewed,seq)<(?,?))"
                        }
                        (Direction::Newer, true) => {
                            "USING PRIMARY KEY (account_id=? AND (viewed,seq)>(?,?) AND viewed<?)"
                        }
                    };
                    assert!(plan.contains(expected), "{direction:?} cursor={cursor}: {plan}");
                    // With late events in the range: both ranges read in order and merged.
                    let late = expected.replace("USING PRIMARY KEY", "USING INDEX late_events_by_time");
                    assert!(!merged.contains("TEMP B-TREE"), "{direction:?} {cursor}: {merged}");
                    assert!(
                        merged.contains(&format!(
                            "MERGE (UNION ALL)\nLEFT\nSEARCH view_events {expected}\nRIGHT\nSEARCH late_events {late}"
                        )),
                        "{direction:?} cursor={cursor}: {merged}"
                    );
                }
            }
        }
        assert_eq!(COUNT, format!("SELECT count(*) FROM view_events WHERE {}", filter_sql("")));
        let by_key = [<Vec<StoredEvent> as PageRows>::BY_KEY, <crate::records::RecordRows as PageRows>::BY_KEY];
        for (columns, by_key) in shapes.into_iter().zip(by_key) {
            assert!(by_key.contains(columns), "reads what push_row reads");
            let plan = explain(&conn.db, by_key);
            assert!(plan.contains("USING PRIMARY KEY (account_id=? AND viewed=? AND seq=?)"), "{plan}");
        }
        let plan = explain(&conn.db, COUNT);
        assert!(plan.contains("USING PRIMARY KEY (account_id=? AND viewed>? AND viewed<?)"), "{plan}");
        assert_eq!(COUNT_LATE, COUNT.replace("view_events", "late_events"));
        let plan = explain(&conn.db, COUNT_LATE);
        assert!(
            plan.contains("USING COVERING INDEX late_events_by_time (account_id=? AND viewed>? AND viewed<?)"),
            "{plan}"
        );
        for (main, late) in by_key
            .iter()
            .zip([<Vec<StoredEvent> as PageRows>::BY_KEY_LATE, <crate::records::RecordRows as PageRows>::BY_KEY_LATE])
        {
            assert_eq!(late, &main.replace("view_events", "late_events"));
            let plan = explain(&conn.db, late);
            assert!(plan.contains("SEARCH late_events USING PRIMARY KEY (account_id=? AND seq=?)"), "{plan}");
        }
        // A fold reads the late events in time order, without sorting them.
        let plan = explain(&conn.db, late::FOLD);
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(plan.contains("USING INDEX late_events_by_time (account_id=?)"), "{plan}");
        // An id is looked for, and a fold reads the recent ids, through their primary keys.
        let plan = explain(&conn.db, ids::FOLDED);
        assert!(plan.contains("SEARCH event_ids USING PRIMARY KEY (account_id=? AND event_id=?)"), "{plan}");
        let plan = explain(&conn.db, ids::FOLD);
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(plan.contains("SEARCH recent_ids USING PRIMARY KEY (account_id=?)"), "{plan}");
        // A text search reads the segments of a range of days through their index.
        for query in [crate::search::RANGE_OLDER, crate::search::RANGE_NEWER] {
            let plan = explain(&conn.db, query);
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            assert!(plan.contains("USING INDEX text_index_by_day (account_id=? AND day>? AND day<?)"), "{plan}");
        }
        // Reading in seq order is a range of the seq index, in its order.
        assert!(AFTER.contains(shapes[0]), "reads what read_event reads");
        conn.db.execute_batch(SEQ_INDEX).expect("seq index");
        let plan = explain(&conn.db, AFTER);
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(plan.contains("MERGE (UNION ALL)"), "{plan}");
        assert!(plan.contains("USING INDEX view_events_by_seq (account_id=? AND seq>?)"), "{plan}");
        assert!(plan.contains("SEARCH late_events USING PRIMARY KEY (account_id=? AND seq>?)"), "{plan}");
    }
}
