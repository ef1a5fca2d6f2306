//! The dictionaries (terms) of text segments, kept in memory between searches.
//!
//! A search reads the dictionary of every segment of its range's days ([`crate::search`]): a
//! month of ten million events a year holds about 1 MB of them, which every search would copy
//! out of SQLite's overflow pages again. A segment never changes once written (merging writes a
//! new one and deletes the old), so its dictionary can be kept: the readers share one cache,
//! bounded in bytes ([`crate::SqliteOptions::dictionary_cache_bytes`]), which drops the least
//! recently used dictionaries to make room.
//!
//! A dictionary used a second time while cached gets an index by trigram ([`Trigrams`]), built
//! once on the thread that asks and kept only if it fits in the budget's free room: the index
//! never pushes a dictionary out, so a range whose dictionaries fit keeps them all, and a range
//! whose dictionaries do not fit (every use a miss) builds none. While the free room is less
//! than the dictionary's own size, no index is built for it at all.

use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use hashlink::LinkedHashMap;
use rustc_hash::FxHasher;

use crate::trigrams::Trigrams;

/// A segment's dictionary (its terms, each ended by `FIELD_END`) and, once built, its index.
#[derive(Debug)]
pub(crate) struct Dictionary {
    /// The terms.
    pub(crate) terms: Box<[u8]>,
    /// The index by trigram, set only while the dictionary is cached and counted in its bytes.
    index: OnceLock<Trigrams>,
    /// An index has been built for it (kept or not): it is built at most once.
    indexed: AtomicBool,
}

impl Dictionary {
    /// A dictionary of `terms`, without an index.
    pub(crate) fn new(terms: &[u8]) -> Self {
        Dictionary { terms: terms.into(), index: OnceLock::new(), indexed: AtomicBool::new(false) }
    }

    /// Its index by trigram, if it has one.
    pub(crate) fn index(&self) -> Option<&Trigrams> {
        self.index.get()
    }

    /// The bytes it holds in the cache.
    fn bytes(&self) -> usize {
        self.terms.len() + self.index.get().map_or(0, Trigrams::bytes)
    }
}

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
    map: LinkedHashMap<SegmentKey, Arc<Dictionary>, BuildHasherDefault<FxHasher>>,
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
    pub(crate) fn get(&self, key: &SegmentKey) -> Option<Arc<Dictionary>> {
        let mut cached = self.lock();
        let dictionary = cached.map.get(key).cloned();
        if dictionary.is_some() {
            cached.map.to_back(key);
        }
        dictionary
    }

    /// Builds the index of `dictionary`, cached as `key`'s, unless one was built already; keeps
    /// it if it is still cached and the budget has room for the index without dropping any.
    /// The index is built without the lock: other readers go on meanwhile. While the free room
    /// is smaller than the dictionary itself (an index takes about three times as much), none
    /// is built, and a later use may try again.
    pub(crate) fn index(&self, key: &SegmentKey, dictionary: &Arc<Dictionary>) {
        // Every later use of an indexed dictionary stops here, without taking the lock.
        if dictionary.indexed.load(Ordering::Relaxed) {
            return;
        }
        if self.lock().bytes + dictionary.terms.len() > self.budget {
            return;
        }
        if dictionary.indexed.swap(true, Ordering::Relaxed) {
            return;
        }
        let Some(index) = Trigrams::build(&dictionary.terms) else { return };
        let mut cached = self.lock();
        let still_cached = cached.map.get(key).is_some_and(|d| Arc::ptr_eq(d, dictionary));
        if still_cached && cached.bytes + index.bytes() <= self.budget {
            cached.bytes += index.bytes();
            // Set only here, under the lock, while cached: its bytes are counted once, and
            // dropped with it.
            let _ = dictionary.index.set(index);
        }
    }

    /// Keeps `dictionary` as the dictionary of `key`, dropping the least recently used ones
    /// until it fits; a dictionary bigger than the whole budget is not kept.
    pub(crate) fn put(&self, key: SegmentKey, dictionary: Arc<Dictionary>) {
        let bytes = dictionary.bytes();
        if bytes > self.budget {
            return;
        }
        let mut cached = self.lock();
        if let Some(old) = cached.map.remove(&key) {
            cached.bytes -= old.bytes();
        }
        while cached.bytes + bytes > self.budget {
            match cached.map.pop_front() {
                Some((_, old)) => cached.bytes -= old.bytes(),
                None => break,
            }
        }
        cached.bytes += bytes;
        cached.map.insert(key, dictionary);
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

    fn dict(terms: &[u8]) -> Arc<Dictionary> {
        Arc::new(Dictionary::new(terms))
    }

    fn terms(d: Option<Arc<Dictionary>>) -> Option<Vec<u8>> {
        d.map(|d| d.terms.to_vec())
    }

    fn key(id: i64) -> SegmentKey {
        SegmentKey { id, account: 1, day: 2, events: 3, max_seq: 4 }
    }

    #[test]
    fn keeps_what_fits_and_drops_the_least_recently_used() {
        let cache = Dictionaries::new(10);
        cache.put(key(1), dict(b"abcd"));
        cache.put(key(2), dict(b"efgh"));
        assert_eq!(terms(cache.get(&key(1))), Some(b"abcd".to_vec()));
        assert_eq!(cache.bytes(), 8);
        // Another segment with the same id is another key.
        assert!(cache.get(&SegmentKey { events: 9, ..key(1) }).is_none());
        // Replacing an entry counts its bytes once.
        cache.put(key(2), dict(b"ef"));
        assert_eq!(cache.bytes(), 6);
        // Room is made by dropping the least recently used: 1 was read after 2 was written,
        // then 2 was written again, so 1 goes first.
        cache.put(key(3), dict(b"ijklmn"));
        assert_eq!(cache.bytes(), 8);
        assert!(cache.get(&key(1)).is_none());
        assert_eq!(terms(cache.get(&key(2))), Some(b"ef".to_vec()));
        assert_eq!(terms(cache.get(&key(3))), Some(b"ijklmn".to_vec()));
        // 2 was read before 3: writing 4 drops 2 only.
        cache.put(key(4), dict(b"opq"));
        assert!(cache.get(&key(2)).is_none());
        assert_eq!(terms(cache.get(&key(3))), Some(b"ijklmn".to_vec()));
        assert_eq!(cache.bytes(), 9);
        // Bigger than the budget: not kept, nothing dropped.
        cache.put(key(5), dict(b"0123456789ab"));
        assert!(cache.get(&key(5)).is_none());
        assert_eq!(cache.bytes(), 9);
        // A budget of 0 keeps nothing.
        let none = Dictionaries::new(0);
        none.put(key(1), dict(b"a"));
        assert!(none.get(&key(1)).is_none());
    }

    #[test]
    fn indexes_a_cached_dictionary_once_and_only_in_free_room() {
        let terms = b"1729\xffglobex\xff";
        let size = Trigrams::build(terms).expect("index").bytes();
        // Room for two dictionaries, or one with its index, not two and an index.
        let cache = Dictionaries::new(2 * terms.len() + size - 1);
        let one = dict(terms);
        cache.put(key(1), Arc::clone(&one));
        cache.index(&key(1), &one);
        let found = one.index().expect("indexed").matching(&one.terms, &memchr::memmem::Finder::new("glo"));
        assert_eq!(found, Some(vec![1]));
        assert_eq!(cache.bytes(), terms.len() + size);
        // Built once: asking again changes nothing.
        cache.index(&key(1), &one);
        assert_eq!(cache.bytes(), terms.len() + size);
        // The index's bytes leave with its dictionary.
        let two = dict(terms);
        cache.put(key(2), Arc::clone(&two));
        assert!(cache.get(&key(1)).is_none());
        assert_eq!(cache.bytes(), terms.len());
        cache.put(key(3), dict(terms));
        assert_eq!(cache.bytes(), 2 * terms.len());
        // No room for an index beside two dictionaries: none kept, none dropped for it, and
        // it is not built again.
        cache.index(&key(2), &two);
        assert!(two.index().is_none());
        assert_eq!(cache.bytes(), 2 * terms.len());
        assert!(cache.get(&key(3)).is_some());
        // A dictionary no longer cached gets no index.
        let gone = dict(terms);
        cache.index(&key(9), &gone);
        assert!(gone.index().is_none());
        assert_eq!(cache.bytes(), 2 * terms.len());
    }

    #[test]
    fn builds_no_index_without_room_for_it_and_tries_again_later() {
        let terms = b"1729\xffglobex\xff";
        let (len, size) = (terms.len(), Trigrams::build(terms).expect("index").bytes());
        // Room for two dictionaries and one index.
        let cache = Dictionaries::new(2 * len + size);
        // A filler that leaves less free room than the dictionary's own size.
        cache.put(key(1), dict(&vec![b'x'; size + 1]));
        let one = dict(terms);
        cache.put(key(2), Arc::clone(&one));
        assert_eq!(cache.bytes(), size + 1 + len);
        cache.index(&key(2), &one);
        assert!(one.index().is_none());
        assert!(!one.indexed.load(Ordering::Relaxed), "not marked as built");
        // Another dictionary pushes the filler out (the least recently used): room now.
        cache.put(key(3), dict(terms));
        assert!(cache.get(&key(1)).is_none());
        cache.index(&key(2), &one);
        assert!(one.index().is_some());
        assert_eq!(cache.bytes(), 2 * len + size);
    }
}
