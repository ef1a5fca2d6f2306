//! A client for Mimecast's `get-view-logs`, against viewlog or a real Mimecast tenant.
//!
//! [`Client`] signs every request (API 1.0 HMAC-SHA1 through `viewlog-protocol`, or API 2.0
//! bearer tokens renewed a minute before they expire), treats a 200 with a non-empty `fail` as
//! the error it is, and retries within bounds: after `X-RateLimit-Reset` milliseconds on 429,
//! with exponential backoff on 5xx, timeouts and dropped connections. [`Client::view_logs`]
//! streams every record of a query, one page in memory at a time.

#![warn(missing_docs)]

pub mod client;
pub mod credentials;
pub mod error;
pub mod fingerprint;
pub mod login;
pub mod region;
pub mod retry;
pub mod sync;
pub mod viewlogs;

pub use client::Client;
pub use credentials::{ApiV1, ApiV2, Credentials};
pub use error::ClientError;
pub use region::Region;
pub use retry::RetryPolicy;
pub use viewlogs::{Page, ViewLogFilter};
