//! The domain's settings.

use std::time::Duration;
use viewlog_store::RatePolicy;

/// How the domain checks and runs requests.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// How far `x-mc-date` may be from the server's clock (PROTOCOL §3; default 15 minutes).
    pub clock_skew: Duration,
    /// The per-user (and per-address) token bucket (default 1,000 capacity, 20 per second).
    pub rate: RatePolicy,
    /// The longest a store query may run before it is interrupted (default 10 s).
    pub query_deadline: Duration,
    /// How many store queries may run at once; further ones wait up to the deadline (default 8).
    pub max_concurrent_queries: usize,
    /// How failed sign-ins are slowed down.
    pub login: crate::throttle::LoginThrottle,
    /// How long an API 2.0 bearer token lives (default 30 minutes).
    pub token_lifetime: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            clock_skew: Duration::from_secs(15 * 60),
            rate: RatePolicy { capacity: 1000, refill_per_sec: 20.0 },
            query_deadline: Duration::from_secs(10),
            max_concurrent_queries: 8,
            login: crate::throttle::LoginThrottle::default(),
            token_lifetime: Duration::from_secs(crate::oauth::TOKEN_LIFETIME_SECS as u64),
        }
    }
}
