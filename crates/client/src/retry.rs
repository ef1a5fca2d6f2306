//! When and how long to wait before trying a request again.

use rand::Rng;
use std::time::Duration;

/// Bounds on retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included).
    pub max_attempts: u32,
    /// The first backoff after a 5xx, a timeout or a dropped connection.
    pub base_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for attempt `n` (1-based) that failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        let millis = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
    }

    /// The wait after a 429: the server's `X-RateLimit-Reset` (milliseconds) plus up to 10%
    /// (at least 50 ms) of jitter; without the header, the backoff.
    pub fn rate_limit_wait(&self, reset_ms: Option<u64>, attempt: u32) -> Duration {
        match reset_ms {
            Some(ms) => {
                let jitter = rand::thread_rng().gen_range(0..=(ms / 10).max(50));
                Duration::from_millis(ms.saturating_add(jitter)).min(self.max_delay)
            }
            None => self.backoff(attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(p.backoff(1) <= Duration::from_millis(100));
        assert!(p.backoff(3) >= Duration::from_millis(200));
        assert!(p.backoff(30) <= Duration::from_secs(1));
    }

    #[test]
    fn rate_limit_wait_reads_milliseconds() {
        let p = RetryPolicy::default();
        let w = p.rate_limit_wait(Some(1500), 1);
        assert!(w >= Duration::from_millis(1500) && w <= Duration::from_millis(1650), "{w:?}");
    }
}
