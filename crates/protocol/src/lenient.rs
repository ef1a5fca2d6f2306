//! The tolerant body reader (PROTOCOL §6).
//!
//! Real clients send JSON, or the body as Python's `str(dict)`: single- or double-quoted strings
//! with Python's escapes (`\'`, `\xNN`, `\uNNNN`, `\UNNNNNNNN`, `\n`, …), `True`, `False`,
//! `None`, tuples, trailing commas, raw non-ASCII. Both read into a [`serde_json::Value`].

use serde_json::Value;

/// A body that no tolerant reading can parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed body at byte {offset}: {reason}")]
pub struct BodyError {
    /// Where reading stopped.
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

/// Reads a request body. An empty or all-whitespace body reads as `Value::Null`. Tries strict
/// JSON first, then the Python literal form. Never panics, whatever the bytes.
pub fn parse_body(bytes: &[u8]) -> Result<Value, BodyError> {
    let _ = bytes;
    todo!()
}

/// Writes a value the way Python's `str()` writes the equivalent dict/list/str/int/float/bool/None
/// (single quotes unless the string holds a `'` and no `"`, `True`, `None`, …). Used by tests
/// and tools that imitate the seed's Python client.
pub fn to_python_repr(value: &Value) -> String {
    let _ = value;
    todo!()
}
