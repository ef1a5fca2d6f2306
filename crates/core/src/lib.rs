//! viewlog's domain, independent of HTTP.
//!
//! [`Service`] is what the HTTP server drives: it authenticates signed requests
//! ([`auth`]), answers get-view-logs queries with sealed page tokens ([`query`], [`token`]),
//! records view events ([`ingest`]), all over a [`viewlog_store::Store`]. [`admin::Admin`]
//! administers the same store from the command line. Secrets at rest are sealed under the
//! master key ([`vault`]).

#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod credentials;
pub mod error;
pub mod event_fields;
pub mod gate;
pub mod ingest;
pub mod login;
pub mod oauth;
pub mod permissions;
pub mod query;
pub mod request;
pub mod synth;
pub mod throttle;

pub mod token;
pub mod vault;

pub use config::CoreConfig;
pub use error::{AdminError, ApiError};
pub use viewlog_protocol::secret::{self, Secret};

use gate::QueryGate;
use std::sync::Arc;
use vault::Vault;
use viewlog_store::{Store, UnixTime};

/// The domain service over one store.
#[derive(Debug)]
pub struct Service<S> {
    store: Arc<S>,
    vault: Vault,
    config: CoreConfig,
    gate: QueryGate,
}

impl<S: Store> Service<S> {
    /// A service over `store`, opening sealed secrets and tokens with `vault`.
    pub fn new(store: Arc<S>, vault: Vault, config: CoreConfig) -> Self {
        let gate = QueryGate::new(config.max_concurrent_queries, config.query_deadline);
        Service { store, vault, config, gate }
    }

    /// The settings in force.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Whether the store answers (for health checks).
    pub async fn healthy(&self) -> bool {
        self.gate.run(self.store.ping()).await.is_ok()
    }

    /// Forgets request ids whose replay window has passed, expired tokens, and sign-in failures
    /// older than the lock-out window; returns how many records went.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<u64, ApiError> {
        let requests = self.store.purge_requests(now).await?;
        let tokens = self.store.purge_tokens(now).await?;
        let failures = self.store.purge_login_failures(now - self.config.login.lockout as i64).await?;
        Ok(requests + tokens + failures)
    }

    /// Tidies the storage ingest has left alone for [`SETTLED_AFTER`] seconds (see
    /// [`Store::compact`]); returns how many units were tidied.
    pub async fn compact_settled(&self, now: UnixTime) -> Result<u64, ApiError> {
        Ok(self.store.compact(now.saturating_sub(SETTLED_AFTER)).await?)
    }
}

/// Seconds after its last write that storage counts as settled and is tidied
/// ([`Service::compact_settled`]): long enough for a burst of ingest to be over before what it
/// wrote is rewritten, short enough that searches after an ingest soon read the tidy form.
pub const SETTLED_AFTER: i64 = 300;

/// The current time in Unix seconds.
pub fn now() -> UnixTime {
    admin::now()
}
