//! The dictionaries (terms) of text segments, kept in memory between searches.
//!
//! A search reads the dictionary of every segment of its range's days ([`crate::search`]): a
//! month of ten million events a year holds about 1 MB of them, which every search would copy
//! out of SQLite's overflow pages again. A segment never changes once written (merging writes a
//! new one and deletes the old), so its dictionary can be kept: the readers share one cache,
//! bounded in bytes ([`crate::SqliteOptions::dictionary_cache_bytes`]). When an entry would not
//! fit, the cache starts over: searches read recent months again and again, and a cleared cache
//! refills from the next few.

use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

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

/// The shared cache of segment dictionaries (by default with a budget of 0: none kept).
#[derive(Debug, Default)]
pub(crate) struct Dictionaries {
    budget: usize,
    cached: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    map: FxHashMap<SegmentKey, Arc<[u8]>>,
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

    /// The cached dictionary of `key`, if any.
    pub(crate) fn get(&self, key: &SegmentKey) -> Option<Arc<[u8]>> {
        self.lock().map.get(key).cloned()
    }

    /// Keeps `terms` as the dictionary of `key`, starting over if it would not fit otherwise;
    /// a dictionary bigger than the whole budget is not kept.
    pub(crate) fn put(&self, key: SegmentKey, terms: Arc<[u8]>) {
        if terms.len() > self.budget {
            return;
        }
        let mut cached = self.lock();
        if cached.bytes + terms.len() > self.budget {
            cached.map.clear();
            cached.bytes = 0;
        }
        let len = terms.len();
        if let Some(old) = cached.map.insert(key, terms) {
            cached.bytes -= old.len();
        }
        cached.bytes += len;
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
    fn keeps_what_fits_and_starts_over_when_full() {
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
        // What would overflow the budget clears the rest first.
        cache.put(key(3), Arc::from(&b"ijklmn"[..]));
        assert_eq!(cache.bytes(), 6);
        assert_eq!(cache.get(&key(1)), None);
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"ijklmn"[..]));
        // Bigger than the budget: not kept, nothing dropped.
        cache.put(key(4), Arc::from(&b"0123456789ab"[..]));
        assert_eq!(cache.get(&key(4)), None);
        assert_eq!(cache.bytes(), 6);
        // A budget of 0 keeps nothing.
        let none = Dictionaries::new(0);
        none.put(key(1), Arc::from(&b"a"[..]));
        assert_eq!(none.get(&key(1)), None);
    }
}
