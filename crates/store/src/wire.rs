//! Pages of records as get-view-logs writes them: each record's JSON object, back to back in one
//! buffer, with its place in the newest-first order.
//!
//! A page of 100 records is some 31 KB of JSON. Reading every field of every row into owned
//! strings and escaping them again on each request was half the server's work under a page
//! load; a backend that keeps each record's JSON (SQLite does, written once at ingest) fills a
//! [`WireRecords`] by copying bytes, and the server writes `data` by copying them again.

use std::ops::Range;

use viewlog_protocol::records::{write_record_json, RecordFields};

use crate::model::{Cursor, StoredEvent, ViewEvent};

/// Records' JSON objects in newest-first order, each with its cursor. Two are equal when they
/// hold the same records in the same order, however their buffers are laid out.
#[derive(Clone, Default)]
pub struct WireRecords {
    /// The objects, back to back, in the order they were pushed.
    json: Vec<u8>,
    /// Each record's cursor and bytes in `json`, in page order.
    spans: Vec<(Cursor, Range<usize>)>,
}

/// The bytes one record's JSON takes, about: what buffers of records are sized by.
pub const RECORD_BYTES: usize = 320;

impl WireRecords {
    /// An empty page with room for `records` records.
    fn with_capacity(records: usize) -> WireRecords {
        let records = records.min(1024);
        WireRecords { json: Vec::with_capacity(records * RECORD_BYTES), spans: Vec::with_capacity(records) }
    }

    /// A page from records written elsewhere into one buffer: `spans` gives each record's cursor
    /// and bytes in `json`, in page order. The buffer is checked once, whole: it must be UTF-8
    /// and every span must lie within it on character boundaries (a backend that copies many
    /// small records checks them in one pass rather than one by one).
    pub fn from_parts(json: Vec<u8>, spans: Vec<(Cursor, Range<usize>)>) -> Result<WireRecords, WireError> {
        let text = std::str::from_utf8(&json).map_err(|e| WireError(format!("records are not UTF-8: {e}")))?;
        for (cursor, span) in &spans {
            if span.start > span.end || !text.is_char_boundary(span.start) || !text.is_char_boundary(span.end) {
                return Err(WireError(format!("record {cursor:?} spans {span:?} of {} bytes", json.len())));
            }
        }
        Ok(WireRecords { json, spans })
    }

    /// The records of `events`, written as get-view-logs writes them, in the same order.
    pub fn from_events(events: &[StoredEvent]) -> WireRecords {
        let mut records = WireRecords::with_capacity(events.len());
        for e in events {
            records.push_with(Cursor { viewed: e.event.viewed, seq: e.seq }, |out| {
                write_record_json(out, &e.event.record_fields())
            });
        }
        records
    }

    /// Appends a record whose JSON object `write` appends to the buffer it is given.
    fn push_with(&mut self, cursor: Cursor, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        write(&mut self.json);
        self.spans.push((cursor, start..self.json.len()));
    }

    /// How many records the page holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the page holds no record.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first record's cursor.
    pub fn first_cursor(&self) -> Option<Cursor> {
        self.spans.first().map(|(c, _)| *c)
    }

    /// The last record's cursor.
    pub fn last_cursor(&self) -> Option<Cursor> {
        self.spans.last().map(|(c, _)| *c)
    }

    /// Keeps the first `n` records.
    pub fn truncate(&mut self, n: usize) {
        self.spans.truncate(n);
    }

    /// Drops the first record (its bytes stay in the buffer, unseen).
    pub fn remove_first(&mut self) {
        if !self.spans.is_empty() {
            self.spans.remove(0);
        }
    }

    /// Each record's cursor and JSON object, in page order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Cursor, &[u8])> + '_ {
        self.spans.iter().map(|(c, r)| (*c, &self.json[r.clone()]))
    }

    /// Appends the records as a JSON array (`[{…},{…}]`) to `out`.
    pub fn write_array(&self, out: &mut Vec<u8>) {
        out.reserve(self.spans.iter().map(|(_, r)| r.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, (_, json)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(json);
        }
        out.push(b']');
    }
}

impl PartialEq for WireRecords {
    fn eq(&self, other: &WireRecords) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for WireRecords {}

impl std::fmt::Debug for WireRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(cursor, json)| (cursor, String::from_utf8_lossy(json)))).finish()
    }
}

/// Records handed to [`WireRecords::from_parts`] that do not make a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

/// [`crate::FirstPage`] with its records as get-view-logs writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstWirePage {
    /// The account's latest snapshot (see [`crate::Store::snapshot`]).
    pub snapshot: i64,
    /// How many events match the filter in that snapshot.
    pub total: u64,
    /// The newest matching records, newest first, at most the requested limit.
    pub records: WireRecords,
}

impl ViewEvent {
    /// The fields get-view-logs shows of this event.
    pub fn record_fields(&self) -> RecordFields<'_> {
        RecordFields {
            from: &self.from,
            to: &self.to,
            viewer: &self.viewer,
            source: &self.source,
            content_viewed: self.content_viewed,
            discovery_case: self.discovery_case,
            message_date: self.message_date,
            viewed: self.viewed,
            subject: &self.subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(seq: i64) -> Cursor {
        Cursor { viewed: 100 - seq, seq }
    }

    fn page(n: i64) -> WireRecords {
        let mut records = WireRecords::with_capacity(n as usize);
        for seq in 1..=n {
            records.push_with(cursor(seq), |out| out.extend_from_slice(format!("{{\"n\":{seq}}}").as_bytes()));
        }
        records
    }

    fn array(records: &WireRecords) -> String {
        let mut out = Vec::new();
        records.write_array(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn parts_are_checked_whole() {
        let json = "{\"n\":1}{\"s\":\"Å\"}".as_bytes().to_vec();
        let spans = vec![(cursor(1), 0..7), (cursor(2), 7..json.len())];
        let records = WireRecords::from_parts(json.clone(), spans).expect("a page");
        assert_eq!(array(&records), "[{\"n\":1},{\"s\":\"Å\"}]");
        let inside_a_letter = vec![(cursor(1), 0..json.len() - 3)];
        assert!(WireRecords::from_parts(json.clone(), inside_a_letter).is_err());
        assert!(WireRecords::from_parts(json.clone(), vec![(cursor(1), 0..json.len() + 1)]).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = vec![(cursor(1), 5..2)];
        assert!(WireRecords::from_parts(json.clone(), backwards).is_err());
        let mut broken = json;
        broken[2] = 0xff;
        assert!(WireRecords::from_parts(broken, vec![(cursor(1), 0..7)]).is_err());
    }

    #[test]
    fn records_are_written_as_one_array_in_page_order() {
        assert_eq!(array(&WireRecords::default()), "[]");
        assert_eq!(array(&page(3)), "[{\"n\":1},{\"n\":2},{\"n\":3}]");
    }

    #[test]
    fn truncating_and_removing_keep_cursors_with_their_records() {
        let mut records = page(4);
        records.truncate(3);
        records.remove_first();
        assert_eq!(array(&records), "[{\"n\":2},{\"n\":3}]");
        assert_eq!((records.first_cursor(), records.last_cursor()), (Some(cursor(2)), Some(cursor(3))));
        assert_eq!(records.iter().map(|(c, _)| c.seq).collect::<Vec<_>>(), [2, 3]);
        let json = "{\"n\":2}{\"n\":3}".as_bytes().to_vec();
        let mut built = WireRecords::from_parts(json, vec![(cursor(2), 0..7), (cursor(3), 7..14)]).expect("page");
        assert_eq!(records, built, "equal records, however laid out");
        built.truncate(1);
        assert_ne!(records, built);
        records.remove_first();
        records.remove_first();
        records.remove_first();
        assert!(records.is_empty());
        assert_eq!(records.first_cursor(), None);
    }
}
