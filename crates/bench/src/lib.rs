//! The pure parts of viewlog's benchmark harness (`viewlog-bench`): percentiles and medians,
//! reading `/proc`, and the markdown report. The binary (`src/main.rs`) seeds the store, runs
//! the server and drives the load; everything here is testable without a clock.

#![warn(missing_docs)]

pub mod procfs;
pub mod pysample;
pub mod report;
pub mod stats;
pub mod workload;
