//! Times on the command line: a date as the protocol writes them (`2016-12-01`,
//! `2016-12-01T00:00:00+0000`, `…Z`), `now`, or a duration ago (`90m`, `24h`, `7d`).

use viewlog_protocol::dates::{self, Bound};

/// Reads a time argument relative to `now` (Unix seconds).
pub fn parse_time(s: &str, bound: Bound, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(d) = crate::commands::admin::parse_duration(s.trim_end_matches(" ago")) {
        return Ok(now - d.as_secs() as i64);
    }
    dates::parse_body_date(s, bound).map_err(|_| {
        format!("{s:?} is not a time: use 2016-12-01, 2016-12-01T00:00:00+0000, now, or 90m / 24h / 7d ago")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("now", Bound::Start, 1000), Ok(1000));
        assert_eq!(parse_time("10m", Bound::Start, 1000), Ok(400));
        assert_eq!(parse_time("1970-01-01", Bound::End, 1000), Ok(86_399));
        assert!(parse_time("yesterday", Bound::Start, 1000).is_err());
    }
}
