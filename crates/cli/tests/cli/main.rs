//! End-to-end tests of the `viewlog` binary: the real executable, real SQLite files in
//! temporary directories, real HTTP on ephemeral ports of 127.0.0.1.

mod support;

mod admin;
mod config;
mod durability;
mod help;
mod import;
mod master_key;
mod seed_sample;
