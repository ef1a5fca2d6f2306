//! Strategies shared by the integration tests.

#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::Value;

/// Characters that stress a string's repr: both quotes, the backslash, every control character,
/// DEL, the C1 controls, NBSP, the soft hyphen, line and paragraph separators, the BOM, a private
/// use character, a combining mark, an astral character and the last code point.
pub fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '\'',
            '"',
            '\\',
            '\u{7f}',
            '\u{a0}',
            '\u{ad}',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{e000}',
            '\u{301}',
            '\u{1f600}',
            '\u{10ffff}',
            'é',
            '€',
            ' ',
            'x',
        ]),
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0x80u32..0xa1).prop_map(|c| char::from_u32(c).unwrap_or('?')),
    ]
}

/// Any Unicode string, weighted towards the characters of [`tricky_char`].
pub fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop_oneof![tricky_char(), any::<char>()], 0..24).prop_map(String::from_iter),
    ]
    .boxed()
}

/// Strings of characters assigned long ago (Unicode 11 or earlier), on which every Python 3.8+
/// and Rust's Unicode tables agree about `str.isprintable()`.
pub fn stable_string() -> BoxedStrategy<String> {
    let stable = prop_oneof![
        tricky_char(),
        (0u32..0x800).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0x2000u32..0x2070).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0x3000u32..0x3040).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0xe000u32..0xe010).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0xfff0u32..0x10000).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0x1f600u32..0x1f650).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        (0xe0000u32..0xe0080).prop_map(|c| char::from_u32(c).unwrap_or('?')),
    ];
    prop::collection::vec(stable, 0..24).prop_map(String::from_iter).boxed()
}

/// Finite floats: any bit pattern, and short decimals.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1_000_000i64..1_000_000, 0u32..12).prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
        (-400i32..400).prop_map(|e| 10f64.powi(e)).prop_filter("finite", |f| f.is_finite()),
    ]
}

/// Any JSON value whose strings come from `strings`.
pub fn json_value(strings: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        strings.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((strings.clone(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Structural equality in which two floats are equal when they are numerically equal, and an
/// integer never equals a float.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.is_f64(), y.is_f64()) {
            (true, true) => x.as_f64() == y.as_f64(),
            (false, false) => x == y,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
