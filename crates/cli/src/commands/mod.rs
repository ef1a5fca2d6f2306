//! One module per subcommand.

pub mod admin;
pub mod demo;
pub mod import;
pub mod serve;
