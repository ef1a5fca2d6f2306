//! The dictionaries (terms) of text segments, kept in memory between searches.
//!
//! A search reads the dictionary of every segment of its range's days ([`crate::search`]): a
//! month of ten million events a year holds about 1 MB of them, which every search would copy
//! out of SQLite's overflow pages again. A segment never changes once written (merging writes a
//! new one and deletes the old), so its dictionary can be kept: the readers share one cache,
//! bounded in bytes ([`crate::SqliteOptions::dictionary_cache_bytes`]), which drops the least
//! recently used dictionaries to make room.

use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard};

use hashlink::LinkedHashMap;
use rustc_hash::FxHasher;

/// What names a segment's dictionary. SQLite may give the id of a deleted row to a new one, so
/// the id comes with the segment's account, day, size and highest seq: a segment that takes a
/// freed id differs in one of them (a merge holds more events than any segment it merged; a new
/// insert holds seqs above every older segment's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SegmentKey {
    pub(crate) id: i64,
    pub(crate) account: i64,
    pub(crate) day: i64,
    pub(crate) events: u32,
    pub(crate) max_seq: i64,
}

/// The shared cache of segment dictionaries. Its `Default` keeps none (a budget of 0); the
/// store's has the budget of its options.
#[derive(Debug, Default)]
pub(crate) struct Dictionaries {
    budget: usize,
    cached: Mutex<Cached>,
}

/// The dictionaries, least recently used first, and their bytes.
#[derive(Debug, Default)]
struct Cached {
    map: LinkedHashMap<SegmentKey, Arc<[u8]>, BuildHasherDefault<FxHasher>>,
    bytes: usize,
}

impl Dictionaries {
    /// An empty cache holding at most `budget` bytes of dictionaries (0: none).
    pub(crate) fn new(budget: usize) -> Self {
        Dictionaries { budget, cached: Mutex::new(Cached::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Cached> {
        // A panic while holding the lock cannot leave the map inconsistent with itself.
        self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached dictionary of `key`, if any (now the most recently used).
    pub(crate) fn get(&self, key: &SegmentKey) -> Option<Arc<[u8]>> {
        let mut cached = self.lock();
        let terms = cached.map.get(key).cloned();
        if terms.is_some() {
            cached.map.to_back(key);
        }
        terms
    }

    /// Keeps `terms` as the dictionary of `key`, dropping the least recently used ones until it
    /// fits; a dictionary bigger than the whole budget is not kept.
    pub(crate) fn put(&self, key: SegmentKey, terms: Arc<[u8]>) {
        if terms.len() > self.budget {
            return;
        }
        let mut cached = self.lock();
        if let Some(old) = cached.map.remove(&key) {
            cached.bytes -= old.len();
        }
        while cached.bytes + terms.len() > self.budget {
            match cached.map.pop_front() {
                Some((_, old)) => cached.bytes -= old.len(),
                None => break,
            }
        }
        cached.bytes += terms.len();
        cached.map.insert(key, terms);
    }

    /// The bytes of dictionaries held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64) -> SegmentKey {
        SegmentKey { id, account: 1, day: 2, events: 3, max_seq: 4 }
    }

    #[test]
    fn keeps_what_fits_and_drops_the_least_recently_used() {
        let cache = Dictionaries::new(10);
        cache.put(key(1), Arc::from(&b"abcd"[..]));
        cache.put(key(2), Arc::from(&b"efgh"[..]));
        assert_eq!(cache.get(&key(1)).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(cache.bytes(), 8);
        // Another segment with the same id is another key.
        assert_eq!(cache.get(&SegmentKey { events: 9, ..key(1) }), None);
        // Replacing an entry counts its bytes once.
        cache.put(key(2), Arc::from(&b"ef"[..]));
        assert_eq!(cache.bytes(), 6);
        // Room is made by dropping the least recently used: 1 was read after 2 was written,
        // then 2 was written again, so 1 goes first.
        cache.put(key(3), Arc::from(&b"ijklmn"[..]));
        assert_eq!(cache.bytes(), 8);
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.get(&key(2)).as_deref(), Some(&b"ef"[..]));
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"ijklmn"[..]));
        // 2 was read before 3: writing 4 drops 2 only.
        cache.put(key(4), Arc::from(&b"opq"[..]));
        assert_eq!(cache.get(&key(2)), None);
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"ijklmn"[..]));
        assert_eq!(cache.bytes(), 9);
        // Bigger than the budget: not kept, nothing dropped.
        cache.put(key(5), Arc::from(&b"0123456789ab"[..]));
        assert_eq!(cache.get(&key(5)), None);
        assert_eq!(cache.bytes(), 9);
        // A budget of 0 keeps nothing.
        let none = Dictionaries::new(0);
        none.put(key(1), Arc::from(&b"a"[..]));
        assert_eq!(none.get(&key(1)), None);
    }
}
