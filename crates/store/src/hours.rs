//! Hours of `viewed`: the buckets in which backends keep how many events each account has, so
//! that counting a long range is a sum of whole hours plus the rows of its two partial ends.

use crate::UnixTime;

/// Seconds per hour bucket.
pub const HOUR: i64 = 3600;

/// Seconds per day bucket.
pub const DAY: i64 = 24 * HOUR;

/// The hour holding `t` (floor division, also before 1970).
pub fn hour_of(t: UnixTime) -> i64 {
    t.div_euclid(HOUR)
}

/// The whole hours inside the inclusive range `[start, end]`, as the half-open range
/// `[first, past)` of hour numbers; `None` when the range holds no whole hour. The seconds of
/// the range before `first * HOUR` and from `past * HOUR` on are its partial ends.
pub fn whole_hours(start: UnixTime, end: UnixTime) -> Option<(i64, i64)> {
    whole_units(start, end, HOUR)
}

/// The day holding `t` (floor division, also before 1970).
pub fn day_of(t: UnixTime) -> i64 {
    t.div_euclid(DAY)
}

/// The whole days inside the inclusive range `[start, end]`, like [`whole_hours`].
pub fn whole_days(start: UnixTime, end: UnixTime) -> Option<(i64, i64)> {
    whole_units(start, end, DAY)
}

fn whole_units(start: UnixTime, end: UnixTime, unit: i64) -> Option<(i64, i64)> {
    let first = start.saturating_add(unit - 1).div_euclid(unit);
    let past = end.saturating_add(1).div_euclid(unit);
    (first < past).then_some((first, past))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_floor_before_1970() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(3599), 0);
        assert_eq!(hour_of(3600), 1);
        assert_eq!(hour_of(-1), -1);
        assert_eq!(hour_of(-3600), -1);
        assert_eq!(hour_of(-3601), -2);
    }

    #[test]
    fn whole_hours_of_a_range() {
        assert_eq!(whole_hours(0, 3599), Some((0, 1)));
        assert_eq!(whole_hours(0, 3598), None);
        assert_eq!(whole_hours(1, 7199), Some((1, 2)));
        assert_eq!(whole_hours(1, 7198), None);
        assert_eq!(whole_hours(-3600, -1), Some((-1, 0)));
        assert_eq!(whole_hours(100, 100 + 5 * 3600), Some((1, 5)));
        assert_eq!(whole_hours(i64::MIN, i64::MAX).map(|(a, b)| a < b), Some(true));
    }

    #[test]
    fn whole_days_of_a_range() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(DAY), 1);
        assert_eq!(whole_days(0, DAY - 1), Some((0, 1)));
        assert_eq!(whole_days(0, DAY - 2), None);
        assert_eq!(whole_days(1, 3 * DAY - 1), Some((1, 3)));
        assert_eq!(whole_days(-DAY, -1), Some((-1, 0)));
        assert_eq!(whole_days(-DAY + 1, DAY - 2), None);
        assert_eq!(whole_days(-DAY + 1, DAY), Some((0, 1)));
    }
}
