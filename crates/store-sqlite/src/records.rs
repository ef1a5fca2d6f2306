//! Each event's record as get-view-logs writes it, kept in `view_events.record` (migration 7).
//!
//! Written once, when the event is inserted; a page is then answered by copying each row's
//! record instead of reading fourteen columns into owned strings and escaping them again (see
//! `viewlog_store::wire`). It costs some 300 bytes per event.
//!
//! Since migration 13 the record is the only place that holds the message's five strings
//! (sender, recipient, viewer, source, subject): they were kept as columns too, which made
//! every row about 40% longer for nothing a query reads. An event is read back whole
//! ([`read_event`]) from its other columns and the strings of its record.

use std::borrow::Cow;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, Row};
use serde::Deserialize;
use viewlog_protocol::records::{write_record_json, RecordFields};
use viewlog_store::wire::RECORD_BYTES;
use viewlog_store::{Cursor, StoreError, StoredEvent, ViewEvent, WireRecords};

use crate::error::Fail;

/// Writes `event`'s record into `buf` (emptied first) and returns it.
pub(crate) fn render<'b>(event: &ViewEvent, buf: &'b mut Vec<u8>) -> Result<&'b str, Fail> {
    buf.clear();
    write_record_json(buf, &event.record_fields());
    std::str::from_utf8(buf).map_err(|e| StoreError::backend(e).into())
}

/// What a page's rows are read into: the events themselves, or their records as the wire
/// shows them. Each shape names the columns it reads.
pub(crate) trait PageRows: Sized {
    /// The columns [`PageRows::push_row`] reads, in its order, for `SELECT … FROM view_events`.
    const COLUMNS: &'static str;
    /// One event of `view_events` by primary key (`?1` account, `?2` viewed, `?3` seq), these
    /// columns.
    const BY_KEY: &'static str;
    /// The same of `late_events` (by its index on time).
    const BY_KEY_LATE: &'static str;
    /// Room for `n` rows.
    fn with_capacity(n: usize) -> Self;
    /// Appends the row (of [`PageRows::COLUMNS`]) of one event.
    fn push_row(&mut self, row: &Row<'_>) -> Result<(), Fail>;
    /// Reverses the rows' order.
    fn reverse(&mut self);
}

/// The columns of `view_events` and `late_events` [`read_event`] reads, in its order (a literal,
/// usable in `concat!`).
macro_rules! event_columns {
    () => {
        "seq, event_id, content_viewed, discovery_case, message_date, viewed, viewer_ip, message_id, action, \
         case_id, record"
    };
}
pub(crate) use event_columns;

/// The condition that picks one event of `view_events` or `late_events` by its key (`?1`
/// account, `?2` viewed, `?3` seq).
macro_rules! by_key {
    (main) => {
        " FROM view_events WHERE account_id = ?1 AND viewed = ?2 AND seq = ?3"
    };
    (late) => {
        " FROM late_events WHERE account_id = ?1 AND viewed = ?2 AND seq = ?3"
    };
}

impl PageRows for Vec<StoredEvent> {
    const COLUMNS: &'static str = event_columns!();
    const BY_KEY: &'static str = concat!("SELECT ", event_columns!(), by_key!(main));
    const BY_KEY_LATE: &'static str = concat!("SELECT ", event_columns!(), by_key!(late));
    fn with_capacity(n: usize) -> Self {
        // A limit is a promise of at most so many, not a size to allocate up front.
        Vec::with_capacity(n.min(1024))
    }
    fn push_row(&mut self, row: &Row<'_>) -> Result<(), Fail> {
        self.push(read_event(row)?);
        Ok(())
    }
    fn reverse(&mut self) {
        self.as_mut_slice().reverse();
    }
}

/// A page of records as copied from the rows, checked as UTF-8 once when the page is complete
/// ([`RecordRows::finish`]) rather than row by row.
pub(crate) struct RecordRows {
    json: Vec<u8>,
    spans: Vec<(Cursor, std::ops::Range<usize>)>,
}

impl RecordRows {
    /// The page, checked.
    pub(crate) fn finish(self) -> Result<WireRecords, Fail> {
        WireRecords::from_parts(self.json, self.spans)
            .map_err(|e| StoreError::Corrupt(format!("stored records: {e}")).into())
    }
}

impl PageRows for RecordRows {
    const COLUMNS: &'static str = "seq, viewed, record";
    const BY_KEY: &'static str = concat!("SELECT seq, viewed, record", by_key!(main));
    const BY_KEY_LATE: &'static str = concat!("SELECT seq, viewed, record", by_key!(late));
    fn with_capacity(n: usize) -> Self {
        let n = n.min(1024);
        RecordRows { json: Vec::with_capacity(n * RECORD_BYTES), spans: Vec::with_capacity(n) }
    }
    fn push_row(&mut self, row: &Row<'_>) -> Result<(), Fail> {
        let cursor = Cursor { seq: row.get(0)?, viewed: row.get(1)? };
        let start = self.json.len();
        self.json.extend_from_slice(row.get_ref(2)?.as_bytes().map_err(rusqlite::Error::from)?);
        self.spans.push((cursor, start..self.json.len()));
        Ok(())
    }
    fn reverse(&mut self) {
        self.spans.reverse();
    }
}

/// The strings of a stored record that no column holds (migration 13), borrowed from it where
/// they need no unescaping.
#[derive(Deserialize)]
struct RecordStrings<'r> {
    #[serde(borrow)]
    from: Cow<'r, str>,
    #[serde(borrow)]
    to: Cow<'r, str>,
    #[serde(borrow)]
    viewer: Cow<'r, str>,
    #[serde(borrow)]
    source: Cow<'r, str>,
    #[serde(borrow)]
    subject: Cow<'r, str>,
}

/// An event from the columns of [`event_columns!`]: its strings from its record. A record that
/// is not a view-log record (a damaged file) fails as corrupt.
pub(crate) fn read_event(row: &Row<'_>) -> Result<StoredEvent, Fail> {
    let seq: i64 = row.get(0)?;
    let record = row.get_ref(10)?.as_bytes().map_err(rusqlite::Error::from)?;
    let strings: RecordStrings<'_> = serde_json::from_slice(record)
        .map_err(|e| StoreError::Corrupt(format!("the stored record of event {seq}: {e}")))?;
    Ok(StoredEvent {
        seq,
        event: ViewEvent {
            event_id: row.get(1)?,
            from: strings.from.into_owned(),
            to: strings.to.into_owned(),
            viewer: strings.viewer.into_owned(),
            source: strings.source.into_owned(),
            subject: strings.subject.into_owned(),
            content_viewed: row.get(2)?,
            discovery_case: row.get(3)?,
            message_date: row.get(4)?,
            viewed: row.get(5)?,
            viewer_ip: row.get(6)?,
            message_id: row.get(7)?,
            action: row.get(8)?,
            case_id: row.get(9)?,
        },
    })
}

/// The SQL function migration 7 fills `record` with: the record of the row's columns.
const FILL_FUNCTION: &str = "viewlog_wire_record";

/// Which records a migration writes from the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Every stored event's (migration 7, which added them).
    All,
    /// Those still empty (migration 13, before it drops the columns): rows a viewlog older than
    /// migration 7 wrote into a file a newer one had migrated.
    Missing,
}

/// Migrations 7 and 13: the records of `which` events, from their columns, in one statement
/// per table.
pub(crate) fn migration_fill(tx: &Connection, which: Fill) -> Result<(), Fail> {
    tx.create_scalar_function(
        FILL_FUNCTION,
        9,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = |i: usize| -> rusqlite::Result<&str> { Ok(ctx.get_raw(i).as_str()?) };
            let fields = RecordFields {
                from: text(0)?,
                to: text(1)?,
                viewer: text(2)?,
                source: text(3)?,
                content_viewed: ctx.get::<bool>(4)?,
                discovery_case: ctx.get::<bool>(5)?,
                message_date: ctx.get(6)?,
                viewed: ctx.get(7)?,
                subject: text(8)?,
            };
            let mut out = Vec::with_capacity(RECORD_BYTES);
            write_record_json(&mut out, &fields);
            String::from_utf8(out).map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
        },
    )?;
    let set = format!(
        "SET record = {FILL_FUNCTION}(sender, recipient, viewer, source, content_viewed, discovery_case, \
         message_date, viewed, subject)"
    );
    let filled = match which {
        Fill::All => {
            if tx.query_row("SELECT EXISTS (SELECT 1 FROM view_events)", [], |r| r.get::<_, bool>(0))? {
                tracing::info!(
                    "migration 7: writing every stored event's get-view-logs record (some 20 s per million \
                     events; the write-ahead log grows to about the events' size until the migration ends)"
                );
            }
            tx.execute_batch(&format!("UPDATE view_events {set}"))
        }
        Fill::Missing => tx.execute_batch(&format!(
            "UPDATE view_events {set} WHERE record = ''; UPDATE late_events {set} WHERE record = '';"
        )),
    };
    tx.remove_function(FILL_FUNCTION, 9)?;
    Ok(filled?)
}
