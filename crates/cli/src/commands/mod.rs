//! One module per subcommand.

pub mod admin;
pub mod demo;
pub mod import;
pub mod login;
pub mod logs;
pub mod migrate;
pub mod profile;
pub mod serve;
pub mod sync;
