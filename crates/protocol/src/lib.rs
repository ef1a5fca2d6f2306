//! The Mimecast get-view-logs wire protocol, shared by viewlog's server and client.
//!
//! - [`envelope`]: the `meta`/`data`/`fail` envelope every response has;
//! - [`codes`]: the error-code catalogue with each code's HTTP status and retryability;
//! - [`records`]: the view-log record and the ingest event as they travel;
//! - [`dates`]: every date layout clients send, and the one viewlog writes;
//! - [`secret`]: a string that never prints;
//! - [`signing`]: the API 1.0 HMAC-SHA1 request signature;
//! - [`lenient`]: the tolerant body reader (JSON, and Python's `str(dict)`).
//!
//! Nothing here does I/O.

#![warn(missing_docs)]

pub mod codes;
pub mod dates;
pub mod envelope;
pub mod lenient;
pub mod records;
pub mod secret;
pub mod signing;

/// The path of the endpoint this project is about.
pub const GET_VIEW_LOGS_PATH: &str = "/api/archive/get-view-logs";
/// The ingest path (ours; PROTOCOL §7).
pub const RECORD_VIEWS_PATH: &str = "/api/viewlog/record-views";
/// The permission get-view-logs requires.
pub const PERMISSION_VIEW_LOGS_READ: &str = "Archive | View Logs | Read";
/// The permission record-views requires.
pub const PERMISSION_VIEW_LOGS_EDIT: &str = "Archive | View Logs | Edit";
/// The most records one page holds.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size when the request names none.
pub const DEFAULT_PAGE_SIZE: u32 = 25;
/// The most events one record-views batch holds.
pub const MAX_INGEST_BATCH: usize = 10_000;
