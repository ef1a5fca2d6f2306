//! View events: ingest, paging and counting.

use std::collections::HashSet;

use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};
use viewlog_store::hours::{whole_hours, HOUR};
use viewlog_store::{Direction, EventFilter, InsertOutcome, PageRequest, StoreError, StoredEvent, ViewEvent};

use crate::error::Fail;
use crate::text;

/// The columns [`read_event`] reads, in its order.
const COLUMNS: &str = viewlog_store::event_columns!();

/// Inserts the new events of a batch (first occurrences of ids the account does not hold), in
/// batch order, numbered from `$2 + 1`. `$1` is the account; `$3`… are the columns as arrays.
/// Runs after the account's row lock was taken, in a statement of its own, so its snapshot
/// sees every event committed before the lock was granted: `NOT EXISTS` is then exact, and `ON
/// CONFLICT DO NOTHING` is only a safety net. (Naming the event-id index as the one arbiter
/// spares the other unique index a speculative check per row.) Adds the inserted events to
/// their hours' counts (`event_hours`, under the same row lock). Returns how many rows it
/// inserted and the highest seq it gave.
const INSERT: &str = "\
WITH input AS (
    SELECT * FROM unnest($3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                         $10::bool[], $11::bool[], $12::int8[], $13::text[], $14::text[], $15::text[], $16::text[],
                         $17::text[], $18::text[], $19::text[], $20::text[])
        WITH ORDINALITY AS t(event_id, viewed, sender, recipient, viewer, source, subject, content_viewed,
                             discovery_case, message_date, viewer_ip, message_id, action, case_id,
                             viewer_lc, sender_lc, recipient_lc, subject_lc, ord)
),
fresh AS (
    SELECT i.*, row_number() OVER (ORDER BY i.ord) AS n FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM view_events v WHERE v.account_id = $1 AND v.event_id = i.event_id)
),
inserted AS (
    INSERT INTO view_events (account_id, seq, viewed, event_id, sender, recipient, viewer, source, subject,
                             content_viewed, discovery_case, message_date, viewer_ip, message_id, action, case_id,
                             viewer_lc, sender_lc, recipient_lc, subject_lc)
    SELECT $1, $2 + n, viewed, event_id, sender, recipient, viewer, source, subject, content_viewed,
           discovery_case, message_date, viewer_ip, message_id, action, case_id,
           viewer_lc, sender_lc, recipient_lc, subject_lc
    FROM fresh
    ON CONFLICT (account_id, event_id) DO NOTHING
    RETURNING seq, viewed
),
hours AS (
    INSERT INTO event_hours (account_id, hour, events)
    SELECT $1, floor(viewed / 3600.0)::bigint AS h, count(*) FROM inserted GROUP BY h
    ON CONFLICT (account_id, hour) DO UPDATE SET events = event_hours.events + excluded.events
)
SELECT count(*), coalesce(max(seq), 0) FROM inserted";

/// Stores a batch in one transaction; new events take the account's next seqs.
pub(crate) async fn insert(client: &mut Client, account: i64, events: &[ViewEvent]) -> Result<InsertOutcome, Fail> {
    // The first of a batch's duplicates is the one stored; later ones are duplicates already.
    let mut seen = HashSet::with_capacity(events.len());
    let unique: Vec<&ViewEvent> = events.iter().filter(|e| seen.insert(e.event_id.as_str())).collect();
    let mut outcome = InsertOutcome { inserted: 0, duplicates: (events.len() - unique.len()) as u64 };
    if unique.is_empty() {
        return Ok(outcome);
    }
    let columns = Columns::of(&unique);

    let tx = client.transaction().await?;
    // The account's row lock: held to commit, it serialises the account's ingest, so seqs
    // increase in commit order and `last_seq` bounds what is committed. NO KEY UPDATE does not
    // block the key-share locks that foreign keys to the account take.
    let lock = tx.prepare_cached("SELECT last_seq FROM accounts WHERE id = $1 FOR NO KEY UPDATE").await?;
    let last_seq: i64 = tx
        .query_opt(&lock, &[&account])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?
        .get(0);
    let insert = tx.prepare_cached(INSERT).await?;
    let row = tx
        .query_one(
            &insert,
            &[
                &account,
                &last_seq,
                &columns.event_id,
                &columns.viewed,
                &columns.sender,
                &columns.recipient,
                &columns.viewer,
                &columns.source,
                &columns.subject,
                &columns.content_viewed,
                &columns.discovery_case,
                &columns.message_date,
                &columns.viewer_ip,
                &columns.message_id,
                &columns.action,
                &columns.case_id,
                &columns.viewer_lc,
                &columns.sender_lc,
                &columns.recipient_lc,
                &columns.subject_lc,
            ],
        )
        .await?;
    let inserted: i64 = row.get(0);
    let max_seq: i64 = row.get(1);
    if inserted > 0 {
        let bump = tx.prepare_cached("UPDATE accounts SET last_seq = GREATEST(last_seq, $2) WHERE id = $1").await?;
        tx.execute(&bump, &[&account, &max_seq]).await?;
    }
    tx.commit().await?;
    outcome.inserted = inserted.max(0) as u64;
    outcome.duplicates += unique.len() as u64 - outcome.inserted;
    Ok(outcome)
}

/// A batch as one array per column.
struct Columns<'a> {
    event_id: Vec<&'a str>,
    viewed: Vec<i64>,
    sender: Vec<&'a str>,
    recipient: Vec<&'a str>,
    viewer: Vec<&'a str>,
    source: Vec<&'a str>,
    subject: Vec<&'a str>,
    content_viewed: Vec<bool>,
    discovery_case: Vec<bool>,
    message_date: Vec<i64>,
    viewer_ip: Vec<Option<&'a str>>,
    message_id: Vec<Option<&'a str>>,
    action: Vec<Option<&'a str>>,
    case_id: Vec<Option<&'a str>>,
    viewer_lc: Vec<Option<String>>,
    sender_lc: Vec<Option<String>>,
    recipient_lc: Vec<Option<String>>,
    subject_lc: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    fn of(events: &[&'a ViewEvent]) -> Columns<'a> {
        let n = events.len();
        let mut c = Columns {
            event_id: Vec::with_capacity(n),
            viewed: Vec::with_capacity(n),
            sender: Vec::with_capacity(n),
            recipient: Vec::with_capacity(n),
            viewer: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            subject: Vec::with_capacity(n),
            content_viewed: Vec::with_capacity(n),
            discovery_case: Vec::with_capacity(n),
            message_date: Vec::with_capacity(n),
            viewer_ip: Vec::with_capacity(n),
            message_id: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            case_id: Vec::with_capacity(n),
            viewer_lc: Vec::with_capacity(n),
            sender_lc: Vec::with_capacity(n),
            recipient_lc: Vec::with_capacity(n),
            subject_lc: Vec::with_capacity(n),
        };
        for e in events {
            c.event_id.push(&e.event_id);
            c.viewed.push(e.viewed);
            c.sender.push(&e.from);
            c.recipient.push(&e.to);
            c.viewer.push(&e.viewer);
            c.source.push(&e.source);
            c.subject.push(&e.subject);
            c.content_viewed.push(e.content_viewed);
            c.discovery_case.push(e.discovery_case);
            c.message_date.push(e.message_date);
            c.viewer_ip.push(e.viewer_ip.as_deref());
            c.message_id.push(e.message_id.as_deref());
            c.action.push(e.action.as_deref());
            c.case_id.push(e.case_id.as_deref());
            c.viewer_lc.push(text::folded(&e.viewer));
            c.sender_lc.push(text::folded(&e.from));
            c.recipient_lc.push(text::folded(&e.to));
            c.subject_lc.push(text::folded(&e.subject));
        }
        c
    }
}

/// The account's snapshot bound: its last assigned seq (0 for a missing account).
pub(crate) async fn snapshot(client: &mut Client, account: i64) -> Result<i64, Fail> {
    let stmt = client.prepare_cached("SELECT last_seq FROM accounts WHERE id = $1").await?;
    Ok(client.query_opt(&stmt, &[&account]).await?.map_or(0, |r| r.get(0)))
}

/// Parameters bound by position, numbered as they are added.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value; returns its placeholder (`$n`).
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
    }
}

/// The `WHERE` conditions of a filter: the account, the range (clamped to `start`/`end`), the
/// snapshot and the text, binding their values.
fn filter_sql(params: &mut Params, account: i64, start: i64, end: i64, filter: &EventFilter) -> String {
    let account = params.bind(account);
    let start = params.bind(start);
    let end = params.bind(end);
    let snapshot = params.bind(filter.snapshot);
    let mut sql = format!("account_id = {account} AND viewed >= {start} AND viewed <= {end} AND seq <= {snapshot}");
    if let Some(needle) = text::needle(filter.text.as_deref()) {
        let pattern = params.bind(needle.pattern);
        let exact = needle.exact.map(|n| params.bind(n));
        sql.push_str(&text::clause(&pattern, exact.as_deref()));
    }
    sql
}

/// The query of one page and its parameters: keyset paging with a row-value comparison, so
/// that the cursor starts a range of the index `(account_id, viewed, seq)` and no row before
/// it is read; never `OFFSET`.
fn page_query(account: i64, request: &PageRequest) -> (String, Params) {
    let filter = &request.filter;
    let cursor = request.cursor.map(|c| (c.viewed, c.seq));
    // The range clamped to the cursor too, so that whichever bound the planner starts the
    // index scan from, it starts at the cursor's second.
    let (start, end) = match (request.direction, cursor) {
        (Direction::Older, Some((viewed, _))) => (filter.start, filter.end.min(viewed)),
        (Direction::Newer, Some((viewed, _))) => (filter.start.max(viewed), filter.end),
        (_, None) => (filter.start, filter.end),
    };
    let mut params = Params::default();
    let mut sql = format!("SELECT {COLUMNS} FROM view_events WHERE ");
    sql.push_str(&filter_sql(&mut params, account, start, end, filter));
    let (compare, order) = match request.direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    };
    if let Some((viewed, seq)) = cursor {
        let (viewed, seq) = (params.bind(viewed), params.bind(seq));
        sql.push_str(&format!(" AND (viewed, seq) {compare} ({viewed}, {seq})"));
    }
    let limit = params.bind(i64::from(request.limit));
    sql.push_str(&format!(" ORDER BY viewed {order}, seq {order} LIMIT {limit}"));
    (sql, params)
}

/// One page, newest first.
pub(crate) async fn page(client: &mut Client, account: i64, request: &PageRequest) -> Result<Vec<StoredEvent>, Fail> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, params) = page_query(account, request);
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &params.refs()).await?;
    let mut out: Vec<StoredEvent> = rows.iter().map(read_event).collect::<Result<_, _>>()?;
    if request.direction == Direction::Newer {
        // Read ascending from the cursor; the caller gets newest-first like every page.
        out.reverse();
    }
    Ok(out)
}

/// The query of a count and its parameters.
fn count_query(account: i64, filter: &EventFilter) -> (String, Params) {
    let mut params = Params::default();
    let sql = format!(
        "SELECT count(*) FROM view_events WHERE {}",
        filter_sql(&mut params, account, filter.start, filter.end, filter)
    );
    (sql, params)
}

/// How many events match. Without a text filter and for the latest snapshot, the whole hours
/// of the range are summed from `event_hours` and only the rows of its two partial hours are
/// counted; otherwise (a text, or an older snapshot, whose counts the sums no longer give) the
/// rows of the range are. One repeatable-read transaction, so that the snapshot check and the
/// sums agree.
pub(crate) async fn count(client: &mut Client, account: i64, filter: &EventFilter) -> Result<u64, Fail> {
    if text::needle(filter.text.as_deref()).is_some() || whole_hours(filter.start, filter.end).is_none() {
        // No hour sums can serve: one statement counts the rows, no transaction needed.
        let (sql, params) = count_query(account, filter);
        let stmt = client.prepare_cached(&sql).await?;
        let n: i64 = client.query_one(&stmt, &params.refs()).await?.get(0);
        return Ok(n.max(0) as u64);
    }
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let scan = |start: i64, end: i64| {
        let tx = &tx;
        async move {
            let sub = EventFilter { start, end, ..filter.clone() };
            let (sql, params) = count_query(account, &sub);
            let stmt = tx.prepare_cached(&sql).await?;
            let n: i64 = tx.query_one(&stmt, &params.refs()).await?.get(0);
            Ok::<u64, Fail>(n.max(0) as u64)
        }
    };
    let last: i64 = {
        let stmt = tx.prepare_cached("SELECT last_seq FROM accounts WHERE id = $1").await?;
        tx.query_opt(&stmt, &[&account]).await?.map_or(0, |r| r.get(0))
    };
    let whole = if filter.snapshot >= last { whole_hours(filter.start, filter.end) } else { None };
    let n = match whole {
        None => scan(filter.start, filter.end).await?,
        Some((first, past)) => {
            let stmt = tx
                .prepare_cached(
                    "SELECT coalesce(sum(events), 0)::bigint FROM event_hours \
                     WHERE account_id = $1 AND hour >= $2 AND hour < $3",
                )
                .await?;
            let sum: i64 = tx.query_one(&stmt, &[&account, &first, &past]).await?.get(0);
            let mut n = sum.max(0) as u64;
            if filter.start < first * HOUR {
                n += scan(filter.start, first * HOUR - 1).await?;
            }
            if past * HOUR <= filter.end {
                n += scan(past * HOUR, filter.end).await?;
            }
            n
        }
    };
    tx.commit().await?;
    Ok(n)
}

/// What [`explain`] explains.
pub(crate) enum Explained<'a> {
    /// A page.
    Page(&'a PageRequest),
    /// A count.
    Count(&'a EventFilter),
}

/// PostgreSQL's plan of a page or count query with these values, run and measured if
/// `analyze`.
pub(crate) async fn explain(
    client: &mut Client,
    account: i64,
    what: Explained<'_>,
    analyze: bool,
) -> Result<String, Fail> {
    let (sql, params) = match what {
        Explained::Page(request) => page_query(account, request),
        Explained::Count(filter) => count_query(account, filter),
    };
    let options = if analyze { "(ANALYZE, BUFFERS)" } else { "" };
    let rows = client.query(&format!("EXPLAIN {options} {sql}"), &params.refs()).await?;
    let lines: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    Ok(lines.join("\n"))
}

/// The account's events after `after_seq`, in seq order (a range of the primary key).
pub(crate) async fn after(
    client: &mut Client,
    account: i64,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, Fail> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM view_events WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .await?;
    let rows = client.query(&stmt, &[&account, &after_seq, &i64::from(limit)]).await?;
    Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
}

fn read_event(row: &Row) -> Result<StoredEvent, tokio_postgres::Error> {
    Ok(viewlog_store::stored_event_from_row!(row, try_get))
}

#[cfg(test)]
mod tests {
    use super::*;
    use viewlog_store::Cursor;

    fn request(direction: Direction, cursor: bool, text: Option<&str>) -> PageRequest {
        PageRequest {
            filter: EventFilter { start: 0, end: 100, text: text.map(str::to_owned), snapshot: 50 },
            cursor: cursor.then_some(Cursor { viewed: 60, seq: 7 }),
            direction,
            limit: 10,
        }
    }

    #[test]
    fn page_queries_are_keyset_queries() {
        let (sql, params) = page_query(1, &request(Direction::Older, true, Some("Åsa")));
        assert!(sql.contains("(viewed, seq) < ($6, $7)"), "{sql}");
        assert!(sql.ends_with("ORDER BY viewed DESC, seq DESC LIMIT $8"), "{sql}");
        assert!(!sql.to_uppercase().contains("OFFSET"));
        assert_eq!(params.values.len(), 8);
        let (sql, params) = page_query(1, &request(Direction::Newer, false, None));
        assert!(!sql.contains("(viewed, seq)"), "{sql}");
        assert!(sql.ends_with("ORDER BY viewed ASC, seq ASC LIMIT $5"), "{sql}");
        assert_eq!(params.values.len(), 5);
    }
}
