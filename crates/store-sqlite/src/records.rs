//! Each event's record as get-view-logs writes it, kept in `view_events.record` (migration 7).
//!
//! Written once, when the event is inserted; a page is then answered by copying each row's
//! record instead of reading fourteen columns into owned strings and escaping them again (see
//! `viewlog_store::wire`). It costs some 300 bytes per event.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, Row};
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
    /// Appends the row (of [`PageRows::COLUMNS`]) of one of `account`'s events, read on `db`.
    fn push_row(&mut self, db: &Connection, account: i64, row: &Row<'_>) -> Result<(), Fail>;
    /// Reverses the rows' order.
    fn reverse(&mut self);
}

pub(crate) use viewlog_store::event_columns;

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
    fn push_row(&mut self, _: &Connection, _: i64, row: &Row<'_>) -> Result<(), Fail> {
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
    fn push_row(&mut self, db: &Connection, account: i64, row: &Row<'_>) -> Result<(), Fail> {
        let cursor = Cursor { seq: row.get(0)?, viewed: row.get(1)? };
        let record = row.get_ref(2)?.as_bytes().map_err(rusqlite::Error::from)?;
        let start = self.json.len();
        if record.is_empty() {
            // Inserted without one: by a viewlog older than migration 7 still running on the
            // file while a newer one migrated it. Written from the event's columns.
            let event = db
                .prepare_cached(<Vec<StoredEvent> as PageRows>::BY_KEY)?
                .query_row(rusqlite::params![account, cursor.viewed, cursor.seq], read_event)?;
            write_record_json(&mut self.json, &event.event.record_fields());
        } else {
            self.json.extend_from_slice(record);
        }
        self.spans.push((cursor, start..self.json.len()));
        Ok(())
    }
    fn reverse(&mut self) {
        self.spans.reverse();
    }
}

/// An event from the columns of `<Vec<StoredEvent> as PageRows>::COLUMNS`.
pub(crate) fn read_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(viewlog_store::stored_event_from_row!(row, get))
}

/// The SQL function migration 7 fills `record` with: the record of the row's columns.
const FILL_FUNCTION: &str = "viewlog_wire_record";

/// Migration 7's fill: every stored event's record, from its columns, in one statement.
pub(crate) fn migration_fill(tx: &Connection) -> Result<(), Fail> {
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
    if tx.query_row("SELECT EXISTS (SELECT 1 FROM view_events)", [], |r| r.get::<_, bool>(0))? {
        tracing::info!(
            "migration 7: writing every stored event's get-view-logs record (some 20 s per million \
             events; the write-ahead log grows to about the events' size until the migration ends)"
        );
    }
    let filled = tx.execute_batch(&format!(
        "UPDATE view_events SET record = {FILL_FUNCTION}(sender, recipient, viewer, source, content_viewed, \
         discovery_case, message_date, viewed, subject)"
    ));
    tx.remove_function(FILL_FUNCTION, 9)?;
    Ok(filled?)
}
