//! An index of a cached dictionary's terms by the three-byte sequences (trigrams) they hold.
//!
//! A one-word search looks for the terms of each segment of its range that contain the needle
//! ([`crate::search`]). Without an index that is a substring search over the whole dictionary:
//! a month of ten million events a year holds about 1 MB of terms, most of them numbers, where a
//! needle of digits finds candidates everywhere. A term that contains a needle of three bytes or
//! more contains each of the needle's trigrams, so the terms listed in the bucket of any one of
//! them (trigrams are hashed into buckets) include every match: the terms listed in all of
//! them are the candidates, and each is then checked whole. The index lives beside its
//! dictionary in the readers' cache ([`crate::dictionaries`]), which builds it on a dictionary's
//! second use and counts its bytes.

use memchr::memmem::Finder;

use crate::segments::FIELD_END;

/// The terms of one dictionary by trigram, hashed into buckets: a bucket lists every term
/// holding a trigram of that bucket, so its terms are candidates to check, not matches.
#[derive(Debug)]
pub(crate) struct Trigrams {
    /// `terms[starts[b]..starts[b + 1]]` lists the terms holding a trigram of bucket `b`.
    starts: Box<[u32]>,
    /// The ordinals of the terms of each bucket, ascending within each bucket.
    terms: Box<[u32]>,
    /// Where each term starts in the dictionary, and one past the last term's end.
    term_starts: Box<[u32]>,
    /// The bucket of a trigram is its hash's top `bits` bits.
    bits: u32,
}

/// The bucket of trigram `w` among `1 << bits`.
fn bucket(w: &[u8], bits: u32) -> usize {
    let code = u32::from(w[0]) << 16 | u32::from(w[1]) << 8 | u32::from(w[2]);
    // Fibonacci hashing: the top bits of the product mix all three bytes.
    (code.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

/// The terms of `dictionary` (each ended by [`FIELD_END`]) and each term's ordinal.
fn terms_of(dictionary: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut at = 0;
    let terms = std::iter::from_fn(move || {
        let len = memchr::memchr(FIELD_END, &dictionary[at..])?;
        let term = &dictionary[at..at + len];
        at += len + 1;
        Some(term)
    });
    // A term takes a byte at least (its FIELD_END), and a dictionary fits in a u32.
    (0u32..).zip(terms)
}

/// Calls `list(ordinal, bucket)` once for each term of `dictionary` and each bucket (among
/// `1 << bits`) that one of its trigrams falls in, terms in order.
fn each_listing(dictionary: &[u8], bits: u32, mut list: impl FnMut(u32, usize)) {
    // The last term listed in each bucket, plus one (0: none yet).
    let mut last = vec![0u32; 1 << bits];
    for (ordinal, term) in terms_of(dictionary) {
        for w in term.windows(3) {
            let b = bucket(w, bits);
            if last[b] != ordinal + 1 {
                last[b] = ordinal + 1;
                list(ordinal, b);
            }
        }
    }
}

impl Trigrams {
    /// The index of `dictionary` (terms, each ended by [`FIELD_END`]); `None` for a dictionary
    /// too big for 32-bit offsets.
    pub(crate) fn build(dictionary: &[u8]) -> Option<Trigrams> {
        u32::try_from(dictionary.len()).ok()?;
        // About one bucket per 8 bytes of terms (a few trigrams each), 64 to 4,096 of them.
        let bits = (dictionary.len() / 8).clamp(64, 4096).next_power_of_two().trailing_zeros();
        let buckets = 1usize << bits;
        // Two passes, a counting sort: count each bucket's terms, then place them.
        let mut counts = vec![0u32; buckets + 1];
        each_listing(dictionary, bits, |_, b| counts[b + 1] += 1);
        for b in 0..buckets {
            counts[b + 1] += counts[b];
        }
        let starts = counts;
        let mut next: Vec<u32> = starts[..buckets].to_vec();
        let mut terms = vec![0u32; starts[buckets] as usize];
        each_listing(dictionary, bits, |ordinal, b| {
            terms[next[b] as usize] = ordinal;
            next[b] += 1;
        });
        let mut term_starts = vec![0u32];
        for (ordinal, term) in terms_of(dictionary) {
            // Within the dictionary's length, which fits in a u32.
            term_starts.push(term_starts[ordinal as usize] + term.len() as u32 + 1);
        }
        Some(Trigrams { starts: starts.into(), terms: terms.into(), term_starts: term_starts.into(), bits })
    }

    /// The bytes the index holds.
    pub(crate) fn bytes(&self) -> usize {
        4 * (self.starts.len() + self.terms.len() + self.term_starts.len())
    }

    /// The terms holding a trigram of `w`'s bucket, ascending.
    fn holding(&self, w: &[u8]) -> &[u32] {
        let b = bucket(w, self.bits);
        &self.terms[self.starts[b] as usize..self.starts[b + 1] as usize]
    }

    /// The ordinals of the terms of `dictionary` (the one this index was built from) that
    /// contain `word`, ascending; `None` for a needle shorter than a trigram.
    pub(crate) fn matching(&self, dictionary: &[u8], word: &Finder<'_>) -> Option<Vec<u32>> {
        let needle = word.needle();
        if needle.len() < 3 {
            return None;
        }
        // Every term holding the needle is listed in each of its trigrams' buckets: the
        // candidates are the terms of the shortest list that the others list too.
        let mut lists: Vec<&[u32]> = needle.windows(3).map(|w| self.holding(w)).collect();
        lists.sort_unstable_by_key(|terms| terms.len());
        let mut candidates = lists[0].to_vec();
        for list in &lists[1..] {
            if candidates.is_empty() {
                break;
            }
            candidates.retain(|t| list.binary_search(t).is_ok());
        }
        let term = |t: u32| -> &[u8] {
            let (from, to) = (self.term_starts[t as usize] as usize, self.term_starts[t as usize + 1] as usize);
            // Without its FIELD_END.
            &dictionary[from..to - 1]
        };
        candidates.retain(|&t| word.find(term(t)).is_some());
        Some(candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a substring search over every term finds.
    fn scanned(terms: &[String], needle: &str) -> Vec<u32> {
        (0..terms.len() as u32).filter(|&t| terms[t as usize].contains(needle)).collect()
    }

    fn dictionary(terms: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for t in terms {
            out.extend_from_slice(t.as_bytes());
            out.push(FIELD_END);
        }
        out
    }

    #[test]
    fn finds_terms_by_their_rarest_trigram_and_checks_them() {
        let terms: Vec<String> = ["17299", "172x729", "globex", "a", "", "1729", "ab"].map(String::from).to_vec();
        let dict = dictionary(&terms);
        let index = Trigrams::build(&dict).expect("index");
        let find = |n: &str| index.matching(&dict, &Finder::new(n));
        // "172x729" holds both trigrams of 1729 but not the needle.
        assert_eq!(find("1729"), Some(vec![0, 5]));
        assert_eq!(find("172"), Some(vec![0, 1, 5]));
        assert_eq!(find("obe"), Some(vec![2]));
        assert_eq!(find("globexx"), Some(vec![]));
        assert_eq!(find("zzz"), Some(vec![]));
        // Shorter than a trigram: the caller scans.
        assert_eq!(find("ab"), None);
        // A bucket lists every term holding one of its trigrams, once: 17299 holds 729 once.
        assert!(index.holding(b"729").starts_with(&[0, 1]));
        assert!(index.holding(b"729").windows(2).all(|p| p[0] < p[1]));
    }

    fn term() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ab1σ]{0,8}").expect("regex")
    }

    proptest! {
        /// The index finds exactly the terms a substring search over each term finds.
        #[test]
        fn finds_what_a_scan_finds(
            terms in proptest::collection::vec(term(), 0..30),
            needle in proptest::string::string_regex("[ab1σ]{1,5}").expect("regex"),
        ) {
            let dict = dictionary(&terms);
            let index = Trigrams::build(&dict).expect("index");
            match index.matching(&dict, &Finder::new(&needle)) {
                Some(found) => prop_assert_eq!(found, scanned(&terms, &needle)),
                None => prop_assert!(needle.len() < 3),
            }
        }
    }
}
