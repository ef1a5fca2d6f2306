//! The text filter's meaning, all in one place.
//!
//! A record matches if its viewer, sender, recipient or subject contains the text, compared
//! case-insensitively with Unicode lower-casing (`"ÅSA"` finds `"åsa"`); an empty text matches
//! everything. The needle is lower-cased once per query ([`needle`]); the text index
//! ([`crate::segments`]) holds the fields lower-cased the same way. [`contains_folded`] is the
//! definition the index is tested against.

/// The filter's needle (lower-cased), or `None` when the text filters nothing.
pub(crate) fn needle(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_lowercase)
}

/// Whether the lower-cased `hay` contains `needle` (lower-cased already). Same answer as
/// `hay.to_lowercase().contains(needle)`, without allocating for ASCII text.
#[cfg(test)]
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
#[cfg(test)]
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
