//! Property tests of the tolerant body reader and of the date layouts.

mod common;

use common::{any_string, json_value, same_value};
use proptest::prelude::*;
use serde_json::Value;
use viewlog_protocol::dates::{format_date, format_header_date, parse_body_date, parse_header_date, Bound};
use viewlog_protocol::lenient::{parse_body, to_python_repr};

/// 9999-12-31T23:59:59Z.
const LAST_SECOND_OF_9999: i64 = 253_402_300_799;

/// Python-ish fragments, so that random bodies reach deep into the reader.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{", "}", "[", "]", "(", ")", ",", ":", " ", "\n", "'", "\"", "\\", "\\x", "\\u", "\\U", "\\N", "\\0",
        "\\ud83d", "\\ude00", "\\\n", "u'", "r'", "True", "None", "False", "inf", "nan", "-", "+", ".", "e", "E", "0",
        "7", "9", "ff", "d800", "110000", "é", "\u{2028}", "\u{0}", "a", "\u{feff}",
    ]);
    prop::collection::vec(
        prop_oneof![token.prop_map(|t| t.as_bytes().to_vec()), any::<u8>().prop_map(|b| vec![b])],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// What `to_python_repr` writes, `parse_body` reads back as the same value.
    #[test]
    fn python_repr_reads_back(value in json_value(any_string())) {
        let repr = to_python_repr(&value);
        let read = parse_body(repr.as_bytes());
        prop_assert!(read.is_ok(), "{repr}: {read:?}");
        let read = read.unwrap_or(Value::Null);
        prop_assert!(same_value(&read, &value), "{repr} read as {read}");

        // Inside a one-item tuple, which is not JSON, so the Python reader reads it for sure.
        let tuple = format!("({repr},)");
        let read = parse_body(tuple.as_bytes());
        prop_assert!(read.is_ok(), "{tuple}: {read:?}");
        let read = read.unwrap_or(Value::Null);
        prop_assert!(same_value(&read, &Value::Array(vec![value.clone()])), "{tuple} read as {read}");
    }

    /// JSON as serde_json writes it reads back too.
    #[test]
    fn json_reads_back(value in json_value(any_string())) {
        let text = serde_json::to_string(&value).unwrap_or_default();
        let read = parse_body(text.as_bytes());
        prop_assert!(read.is_ok(), "{text}: {read:?}");
        prop_assert!(same_value(&read.unwrap_or(Value::Null), &value), "{text}");
    }

    /// No bytes make the reader panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_body(&bytes);
    }

    /// Nor do Python-looking fragments in any order.
    #[test]
    fn token_soup_never_panics(bytes in token_soup()) {
        if let Err(e) = parse_body(&bytes) {
            prop_assert!(e.offset <= bytes.len(), "{e} beyond {} bytes", bytes.len());
        }
    }

    /// Nor does a valid body with one byte changed, or cut short.
    #[test]
    fn damaged_bodies_never_panic(value in json_value(any_string()), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = to_python_repr(&value).into_bytes();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            let _ = parse_body(&bytes[..i]);
            bytes[i] = byte;
            let _ = parse_body(&bytes);
        }
    }

    /// `format_date` and `parse_body_date` round-trip, whatever the bound.
    #[test]
    fn body_dates_round_trip(unix in 0i64..=LAST_SECOND_OF_9999) {
        let s = format_date(unix);
        prop_assert_eq!(s.len(), 24, "{}", s);
        prop_assert_eq!(parse_body_date(&s, Bound::Start), Ok(unix), "{}", s);
        prop_assert_eq!(parse_body_date(&s, Bound::End), Ok(unix), "{}", s);
        // The bare date bounds the day the time is in.
        let day = &s[..10];
        let start = parse_body_date(day, Bound::Start);
        let end = parse_body_date(day, Bound::End);
        prop_assert_eq!(start, Ok(unix - unix.rem_euclid(86_400)));
        prop_assert_eq!(end, Ok(unix - unix.rem_euclid(86_400) + 86_399));
    }

    /// `format_header_date` and `parse_header_date` round-trip.
    #[test]
    fn header_dates_round_trip(unix in 0i64..=LAST_SECOND_OF_9999) {
        let s = format_header_date(unix);
        prop_assert_eq!(parse_header_date(&s), Ok(unix), "{}", s);
        let gmt = s.replace(" UTC", " GMT");
        prop_assert_eq!(parse_header_date(&gmt), Ok(unix), "{}", gmt);
    }

    /// Both layouts agree with the `time` crate's calendar.
    #[test]
    fn dates_agree_with_the_time_crate(unix in 0i64..=LAST_SECOND_OF_9999) {
        let t = time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let body = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
            t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()
        );
        prop_assert_eq!(format_date(unix), body);
        let rfc2822 = t.format(&time::format_description::well_known::Rfc2822)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(format_header_date(unix), rfc2822.replace("+0000", "UTC"));
        prop_assert_eq!(parse_header_date(&rfc2822), Ok(unix), "{}", rfc2822);
    }

    /// A body date with any offset and fraction reads as the instant it names.
    #[test]
    fn body_dates_with_offsets(unix in 86_400i64..=LAST_SECOND_OF_9999 - 86_400, minutes in -1439i64..=1439, fraction in "(\\.[0-9]{1,9})?", colon in any::<bool>()) {
        let local = format_date(unix + minutes * 60);
        let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
        let sign = if minutes < 0 { '-' } else { '+' };
        let offset = if colon { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}{m:02}") };
        let s = format!("{}{fraction}{offset}", &local[..19]);
        prop_assert_eq!(parse_body_date(&s, Bound::Start), Ok(unix), "{}", s);
        let header = format!("{} {offset}", &format_header_date(unix + minutes * 60)[..25]);
        prop_assert_eq!(parse_header_date(&header), Ok(unix), "{}", header);
    }
}
