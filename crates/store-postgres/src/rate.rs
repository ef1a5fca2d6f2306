//! The rate limiter's token buckets, kept in the database so that every server sharing it
//! charges one quota per key.
//!
//! A take is one statement, `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING`: the row lock of
//! the upsert serialises concurrent takes on one key (across servers too), and the refill is
//! computed from the stored `tokens` and `last_ms` and the caller's `now_ms`, with the same
//! arithmetic as the SQLite store's in-memory buckets.

use std::sync::LazyLock;

use viewlog_store::{RateDecision, RateKey, RatePolicy};

/// Below this, a difference in tokens or milliseconds is rounding error.
use viewlog_store::RATE_EPSILON as EPSILON;

/// The key's row name: a kind prefix keeps a user id from colliding with an address.
pub(crate) fn key_text(key: &RateKey) -> String {
    match key {
        RateKey::User(id) => format!("user:{id}"),
        RateKey::Address(address) => format!("addr:{address}"),
        RateKey::ApiClient(client) => format!("client:{client}"),
    }
}

/// The refill per second to use: a policy that refills nothing (or nonsense) refills nothing.
pub(crate) fn refill_rate(policy: RatePolicy) -> f64 {
    policy.effective_refill()
}

/// The statement of a take. Binds `$1` key, `$2` capacity (float8), `$3` refill per second
/// (float8), `$4` now (ms). A new bucket starts full; an existing one is refilled for the time
/// since `last_ms` (none if the clock went back), snapped to a whole token when within
/// rounding error (0.4 + 0.6 must make 1), capped at the capacity; then one token is taken if
/// there is one. Returns the tokens left and whether the take was allowed. (`SET` expressions
/// all read the row as it was, so the refill is spelled out where it is used.)
pub(crate) static TAKE_SQL: LazyLock<String> = LazyLock::new(|| {
    let added = "(b.tokens + GREATEST($4::int8 - b.last_ms, 0)::float8 * $3::float8 / 1000.0::float8)";
    let snapped =
        format!("(CASE WHEN abs({added} - round({added})) < {EPSILON:e} THEN round({added}) ELSE {added} END)");
    let refilled = format!("LEAST($2::float8, {snapped})");
    format!(
        "INSERT INTO rate_buckets AS b (key, tokens, last_ms, allowed) \
         VALUES ($1, CASE WHEN $2::float8 >= 1 THEN $2::float8 - 1 ELSE $2::float8 END, $4::int8, $2::float8 >= 1) \
         ON CONFLICT (key) DO UPDATE SET \
             tokens = CASE WHEN {refilled} >= 1 THEN {refilled} - 1 ELSE {refilled} END, \
             last_ms = GREATEST(b.last_ms, $4::int8), \
             allowed = {refilled} >= 1 \
         RETURNING tokens, allowed"
    )
});

/// The decision for the tokens left after a take.
pub(crate) fn decision(policy: RatePolicy, tokens: f64, allowed: bool) -> RateDecision {
    policy.decision(tokens, allowed)
}
