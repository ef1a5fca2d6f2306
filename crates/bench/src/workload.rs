//! What the read rows ask for, shared by the harness and the in-process probe
//! (`examples/search_probe.rs`).

use anyhow::{anyhow, Result};
use viewlog_protocol::dates::{self, Bound};

/// June 2024, the month the page and search rows ask for: its first and last second, read the
/// way the server reads a body's dates.
pub fn month() -> Result<(i64, i64)> {
    let date = |d: &str, bound: Bound| dates::parse_body_date(d, bound).map_err(|e| anyhow!("{d}: {e:?}"));
    Ok((date("2024-06-01", Bound::Start)?, date("2024-06-30", Bound::End)?))
}
