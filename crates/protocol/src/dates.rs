//! Mimecast's date layouts (PROTOCOL §3 and §6).
//!
//! All functions work in whole seconds since the Unix epoch, UTC.

/// Which end of a range a body date bounds: a bare date means that day's first second as a
/// start and its last second as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The lower bound (`start`).
    Start,
    /// The upper bound (`end`).
    End,
}

/// A date that no accepted layout reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable date {0:?}")]
pub struct DateError(pub String);

/// Reads an `x-mc-date` header: RFC 1123 layout (`Tue, 24 Nov 2015 12:50:11 UTC`) with zone
/// `UTC`, `GMT`, `UT`, `Z`, a numeric offset (`+0100`, `-05:00`) or an RFC 2822 North American
/// abbreviation (`EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`, `PST`, `PDT`). The weekday is optional
/// and, when present, not checked against the date.
pub fn parse_header_date(s: &str) -> Result<i64, DateError> {
    let _ = s;
    todo!()
}

/// Writes an `x-mc-date` header value as the seed's Python sample does:
/// `Tue, 24 Nov 2015 12:50:11 UTC`.
pub fn format_header_date(unix: i64) -> String {
    let _ = unix;
    todo!()
}

/// Reads a date from a request body: `2016-12-01T00:00:00+0000`, `+00:00`, `Z`, any numeric
/// offset, optional fractional seconds (dropped), or a bare date `2016-12-01` (its first second
/// for [`Bound::Start`], its last for [`Bound::End`]).
pub fn parse_body_date(s: &str, bound: Bound) -> Result<i64, DateError> {
    let _ = (s, bound);
    todo!()
}

/// Writes a date as viewlog answers it: `yyyy-MM-ddTHH:mm:ss+0000`, UTC.
pub fn format_date(unix: i64) -> String {
    let _ = unix;
    todo!()
}
