//! End-to-end tests of the `viewlog` binary: the real executable, real SQLite files in
//! temporary directories, real HTTP on ephemeral ports of 127.0.0.1.

mod support;
mod sync_support;

mod admin;
mod backfill_memory;
mod client_retry;
mod config;
mod durability;
mod help;
mod import;
mod login_cli;
mod logs_formats;
mod master_key;
mod migrate;
mod multi_instance;
mod one_server;
mod pg_support;
mod seed_sample;
mod sync_kill;
mod sync_syslog;
