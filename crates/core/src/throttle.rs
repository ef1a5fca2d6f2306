//! Slowing down password guessing (issue: sign-in and key lifecycle).
//!
//! Failures are counted per client address and per user address (known or not, so the
//! answers never tell whether an address exists). After `free_attempts` failures, each further
//! attempt must wait an exponentially growing delay after the last failure. A client address
//! that reaches `lockout_after` failures is locked out for `lockout` seconds. A user address is
//! never locked out, only delayed (at most `max_user_delay`), so that an attacker spreading
//! guesses over many addresses cannot lock a real user out: they can only slow them down. A
//! record whose last failure is older than the lock-out window is forgotten.

use viewlog_store::{LoginFailures, UnixTime};

/// The throttling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures allowed before any delay.
    pub free_attempts: u32,
    /// The first delay, in seconds; it doubles with each further failure.
    pub base_delay: u64,
    /// The longest delay a user address gets.
    pub max_user_delay: u64,
    /// Failures from one client address before it is locked out.
    pub lockout_after: u32,
    /// How long a lock-out lasts, and how long failures are remembered, in seconds.
    pub lockout: u64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle { free_attempts: 3, base_delay: 1, max_user_delay: 30, lockout_after: 10, lockout: 900 }
    }
}

/// Whose failures a record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKind {
    /// A client address.
    Address,
    /// A user address.
    User,
}

impl LoginThrottle {
    /// Whether a record is old enough to be forgotten.
    pub fn stale(&self, f: &LoginFailures, now: UnixTime) -> bool {
        now - f.last_at >= self.lockout as i64
    }

    /// Seconds until the next attempt may be made (0: now).
    pub fn wait(&self, kind: ThrottleKind, f: &LoginFailures, now: UnixTime) -> u64 {
        if self.stale(f, now) || f.count < self.free_attempts {
            return 0;
        }
        let until = match kind {
            ThrottleKind::Address if f.count >= self.lockout_after => f.last_at + self.lockout as i64,
            _ => {
                let exp = (f.count - self.free_attempts).min(30);
                let delay = self.base_delay.saturating_mul(1u64 << exp);
                let delay = if kind == ThrottleKind::User { delay.min(self.max_user_delay) } else { delay };
                f.last_at + delay.min(self.lockout) as i64
            }
        };
        (until - now).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(count: u32, last_at: i64) -> LoginFailures {
        LoginFailures { count, first_at: 0, last_at }
    }

    #[test]
    fn delay_grows_then_locks_the_address_but_only_slows_the_user() {
        let t = LoginThrottle::default();
        assert_eq!(t.wait(ThrottleKind::Address, &f(2, 100), 100), 0);
        assert_eq!(t.wait(ThrottleKind::Address, &f(3, 100), 100), 1);
        assert_eq!(t.wait(ThrottleKind::Address, &f(5, 100), 100), 4);
        assert_eq!(t.wait(ThrottleKind::Address, &f(10, 100), 100), 900);
        assert_eq!(t.wait(ThrottleKind::User, &f(10, 100), 100), 30);
        assert_eq!(t.wait(ThrottleKind::User, &f(50, 100), 110), 20);
        // Forgotten once the lock-out window has passed.
        assert_eq!(t.wait(ThrottleKind::Address, &f(10, 100), 1000), 0);
        assert!(t.stale(&f(10, 100), 1000));
    }
}
