//! The text index: the folded searchable text of an account's events, packed by day, with a
//! dictionary of its words.
//!
//! A text filter must find a term among the viewer, sender, recipient and subject of every event
//! of a time range (see [`crate::text`] for what matches). Row by row, a month of a busy account
//! is tens of thousands of rows and as many calls into a matching function, for every page. Here
//! the four fields of each event are lower-cased once, at insert, and packed into *segments*: a
//! segment holds events of one account and one UTC day of `viewed`. Besides the folded text it
//! holds the segment's *terms* (its distinct words: maximal runs of alphanumeric characters) and,
//! for each term, the events that hold it, so that a search ([`crate::search`]) reads a day's
//! dictionary rather than its text: its cost follows the number of distinct words and of
//! matches, not the number of events.
//!
//! A segment row (`text_index`), in column order, the small parts first, because SQLite reads a
//! column of a big row by walking its overflow pages up to it:
//!
//! - **terms**: the distinct terms, in byte order, each followed by `0xFF`, a byte no UTF-8 text
//!   holds, so that a match of a term never spans two terms.
//! - **term_meta**: for each term, [`META_LEN`] bytes: the end of its postings (a count of
//!   postings, u32), then the `viewed` and `seq` (i64) of the first event holding it. Most words
//!   of a day are held by one event (a number, a name): a search finds such a term's event here,
//!   without walking on to its postings and its key (what Lucene's "pulsing" postings do).
//! - **keys**: for each event, `viewed` (i64), `seq` (i64) and the offset just past its `0xFE`
//!   in the body (u32), little-endian, [`KEY_LEN`] bytes.
//! - **postings**: for each term in turn, the ordinals (u32, ascending, each once) of the events
//!   holding it.
//! - **body**: for each event, its four folded fields separated by `0xFF`, then `0xFE`: what a
//!   search with non-word characters checks its candidates against.
//!
//! Every insert transaction adds one segment per day it touches, then merges a day's segments
//! when it holds [`FANOUT`] of a similar size (size tiers, as a log-structured merge does): a day
//! keeps a few segments per tier, whatever the order and batch size of ingest, and each event's
//! text is rewritten only a logarithmic number of times. Events are never deleted, so segments
//! are never stale; a search still applies the range, the snapshot and the cursor to each match,
//! because a day's segments hold events of the whole day and of every seq.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;
use viewlog_store::StoreError;

use crate::conn::Ctx;
use crate::error::Fail;

/// Seconds per day: a segment's span.
pub(crate) const DAY: i64 = 86_400;
/// Bytes per event in a segment's keys.
pub(crate) const KEY_LEN: usize = 20;
/// Bytes per term in a segment's `term_meta`: the end of its postings (u32), then its first
/// event's `viewed` and `seq` (i64).
pub(crate) const META_LEN: usize = 20;
/// Separates the fields of an event in a segment's body; ends each term in its terms.
pub(crate) const FIELD_END: u8 = 0xFF;
/// Ends an event in a segment's body.
pub(crate) const EVENT_END: u8 = 0xFE;
/// A day's segments of one size tier are merged when there are this many.
const FANOUT: usize = 4;

/// The day holding `t` (floor, also before 1970).
pub(crate) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// The size tier of a segment of `n` events: `floor(log4(n))`.
fn tier(n: i64) -> u32 {
    let n = n.max(1) as u64;
    n.ilog2() / 2
}

/// Calls `f` with every term of `text` (folded UTF-8): its maximal runs of alphanumeric
/// characters, as `char::is_alphanumeric` has them. A search splits its needle the same way.
pub(crate) fn for_each_term<'a>(text: &'a str, mut f: impl FnMut(&'a [u8])) {
    let bytes = text.as_bytes();
    for_each_term_span(text, |span| f(&bytes[span]));
}

/// Calls `f` with where each term of `text` lies in it ([`for_each_term`]). ASCII lower-casing
/// keeps every byte where it was and alphanumeric or not, so the spans of an ASCII text are
/// those of its folded form too.
fn for_each_term_span(text: &str, mut f: impl FnMut(std::ops::Range<usize>)) {
    let bytes = text.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let (word, len) = if bytes[i] < 0x80 {
            (bytes[i].is_ascii_alphanumeric(), 1)
        } else {
            match text[i..].chars().next() {
                Some(c) => (c.is_alphanumeric(), c.len_utf8()),
                None => break,
            }
        };
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(s..i);
                start = None;
            }
            _ => {}
        }
        i += len;
    }
    if let Some(s) = start {
        f(s..bytes.len());
    }
}

/// A segment being built or merged.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    keys: Vec<u8>,
    body: Vec<u8>,
    events: u32,
    max_seq: i64,
    /// Each term's postings, ascending.
    terms: Dictionary,
}

/// The terms of a segment being built and their postings, without an allocation per term: a
/// backfill's batch spreads its events over hundreds of days, a few dozen per day's segment, so
/// most of a segment's terms are new to it (a map of boxed terms to vectors of postings made two
/// allocations per word of every event: a tenth of a server taking such batches).
#[derive(Debug, Default)]
struct Dictionary {
    /// The terms' bytes, back to back, in the order they were first seen.
    bytes: Vec<u8>,
    /// Each term, in that order.
    terms: Vec<Term>,
    /// A term's index by a 64-bit hash of its bytes; a hash already taken by another term is
    /// probed onwards ([`Dictionary::add`]).
    by_hash: FxHashMap<u64, u32>,
    /// Every posting: its ordinal and the index of its term's next posting ([`NO_NEXT`] for the
    /// last), so that each term's postings are a list in ascending order.
    postings: Vec<(u32, u32)>,
}

/// The hash a [`Dictionary`] first looks a term up by.
fn hash_of(term: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(term);
    h.finish()
}

/// One term of a [`Dictionary`].
#[derive(Debug, Clone, Copy)]
struct Term {
    /// Where its bytes start in `bytes`, and how many.
    start: u32,
    len: u32,
    /// Its first and last postings' indexes in `postings`.
    first: u32,
    last: u32,
    /// How many postings it has.
    count: u32,
}

/// The `next` of a term's last posting.
const NO_NEXT: u32 = u32::MAX;

impl Dictionary {
    /// Adds `ordinal` to `term`'s postings, once (ordinals arrive in ascending order).
    fn add(&mut self, term: &[u8], ordinal: u32) -> Result<(), Fail> {
        let mut hash = hash_of(term);
        let index = loop {
            match self.by_hash.entry(hash) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let t = self.terms[*e.get() as usize];
                    if &self.bytes[t.start as usize..(t.start + t.len) as usize] == term {
                        break Some(*e.get());
                    }
                    // Another term holds this hash: probe the next one.
                    hash = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(u32::try_from(self.terms.len()).map_err(|_| too_big())?);
                    break None;
                }
            }
        };
        let posting = u32::try_from(self.postings.len()).map_err(|_| too_big())?;
        match index {
            Some(index) => {
                let t = &mut self.terms[index as usize];
                if self.postings[t.last as usize].0 == ordinal {
                    return Ok(());
                }
                self.postings[t.last as usize].1 = posting;
                t.last = posting;
                t.count += 1;
            }
            None => {
                let start = u32::try_from(self.bytes.len()).map_err(|_| too_big())?;
                self.bytes.extend_from_slice(term);
                let len = u32::try_from(term.len()).map_err(|_| too_big())?;
                self.terms.push(Term { start, len, first: posting, last: posting, count: 1 });
            }
        }
        self.postings.push((ordinal, NO_NEXT));
        Ok(())
    }

    /// A term's bytes.
    fn bytes_of(&self, t: &Term) -> &[u8] {
        &self.bytes[t.start as usize..(t.start + t.len) as usize]
    }

    /// A term's postings, ascending.
    fn postings_of(&self, t: &Term) -> impl Iterator<Item = u32> + '_ {
        let mut at = t.first;
        std::iter::from_fn(move || {
            let (ordinal, next) = *self.postings.get(at as usize)?;
            at = next;
            Some(ordinal)
        })
    }
}

/// A segment as stored: its columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Encoded {
    pub(crate) events: u32,
    pub(crate) max_seq: i64,
    pub(crate) terms: Vec<u8>,
    pub(crate) term_meta: Vec<u8>,
    pub(crate) keys: Vec<u8>,
    pub(crate) postings: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

fn too_big() -> Fail {
    StoreError::Backend("a day's text segment grew past 4 GiB".into()).into()
}

/// The terms of a stored segment in order, each with its postings (raw, u32 little-endian).
struct Terms<'e> {
    e: &'e Encoded,
    /// Where the next term starts in `terms`.
    at: usize,
    /// The next term's index.
    index: usize,
}

impl<'e> Terms<'e> {
    fn new(e: &'e Encoded) -> Self {
        Terms { e, at: 0, index: 0 }
    }

    /// The next term (without its end byte), or `None` after the last.
    fn peek(&self) -> Result<Option<&'e [u8]>, Fail> {
        if self.at >= self.e.terms.len() {
            return Ok(None);
        }
        let len = memchr::memchr(FIELD_END, &self.e.terms[self.at..]).ok_or_else(corrupt)?;
        Ok(Some(&self.e.terms[self.at..self.at + len]))
    }

    /// Moves past the next term (of length `len`), returning its postings.
    fn take(&mut self, len: usize) -> Result<&'e [u8], Fail> {
        let meta = |i: usize| self.e.term_meta.get(i * META_LEN..(i + 1) * META_LEN).ok_or_else(corrupt);
        let from = if self.index == 0 { 0 } else { read_u32(meta(self.index - 1)?, 0) as usize * 4 };
        let to = read_u32(meta(self.index)?, 0) as usize * 4;
        self.at += len + 1;
        self.index += 1;
        self.e.postings.get(from..to).ok_or_else(corrupt)
    }
}

fn corrupt() -> Fail {
    StoreError::Corrupt("a text segment's parts do not agree".into()).into()
}

/// The order of the events of a merged segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Each part's events in their order, the parts one after another (what a merge of size
    /// tiers writes: cheap, and a day still taking events is merged again soon).
    AsWritten,
    /// By time (`viewed`, then `seq`): what a settled day is merged into, so that a search can
    /// take a segment's newest matches from the end of its postings without reading the keys
    /// of all the others (`search.rs`).
    Time,
}

/// One segment holding the events of `parts` in `order`: texts and keys in that order,
/// dictionaries merged in one pass over their sorted terms, each term's postings renumbered.
pub(crate) fn merge(parts: &[Encoded], order: Order) -> Result<Encoded, Fail> {
    let mut out = Encoded::default();
    // For each part, the new ordinal of each of its events.
    let mut renumber: Vec<Vec<u32>> = Vec::with_capacity(parts.len());
    for part in parts {
        if part.keys.len() != part.events as usize * KEY_LEN || part.term_meta.len() % META_LEN != 0 {
            return Err(corrupt());
        }
        out.events = out.events.checked_add(part.events).ok_or_else(too_big)?;
        out.max_seq = out.max_seq.max(part.max_seq);
        renumber.push(vec![0; part.events as usize]);
    }
    out.keys.reserve(out.events as usize * KEY_LEN);
    out.body.reserve(parts.iter().map(|p| p.body.len()).sum());
    match order {
        // Texts and keys concatenated, part after part (ingest's merges: no copy per event).
        Order::AsWritten => {
            let mut next = 0u32;
            for (part, new) in parts.iter().zip(&mut renumber) {
                let base_text = out.body.len();
                out.body.extend_from_slice(&part.body);
                for (key, new) in part.keys.chunks_exact(KEY_LEN).zip(new.iter_mut()) {
                    let end = u32::try_from(read_u32(key, 16) as usize + base_text).map_err(|_| too_big())?;
                    out.keys.extend_from_slice(&key[..16]);
                    out.keys.extend_from_slice(&end.to_le_bytes());
                    *new = next;
                    next += 1;
                }
            }
        }
        Order::Time => {
            // (viewed, seq, part, ordinal in the part), sorted: each event's text copied in turn.
            let mut events: Vec<(i64, i64, u32, u32)> = Vec::with_capacity(out.events as usize);
            for (p, part) in parts.iter().enumerate() {
                for (i, key) in part.keys.chunks_exact(KEY_LEN).enumerate() {
                    events.push((read_i64(key, 0), read_i64(key, 8), p as u32, i as u32));
                }
            }
            events.sort_unstable();
            for (new, &(viewed, seq, p, i)) in events.iter().enumerate() {
                let (part, i) = (&parts[p as usize], i as usize);
                let start = if i == 0 { 0 } else { read_u32(&part.keys, (i - 1) * KEY_LEN + 16) as usize };
                let end = read_u32(&part.keys, i * KEY_LEN + 16) as usize;
                out.body.extend_from_slice(part.body.get(start..end).ok_or_else(corrupt)?);
                let end = u32::try_from(out.body.len()).map_err(|_| too_big())?;
                out.keys.extend_from_slice(&viewed.to_le_bytes());
                out.keys.extend_from_slice(&seq.to_le_bytes());
                out.keys.extend_from_slice(&end.to_le_bytes());
                renumber[p as usize][i] = new as u32;
            }
        }
    }
    let mut cursors: Vec<Terms<'_>> = parts.iter().map(Terms::new).collect();
    let mut postings: Vec<u32> = Vec::new();
    let mut count = 0u32;
    loop {
        // The smallest next term of any part.
        let mut least: Option<&[u8]> = None;
        for c in &cursors {
            if let Some(t) = c.peek()? {
                if least.is_none_or(|l| t < l) {
                    least = Some(t);
                }
            }
        }
        let Some(term) = least else { break };
        out.terms.extend_from_slice(term);
        out.terms.push(FIELD_END);
        postings.clear();
        for (c, new) in cursors.iter_mut().zip(&renumber) {
            if c.peek()? == Some(term) {
                let held = c.take(term.len())?;
                for p in held.chunks_exact(4) {
                    postings.push(*new.get(read_u32(p, 0) as usize).ok_or_else(corrupt)?);
                }
            }
        }
        if order == Order::Time {
            postings.sort_unstable();
        }
        for p in &postings {
            out.postings.extend_from_slice(&p.to_le_bytes());
        }
        count = count.checked_add(u32::try_from(postings.len()).map_err(|_| too_big())?).ok_or_else(too_big)?;
        out.term_meta.extend_from_slice(&count.to_le_bytes());
        // The key of the first event holding the term.
        let first = *postings.first().ok_or_else(corrupt)? as usize * KEY_LEN;
        out.term_meta.extend_from_slice(out.keys.get(first..first + 16).ok_or_else(corrupt)?);
    }
    if cursors.iter().any(|c| c.index * META_LEN != c.e.term_meta.len()) {
        return Err(corrupt());
    }
    Ok(out)
}

impl Encoded {
    /// Stores the segment as one of `account`'s for `day`; returns its id.
    fn insert(&self, tx: &Connection, account: i64, day: i64) -> Result<i64, Fail> {
        let e = self;
        tx.prepare_cached(
            "INSERT INTO text_index (account_id, day, events, max_seq, terms, term_meta, keys, postings, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            account,
            day,
            e.events,
            e.max_seq,
            e.terms,
            e.term_meta,
            e.keys,
            e.postings,
            e.body
        ])?;
        Ok(tx.last_insert_rowid())
    }
}

impl Segment {
    /// Adds an event: its `viewed`, `seq` and searchable fields.
    pub(crate) fn push(&mut self, viewed: i64, seq: i64, fields: [&str; 4]) -> Result<(), Fail> {
        let ordinal = self.events;
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.body.push(FIELD_END);
            }
            let terms = &mut self.terms;
            let mut added = Ok(());
            let mut add = |term: &[u8]| {
                if added.is_ok() {
                    added = terms.add(term, ordinal);
                }
            };
            // The terms are taken from the folded text without checking it as UTF-8 again: an
            // ASCII field folds in place (its terms lie where the field's do), any other is
            // folded into a string first.
            let from = self.body.len();
            if field.is_ascii() {
                self.body.extend(field.bytes().map(|b| b.to_ascii_lowercase()));
                let folded = &self.body[from..];
                for_each_term_span(field, |span| add(&folded[span]));
            } else {
                let folded = field.to_lowercase();
                for_each_term(&folded, &mut add);
                self.body.extend_from_slice(folded.as_bytes());
            }
            added?;
        }
        self.body.push(EVENT_END);
        let end = u32::try_from(self.body.len()).map_err(|_| too_big())?;
        self.keys.extend_from_slice(&viewed.to_le_bytes());
        self.keys.extend_from_slice(&seq.to_le_bytes());
        self.keys.extend_from_slice(&end.to_le_bytes());
        self.events = self.events.checked_add(1).ok_or_else(too_big)?;
        self.max_seq = self.max_seq.max(seq);
        Ok(())
    }

    /// The stored form: terms sorted, their postings in that order.
    pub(crate) fn encode(self) -> Result<Encoded, Fail> {
        let mut dict = self.terms;
        let mut terms = std::mem::take(&mut dict.terms);
        terms.sort_unstable_by(|a, b| dict.bytes_of(a).cmp(dict.bytes_of(b)));
        let mut out = Encoded {
            events: self.events,
            max_seq: self.max_seq,
            terms: Vec::with_capacity(dict.bytes.len() + terms.len()),
            term_meta: Vec::with_capacity(terms.len() * META_LEN),
            keys: self.keys,
            postings: Vec::with_capacity(dict.postings.len() * 4),
            body: self.body,
        };
        let mut end = 0u32;
        for term in &terms {
            out.terms.extend_from_slice(dict.bytes_of(term));
            out.terms.push(FIELD_END);
            end = end.checked_add(term.count).ok_or_else(too_big)?;
            out.term_meta.extend_from_slice(&end.to_le_bytes());
            let first = dict.postings.get(term.first as usize).map_or(0, |&(o, _)| o as usize * KEY_LEN);
            out.term_meta.extend_from_slice(out.keys.get(first..first + 16).ok_or_else(corrupt)?);
            for p in dict.postings_of(term) {
                out.postings.extend_from_slice(&p.to_le_bytes());
            }
        }
        Ok(out)
    }

    fn insert(self, tx: &Connection, account: i64, day: i64) -> Result<(), Fail> {
        self.encode()?.insert(tx, account, day)?;
        Ok(())
    }
}

/// Little-endian i64 at `at`.
pub(crate) fn read_i64(bytes: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    i64::from_le_bytes(b)
}

/// Little-endian u32 at `at`.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
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

    /// Writes the segments, notes that their days were written at `now` (Unix seconds), then
    /// merges the touched days' segments where a tier is full.
    pub(crate) fn write(self, tx: &Connection, ctx: &Ctx<'_>, account: i64, now: i64) -> Result<(), Fail> {
        let days: Vec<i64> = self.days.keys().copied().collect();
        for (day, segment) in self.days {
            segment.insert(tx, account, day)?;
            tx.prepare_cached(
                "INSERT INTO text_days (account_id, day, written_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account_id, day) DO UPDATE SET written_at = excluded.written_at",
            )?
            .execute(params![account, day, now])?;
        }
        for day in days {
            ctx.check()?;
            compact(tx, account, day)?;
        }
        Ok(())
    }
}

/// A stored segment's columns; its text (`body`, the biggest part) only `with_body`.
fn read_stored(tx: &Connection, id: i64, with_body: bool) -> Result<Option<Encoded>, Fail> {
    let mut stmt = tx.prepare_cached(if with_body {
        "SELECT events, max_seq, terms, term_meta, keys, postings, body FROM text_index WHERE id = ?1"
    } else {
        "SELECT events, max_seq, terms, term_meta, keys, postings, x'' FROM text_index WHERE id = ?1"
    })?;
    let mut rows = stmt.query([id])?;
    let Some(row) = rows.next()? else { return Ok(None) };
    let blob = |i: usize| -> Result<Vec<u8>, Fail> { Ok(crate::search::blob(row, i)?.to_vec()) };
    Ok(Some(Encoded {
        events: row.get(0)?,
        max_seq: row.get(1)?,
        terms: blob(2)?,
        term_meta: blob(3)?,
        keys: blob(4)?,
        postings: blob(5)?,
        body: blob(6)?,
    }))
}

/// A day's segments: their ids, numbers of events and whether they are in time order
/// (`text_sorted`), in the order they were written.
fn day_segments(tx: &Connection, account: i64, day: i64) -> Result<Vec<(i64, i64, bool)>, Fail> {
    let segments = tx
        .prepare_cached(
            "SELECT id, events, EXISTS (SELECT 1 FROM text_sorted s WHERE s.id = text_index.id) \
             FROM text_index WHERE account_id = ?1 AND day = ?2 ORDER BY id",
        )?
        .query_map(params![account, day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(segments)
}

/// Merges a day's segments while some tier holds [`FANOUT`] of them.
fn compact(tx: &Connection, account: i64, day: i64) -> Result<(), Fail> {
    loop {
        let segments = day_segments(tx, account, day)?;
        let mut tiers: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for (id, events, _) in segments {
            tiers.entry(tier(events)).or_default().push(id);
        }
        let Some(ids) = tiers.into_values().find(|ids| ids.len() >= FANOUT) else {
            return Ok(());
        };
        replace_by_merge(tx, account, day, &ids, Order::AsWritten)?;
    }
}

/// Replaces the segments `ids` of a day by one segment holding their events in `order` (noted
/// in `text_sorted` when that is time order).
fn replace_by_merge(tx: &Connection, account: i64, day: i64, ids: &[i64], order: Order) -> Result<(), Fail> {
    let mut parts = Vec::with_capacity(ids.len());
    for &id in ids {
        parts.extend(read_stored(tx, id, true)?);
        tx.prepare_cached("DELETE FROM text_index WHERE id = ?1")?.execute([id])?;
        tx.prepare_cached("DELETE FROM text_sorted WHERE id = ?1")?.execute([id])?;
    }
    let id = merge(&parts, order)?.insert(tx, account, day)?;
    if order == Order::Time {
        tx.prepare_cached("INSERT INTO text_sorted (id) VALUES (?1)")?.execute([id])?;
    }
    Ok(())
}

/// `text_days.written_at` of a day [`settle_day`] has looked at since its last write.
const SETTLED: i64 = -1;

/// The days, as `(account, day)`, to look at for merging: days that ended and took no segment
/// before `written_before` (Unix seconds), and that [`settle_day`] has not looked at since.
/// Today is left to its size tiers until it is over: merging it whole after every quiet spell
/// of a steady feed would rewrite its text again and again.
pub(crate) fn unsettled_days(db: &Connection, written_before: i64) -> Result<Vec<(i64, i64)>, Fail> {
    let days = db
        .prepare_cached(
            "SELECT account_id, day FROM text_days \
             WHERE written_at > ?1 AND written_at < ?2 AND day < ?3 ORDER BY account_id, day",
        )?
        .query_map(params![SETTLED, written_before, day_of(written_before)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(days)
}

/// Whether a settled day's segments (their sizes) are worth merging into one: when there are
/// more than [`FANOUT`] of them, or when the others hold at least an eighth of the events of
/// the largest. A few late events for a day already merged do not rewrite its whole text; the
/// size tiers keep them in a few small segments until they are worth it.
fn worth_merging(sizes: &[i64]) -> bool {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let rest: i64 = sizes.iter().sum::<i64>() - largest;
    sizes.len() > 1 && (sizes.len() > FANOUT || rest.saturating_mul(8) >= largest)
}

/// Merges a settled day's segments into one, in time order, if [`worth_merging`] (or sorts a
/// day's one segment if it is not in time order yet), so that a search reads one dictionary
/// and one row for the day instead of one per size tier and finds a page's newest matches at
/// the end of their postings; notes that the day was looked at; returns whether it rewrote the
/// day. Tiers bound a day's segments while it takes new events; once it no longer does, one
/// segment is cheaper to search and costs no more to keep.
pub(crate) fn settle_day(tx: &Connection, account: i64, day: i64) -> Result<bool, Fail> {
    let segments = day_segments(tx, account, day)?;
    let sizes: Vec<i64> = segments.iter().map(|&(_, n, _)| n).collect();
    let merge = worth_merging(&sizes) || matches!(segments.as_slice(), [(_, _, false)]);
    if merge {
        let ids: Vec<i64> = segments.iter().map(|&(id, _, _)| id).collect();
        replace_by_merge(tx, account, day, &ids, Order::Time)?;
    }
    tx.prepare_cached("UPDATE text_days SET written_at = ?3 WHERE account_id = ?1 AND day = ?2")?
        .execute(params![account, day, SETTLED])?;
    Ok(merge)
}

/// Migration 9: widens each segment's `term_meta` from the end of each term's postings (u32)
/// to [`META_LEN`] bytes, adding the key of the term's first event. A segment already in the
/// wide form (written by migration 4 with this code) is left as it is.
pub(crate) fn migration_widen_term_meta(tx: &Connection) -> Result<(), Fail> {
    let ids: Vec<i64> =
        tx.prepare("SELECT id FROM text_index ORDER BY id")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for id in ids {
        // The parts the entries are made of (not the text).
        let Some(e) = read_stored(tx, id, false)? else { continue };
        let terms = memchr::memchr_iter(FIELD_END, &e.terms).count();
        if e.term_meta.len() == terms * META_LEN {
            continue;
        }
        if e.term_meta.len() != terms * 4 || e.keys.len() != e.events as usize * KEY_LEN {
            return Err(corrupt());
        }
        let mut meta = Vec::with_capacity(terms * META_LEN);
        let mut from = 0usize;
        for end in e.term_meta.chunks_exact(4) {
            let to = read_u32(end, 0) as usize;
            let ordinal = read_u32(e.postings.get(from * 4..from * 4 + 4).ok_or_else(corrupt)?, 0) as usize;
            meta.extend_from_slice(end);
            meta.extend_from_slice(e.keys.get(ordinal * KEY_LEN..ordinal * KEY_LEN + 16).ok_or_else(corrupt)?);
            from = to;
        }
        tx.prepare_cached("UPDATE text_index SET term_meta = ?2 WHERE id = ?1")?.execute(params![id, meta])?;
    }
    Ok(())
}

/// Fills the index from the events already stored (migration 4), one segment per account and
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two terms whose hashes collide each keep their own postings: the second is probed past
    /// the first.
    #[test]
    fn a_dictionary_keeps_colliding_terms_apart() {
        let mut d = Dictionary::default();
        d.add(b"alpha", 0).expect("add");
        // Make "beta" collide with "alpha": its hash taken by alpha's entry.
        d.by_hash.insert(hash_of(b"beta"), 0);
        for (term, ordinal) in [(&b"beta"[..], 1), (b"alpha", 1), (b"beta", 2), (b"beta", 2), (b"alpha", 3)] {
            d.add(term, ordinal).expect("add");
        }
        let got: Vec<(Vec<u8>, Vec<u32>)> =
            d.terms.iter().map(|t| (d.bytes_of(t).to_vec(), d.postings_of(t).collect())).collect();
        assert_eq!(got, vec![(b"alpha".to_vec(), vec![0, 1, 3]), (b"beta".to_vec(), vec![1, 2])]);
        assert_eq!(d.terms.iter().map(|t| t.count).collect::<Vec<_>>(), vec![3, 2]);
    }

    #[test]
    fn a_day_is_merged_when_its_small_segments_are_many_or_big_enough() {
        assert!(!worth_merging(&[]));
        assert!(!worth_merging(&[1000]));
        // The others hold an eighth of the largest, or more.
        assert!(worth_merging(&[800, 100]));
        assert!(worth_merging(&[64, 16, 4, 4, 4]));
        assert!(!worth_merging(&[800, 99]));
        // A few late events for a merged day wait, unless they are in many segments.
        assert!(!worth_merging(&[27_000, 16, 4, 1]));
        assert!(!worth_merging(&[27_000, 1, 1, 1]));
        assert!(worth_merging(&[27_000, 4, 1, 1, 1]));
    }

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

    /// A segment keeps each field as `str::to_lowercase` has it, and the terms of those.
    #[test]
    fn a_segment_holds_its_fields_lower_cased() {
        let fields = ["Quarterly RESULTS q3", "ÅSA Öberg", "\u{212a}elvin.ΟΔΟΣ", "Straße, ΣΊΣΥΦΟΣ-x"];
        let mut s = Segment::default();
        s.push(10, 1, fields).expect("push");
        let e = s.encode().expect("encode");
        let lower: Vec<String> = fields.iter().map(|f| f.to_lowercase()).collect();
        let mut body = lower.iter().map(|f| f.as_bytes()).collect::<Vec<_>>().join(&FIELD_END);
        body.push(EVENT_END);
        assert_eq!(e.body, body);
        let mut expected: Vec<String> = lower.iter().flat_map(|f| terms_of(f)).collect();
        expected.sort();
        expected.dedup();
        let terms: Vec<String> = e
            .terms
            .split(|b| *b == FIELD_END)
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8(t.to_vec()).expect("utf-8"))
            .collect();
        assert_eq!(terms, expected);
    }

    fn terms_of(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_term(s, |t| out.push(String::from_utf8_lossy(t).into_owned()));
        out
    }

    #[test]
    fn terms_are_runs_of_alphanumerics() {
        assert_eq!(terms_of("re: invoice #1729"), ["re", "invoice", "1729"]);
        assert_eq!(terms_of("åsa.öberg@x-y.example"), ["åsa", "öberg", "x", "y", "example"]);
        assert_eq!(terms_of("  -- "), Vec::<String>::new());
        assert_eq!(terms_of("a"), ["a"]);
        assert_eq!(terms_of("résumé – senior"), ["résumé", "senior"]);
        assert_eq!(terms_of("οδος١٢"), ["οδος١٢"]);
    }

    #[test]
    fn a_segment_lists_each_term_once_per_event() {
        let mut s = Segment::default();
        s.push(10, 1, ["a@x.com", "b@x.com", "c@y.com", "Hello hello"]).expect("push");
        s.push(20, 2, ["a@x.com", "d@z.com", "c@y.com", "World"]).expect("push");
        let e = s.encode().expect("encode");
        assert_eq!(e.events, 2);
        assert_eq!(e.max_seq, 2);
        let terms: Vec<&[u8]> = e.terms.split(|b| *b == FIELD_END).filter(|t| !t.is_empty()).collect();
        let names: Vec<&str> = terms.iter().map(|t| std::str::from_utf8(t).expect("utf-8")).collect();
        assert_eq!(names, ["a", "b", "c", "com", "d", "hello", "world", "x", "y", "z"]);
        let ends: Vec<u32> = e.term_meta.chunks_exact(META_LEN).map(|m| read_u32(m, 0)).collect();
        let firsts: Vec<(i64, i64)> =
            e.term_meta.chunks_exact(META_LEN).map(|m| (read_i64(m, 4), read_i64(m, 12))).collect();
        let postings: Vec<u32> = e.postings.chunks_exact(4).map(|p| read_u32(p, 0)).collect();
        // a: both; b: 0; c: both; com: both; d: 1; hello: 0; world: 1; x: both; y: both; z: 1.
        assert_eq!(ends, [2, 3, 5, 7, 8, 9, 10, 12, 14, 15]);
        assert_eq!(postings, [0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1]);
        // Each term's first event: (viewed, seq) of event 0 or, for d, world and z, event 1.
        let (first, second) = ((10, 1), (20, 2));
        assert_eq!(firsts, [first, first, first, first, second, first, second, first, first, second]);
    }

    #[test]
    fn migration_9_widens_term_meta_as_encoding_does() {
        let db = Connection::open_in_memory().expect("db");
        db.execute_batch(crate::schema::TEXT_INDEX).expect("schema");
        let mut s = Segment::default();
        s.push(10, 1, ["a@x.com", "b@x.com", "c@y.com", "Hello hello"]).expect("push");
        s.push(20, 2, ["a@x.com", "d@z.com", "c@y.com", "World"]).expect("push");
        let wide = s.encode().expect("encode");
        // The narrow form: the ends alone.
        let narrow = Encoded {
            term_meta: wide.term_meta.chunks_exact(META_LEN).flat_map(|m| m[..4].to_vec()).collect(),
            ..wide.clone()
        };
        narrow.insert(&db, 1, 0).expect("narrow");
        wide.insert(&db, 1, 1).expect("wide");
        migration_widen_term_meta(&db).expect("widen");
        for id in [1, 2] {
            assert_eq!(read_stored(&db, id, true).expect("read"), Some(wide.clone()), "segment {id}");
        }
        // A term_meta of neither form is refused.
        db.execute("UPDATE text_index SET term_meta = x'0100' WHERE id = 1", []).expect("damage");
        assert!(migration_widen_term_meta(&db).is_err());
    }

    #[test]
    fn merged_segments_renumber_their_events() {
        let mut a = Segment::default();
        a.push(10, 1, ["v@x", "s@x", "r@x", "Hello"]).expect("push");
        let mut b = Segment::default();
        b.push(20, 2, ["w@x", "t@x", "q@x", "Hello World"]).expect("push");
        let (a, b) = (a.encode().expect("a"), b.encode().expect("b"));
        let m = merge(&[a.clone(), b.clone()], Order::AsWritten).expect("merged");
        assert_eq!(m.events, 2);
        assert_eq!(m.max_seq, 2);
        assert_eq!(m.body, [a.body.clone(), b.body.clone()].concat());
        assert_eq!(read_u32(&m.keys, KEY_LEN + 16) as usize, a.body.len() + b.body.len());
        let mut direct = Segment::default();
        direct.push(10, 1, ["v@x", "s@x", "r@x", "Hello"]).expect("push");
        direct.push(20, 2, ["w@x", "t@x", "q@x", "Hello World"]).expect("push");
        assert_eq!(m, direct.encode().expect("direct"), "merging is building in one go");
    }

    /// A segment of `events` (viewed, seq, fields), pushed in their order.
    fn built(events: &[(i64, i64, [String; 4])]) -> Encoded {
        let mut s = Segment::default();
        for (viewed, seq, f) in events {
            s.push(*viewed, *seq, [&f[0], &f[1], &f[2], &f[3]]).expect("push");
        }
        s.encode().expect("encode")
    }

    proptest::proptest! {
        /// Merging segments as written is building one from their events one part after the
        /// other; merging them in time order is building one from their events sorted by
        /// `(viewed, seq)`: the same bytes, whatever the parts and their order.
        #[test]
        fn a_merge_is_building_in_its_order(
            fields in proptest::collection::vec(
                proptest::array::uniform4(proptest::string::string_regex("[a-cA-C1-2 .@Åσ]{0,8}").expect("regex")),
                0..30,
            ),
            times in proptest::collection::vec(0i64..50, 30),
            cuts in proptest::collection::vec(0usize..30, 0..5),
        ) {
            // Seqs unique, times repeating: ties on `viewed` are broken by `seq`.
            let events: Vec<(i64, i64, [String; 4])> =
                fields.into_iter().enumerate().map(|(i, f)| (times[i], 100 - i as i64, f)).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
            cuts.push(0);
            cuts.push(events.len());
            cuts.sort_unstable();
            let chunks: Vec<&[(i64, i64, [String; 4])]> = cuts.windows(2).map(|w| &events[w[0]..w[1]]).collect();
            let parts: Vec<Encoded> = chunks.iter().map(|c| built(c)).collect();
            proptest::prop_assert_eq!(merge(&parts, Order::AsWritten).expect("merge"), built(&events));
            let mut sorted = events.clone();
            sorted.sort_by_key(|&(viewed, seq, _)| (viewed, seq));
            proptest::prop_assert_eq!(merge(&parts, Order::Time).expect("merge"), built(&sorted));
        }
    }
}
