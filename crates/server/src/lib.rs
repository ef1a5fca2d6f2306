//! viewlog's HTTP service: Mimecast's `POST /api/archive/get-view-logs`, the ingest endpoint
//! and health, over any [`viewlog_store::Store`].
//!
//! A request is parsed into an [`endpoint::Endpoint`] first; the signed headers are lifted out
//! ([`signed`]) and checked by the domain before any handler runs; every failure becomes a
//! Mimecast envelope in one place ([`error::HttpError::into_response`]).

#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod faults;
pub mod memory;
pub mod respond;
pub mod serve;
pub mod signed;

pub use app::{router, AppState};
pub use config::ServerConfig;
pub use serve::{shutdown_signal, BoundServer};
