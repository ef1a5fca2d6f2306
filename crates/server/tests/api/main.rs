//! End-to-end tests of the HTTP API: a real server on an ephemeral port over a real SQLite
//! file, driven by a signing HTTP client.

mod helpers;

mod auth;
mod cancel;
mod clients;
mod cors;
mod errors;
mod filters;
mod health;
mod ingest;
mod isolation;
mod limits;
mod oauth;
mod order;
mod paging;
mod signin;
