//! Searching the text index ([`crate::segments`]).
//!
//! A needle is split into words the way the index splits text ([`for_each_term`]), and looked for
//! one of three ways:
//!
//! - **One word** (`globex`, `1729`, `åsa`): every occurrence of a needle made only of word
//!   characters lies inside one word of the text, so the events that match are exactly those
//!   holding a term that contains the needle. A search finds the terms of each segment that
//!   contain it (by the dictionary's index by trigram, [`crate::trigrams`], once the cache has
//!   built one and the needle has three bytes or more; else by one substring search over the
//!   terms) and reads their postings; the text is not read.
//! - **Words and other characters** (`globex.com`, `re: invoice`): an event can only match if it
//!   holds, for each word of the needle, a term containing that word; those candidates are then
//!   checked against their text.
//! - **No word at all** (`@`, ` - `): a substring search over the segments' text.
//!
//! A segment's small columns come with the query of the range's segments, its dictionary from
//! the cache the readers share ([`crate::dictionaries`]); its big columns (keys, postings, text)
//! are read with SQLite's incremental blob I/O, only the parts a search needs: a rare term reads
//! a few postings and keys, not the whole day, and a term held by one event none of them.

use memchr::memmem::Finder;
use rusqlite::blob::Blob;
use rusqlite::{params, Connection, Row};
use viewlog_store::{Direction, StoreError};

use std::sync::Arc;

use crate::conn::Ctx;
use crate::dictionaries::{Dictionary, SegmentKey};
use crate::error::Fail;
use crate::segments::{day_of, for_each_term, read_i64, read_u32, DAY, FIELD_END, KEY_LEN, META_LEN};
use crate::trigrams::Trigrams;

/// Up to this many events of a segment, keys (and text) are read one by one; beyond, whole.
const FEW: usize = 64;

/// Column `i` of a row, a blob.
pub(crate) fn blob<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r [u8], Fail> {
    row.get_ref(i)?.as_blob().map_err(|e| StoreError::Corrupt(format!("a text index column is not a blob: {e}")).into())
}

fn corrupt() -> Fail {
    StoreError::Corrupt("a text segment's parts do not agree".into()).into()
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

/// Where a search's matches go.
pub(crate) trait Sink {
    /// Asked before each day: whether that day's matches are wanted one by one. If not, a
    /// segment all of whose events are within the search's range and snapshot is only counted.
    fn wants_keys(&self) -> bool;
    /// A matching event.
    fn found(&mut self, viewed: i64, seq: i64);
    /// `n` matching events, not named: when [`Sink::wants_keys`] said no, or past
    /// [`Sink::room`].
    fn counted(&mut self, n: u64);
    /// At most how many of one segment's matches, all within the search's range and snapshot,
    /// it can use: the newest so many (the oldest, searching `Newer`). Those of a segment in
    /// time order past them are only counted, and their keys never read.
    fn room(&self) -> usize;
    /// Asked after each day: whether to stop.
    fn enough(&self) -> bool;
}

/// How a needle is looked for (see the module docs).
enum Plan<'n> {
    Word(Box<Finder<'n>>),
    Words(Vec<Finder<'n>>),
    Scan,
}

impl<'n> Plan<'n> {
    fn of(needle: &'n str) -> Plan<'n> {
        let mut words = Vec::new();
        for_each_term(needle, |w| words.push(w));
        match words.as_slice() {
            [] => Plan::Scan,
            [w] if w.len() == needle.len() => Plan::Word(Box::new(Finder::new(*w))),
            _ => Plan::Words(words.into_iter().map(Finder::new).collect()),
        }
    }
}

/// One segment as the range query returns it (its small columns), with its dictionary.
struct Head<'r> {
    id: i64,
    events: u32,
    /// Every event of the segment is within the range and the snapshot, and there is no cursor.
    whole: bool,
    /// Its events are in time order (`text_sorted`): its ordinals ascend with `(viewed, seq)`.
    sorted: bool,
    terms: &'r [u8],
    /// The dictionary's index by trigram, once the cache has built it.
    index: Option<&'r Trigrams>,
}

impl Head<'_> {
    /// The indexes of the terms that contain `word`: from the index by trigram if there is one
    /// and the word is long enough, else by a substring search over the terms.
    fn matching(&self, word: &Finder<'_>) -> Vec<u32> {
        match self.index.and_then(|index| index.matching(self.terms, word)) {
            Some(found) => found,
            None => matching_terms(self.terms, word),
        }
    }
}

/// The dictionary of a segment: from the cache (indexed on its first use there), or read and
/// cached.
fn dictionary(db: &Connection, ctx: &Ctx<'_>, key: SegmentKey) -> Result<Arc<Dictionary>, Fail> {
    if let Some(dictionary) = ctx.dictionaries().get(&key) {
        ctx.dictionaries().index(&key, &dictionary);
        return Ok(dictionary);
    }
    let mut stmt = db.prepare_cached("SELECT terms FROM text_index WHERE id = ?1")?;
    let mut rows = stmt.query([key.id])?;
    let row = rows.next()?.ok_or_else(corrupt)?;
    let dictionary = Arc::new(Dictionary::new(blob(row, 0)?));
    ctx.dictionaries().put(key, Arc::clone(&dictionary));
    Ok(dictionary)
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

    /// Reports every matching event to `sink`, a day at a time in `direction` (newest day first
    /// for `Older`), stopping after a day when the sink has enough.
    pub(crate) fn run(&self, db: &Connection, ctx: &Ctx<'_>, account: i64, sink: &mut impl Sink) -> Result<(), Fail> {
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
            Direction::Older => RANGE_OLDER,
            Direction::Newer => RANGE_NEWER,
        };
        let plan = Plan::of(self.needle);
        let whole_needle = Finder::new(self.needle.as_bytes());
        let mut parts = Parts::new(db);
        let mut stmt = db.prepare_cached(sql)?;
        let mut rows = stmt.query(params![account, first, last])?;
        let mut day_seen: Option<i64> = None;
        let mut keys_wanted = true;
        while let Some(row) = rows.next()? {
            let day: i64 = row.get(1)?;
            if day_seen != Some(day) {
                if day_seen.is_some() {
                    ctx.check()?;
                    if sink.enough() {
                        return Ok(());
                    }
                }
                day_seen = Some(day);
                keys_wanted = sink.wants_keys();
            }
            let max_seq: i64 = row.get(3)?;
            let key = SegmentKey { id: row.get(0)?, account, day, events: row.get(2)?, max_seq };
            let dictionary = dictionary(db, ctx, key)?;
            let head = Head {
                id: key.id,
                events: key.events,
                whole: self.cursor.is_none()
                    && day * DAY >= self.start
                    && day * DAY + DAY - 1 <= self.end
                    && max_seq <= self.snapshot,
                sorted: row.get(4)?,
                terms: &dictionary.terms,
                index: dictionary.index(),
            };
            let count_only = head.whole && !keys_wanted;
            match &plan {
                Plan::Word(word) => {
                    let matched = head.matching(word);
                    if matched.is_empty() {
                        continue;
                    }
                    let ranges = parts.term_ranges(head.id, &matched)?;
                    if count_only && ranges.len() == 1 {
                        sink.counted(u64::from(ranges[0].to - ranges[0].from));
                        continue;
                    }
                    if ranges.iter().all(|r| r.to - r.from == 1) {
                        // Each matching term is held by one event, whose key term_meta holds.
                        self.emit_firsts(&ranges, count_only, sink);
                        continue;
                    }
                    let ordinals = parts.union(head.id, &ranges, head.events)?;
                    self.emit(&mut parts, &head, &ordinals, None, count_only, sink)?;
                }
                Plan::Words(words) => {
                    let mut candidates: Option<Vec<u32>> = None;
                    for word in words {
                        let matched = head.matching(word);
                        let ranges = parts.term_ranges(head.id, &matched)?;
                        let ordinals = parts.union(head.id, &ranges, head.events)?;
                        let both = match candidates {
                            None => ordinals,
                            Some(c) => intersect(&c, &ordinals),
                        };
                        let done = both.is_empty();
                        candidates = Some(both);
                        if done {
                            break;
                        }
                    }
                    let candidates = candidates.unwrap_or_default();
                    self.emit(&mut parts, &head, &candidates, Some(&whole_needle), count_only, sink)?;
                }
                Plan::Scan => self.scan(&mut parts, &head, &whole_needle, count_only, sink)?,
            }
        }
        Ok(())
    }

    /// Reports the events of terms each held by one event, from the keys `term_meta` gives them
    /// (two terms of one event name it once).
    fn emit_firsts(&self, ranges: &[TermRange], count_only: bool, sink: &mut impl Sink) {
        let mut keys: Vec<(i64, i64)> = ranges.iter().map(|r| r.first).collect();
        keys.sort_unstable();
        keys.dedup();
        if count_only {
            sink.counted(keys.len() as u64);
            return;
        }
        for (viewed, seq) in keys {
            if self.wanted(viewed, seq) {
                sink.found(viewed, seq);
            }
        }
    }

    /// Reports the events at `ordinals` (ascending) that hold the needle (checked against their
    /// text with `check`, when the index alone does not tell) and are wanted.
    fn emit(
        &self,
        parts: &mut Parts<'_>,
        head: &Head<'_>,
        ordinals: &[u32],
        check: Option<&Finder<'_>>,
        count_only: bool,
        sink: &mut impl Sink,
    ) -> Result<(), Fail> {
        if ordinals.is_empty() {
            return Ok(());
        }
        if count_only && check.is_none() {
            sink.counted(ordinals.len() as u64);
            return Ok(());
        }
        if head.whole && head.sorted && check.is_none() && sink.room() < ordinals.len() {
            // Every match is wanted and in time order: the sink's room from the end of the
            // postings (the start, searching `Newer`) is named, the rest only counted.
            let room = sink.room();
            let (named, skipped) = match self.direction {
                Direction::Older => (&ordinals[ordinals.len() - room..], ordinals.len() - room),
                Direction::Newer => (&ordinals[..room], ordinals.len() - room),
            };
            sink.counted(skipped as u64);
            if let (Some(&first), Some(&last)) = (named.first(), named.last()) {
                let keys = parts.keys_between(head.id, first, last)?;
                for &ordinal in named {
                    let at = (ordinal - first) as usize * KEY_LEN;
                    sink.found(read_i64(keys, at), read_i64(keys, at + 8));
                }
            }
            return Ok(());
        }
        let many = ordinals.len() > FEW;
        if many {
            parts.load_keys(head.id)?;
        }
        if many && check.is_some() {
            parts.load_body(head.id)?;
        }
        let mut counted = 0u64;
        for &ordinal in ordinals {
            let (viewed, seq, end) = parts.key(head.id, ordinal)?;
            if let Some(finder) = check {
                let start = if ordinal == 0 { 0 } else { parts.key(head.id, ordinal - 1)?.2 };
                if start > end {
                    return Err(corrupt());
                }
                let hit = parts.with_text(head.id, start as usize, end as usize, |text| finder.find(text).is_some())?;
                if !hit {
                    continue;
                }
            }
            if count_only {
                counted += 1;
            } else if self.wanted(viewed, seq) {
                sink.found(viewed, seq);
            }
        }
        if counted > 0 {
            sink.counted(counted);
        }
        Ok(())
    }

    /// A needle without words: a substring search over the segment's text.
    fn scan(
        &self,
        parts: &mut Parts<'_>,
        head: &Head<'_>,
        finder: &Finder<'_>,
        count_only: bool,
        sink: &mut impl Sink,
    ) -> Result<(), Fail> {
        parts.load_keys(head.id)?;
        parts.load_body(head.id)?;
        let text = parts.body.whole.take().unwrap_or_default();
        let mut event = 0u32;
        let mut from = 0usize;
        let mut counted = 0u64;
        let result = (|| {
            while let Some(offset) = finder.find(&text[from..]) {
                let at = from + offset;
                // The event holding the match: the first whose end lies past it.
                let (mut viewed, mut seq, mut end);
                loop {
                    if event >= head.events {
                        return Err(corrupt());
                    }
                    (viewed, seq, end) = parts.key(head.id, event)?;
                    if end as usize > at {
                        break;
                    }
                    event += 1;
                }
                if count_only {
                    counted += 1;
                } else if self.wanted(viewed, seq) {
                    sink.found(viewed, seq);
                }
                // One match per event: go on after its end.
                from = end as usize;
                if from > text.len() {
                    return Err(corrupt());
                }
            }
            Ok(())
        })();
        parts.body.whole = Some(text);
        result?;
        if counted > 0 {
            sink.counted(counted);
        }
        Ok(())
    }
}

/// The range's segments, newest day first (their dictionaries come from [`dictionary`]).
/// With each, whether its events are in time order.
pub(crate) const RANGE_OLDER: &str = "SELECT id, day, events, max_seq, \
     EXISTS (SELECT 1 FROM text_sorted s WHERE s.id = text_index.id) FROM text_index \
     WHERE account_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day DESC";
/// The range's segments, oldest day first.
pub(crate) const RANGE_NEWER: &str = "SELECT id, day, events, max_seq, \
     EXISTS (SELECT 1 FROM text_sorted s WHERE s.id = text_index.id) FROM text_index \
     WHERE account_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day ASC";

/// The indexes of the terms (each ended by `0xFF`) that contain `word`.
fn matching_terms(terms: &[u8], word: &Finder<'_>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut from = 0usize;
    let mut index = 0u32;
    while let Some(offset) = word.find(&terms[from..]) {
        let at = from + offset;
        index += memchr::memchr_iter(FIELD_END, &terms[from..at]).count() as u32;
        out.push(index);
        // One match per term: go on after its end.
        match memchr::memchr(FIELD_END, &terms[at..]) {
            Some(end) => {
                from = at + end + 1;
                index += 1;
            }
            None => break,
        }
    }
    out
}

/// The ordinals in both ascending lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// A term's postings within its segment (`from..to`, in postings) and its first event's
/// `viewed` and `seq`.
struct TermRange {
    from: u32,
    to: u32,
    first: (i64, i64),
}

/// One big column of the segments, read through an incremental blob handle moved from row to
/// row, or whole.
struct Column<'c> {
    name: &'static std::ffi::CStr,
    handle: Option<(Blob<'c>, i64)>,
    /// The whole column of segment `whole_of`, when read whole.
    whole: Option<Vec<u8>>,
    whole_of: i64,
}

impl<'c> Column<'c> {
    fn new(name: &'static std::ffi::CStr) -> Self {
        Column { name, handle: None, whole: None, whole_of: 0 }
    }

    fn blob(&mut self, db: &'c Connection, id: i64) -> Result<&Blob<'c>, Fail> {
        match &mut self.handle {
            Some((blob, at)) => {
                if *at != id {
                    blob.reopen(id)?;
                    *at = id;
                }
            }
            None => self.handle = Some((db.blob_open(c"main", c"text_index", self.name, id, true)?, id)),
        }
        match &self.handle {
            Some((blob, _)) => Ok(blob),
            None => Err(corrupt()),
        }
    }

    /// Bytes `from..to` of segment `id`'s column.
    fn read(&mut self, db: &'c Connection, id: i64, from: usize, to: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
        if to < from {
            return Err(corrupt());
        }
        if self.whole_of == id {
            if let Some(whole) = &self.whole {
                out.extend_from_slice(whole.get(from..to).ok_or_else(corrupt)?);
                return Ok(());
            }
        }
        let blob = self.blob(db, id)?;
        if to > blob.len() {
            return Err(corrupt());
        }
        let at = out.len();
        out.resize(at + (to - from), 0);
        blob.read_at_exact(&mut out[at..], from)?;
        Ok(())
    }

    /// Reads segment `id`'s column whole, for the reads that follow.
    fn load(&mut self, db: &'c Connection, id: i64) -> Result<(), Fail> {
        if self.whole_of == id && self.whole.is_some() {
            return Ok(());
        }
        let mut buf = self.whole.take().unwrap_or_default();
        buf.clear();
        let len = self.blob(db, id)?.len();
        self.read(db, id, 0, len, &mut buf)?;
        self.whole = Some(buf);
        self.whole_of = id;
        Ok(())
    }
}

/// The big columns of the segment being searched.
struct Parts<'c> {
    db: &'c Connection,
    term_meta: Column<'c>,
    keys: Column<'c>,
    postings: Column<'c>,
    body: Column<'c>,
    scratch: Vec<u8>,
}

impl<'c> Parts<'c> {
    fn new(db: &'c Connection) -> Self {
        Parts {
            db,
            term_meta: Column::new(c"term_meta"),
            keys: Column::new(c"keys"),
            postings: Column::new(c"postings"),
            body: Column::new(c"body"),
            scratch: Vec::new(),
        }
    }

    /// The postings range and first event of each term.
    fn term_ranges(&mut self, id: i64, terms: &[u32]) -> Result<Vec<TermRange>, Fail> {
        let mut out = Vec::with_capacity(terms.len());
        for &t in terms {
            let t = t as usize;
            self.scratch.clear();
            // The previous term's entry (for where this term's postings start), then this one's.
            let start = t.saturating_sub(1) * META_LEN;
            self.term_meta.read(self.db, id, start, (t + 1) * META_LEN, &mut self.scratch)?;
            let this = &self.scratch[self.scratch.len() - META_LEN..];
            let from = if t == 0 { 0 } else { read_u32(&self.scratch, 0) };
            let to = read_u32(this, 0);
            if to <= from {
                return Err(corrupt());
            }
            out.push(TermRange { from, to, first: (read_i64(this, 4), read_i64(this, 12)) });
        }
        Ok(out)
    }

    /// The ordinals in any of the postings ranges, ascending, each once.
    fn union(&mut self, id: i64, ranges: &[TermRange], events: u32) -> Result<Vec<u32>, Fail> {
        let total: usize = ranges.iter().map(|r| (r.to - r.from) as usize).sum();
        if ranges.len() > FEW {
            self.postings.load(self.db, id)?;
        }
        let mut ordinals = Vec::with_capacity(total);
        for &TermRange { from, to, .. } in ranges {
            self.scratch.clear();
            self.postings.read(self.db, id, from as usize * 4, to as usize * 4, &mut self.scratch)?;
            ordinals.extend(self.scratch.chunks_exact(4).map(|p| read_u32(p, 0)));
        }
        if ranges.len() > 1 {
            ordinals.sort_unstable();
            ordinals.dedup();
        }
        if ordinals.last().is_some_and(|&o| o >= events) {
            return Err(corrupt());
        }
        Ok(ordinals)
    }

    fn load_keys(&mut self, id: i64) -> Result<(), Fail> {
        self.keys.load(self.db, id)
    }

    fn load_body(&mut self, id: i64) -> Result<(), Fail> {
        self.body.load(self.db, id)
    }

    /// The keys of the events `first..=last`, read at once.
    fn keys_between(&mut self, id: i64, first: u32, last: u32) -> Result<&[u8], Fail> {
        if last < first {
            return Err(corrupt());
        }
        self.scratch.clear();
        self.keys.read(self.db, id, first as usize * KEY_LEN, (last as usize + 1) * KEY_LEN, &mut self.scratch)?;
        Ok(&self.scratch)
    }

    /// Event `ordinal`'s `viewed`, `seq` and end in the text.
    fn key(&mut self, id: i64, ordinal: u32) -> Result<(i64, i64, u32), Fail> {
        let at = ordinal as usize * KEY_LEN;
        self.scratch.clear();
        self.keys.read(self.db, id, at, at + KEY_LEN, &mut self.scratch)?;
        Ok((read_i64(&self.scratch, 0), read_i64(&self.scratch, 8), read_u32(&self.scratch, 16)))
    }

    /// Calls `f` with bytes `from..to` of the segment's text.
    fn with_text<T>(&mut self, id: i64, from: usize, to: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T, Fail> {
        self.scratch.clear();
        self.body.read(self.db, id, from, to, &mut self.scratch)?;
        Ok(f(&self.scratch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dictionaries::Dictionaries;
    use crate::segments::{merge, Order, Segment};
    use proptest::prelude::*;

    /// A sink that keeps every match named to it and counts the others; of a segment in time
    /// order, it takes `room` matches one by one.
    struct All {
        keys: Vec<(i64, i64)>,
        counted: u64,
        wants_keys: bool,
        room: usize,
    }

    impl Default for All {
        fn default() -> Self {
            All { keys: Vec::new(), counted: 0, wants_keys: true, room: usize::MAX }
        }
    }

    impl Sink for All {
        fn wants_keys(&self) -> bool {
            self.wants_keys
        }
        fn found(&mut self, viewed: i64, seq: i64) {
            self.keys.push((viewed, seq));
        }
        fn counted(&mut self, n: u64) {
            self.counted += n;
        }
        fn room(&self) -> usize {
            self.room
        }
        fn enough(&self) -> bool {
            false
        }
    }

    /// How the test index leaves each day's segments.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Days {
        /// As written, one segment per `per_segment` events.
        Apart,
        /// Merged into one, as the size tiers do.
        Merged,
        /// Merged into one in time order, as a settled day is.
        Settled,
    }

    /// A database holding only the text index, and the cache of dictionaries its searches share
    /// (a dictionary's second search uses its index by trigram).
    struct TestIndex {
        db: Connection,
        cache: Dictionaries,
    }

    /// A database holding only the text index, filled with `events` (viewed, fields) in
    /// segments of `per_segment` events, seq = position + 1, each day's segments left as
    /// `days` says.
    fn index_of(events: &[(i64, [String; 4])], per_segment: usize, days: Days) -> TestIndex {
        let db = Connection::open_in_memory().expect("db");
        db.execute_batch(crate::schema::TEXT_INDEX).expect("schema");
        db.execute_batch("CREATE TABLE text_sorted (id INTEGER PRIMARY KEY) STRICT;").expect("schema");
        // Each day's events: viewed, seq and fields.
        type Day<'e> = Vec<(i64, i64, &'e [String; 4])>;
        let mut by_day: std::collections::BTreeMap<i64, Day<'_>> = Default::default();
        for (i, (viewed, fields)) in events.iter().enumerate() {
            by_day.entry(day_of(*viewed)).or_default().push((*viewed, i as i64 + 1, fields));
        }
        for (day, list) in by_day {
            let mut parts = Vec::new();
            for chunk in list.chunks(per_segment.max(1)) {
                let mut s = Segment::default();
                for (viewed, seq, f) in chunk {
                    s.push(*viewed, *seq, [&f[0], &f[1], &f[2], &f[3]]).expect("push");
                }
                parts.push(s.encode().expect("encode"));
            }
            let order = match days {
                Days::Apart => None,
                Days::Merged => Some(Order::AsWritten),
                Days::Settled => Some(Order::Time),
            };
            if let Some(order) = order {
                parts = vec![merge(&parts, order).expect("merge")];
            }
            for e in parts {
                db.execute(
                    "INSERT INTO text_index (account_id, day, events, max_seq, terms, term_meta, keys, postings, body) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![day, e.events, e.max_seq, e.terms, e.term_meta, e.keys, e.postings, e.body],
                )
                .expect("insert");
                if days == Days::Settled {
                    db.execute("INSERT INTO text_sorted (id) VALUES (last_insert_rowid())", []).expect("sorted");
                }
            }
        }
        TestIndex { db, cache: Dictionaries::new(1 << 20) }
    }

    fn search(db: &TestIndex, needle: &str, start: i64, end: i64, snapshot: i64, wants_keys: bool) -> All {
        search_with(db, needle, (start, end, snapshot), All { wants_keys, ..All::default() })
    }

    /// The search of `needle` over `(start, end, snapshot)` into `sink`, its keys sorted.
    fn search_with(ix: &TestIndex, needle: &str, (start, end, snapshot): (i64, i64, i64), mut sink: All) -> All {
        let s = Search { needle, start, end, snapshot, cursor: None, direction: Direction::Older };
        crate::conn::with_test_cache(&ix.cache, |ctx| s.run(&ix.db, ctx, 1, &mut sink)).expect("search");
        sink.keys.sort_unstable();
        sink
    }

    fn expected(events: &[(i64, [String; 4])], needle: &str, start: i64, end: i64, snapshot: i64) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = events
            .iter()
            .enumerate()
            .filter(|(i, (viewed, fields))| {
                *viewed >= start
                    && *viewed <= end
                    && (*i as i64 + 1) <= snapshot
                    && fields.iter().any(|f| f.to_lowercase().contains(needle))
            })
            .map(|(i, (viewed, _))| (*viewed, i as i64 + 1))
            .collect();
        out.sort_unstable();
        out
    }

    fn field() -> impl Strategy<Value = String> {
        // Words, digits, separators and non-ASCII letters, upper and lower case.
        proptest::string::string_regex("[a-cA-C1-2 .@:#Å-Çσς\u{212a}-]{0,12}").expect("regex")
    }

    fn needle() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-cA-C1-2 .@:#Å-Çσς\u{212a}-]{1,4}").expect("regex")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// The index finds exactly what a substring search of each event's lower-cased fields
        /// finds: for one-word needles, needles with other characters and needles without words,
        /// over whole and partial days, snapshots, segment sizes, one by one or counted.
        #[test]
        fn finds_what_a_substring_search_finds(
            events in proptest::collection::vec(
                (0i64..3 * DAY, [field(), field(), field(), field()]),
                0..40,
            ),
            needles in proptest::collection::vec(needle(), 1..4),
            per_segment in 1usize..12,
            start in 0i64..DAY,
            len in 0i64..3 * DAY,
            snapshot in 0i64..45,
        ) {
            let needles: Vec<String> = needles.iter().map(|n| n.to_lowercase()).collect();
            let all_days = [Days::Apart, Days::Merged, Days::Settled];
            for (days, needle) in all_days.into_iter().flat_map(|d| needles.iter().map(move |n| (d, n))) {
                let db = index_of(&events, per_segment, days);
                for (start, end, snapshot) in [(0, 3 * DAY, i64::MAX), (start, start + len, snapshot)] {
                    let want = expected(&events, needle, start, end, snapshot);
                    let named = search(&db, needle, start, end, snapshot, true);
                    prop_assert_eq!(&named.keys, &want, "needle {:?}, days {:?}", needle, days);
                    prop_assert_eq!(named.counted, 0);
                    let counted = search(&db, needle, start, end, snapshot, false);
                    prop_assert_eq!(counted.keys.len() as u64 + counted.counted, want.len() as u64, "needle {:?}", needle);
                    // A sink with room for `room` per segment: every match counted or named,
                    // the newest `room` of all among those named.
                    let room = per_segment % 4;
                    let some = search_with(&db, needle, (start, end, snapshot), All { room, ..All::default() });
                    prop_assert_eq!(some.keys.len() as u64 + some.counted, want.len() as u64, "needle {:?}", needle);
                    prop_assert!(some.keys.iter().all(|k| want.binary_search(k).is_ok()), "needle {:?}", needle);
                    let newest = &want[want.len().saturating_sub(room)..];
                    prop_assert!(newest.iter().all(|k| some.keys.binary_search(k).is_ok()), "needle {:?}, days {:?}", needle, days);
                }
            }
        }
    }

    #[test]
    fn plans_follow_the_needle() {
        assert!(matches!(Plan::of("globex"), Plan::Word(_)));
        assert!(matches!(Plan::of("åsa"), Plan::Word(_)));
        assert!(matches!(Plan::of("globex.com"), Plan::Words(ref w) if w.len() == 2));
        assert!(matches!(Plan::of(" globex"), Plan::Words(ref w) if w.len() == 1));
        assert!(matches!(Plan::of("@"), Plan::Scan));
        assert!(matches!(Plan::of(" - "), Plan::Scan));
    }

    #[test]
    fn terms_are_matched_once_each() {
        let terms = b"abc\xffbcd\xffcab\xffxyz\xff";
        assert_eq!(matching_terms(terms, &Finder::new("b")), [0, 1, 2]);
        assert_eq!(matching_terms(terms, &Finder::new("c")), [0, 1, 2]);
        assert_eq!(matching_terms(terms, &Finder::new("xyz")), [3]);
        assert_eq!(matching_terms(terms, &Finder::new("bc")), [0, 1]);
        assert_eq!(matching_terms(terms, &Finder::new("q")), Vec::<u32>::new());
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), [3, 7]);
    }

    #[test]
    fn many_matches_read_whole_columns_and_agree() {
        // More than FEW matches in one segment take the whole-column path.
        let events: Vec<(i64, [String; 4])> = (0..300i64)
            .map(|i| {
                (
                    i * 7,
                    [format!("v{i}@x.com"), "a@globex.com".into(), format!("r{}@y.com", i % 3), format!("Invoice {i}")],
                )
            })
            .collect();
        let db = index_of(&events, 1000, Days::Apart);
        for needle in ["globex", "globex.com", "@", "invoice 1", "r1", "1"] {
            let want = expected(&events, needle, 0, DAY, i64::MAX);
            assert_eq!(search(&db, needle, 0, DAY, i64::MAX, true).keys, want, "{needle}");
            let counted = search(&db, needle, 0, DAY - 1, i64::MAX, false);
            assert_eq!(counted.keys.len() as u64 + counted.counted, want.len() as u64, "{needle}");
        }
    }
}
