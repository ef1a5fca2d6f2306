//! The rate limiter's token buckets, kept in memory.
//!
//! One SQLite file is served by one server process (SQLite's single writer makes sharing a file
//! between servers a poor idea anyway), so the buckets "shared by every server" are simply the
//! buckets of this process: no database write per request. A restart refills every bucket.

use std::collections::HashMap;
use std::sync::Mutex;

use viewlog_store::{RateDecision, RateKey, RatePolicy};

/// Below this, a difference in tokens or milliseconds is rounding error.
use viewlog_store::RATE_EPSILON as EPSILON;

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens in the bucket at `last_ms` (fractional: refill is continuous).
    tokens: f64,
    /// When `tokens` was computed.
    last_ms: i64,
    /// The policy of the last request, to tell when the bucket is full again.
    capacity: f64,
    refill_per_sec: f64,
}

impl Bucket {
    /// Whether the bucket is full at `now_ms` (and so indistinguishable from a new one).
    fn full_at(&self, now_ms: i64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms).max(0) as f64;
        self.tokens + elapsed * self.refill_per_sec / 1000.0 >= self.capacity
    }
}

/// Token buckets by key, bounded in number.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<RateKey, Bucket>>,
    max_buckets: usize,
}

impl RateLimiter {
    /// A limiter that keeps at most about `max_buckets` buckets.
    pub(crate) fn new(max_buckets: usize) -> RateLimiter {
        RateLimiter { buckets: Mutex::new(HashMap::new()), max_buckets: max_buckets.max(1) }
    }

    /// How many buckets are kept now.
    pub(crate) fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Takes one token from `key`'s bucket (created full), refilled up to `now_ms`.
    pub(crate) fn take(&self, key: &RateKey, policy: RatePolicy, now_ms: i64) -> RateDecision {
        let capacity = policy.capacity as f64;
        let refill_per_sec = policy.effective_refill();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_buckets {
            evict(&mut buckets, now_ms, self.max_buckets);
        }
        let bucket = match buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => buckets.entry(key.clone()).or_insert(Bucket {
                tokens: capacity,
                last_ms: now_ms,
                capacity,
                refill_per_sec,
            }),
        };
        // Refill for the time passed; a clock that went back refills nothing.
        if now_ms > bucket.last_ms {
            bucket.tokens += (now_ms - bucket.last_ms) as f64 * refill_per_sec / 1000.0;
            bucket.last_ms = now_ms;
        }
        // Keep rounding error from costing a whole token (0.4 + 0.6 must make 1).
        let nearest = bucket.tokens.round();
        if (bucket.tokens - nearest).abs() < EPSILON {
            bucket.tokens = nearest;
        }
        bucket.tokens = bucket.tokens.min(capacity);
        bucket.capacity = capacity;
        bucket.refill_per_sec = refill_per_sec;

        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        policy.decision(bucket.tokens, allowed)
    }
}

/// Makes room: drops the buckets that are full again (forgetting them changes nothing), and if
/// that is not enough, the least recently used half.
fn evict(buckets: &mut HashMap<RateKey, Bucket>, now_ms: i64, max: usize) {
    buckets.retain(|_, b| !b.full_at(now_ms));
    if buckets.len() >= max {
        let mut last: Vec<i64> = buckets.values().map(|b| b.last_ms).collect();
        let middle = last.len() / 2;
        let (_, cut, _) = last.select_nth_unstable(middle);
        let cut = *cut;
        buckets.retain(|_, b| b.last_ms > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy { capacity: 2, refill_per_sec: 1.0 };

    #[test]
    fn map_stays_bounded() {
        let limiter = RateLimiter::new(100);
        for i in 0..10_000 {
            limiter.take(&RateKey::Address(format!("10.0.{}.{}", i / 256, i % 256)), POLICY, i);
            assert!(limiter.len() <= 100);
        }
    }

    #[test]
    fn eviction_prefers_full_buckets() {
        let limiter = RateLimiter::new(3);
        let busy = RateKey::User(viewlog_store::UserId(1));
        for _ in 0..3 {
            limiter.take(&busy, POLICY, 0);
        }
        limiter.take(&RateKey::User(viewlog_store::UserId(2)), POLICY, 0);
        limiter.take(&RateKey::User(viewlog_store::UserId(3)), POLICY, 0);
        // 2 s later keys 2 and 3 are full again; the busy key is not (it went to -1 → 0 tokens).
        limiter.take(&RateKey::User(viewlog_store::UserId(4)), POLICY, 1_500);
        assert_eq!(limiter.len(), 2);
        let d = limiter.take(&busy, POLICY, 1_500);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0, "the busy bucket was kept, not recreated full");
    }

    #[test]
    fn no_refill_policy() {
        let limiter = RateLimiter::new(10);
        let key = RateKey::Address("a".into());
        let policy = RatePolicy { capacity: 1, refill_per_sec: 0.0 };
        assert!(limiter.take(&key, policy, 0).allowed);
        let d = limiter.take(&key, policy, 1_000_000);
        assert!(!d.allowed);
        assert_eq!(d.reset_ms, u64::MAX);
        let zero = RatePolicy { capacity: 0, refill_per_sec: 5.0 };
        let d = limiter.take(&RateKey::Address("b".into()), zero, 0);
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.reset_ms), (0, 0));
    }
}
