//! `viewlog sync`: a long-running collector that neither loses nor repeats an event.

pub mod checkpoint;
pub mod collector;
pub mod output;

pub use collector::{Collector, Step, SyncError, SyncOptions};
pub use output::{OutputConfig, SyslogProto};
