//! Mimecast's date layouts (PROTOCOL §3 and §6).
//!
//! All functions work in whole seconds since the Unix epoch, UTC. The calendar is the proleptic
//! Gregorian one, computed here with plain integer arithmetic so that no input can make a
//! function panic.
//!
//! Choices *(ours)*:
//! - seconds run `00`..=`59`: a leap second (`:60`) is refused, as are hour 24, month 13, day 31
//!   of a 30-day month and the like;
//! - years are written and read with exactly four digits;
//! - [`parse_header_date`] refuses trailing text, two-digit years and any zone name not listed;
//! - [`parse_body_date`] reads a date-time without any zone as UTC, accepts `T`, `t` or a space
//!   between date and time, and drops fractional seconds (rounding towards the earlier second).

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

const SECONDS_PER_DAY: i64 = 86_400;

/// The system clock in whole seconds since the Unix epoch (0 before it): the one clock every
/// crate of the workspace reads.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Weekday abbreviations, starting on Sunday.
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Full weekday names, starting on Sunday.
const WEEKDAY_NAMES: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Reads an `x-mc-date` header: RFC 1123 layout (`Tue, 24 Nov 2015 12:50:11 UTC`) with zone
/// `UTC`, `GMT`, `UT`, `Z`, a numeric offset (`+0100`, `-05:00`) or an RFC 2822 North American
/// abbreviation (`EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`, `PST`, `PDT`). The weekday is optional
/// and, when present, not checked against the date.
///
/// Also tolerated: surrounding whitespace, several spaces between fields, a one-digit day, month,
/// weekday and zone names in any letter case, and a full weekday name (`Tuesday,`). The year has
/// four digits, the time is `HH:MM:SS`, and nothing may follow the zone.
pub fn parse_header_date(s: &str) -> Result<i64, DateError> {
    parse_header_inner(s).ok_or_else(|| DateError(s.to_owned()))
}

fn parse_header_inner(s: &str) -> Option<i64> {
    let mut c = Cursor::new(s.trim_matches(|ch: char| ch.is_ascii_whitespace()));
    if c.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
        let name = c.take_while(|b| b.is_ascii_alphabetic());
        let known = WEEKDAYS.iter().chain(WEEKDAY_NAMES.iter()).any(|w| w.as_bytes().eq_ignore_ascii_case(name));
        if !known || !c.eat(b',') {
            return None;
        }
        c.skip_spaces();
    }
    let day = c.number(1, 2)?;
    c.spaces1()?;
    let month_name = c.take_while(|b| b.is_ascii_alphabetic());
    let month = MONTHS.iter().position(|m| m.as_bytes().eq_ignore_ascii_case(month_name))? as i64 + 1;
    c.spaces1()?;
    let year = c.number(4, 4)?;
    c.spaces1()?;
    let seconds_of_day = c.time_of_day()?;
    c.spaces1()?;
    let offset = if matches!(c.peek(), Some(b'+' | b'-')) {
        c.numeric_offset(true)?
    } else {
        let zone = c.take_while(|b| b.is_ascii_alphabetic());
        zone_offset(zone)?
    };
    if !c.at_end() {
        return None;
    }
    let days = days_from_civil_checked(year, month, day)?;
    Some(days * SECONDS_PER_DAY + seconds_of_day - offset)
}

/// The offset east of UTC, in seconds, of a named zone.
fn zone_offset(zone: &[u8]) -> Option<i64> {
    const ZONES: [(&str, i64); 12] = [
        ("UTC", 0),
        ("GMT", 0),
        ("UT", 0),
        ("Z", 0),
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
    ];
    ZONES.iter().find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(zone)).map(|(_, hours)| hours * 3600)
}

/// Writes an `x-mc-date` header value as the seed's Python sample does:
/// `Tue, 24 Nov 2015 12:50:11 UTC`.
pub fn format_header_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(SECONDS_PER_DAY), unix.rem_euclid(SECONDS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!("{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Reads a date from a request body: `2016-12-01T00:00:00+0000`, `+00:00`, `Z`, any numeric
/// offset, optional fractional seconds (dropped), or a bare date `2016-12-01` (its first second
/// for [`Bound::Start`], its last for [`Bound::End`]).
///
/// Also tolerated *(ours)*: surrounding whitespace, `t` or a space instead of `T`, a `,` before
/// the fraction, an offset of hours only (`+01`), a lower-case `z`, spaces before the zone, and no
/// zone at all (read as UTC).
pub fn parse_body_date(s: &str, bound: Bound) -> Result<i64, DateError> {
    parse_body_inner(s, bound).ok_or_else(|| DateError(s.to_owned()))
}

fn parse_body_inner(s: &str, bound: Bound) -> Option<i64> {
    let mut c = Cursor::new(s.trim_matches(|ch: char| ch.is_ascii_whitespace()));
    let year = c.number(4, 4)?;
    c.expect(b'-')?;
    let month = c.number(2, 2)?;
    c.expect(b'-')?;
    let day = c.number(2, 2)?;
    let days = days_from_civil_checked(year, month, day)?;
    if c.at_end() {
        let start = days * SECONDS_PER_DAY;
        return Some(match bound {
            Bound::Start => start,
            Bound::End => start + SECONDS_PER_DAY - 1,
        });
    }
    if !matches!(c.peek(), Some(b'T' | b't' | b' ')) {
        return None;
    }
    c.pos += 1;
    let seconds_of_day = c.time_of_day()?;
    if matches!(c.peek(), Some(b'.' | b',')) {
        c.pos += 1;
        if c.take_while(|b| b.is_ascii_digit()).is_empty() {
            return None;
        }
    }
    c.skip_spaces();
    let offset = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            0
        }
        Some(b'+' | b'-') => c.numeric_offset(false)?,
        Some(_) => return None,
    };
    if !c.at_end() {
        return None;
    }
    Some(days * SECONDS_PER_DAY + seconds_of_day - offset)
}

/// Writes a date as viewlog answers it: `yyyy-MM-ddTHH:mm:ss+0000`, UTC.
pub fn format_date(unix: i64) -> String {
    let mut buf = [0u8; DATE_LEN];
    match write_date(unix, &mut buf) {
        Some(text) => text.to_owned(),
        None => {
            let (days, secs) = (unix.div_euclid(SECONDS_PER_DAY), unix.rem_euclid(SECONDS_PER_DAY));
            let (year, month, day) = civil_from_days(days);
            format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000", secs / 3600, secs % 3600 / 60, secs % 60)
        }
    }
}

/// The length of a date [`write_date`] writes: `yyyy-MM-ddTHH:mm:ss+0000`.
pub const DATE_LEN: usize = 24;

/// Writes the date as [`format_date`] does into `buf`, without allocating, and returns it; `None`
/// for a year outside 0–9999 (which [`format_date`] writes with more digits or a sign).
pub fn write_date(unix: i64, buf: &mut [u8; DATE_LEN]) -> Option<&str> {
    let (days, secs) = (unix.div_euclid(SECONDS_PER_DAY), unix.rem_euclid(SECONDS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let two = |out: &mut [u8], v: i64| {
        out[0] = b'0' + (v / 10) as u8;
        out[1] = b'0' + (v % 10) as u8;
    };
    two(&mut buf[0..2], year / 100);
    two(&mut buf[2..4], year % 100);
    buf[4] = b'-';
    two(&mut buf[5..7], month);
    buf[7] = b'-';
    two(&mut buf[8..10], day);
    buf[10] = b'T';
    two(&mut buf[11..13], secs / 3600);
    buf[13] = b':';
    two(&mut buf[14..16], secs % 3600 / 60);
    buf[16] = b':';
    two(&mut buf[17..19], secs % 60);
    buf[19..24].copy_from_slice(b"+0000");
    std::str::from_utf8(buf).ok()
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a validated date; `None` for month 13, February 30 and the like.
fn days_from_civil_checked(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (H. Hinnant's `civil_from_days`). Total for every count a unix time in seconds can produce.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A byte cursor over an ASCII date layout.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { b: s.as_bytes(), pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.b[start..self.pos]
    }

    fn skip_spaces(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    /// One or more spaces or tabs.
    fn spaces1(&mut self) -> Option<()> {
        (!self.take_while(|b| b == b' ' || b == b'\t').is_empty()).then_some(())
    }

    /// A run of `min..=max` ASCII digits (the whole run: more digits than `max` is an error).
    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.len() < min || digits.len() > max {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// `HH:MM:SS`, validated, as seconds since midnight.
    fn time_of_day(&mut self) -> Option<i64> {
        let hour = self.number(2, 2)?;
        self.expect(b':')?;
        let minute = self.number(2, 2)?;
        self.expect(b':')?;
        let second = self.number(2, 2)?;
        (hour <= 23 && minute <= 59 && second <= 59).then_some(hour * 3600 + minute * 60 + second)
    }

    /// `+HHMM` or `+HH:MM` (and `+HH` unless `need_minutes`), as seconds east of UTC.
    fn numeric_offset(&mut self, need_minutes: bool) -> Option<i64> {
        let sign = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.pos += 1;
        let digits = self.take_while(|b| b.is_ascii_digit());
        let (hours, minutes) = match digits.len() {
            4 => (two_digits(&digits[..2]), two_digits(&digits[2..])),
            2 if self.eat(b':') => (two_digits(digits), self.number(2, 2)?),
            2 if !need_minutes => (two_digits(digits), 0),
            _ => return None,
        };
        (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
    }
}

fn two_digits(d: &[u8]) -> i64 {
    d.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2015-11-24T12:50:11Z.
    const VECTOR: i64 = 1_448_369_411;

    #[test]
    fn header_date_of_the_test_vector() {
        assert_eq!(parse_header_date("Tue, 24 Nov 2015 12:50:11 UTC"), Ok(VECTOR));
        assert_eq!(format_header_date(VECTOR), "Tue, 24 Nov 2015 12:50:11 UTC");
    }

    #[test]
    fn header_date_zones() {
        for (s, want) in [
            // C#'s "R" format.
            ("Tue, 24 Nov 2015 12:50:11 GMT", VECTOR),
            ("Tue, 24 Nov 2015 12:50:11 UT", VECTOR),
            ("Tue, 24 Nov 2015 12:50:11 Z", VECTOR),
            ("Tue, 24 Nov 2015 12:50:11 utc", VECTOR),
            ("Tue, 24 Nov 2015 12:50:11 +0000", VECTOR),
            ("Tue, 24 Nov 2015 12:50:11 -0000", VECTOR),
            ("Tue, 24 Nov 2015 13:50:11 +0100", VECTOR),
            ("Tue, 24 Nov 2015 07:50:11 -05:00", VECTOR),
            ("Tue, 24 Nov 2015 18:20:11 +05:30", VECTOR),
            // go-mimecast with a local zone.
            ("Tue, 24 Nov 2015 08:50:11 EDT", VECTOR),
            ("Tue, 24 Nov 2015 07:50:11 EST", VECTOR),
            ("Tue, 24 Nov 2015 07:50:11 CDT", VECTOR),
            ("Tue, 24 Nov 2015 06:50:11 CST", VECTOR),
            ("Tue, 24 Nov 2015 06:50:11 MDT", VECTOR),
            ("Tue, 24 Nov 2015 05:50:11 MST", VECTOR),
            ("Tue, 24 Nov 2015 05:50:11 PDT", VECTOR),
            ("Tue, 24 Nov 2015 04:50:11 PST", VECTOR),
        ] {
            assert_eq!(parse_header_date(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn header_date_tolerances() {
        for s in [
            "24 Nov 2015 12:50:11 UTC",
            "Mon, 24 Nov 2015 12:50:11 UTC", // wrong weekday, not checked
            "Tuesday, 24 Nov 2015 12:50:11 UTC",
            "tue, 24 nov 2015 12:50:11 UTC",
            "TUE, 24 NOV 2015 12:50:11 GMT",
            "Tue,24 Nov 2015 12:50:11 UTC",
            "  Tue,  24  Nov  2015  12:50:11  UTC \t",
        ] {
            assert_eq!(parse_header_date(s), Ok(VECTOR), "{s}");
        }
        assert_eq!(parse_header_date("Sun, 1 Nov 2015 00:00:00 GMT"), Ok(1_446_336_000));
        assert_eq!(parse_header_date("Sun, 01 Nov 2015 00:00:00 GMT"), Ok(1_446_336_000));
        assert_eq!(parse_header_date("Thu, 01 Jan 1970 00:00:00 GMT"), Ok(0));
        assert_eq!(parse_header_date("Wed, 31 Dec 1969 23:59:59 GMT"), Ok(-1));
        assert_eq!(parse_header_date("Tue, 29 Feb 2000 12:00:00 GMT"), Ok(951_825_600));
    }

    #[test]
    fn header_date_rejections() {
        for s in [
            "",
            "UTC",
            "Tue, 24 Nov 2015 12:50:11",            // no zone
            "Tue, 24 Nov 2015 12:50:11 CET",        // unlisted zone
            "Tue, 24 Nov 2015 12:50:11 AEST",       // unlisted zone
            "Tue, 24 Nov 2015 12:50:11 UTC junk",   // trailing text
            "Tue, 24 Nov 2015 12:50:11 UTCX",       // trailing text
            "Tue, 24 Nov 2015 12:50:11 +01000",     // bad offset
            "Tue, 24 Nov 2015 12:50:11 +1",         // bad offset
            "Tue, 24 Nov 2015 12:50:11 +2400",      // offset hour 24
            "Tue, 24 Nov 2015 12:50:11 +0060",      // offset minute 60
            "Tue, 24 Nov 2015 12:50:11 +01",        // hours-only offset in a header
            "Tue, 24 Nov 2015 24:00:00 UTC",        // hour 24
            "Tue, 24 Nov 2015 12:60:11 UTC",        // minute 60
            "Tue, 24 Nov 2015 12:50:60 UTC",        // leap second
            "Tue, 24 Nov 2015 12:50 UTC",           // no seconds
            "Tue, 24 Nov 2015 2:50:11 UTC",         // one-digit hour
            "Tue, 31 Nov 2015 12:50:11 UTC",        // November 31
            "Tue, 29 Feb 2015 12:50:11 UTC",        // not a leap year
            "Tue, 29 Feb 1900 12:50:11 UTC",        // not a leap year
            "Tue, 0 Nov 2015 12:50:11 UTC",         // day 0
            "Tue, 124 Nov 2015 12:50:11 UTC",       // three-digit day
            "Tue, 24 Nvm 2015 12:50:11 UTC",        // unknown month
            "Tue, 24 November 2015 12:50:11 UTC",   // full month name
            "Tue, 24 Nov 15 12:50:11 UTC",          // two-digit year
            "Tue, 24 Nov 20155 12:50:11 UTC",       // five-digit year
            "Tue 24 Nov 2015 12:50:11 UTC",         // weekday without comma
            "Tux, 24 Nov 2015 12:50:11 UTC",        // unknown weekday
            "Tue, 24-Nov-2015 12:50:11 UTC",        // RFC 850 layout
            "2015-11-24T12:50:11Z",                 // ISO layout
            "Tue, 24 Nov 2015 12:50:11 UTC\u{0}",   // NUL
            "Tue, 24 Nov 2015 12:50:11\u{a0}UTC",   // non-ASCII space
            "Tue, 24 Nov 2015 12:50:11 \u{ff35}TC", // full-width letter
        ] {
            assert!(parse_header_date(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn body_date_rows_of_the_protocol() {
        let start = 1_480_550_400; // 2016-12-01T00:00:00Z
        for s in [
            "2016-12-01T00:00:00+0000",
            "2016-12-01T00:00:00+00:00",
            "2016-12-01T00:00:00Z",
            "2016-12-01T00:00:00.000Z",
            "2016-12-01T00:00:00.999999+0000",
            "2016-12-01T00:00:00,5+00:00",
            "2016-12-01T01:00:00+0100",
            "2016-12-01T01:00:00+01",
            "2016-11-30T19:00:00-05:00",
            "2016-12-01 00:00:00+0000",
            "2016-12-01t00:00:00z",
            "2016-12-01T00:00:00 +0000",
            "2016-12-01T00:00:00",
            " 2016-12-01T00:00:00+0000 ",
        ] {
            assert_eq!(parse_body_date(s, Bound::Start), Ok(start), "{s}");
            assert_eq!(parse_body_date(s, Bound::End), Ok(start), "{s}: a time ignores the bound");
        }
        assert_eq!(parse_body_date("2016-12-01", Bound::Start), Ok(start));
        assert_eq!(parse_body_date("2016-12-01", Bound::End), Ok(start + 86_399));
        assert_eq!(parse_body_date("2016-12-01T23:59:59+0000", Bound::End), Ok(start + 86_399));
        assert_eq!(format_date(start + 86_399), "2016-12-01T23:59:59+0000");
        assert_eq!(format_date(start), "2016-12-01T00:00:00+0000");
    }

    #[test]
    fn body_date_rejections() {
        for s in [
            "",
            "2016",
            "2016-12",
            "2016-12-1",
            "16-12-01",
            "2016/12/01",
            "2016-13-01",
            "2016-00-01",
            "2016-12-32",
            "2016-02-30",
            "2016-12-01T",
            "2016-12-01T24:00:00Z",
            "2016-12-01T23:60:00Z",
            "2016-12-01T23:59:60Z",
            "2016-12-01T23:59Z",
            "2016-12-01T23:59:59.Z",
            "2016-12-01T23:59:59+0",
            "2016-12-01T23:59:59+000",
            "2016-12-01T23:59:59+00000",
            "2016-12-01T23:59:59+2400",
            "2016-12-01T23:59:59+00:60",
            "2016-12-01T23:59:59+00:",
            "2016-12-01T23:59:59ZZ",
            "2016-12-01T23:59:59 UTC",
            "2016-12-01T23:59:59+0000x",
            "2016-12-01x",
            "2016-12-01T00:00:00\u{0}",
            "Tue, 24 Nov 2015 12:50:11 UTC",
        ] {
            assert!(parse_body_date(s, Bound::Start).is_err(), "{s:?} should be refused");
            assert!(parse_body_date(s, Bound::End).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn formats_extremes_without_panicking() {
        assert_eq!(format_date(0), "1970-01-01T00:00:00+0000");
        assert_eq!(format_date(-1), "1969-12-31T23:59:59+0000");
        assert_eq!(format_date(253_402_300_799), "9999-12-31T23:59:59+0000");
        assert_eq!(format_header_date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 UTC");
        // The fast writer agrees with plain formatting wherever it writes.
        let slow = |unix: i64| {
            let (days, secs) = (unix.div_euclid(SECONDS_PER_DAY), unix.rem_euclid(SECONDS_PER_DAY));
            let (year, month, day) = civil_from_days(days);
            format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000", secs / 3600, secs % 3600 / 60, secs % 60)
        };
        let mut t = -62_167_219_200; // 0000-01-01T00:00:00Z
        while t < 253_402_300_800 {
            let mut buf = [0u8; DATE_LEN];
            assert_eq!(write_date(t, &mut buf).map(str::to_owned), Some(slow(t)), "{t}");
            t += 9_999_991;
        }
        let mut buf = [0u8; DATE_LEN];
        assert_eq!(write_date(-62_167_219_201, &mut buf), None);
        assert_eq!(write_date(253_402_300_800, &mut buf), None);
        assert_eq!(format_date(253_402_300_800), slow(253_402_300_800));
        let _ = format_date(i64::MAX);
        let _ = format_date(i64::MIN);
        let _ = format_header_date(i64::MAX);
        let _ = format_header_date(i64::MIN);
    }

    #[test]
    fn calendar_agrees_with_the_time_crate() {
        let mut day = time::Date::from_calendar_date(-9999, time::Month::January, 1).expect("valid date");
        let end = time::Date::from_calendar_date(9999, time::Month::December, 31).expect("valid date");
        loop {
            let days = (day.midnight().assume_utc().unix_timestamp()).div_euclid(SECONDS_PER_DAY);
            let (y, m, d) = (i64::from(day.year()), i64::from(u8::from(day.month())), i64::from(day.day()));
            assert_eq!(days_from_civil(y, m, d), days, "{day}");
            assert_eq!(civil_from_days(days), (y, m, d), "{day}");
            assert_eq!((days + 4).rem_euclid(7), i64::from(day.weekday().number_days_from_sunday()), "{day}");
            if day == end {
                break;
            }
            day = day.next_day().expect("before the end");
        }
    }
}
