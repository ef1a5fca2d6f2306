//! The text filter, all in one place: how a query's `text` becomes SQL and how a record is
//! matched.
//!
//! A record matches if its viewer, sender, recipient or subject contains the text, compared
//! case-insensitively with Unicode lower-casing (`"ÅSA"` finds `"åsa"`); an empty text matches
//! everything. The match is a Rust scalar function, `vl_contains(needle, a, b, c, d)`, registered
//! on every connection; the needle is lower-cased once per query. This scans the rows of the
//! time range: correct for every term, with a cost proportional to the range (see
//! PERFORMANCE-NOTES for why a smarter index is a design question of its own).

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// The SQL function's name.
const FUNCTION: &str = "vl_contains";

/// The condition added to an event query's `WHERE` when there is a text filter; it binds
/// `:needle` (from [`needle`]).
pub(crate) const CLAUSE: &str = " AND vl_contains(:needle, viewer, sender, recipient, subject)";

/// The filter's needle (lower-cased), or `None` when the text filters nothing.
pub(crate) fn needle(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_lowercase)
}

/// Registers `vl_contains` on a connection.
pub(crate) fn register(db: &Connection) -> rusqlite::Result<()> {
    db.create_scalar_function(
        FUNCTION,
        5,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            let needle = match ctx.get_raw(0) {
                ValueRef::Text(t) => {
                    std::str::from_utf8(t).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?
                }
                _ => return Ok(true),
            };
            for i in 1..5 {
                if let ValueRef::Text(hay) = ctx.get_raw(i) {
                    if contains_folded(hay, needle) {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        },
    )
}

/// Whether the lower-cased `hay` contains `needle` (lower-cased already). Same answer as
/// `hay.to_lowercase().contains(needle)`, without allocating for ASCII text.
pub(crate) fn contains_folded(hay: &[u8], needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() {
        // ASCII lower-cases to ASCII, so a needle with anything else cannot occur in it.
        return needle.is_ascii() && ascii_contains(hay, needle.as_bytes());
    }
    match std::str::from_utf8(hay) {
        Ok(hay) => hay.to_lowercase().contains(needle),
        Err(_) => false,
    }
}

/// Substring search of a lower-case ASCII needle in ASCII text, ignoring the text's case.
fn ascii_contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.len() > hay.len() {
        return false;
    }
    hay.windows(needle.len()).any(|window| window.iter().zip(needle).all(|(h, n)| h.to_ascii_lowercase() == *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hay: &str, text: &str) -> bool {
        let needle = needle(Some(text)).unwrap_or_default();
        let fast = contains_folded(hay.as_bytes(), &needle);
        assert_eq!(fast, hay.to_lowercase().contains(&needle), "{hay:?} / {text:?}");
        fast
    }

    #[test]
    fn matches_case_insensitively() {
        assert!(check("Quarterly Results", "RESULTS"));
        assert!(check("quarterly results", "Ly r"));
        assert!(!check("quarterly", "quarterlyx"));
        assert!(check("Åsa Öberg", "åSA"));
        assert!(check("åsa", "ÅSA"));
        assert!(check("ÅSA", "åsa"));
        assert!(!check("asa", "åsa"));
        assert!(check("Straße", "STRASSE") == "straße".contains("strasse"));
        assert!(check("Ärger mit KELVIN", "kelvin"));
        assert!(check("\u{212a}elvin", "kelvin"));
        assert!(check("anything", ""));
        assert!(!check("", "a"));
        assert!(check("x", "X"));
    }

    #[test]
    fn empty_text_is_no_filter() {
        assert_eq!(needle(None), None);
        assert_eq!(needle(Some("")), None);
        assert_eq!(needle(Some("ÅSA")).as_deref(), Some("åsa"));
    }
}
