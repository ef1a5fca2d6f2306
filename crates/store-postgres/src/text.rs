//! The text filter, all in one place: how a record's searchable text is stored, how a query's
//! `text` becomes SQL, and why the answer is the SQLite store's answer.
//!
//! A record matches if its viewer, sender, recipient or subject contains the text, compared
//! case-insensitively with Unicode lower-casing (`"ÅSA"` finds `"åsa"`); an empty text matches
//! everything. Lower-casing is done **in Rust** (`str::to_lowercase`, exactly as the SQLite
//! store's `vl_contains` does), never by PostgreSQL: `lower()` and `ILIKE` follow the database's
//! `LC_CTYPE`, which in a `C`-locale cluster leaves `Å` alone and elsewhere maps characters one
//! by one (no final sigma, no `İ` → `i̇`). So:
//!
//! - at ingest, each of the four fields whose lower-cased form differs from the field is stored
//!   lower-cased beside it (`viewer_lc`, …; NULL when lower-casing changes nothing, which is the
//!   common case for addresses);
//! - [`SEARCH_EXPR`] joins the four lower-cased forms with U+001F (unit separator), and a
//!   pg_trgm GIN index covers that expression;
//! - a query's needle is lower-cased in Rust and matched with a case-sensitive `LIKE
//!   '%needle%'` on [`SEARCH_EXPR`], `\`, `%` and `_` escaped so they are literal. The index
//!   answers `LIKE` with a recheck, so the result never depends on the index.
//!
//! A match of a needle without U+001F cannot span two fields (it would contain the separator),
//! so it lies inside one field: the join is exact. A needle *with* U+001F (a control character
//! no one types) gets an extra per-field `strpos` test so that it stays exact too.

/// The separator between the fields in [`SEARCH_EXPR`].
const SEPARATOR: char = '\u{1f}';

/// The lower-cased viewer, sender, recipient and subject, joined: the expression the trigram
/// index covers and the text filter matches. Must stay character for character the same in
/// the index definition and in queries (the planner matches expressions structurally).
pub(crate) const SEARCH_EXPR: &str = "(coalesce(viewer_lc, viewer) || E'\\x1f' || coalesce(sender_lc, sender) \
     || E'\\x1f' || coalesce(recipient_lc, recipient) || E'\\x1f' || coalesce(subject_lc, subject))";

/// The lower-cased form of a field to store beside it: `None` when lower-casing changes
/// nothing (the column is then NULL and [`SEARCH_EXPR`] reads the field itself).
pub(crate) fn folded(field: &str) -> Option<String> {
    // Fast path: ASCII with no capitals is its own lower case.
    if field.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        return None;
    }
    let lower = field.to_lowercase();
    (lower != field).then_some(lower)
}

/// A query's text, ready to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Needle {
    /// `%needle%`, with `\`, `%` and `_` escaped by `\` (PostgreSQL's default `LIKE` escape).
    pub(crate) pattern: String,
    /// The lower-cased needle itself, when it holds the separator (see the module docs).
    pub(crate) exact: Option<String>,
}

/// The filter's needle, or `None` when the text filters nothing.
pub(crate) fn needle(text: Option<&str>) -> Option<Needle> {
    let lower = text.filter(|t| !t.is_empty())?.to_lowercase();
    let mut pattern = String::with_capacity(lower.len() + 4);
    pattern.push('%');
    for c in lower.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    let exact = lower.contains(SEPARATOR).then_some(lower);
    Some(Needle { pattern, exact })
}

/// The SQL condition of a needle, given the placeholders its values are bound to.
pub(crate) fn clause(pattern: &str, exact: Option<&str>) -> String {
    let mut sql = format!(" AND {SEARCH_EXPR} LIKE {pattern}");
    if let Some(n) = exact {
        sql.push_str(&format!(
            " AND (strpos(coalesce(viewer_lc, viewer), {n}) > 0 OR strpos(coalesce(sender_lc, sender), {n}) > 0 \
             OR strpos(coalesce(recipient_lc, recipient), {n}) > 0 OR strpos(coalesce(subject_lc, subject), {n}) > 0)"
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_only_what_changes() {
        assert_eq!(folded("viewer@example.com"), None);
        assert_eq!(folded("Viewer@Example.com").as_deref(), Some("viewer@example.com"));
        assert_eq!(folded("åsa"), None);
        assert_eq!(folded("ÅSA").as_deref(), Some("åsa"));
        assert_eq!(folded("ΣΩΚΡΑΤΗΣ x").as_deref(), Some("σωκρατης x"));
        assert_eq!(folded("\u{212a}elvin").as_deref(), Some("kelvin"));
        assert_eq!(folded(""), None);
    }

    #[test]
    fn needles_escape_like_wildcards() {
        assert_eq!(needle(None), None);
        assert_eq!(needle(Some("")), None);
        let n = needle(Some("ÅSA")).expect("needle");
        assert_eq!(n.pattern, "%åsa%");
        assert_eq!(n.exact, None);
        assert_eq!(needle(Some("50%_off\\")).expect("needle").pattern, "%50\\%\\_off\\\\%");
        let sep = needle(Some("a\u{1f}B")).expect("needle");
        assert_eq!(sep.exact.as_deref(), Some("a\u{1f}b"));
    }

    #[test]
    fn clause_adds_the_exact_test_only_for_the_separator() {
        assert!(!clause("$5", None).contains("strpos"));
        assert!(clause("$5", Some("$6")).contains("strpos(coalesce(subject_lc, subject), $6)"));
    }
}
