//! The text index: the folded searchable text of an account's events, packed by day.
//!
//! A text filter must find a term among the viewer, sender, recipient and subject of every event
//! of a time range (see [`crate::text`] for what matches). Row by row, a month of a busy account
//! is tens of thousands of rows and as many calls into a matching function, for every page. Here
//! the four fields of each event are lower-cased once, at insert, and packed into *segments*: a
//! segment holds events of one account and one UTC day of `viewed`, as one blob of text and one
//! blob of keys. A search reads the segments of the range's days and runs one substring search
//! (`memchr::memmem`, vectorised) over each blob, so that its cost is a scan of a few bytes per
//! event, whether the term is common or rare and in whatever order the events arrived.
//!
//! - **text**: for each event, its four folded fields separated by `0xFF`, then `0xFE`. Neither
//!   byte occurs in UTF-8, so a match of a (UTF-8) term never spans two fields or two events.
//! - **keys**: for each event, `viewed` (i64), `seq` (i64) and the offset just past its `0xFE`
//!   in the text (u32), little-endian, [`KEY_LEN`] bytes.
//!
//! Every insert transaction adds one segment per day it touches, then merges a day's segments
//! when it holds [`FANOUT`] of a similar size (size tiers, as a log-structured merge does): a day
//! keeps a few segments per tier, whatever the order and batch size of ingest, and each event's
//! text is rewritten only a logarithmic number of times. Events are never deleted, so segments
//! are never stale; a search still applies the range, the snapshot and the cursor to each match,
//! because a day's segments hold events of the whole day and of every seq.

use std::collections::BTreeMap;

use memchr::memmem::Finder;
use rusqlite::{params, Connection};
use viewlog_store::{Direction, StoreError};

use crate::conn::Ctx;
use crate::error::Fail;

/// Seconds per day: a segment's span.
const DAY: i64 = 86_400;
/// Bytes per event in a segment's keys.
const KEY_LEN: usize = 20;
/// Separates the fields of an event in a segment's text.
const FIELD_END: u8 = 0xFF;
/// Ends an event in a segment's text.
const EVENT_END: u8 = 0xFE;
/// A day's segments of one size tier are merged when there are this many.
const FANOUT: usize = 4;

/// The day holding `t` (floor, also before 1970).
fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// The size tier of a segment of `n` events: `floor(log4(n))`.
fn tier(n: i64) -> u32 {
    let n = n.max(1) as u64;
    n.ilog2() / 2
}

/// A segment being built.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    keys: Vec<u8>,
    text: Vec<u8>,
    events: i64,
}

impl Segment {
    /// Adds an event: its `viewed`, `seq` and searchable fields.
    pub(crate) fn push(&mut self, viewed: i64, seq: i64, fields: [&str; 4]) -> Result<(), Fail> {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.text.push(FIELD_END);
            }
            fold_into(&mut self.text, field);
        }
        self.text.push(EVENT_END);
        let end = u32::try_from(self.text.len())
            .map_err(|_| StoreError::Backend("a day's text segment grew past 4 GiB".into()))?;
        self.keys.extend_from_slice(&viewed.to_le_bytes());
        self.keys.extend_from_slice(&seq.to_le_bytes());
        self.keys.extend_from_slice(&end.to_le_bytes());
        self.events += 1;
        Ok(())
    }

    /// Appends a stored segment's events.
    fn append(&mut self, keys: &[u8], text: &[u8]) -> Result<(), Fail> {
        let base = self.text.len();
        self.text.extend_from_slice(text);
        for key in keys.chunks_exact(KEY_LEN) {
            let end = read_u32(key, 16) as usize + base;
            let end =
                u32::try_from(end).map_err(|_| StoreError::Backend("a day's text segment grew past 4 GiB".into()))?;
            self.keys.extend_from_slice(&key[..16]);
            self.keys.extend_from_slice(&end.to_le_bytes());
        }
        self.events += (keys.len() / KEY_LEN) as i64;
        Ok(())
    }

    fn insert(&self, tx: &Connection, account: i64, day: i64) -> Result<(), Fail> {
        tx.prepare_cached(
            "INSERT INTO text_segments (account_id, day, events, keys, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![account, day, self.events, self.keys, self.text])?;
        Ok(())
    }
}

/// Appends the lower-cased `field` (as `str::to_lowercase` does it, without allocating for
/// ASCII).
fn fold_into(out: &mut Vec<u8>, field: &str) {
    if field.is_ascii() {
        out.extend(field.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        out.extend_from_slice(field.to_lowercase().as_bytes());
    }
}

/// Column `i` of a segment row, a blob.
fn blob<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], Fail> {
    row.get_ref(i)?
        .as_blob()
        .map_err(|e| StoreError::Corrupt(format!("a text segment column is not a blob: {e}")).into())
}

fn read_i64(key: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[at..at + 8]);
    i64::from_le_bytes(b)
}

fn read_u32(key: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&key[at..at + 4]);
    u32::from_le_bytes(b)
}

/// The segments an insert transaction adds, by day.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    days: BTreeMap<i64, Segment>,
}

impl Builder {
    /// Adds an inserted event.
    pub(crate) fn push(&mut self, viewed: i64, seq: i64, fields: [&str; 4]) -> Result<(), Fail> {
        self.days.entry(day_of(viewed)).or_default().push(viewed, seq, fields)
    }

    /// Writes the segments, then merges the touched days' segments where a tier is full.
    pub(crate) fn write(self, tx: &Connection, ctx: &Ctx<'_>, account: i64) -> Result<(), Fail> {
        for (day, segment) in &self.days {
            segment.insert(tx, account, *day)?;
        }
        for day in self.days.keys() {
            ctx.check()?;
            compact(tx, account, *day)?;
        }
        Ok(())
    }
}

/// Merges a day's segments while some tier holds [`FANOUT`] of them.
fn compact(tx: &Connection, account: i64, day: i64) -> Result<(), Fail> {
    loop {
        let segments: Vec<(i64, i64)> = tx
            .prepare_cached("SELECT id, events FROM text_segments WHERE account_id = ?1 AND day = ?2")?
            .query_map(params![account, day], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut tiers: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for (id, events) in segments {
            tiers.entry(tier(events)).or_default().push(id);
        }
        let Some(ids) = tiers.into_values().find(|ids| ids.len() >= FANOUT) else {
            return Ok(());
        };
        let mut merged = Segment::default();
        {
            let mut read = tx.prepare_cached("SELECT keys, body FROM text_segments WHERE id = ?1")?;
            let mut delete = tx.prepare_cached("DELETE FROM text_segments WHERE id = ?1")?;
            for id in ids {
                let mut rows = read.query([id])?;
                if let Some(row) = rows.next()? {
                    merged.append(blob(row, 0)?, blob(row, 1)?)?;
                }
                drop(rows);
                delete.execute([id])?;
            }
        }
        merged.insert(tx, account, day)?;
    }
}

/// Fills the index from the events already stored (migration 3), one segment per account and
/// day.
pub(crate) fn migration_fill(tx: &Connection) -> Result<(), Fail> {
    let mut stmt = tx.prepare(
        "SELECT account_id, viewed, seq, viewer, sender, recipient, subject FROM view_events \
         ORDER BY account_id, viewed",
    )?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(i64, i64)> = None;
    let mut segment = Segment::default();
    while let Some(row) = rows.next()? {
        let account: i64 = row.get(0)?;
        let viewed: i64 = row.get(1)?;
        let key = (account, day_of(viewed));
        if current != Some(key) {
            if let Some((a, d)) = current {
                std::mem::take(&mut segment).insert(tx, a, d)?;
            }
            current = Some(key);
        }
        let text = |i: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(i)?.as_str()?) };
        segment.push(viewed, row.get(2)?, [text(3)?, text(4)?, text(5)?, text(6)?])?;
    }
    if let Some((a, d)) = current {
        segment.insert(tx, a, d)?;
    }
    Ok(())
}

/// What a search looks for: a lower-cased, non-empty term within a range, a snapshot and
/// (paging) beyond a cursor.
pub(crate) struct Search<'a> {
    /// The lower-cased term.
    pub(crate) needle: &'a str,
    /// First second of the range.
    pub(crate) start: i64,
    /// Last second of the range.
    pub(crate) end: i64,
    /// The highest seq that counts.
    pub(crate) snapshot: i64,
    /// Only events strictly beyond this `(viewed, seq)` in `direction`.
    pub(crate) cursor: Option<(i64, i64)>,
    /// Which way from the cursor, and so the order days are read in.
    pub(crate) direction: Direction,
}

impl Search<'_> {
    fn wanted(&self, viewed: i64, seq: i64) -> bool {
        if viewed < self.start || viewed > self.end || seq > self.snapshot {
            return false;
        }
        match (self.cursor, self.direction) {
            (None, _) => true,
            (Some(c), Direction::Older) => (viewed, seq) < c,
            (Some(c), Direction::Newer) => (viewed, seq) > c,
        }
    }

    /// Calls `found(viewed, seq)` for every matching event, a day at a time in `direction`
    /// (newest day first for `Older`); after each day, stops if `enough()` says so.
    pub(crate) fn run(
        &self,
        db: &Connection,
        ctx: &Ctx<'_>,
        account: i64,
        mut found: impl FnMut(i64, i64),
        enough: impl Fn() -> bool,
    ) -> Result<(), Fail> {
        let (mut first, mut last) = (day_of(self.start), day_of(self.end));
        if let Some((viewed, _)) = self.cursor {
            match self.direction {
                Direction::Older => last = last.min(day_of(viewed)),
                Direction::Newer => first = first.max(day_of(viewed)),
            }
        }
        if first > last {
            return Ok(());
        }
        let sql = match self.direction {
            Direction::Older => {
                "SELECT day, keys, body FROM text_segments WHERE account_id = ?1 AND day >= ?2 AND day <= ?3 \
                 ORDER BY day DESC"
            }
            Direction::Newer => {
                "SELECT day, keys, body FROM text_segments WHERE account_id = ?1 AND day >= ?2 AND day <= ?3 \
                 ORDER BY day ASC"
            }
        };
        let finder = Finder::new(self.needle.as_bytes());
        let mut stmt = db.prepare_cached(sql)?;
        let mut rows = stmt.query(params![account, first, last])?;
        let mut day_seen: Option<i64> = None;
        while let Some(row) = rows.next()? {
            let day: i64 = row.get(0)?;
            if day_seen.is_some_and(|d| d != day) {
                ctx.check()?;
                if enough() {
                    return Ok(());
                }
            }
            day_seen = Some(day);
            let keys = blob(row, 1)?;
            let text = blob(row, 2)?;
            self.scan(&finder, keys, text, &mut found)?;
        }
        Ok(())
    }

    /// The matches in one segment.
    fn scan(
        &self,
        finder: &Finder<'_>,
        keys: &[u8],
        text: &[u8],
        found: &mut impl FnMut(i64, i64),
    ) -> Result<(), Fail> {
        let corrupt = || StoreError::Corrupt("a text segment's keys do not match its text".into());
        let events = keys.len() / KEY_LEN;
        let mut event = 0usize;
        let mut from = 0usize;
        while let Some(offset) = finder.find(&text[from..]) {
            let at = from + offset;
            // The event holding the match: the first whose end lies past it.
            while event < events && read_u32(&keys[event * KEY_LEN..], 16) as usize <= at {
                event += 1;
            }
            if event == events {
                return Err(corrupt().into());
            }
            let key = &keys[event * KEY_LEN..(event + 1) * KEY_LEN];
            let (viewed, seq) = (read_i64(key, 0), read_i64(key, 8));
            if self.wanted(viewed, seq) {
                found(viewed, seq);
            }
            // One match per event: go on after its end.
            from = read_u32(key, 16) as usize;
            if from > text.len() {
                return Err(corrupt().into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_grow_by_four() {
        assert_eq!(tier(0), 0);
        assert_eq!(tier(1), 0);
        assert_eq!(tier(3), 0);
        assert_eq!(tier(4), 1);
        assert_eq!(tier(15), 1);
        assert_eq!(tier(16), 2);
        assert_eq!(tier(1 << 20), 10);
    }

    #[test]
    fn folding_matches_to_lowercase() {
        for s in ["Quarterly RESULTS", "ÅSA Öberg", "\u{212a}elvin", "ΟΔΟΣ", "Straße"] {
            let mut out = Vec::new();
            fold_into(&mut out, s);
            assert_eq!(out, s.to_lowercase().as_bytes(), "{s}");
        }
    }

    #[test]
    fn appended_segments_keep_their_offsets() {
        let mut a = Segment::default();
        a.push(10, 1, ["v@x", "s@x", "r@x", "Hello"]).expect("push");
        let mut b = Segment::default();
        b.push(20, 2, ["w@x", "t@x", "q@x", "World"]).expect("push");
        let mut merged = Segment::default();
        merged.append(&a.keys, &a.text).expect("append");
        merged.append(&b.keys, &b.text).expect("append");
        assert_eq!(merged.events, 2);
        let search = |needle: &str| {
            let s = Search { needle, start: 0, end: 100, snapshot: 10, cursor: None, direction: Direction::Older };
            let mut got = Vec::new();
            s.scan(&Finder::new(needle.as_bytes()), &merged.keys, &merged.text, &mut |v, q| got.push((v, q)))
                .expect("scan");
            got
        };
        assert_eq!(search("world"), vec![(20, 2)]);
        assert_eq!(search("hello"), vec![(10, 1)]);
        assert_eq!(search("@x"), vec![(10, 1), (20, 2)]);
        assert_eq!(search("hellow"), vec![]);
        assert_eq!(search("o"), vec![(10, 1), (20, 2)]);
    }
}
