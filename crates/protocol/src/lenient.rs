//! The tolerant body reader (PROTOCOL §6).
//!
//! Real clients send JSON, or the body as Python's `str(dict)`: single- or double-quoted strings
//! with Python's escapes (`\'`, `\xNN`, `\uNNNN`, `\UNNNNNNNN`, `\n`, …), `True`, `False`,
//! `None`, tuples, trailing commas, raw non-ASCII. Both read into a [`serde_json::Value`].
//!
//! What the Python-literal reader accepts *(ours)*:
//! - dicts, lists and tuples (read as arrays; `(x)` is just `x`, `(x,)` a one-item array);
//!   trailing commas; any ASCII whitespace between tokens;
//! - strings in `'…'` or `"…"`, optionally prefixed `u` or `r` (any case), with adjacent literals
//!   concatenated (`'a' 'b'` is `"ab"`), raw control characters and raw non-ASCII; the escapes
//!   `\\ \' \" \n \r \t \b \f \v \a`, octal `\o`…`\ooo` (so `\0`), `\xNN`, `\uNNNN`,
//!   `\UNNNNNNNN`, `\/` (JSON's, read as `/`) and a backslash-newline line continuation; an
//!   unknown escape such as `\q` stays as written, backslash included, as in Python. A UTF-16
//!   surrogate pair written as two `\u` escapes is joined into one character (JSON's reading);
//!   a lone surrogate, which a Rust string cannot hold, becomes U+FFFD. `\N{…}` is refused;
//! - `True`/`False`/`None` and JSON's `true`/`false`/`null`;
//! - integers (a sign, leading zeros allowed) as `i64`, else `u64`, else the nearest `f64`;
//!   floats (`1.0`, `1.`, `.5`, `1e+100`). A number that is not finite — Python's `inf` and
//!   `nan`, or a literal too large for `f64` such as `1e400` — is refused: JSON cannot hold it
//!   and no request field means it;
//! - dict keys that are strings; a number, `True`, `False` or `None` as a key becomes the string
//!   `json.dumps` would make of it (`1` → `"1"`, `True` → `"true"`); a later duplicate key wins,
//!   as in Python;
//! - at most [`MAX_DEPTH`] nested containers.
//!
//! A body that is not UTF-8 is read as Latin-1: that is what Python's `http.client` (under
//! `requests` with urllib3 1.x) sends for a `str` body such as the seed's `str(payload)`.

use serde_json::{Map, Number, Value};

/// The deepest nesting of dicts, lists and tuples the reader accepts (as serde_json's default).
pub const MAX_DEPTH: usize = 128;

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
///
/// A leading UTF-8 byte order mark is skipped. Offsets in errors count bytes of `bytes`.
pub fn parse_body(bytes: &[u8]) -> Result<Value, BodyError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let skipped = bytes.len() - body.len();
    if body.iter().all(|&b| is_space(b)) {
        return Ok(Value::Null);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let shift = |mut e: BodyError| {
        e.offset += skipped;
        e
    };
    match std::str::from_utf8(body) {
        Ok(_) => Reader { b: body, pos: 0, latin1: false }.document().map_err(shift),
        Err(utf8) => Reader { b: body, pos: 0, latin1: true }.document().map_err(|mut e| {
            e.reason = format!("{} (read as Latin-1: not UTF-8 at byte {})", e.reason, utf8.valid_up_to() + skipped);
            shift(e)
        }),
    }
}

/// Writes a value the way Python's `str()` writes the equivalent dict/list/str/int/float/bool/None
/// (single quotes unless the string holds a `'` and no `"`, `True`, `None`, …). Used by tests
/// and tools that imitate the seed's Python client.
///
/// A bare string is written as `repr()` writes it, quoted (its `str()` would be the text itself).
/// Keys come in the map's order. A non-ASCII character is written raw when Python's
/// `str.isprintable()` holds for it, by Rust's Unicode tables (a character assigned in a Unicode
/// version newer than the Python's would be escaped by that Python and is written raw here).
pub fn to_python_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        write_float(out, f);
    } else {
        out.push_str(&n.to_string());
    }
}

/// Python's `repr(float)`: the shortest digits that read back, in positional notation when the
/// decimal exponent is in -4..16, else in scientific notation with a signed two-digit-minimum
/// exponent; an integral value in positional notation gets `.0`.
fn write_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    if x.is_infinite() {
        out.push_str("inf");
        return;
    }
    if x == 0.0 {
        out.push_str("0.0");
        return;
    }
    // Rust's `{:e}` writes the shortest round-tripping digits, as Python's repr does.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let point = exponent + 1; // the value is 0.DIGITS × 10^point
    let len = digits.len() as i64;
    if point <= -4 || point > 16 {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push_str(&format!("e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.abs()));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point < len {
        let (int, frac) = digits.split_at(point as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - len) as usize));
        out.push_str(".0");
    }
}

/// Python's `repr(str)`.
fn write_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_ascii() || is_printable(c) => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one non-ASCII character. Rust's `escape_debug` escapes
/// exactly the characters of the general categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (bar the
/// space) — Python's non-printables — plus grapheme extenders at the start of a string only, so
/// the character is put after an `a`.
fn is_printable(c: char) -> bool {
    let mut buf = [0u8; 8];
    buf[0] = b'a';
    let len = c.encode_utf8(&mut buf[1..]).len();
    match std::str::from_utf8(&buf[..=len]) {
        Ok(s) => {
            let mut escaped = s.escape_debug();
            escaped.next() == Some('a') && escaped.next() == Some(c) && escaped.next().is_none()
        }
        Err(_) => false,
    }
}

/// ASCII whitespace as Python's tokenizer and JSON see it (plus vertical tab).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The Python-literal reader. It works on bytes: when `latin1` is false the input is known to be
/// valid UTF-8 and non-ASCII only occurs inside strings; when true every byte is one character.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    latin1: bool,
}

type Read<T> = Result<T, BodyError>;

impl Reader<'_> {
    fn fail<T>(&self, offset: usize, reason: impl Into<String>) -> Read<T> {
        Err(BodyError { offset, reason: reason.into() })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos + ahead).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn document(&mut self) -> Read<Value> {
        self.skip_space();
        let value = self.value(0)?;
        self.skip_space();
        if self.pos < self.b.len() {
            return self.fail(self.pos, "unexpected text after the value");
        }
        Ok(value)
    }

    /// One value; `depth` counts the containers around it.
    fn value(&mut self, depth: usize) -> Read<Value> {
        match self.peek() {
            None => self.fail(self.pos, "unexpected end of the body"),
            Some(b'{') => self.dict(depth),
            Some(b'[') => self.list(depth),
            Some(b'(') => self.paren(depth),
            Some(b'\'' | b'"') => self.strings().map(Value::String),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number(),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                if self.at_string() {
                    return self.strings().map(Value::String);
                }
                self.name()
            }
            Some(_) => self.fail(self.pos, "unexpected character"),
        }
    }

    fn enter(&self, depth: usize) -> Read<usize> {
        if depth >= MAX_DEPTH {
            return self.fail(self.pos, format!("more than {MAX_DEPTH} nested containers"));
        }
        Ok(depth + 1)
    }

    fn dict(&mut self, depth: usize) -> Read<Value> {
        let inner = self.enter(depth)?;
        let open = self.pos;
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.skip_space();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Object(map));
            }
            let key = self.key(inner)?;
            self.skip_space();
            if self.peek() != Some(b':') {
                return self.fail(self.pos, "expected ':' after a dict key");
            }
            self.pos += 1;
            self.skip_space();
            let value = self.value(inner)?;
            map.insert(key, value);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                None => return self.fail(open, "unclosed '{'"),
                Some(_) => return self.fail(self.pos, "expected ',' or '}' in a dict"),
            }
        }
    }

    fn key(&mut self, depth: usize) -> Read<String> {
        let at = self.pos;
        match self.peek() {
            Some(b',' | b':' | b'}') => return self.fail(at, "expected a dict key"),
            Some(b'{' | b'[' | b'(') => return self.fail(at, "a dict key must be a string"),
            _ => {}
        }
        match self.value(depth)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => {
                let mut s = String::new();
                write_number(&mut s, &n);
                Ok(s)
            }
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Ok("null".to_owned()),
            Value::Array(_) | Value::Object(_) => self.fail(at, "a dict key must be a string"),
        }
    }

    /// Items up to `close`, after the opening bracket; trailing comma allowed.
    fn items(&mut self, depth: usize, open: usize, close: u8, mut items: Vec<Value>) -> Read<Value> {
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
            if self.peek() == Some(b',') {
                return self.fail(self.pos, "expected a value");
            }
            items.push(self.value(depth)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return self.fail(open, format!("unclosed '{}'", self.b[open] as char)),
                Some(_) => return self.fail(self.pos, format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Read<Value> {
        let inner = self.enter(depth)?;
        let open = self.pos;
        self.pos += 1;
        self.items(inner, open, b']', Vec::new())
    }

    /// `()` is an empty tuple, `(x)` is `x`, `(x,…)` a tuple.
    fn paren(&mut self, depth: usize) -> Read<Value> {
        let inner = self.enter(depth)?;
        let open = self.pos;
        self.pos += 1;
        self.skip_space();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Value::Array(Vec::new()));
        }
        let first = self.value(inner)?;
        self.skip_space();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok(first)
            }
            Some(b',') => {
                self.pos += 1;
                self.items(inner, open, b')', vec![first])
            }
            None => self.fail(open, "unclosed '('"),
            Some(_) => self.fail(self.pos, "expected ',' or ')'"),
        }
    }

    fn name(&mut self) -> Read<Value> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        match &self.b[start..self.pos] {
            b"True" | b"true" => Ok(Value::Bool(true)),
            b"False" | b"false" => Ok(Value::Bool(false)),
            b"None" | b"null" => Ok(Value::Null),
            b"inf" | b"nan" | b"Infinity" | b"NaN" => self.fail(start, "a number that is not finite"),
            _ => self.fail(start, "unknown name"),
        }
    }

    fn number(&mut self) -> Read<Value> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let mut digits = self.digits();
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            float = true;
            digits += self.digits();
        }
        if digits == 0 {
            if self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                let name = self.pos;
                while self.peek().is_some_and(is_name_byte) {
                    self.pos += 1;
                }
                if matches!(&self.b[name..self.pos], b"inf" | b"nan" | b"Infinity" | b"NaN") {
                    return self.fail(start, "a number that is not finite");
                }
            }
            return self.fail(start, "malformed number");
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            float = true;
            if matches!(self.peek(), Some(b'-' | b'+')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.fail(start, "malformed number exponent");
            }
        }
        let text = match std::str::from_utf8(&self.b[start..self.pos]) {
            Ok(text) => text,
            Err(_) => return self.fail(start, "malformed number"),
        };
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
                return Ok(Value::Number(u.into()));
            }
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => self.fail(start, "a number that is not finite"),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Whether a string literal (with or without a `u`/`r` prefix) starts here.
    fn at_string(&self) -> bool {
        match self.peek() {
            Some(b'\'' | b'"') => true,
            Some(b'u' | b'U' | b'r' | b'R') => matches!(self.peek_at(1), Some(b'\'' | b'"')),
            _ => false,
        }
    }

    /// One string literal and any adjacent ones, concatenated.
    fn strings(&mut self) -> Read<String> {
        let mut out = String::new();
        loop {
            self.string(&mut out)?;
            let after = self.pos;
            self.skip_space();
            if !self.at_string() {
                self.pos = after;
                return Ok(out);
            }
        }
    }

    /// Copies `b[from..to]` (no quote, no backslash in it) to `out`.
    fn push_run(&self, out: &mut String, from: usize, to: usize) -> Read<()> {
        let run = &self.b[from..to];
        if self.latin1 {
            out.extend(run.iter().map(|&b| char::from(b)));
        } else {
            match std::str::from_utf8(run) {
                Ok(s) => out.push_str(s),
                Err(e) => return self.fail(from + e.valid_up_to(), "invalid UTF-8"),
            }
        }
        Ok(())
    }

    fn string(&mut self, out: &mut String) -> Read<()> {
        let start = self.pos;
        let mut raw = false;
        if let Some(b'u' | b'U' | b'r' | b'R') = self.peek() {
            raw = matches!(self.peek(), Some(b'r' | b'R'));
            self.pos += 1;
        }
        let Some(quote) = self.peek() else {
            return self.fail(start, "expected a string");
        };
        self.pos += 1;
        loop {
            let run = self.pos;
            while self.peek().is_some_and(|b| b != quote && b != b'\\') {
                self.pos += 1;
            }
            self.push_run(out, run, self.pos)?;
            match self.peek() {
                None => return self.fail(start, "unterminated string"),
                Some(b'\\') if raw => {
                    // In a raw string a backslash escapes nothing but keeps a quote from ending it.
                    out.push('\\');
                    self.pos += 1;
                    if self.peek() == Some(quote) {
                        out.push(char::from(quote));
                        self.pos += 1;
                    }
                }
                Some(b'\\') => self.escape(out)?,
                Some(_) => {
                    self.pos += 1;
                    return Ok(());
                }
            }
        }
    }

    /// `n` hex digits after the current position, as a number; the cursor moves past them.
    fn hex(&mut self, n: usize, escape: usize) -> Read<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            match digit {
                Some(d) => value = value * 16 + d,
                None => return self.fail(escape, format!("truncated \\{} escape", char::from(self.b[escape + 1]))),
            }
            self.pos += 1;
        }
        Ok(value)
    }

    fn escape(&mut self, out: &mut String) -> Read<()> {
        let at = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return self.fail(at, "unterminated string");
        };
        self.pos += 1;
        let simple = match c {
            b'\n' => None,
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                None
            }
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'/' => Some('/'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'v' => Some('\x0b'),
            b'a' => Some('\x07'),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                Some(char::from_u32(value).unwrap_or('\u{fffd}'))
            }
            b'x' => Some(char::from_u32(self.hex(2, at)?).unwrap_or('\u{fffd}')),
            b'u' => Some(self.utf16_escape(at)?),
            b'U' => {
                let value = self.hex(8, at)?;
                if value > 0x10_ffff {
                    return self.fail(at, "\\U escape beyond U+10FFFF");
                }
                Some(char::from_u32(value).unwrap_or('\u{fffd}'))
            }
            b'N' => return self.fail(at, "\\N{...} escapes are not supported"),
            _ => {
                // Python keeps an unknown escape as written; the character after the backslash
                // (possibly non-ASCII) is read again as ordinary string content.
                self.pos -= 1;
                Some('\\')
            }
        };
        if let Some(ch) = simple {
            out.push(ch);
        }
        Ok(())
    }

    /// `\uXXXX`, joining a high and a low surrogate written as two escapes.
    fn utf16_escape(&mut self, at: usize) -> Read<char> {
        let unit = self.hex(4, at)?;
        if (0xd800..0xdc00).contains(&unit)
            && self.peek() == Some(b'\\')
            && self.peek_at(1) == Some(b'u')
            && self.b.get(self.pos + 2..self.pos + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            let save = self.pos;
            self.pos += 2;
            let low = self.hex(4, save)?;
            if (0xdc00..0xe000).contains(&low) {
                let cp = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                return Ok(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(unit).unwrap_or('\u{fffd}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(body: &str) -> Value {
        match parse_body(body.as_bytes()) {
            Ok(v) => v,
            Err(e) => panic!("{body:?}: {e}"),
        }
    }

    fn err(body: &[u8]) -> BodyError {
        match parse_body(body) {
            Ok(v) => panic!("{body:?} should be refused, read {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_bodies_are_null() {
        for body in ["", " ", "\r\n\t ", "\u{feff}", "\u{feff}  \n"] {
            assert_eq!(ok(body), Value::Null, "{body:?}");
        }
    }

    #[test]
    fn json_bodies() {
        assert_eq!(ok(r#"{"data":[{}]}"#), json!({"data": [{}]}));
        assert_eq!(ok("\u{feff}{\"data\":[]}"), json!({"data": []}));
        assert_eq!(
            ok(r#"{"meta":{"pagination":{"pageSize":"100","pageToken":"abc"}},"data":[{"query":"x\u00e9\/"}]}"#),
            json!({"meta": {"pagination": {"pageSize": "100", "pageToken": "abc"}}, "data": [{"query": "xé/"}]})
        );
        assert_eq!(ok("[1, -2, 3.5, 1e+100, 18446744073709551615]"), json!([1, -2, 3.5, 1e100, u64::MAX]));
    }

    #[test]
    fn the_seed_python_sample() {
        // What `str(payload)` gives in the seed's Python sample.
        let body =
            "{'data': [{'query': 'String', 'start': '2016-12-01T00:00:00+0000', 'end': '2016-12-01T23:59:59+0000'}]}";
        assert_eq!(
            ok(body),
            json!({"data": [{"query": "String", "start": "2016-12-01T00:00:00+0000", "end": "2016-12-01T23:59:59+0000"}]})
        );
        let body = "{'meta': {'pagination': {'pageSize': 100, 'pageToken': None}}, 'data': [{'query': \"O'Brien\", 'x': True, 'y': False}]}";
        assert_eq!(
            ok(body),
            json!({"meta": {"pagination": {"pageSize": 100, "pageToken": null}}, "data": [{"query": "O'Brien", "x": true, "y": false}]})
        );
    }

    #[test]
    fn python_escapes() {
        let cases: &[(&str, &str)] = &[
            (r"'a\'b'", "a'b"),
            (r#"'a\"b'"#, "a\"b"),
            (r#""a'b""#, "a'b"),
            (r"'\\'", "\\"),
            (r"'\n\r\t\b\f\v\a\0'", "\n\r\t\x08\x0c\x0b\x07\0"),
            (r"'\x00\x1f\x7f\xe9\xA0'", "\0\x1f\x7fé\u{a0}"),
            (r"'\101\0101\1\18\777'", "A\u{8}1\u{1}\u{1}8\u{1ff}"),
            (r"'\u00e9\u20AC\U0001f600'", "é€😀"),
            (r"'\ud83d\ude00'", "😀"),
            (r"'\ud83d'", "\u{fffd}"),
            (r"'\ude00\ud83d x'", "\u{fffd}\u{fffd} x"),
            (r"'\ud83d\u0041'", "\u{fffd}A"),
            ("'a\\\nb'", "ab"),
            ("'a\\\r\nb'", "ab"),
            (r"'\q\d'", "\\q\\d"),
            ("'\\é'", "\\é"),
            (r"'\/'", "/"),
            ("'é€😀'", "é€😀"),
            ("'raw\ttab\nnewline'", "raw\ttab\nnewline"),
            ("u'x'", "x"),
            ("U\"x\"", "x"),
            (r"r'\n\''", "\\n\\'"),
            ("'a' 'b'\n\"c\" u'd'", "abcd"),
            ("''", ""),
            ("\"\"", ""),
        ];
        for (body, want) in cases {
            assert_eq!(ok(body), Value::String((*want).to_owned()), "{body}");
        }
    }

    #[test]
    fn python_containers_and_scalars() {
        assert_eq!(ok("{'a': 1, 'b': [True, None],}"), json!({"a": 1, "b": [true, null]}));
        assert_eq!(ok("[1, 2, ]"), json!([1, 2]));
        assert_eq!(ok("(1, 2)"), json!([1, 2]));
        assert_eq!(ok("(1,)"), json!([1]));
        assert_eq!(ok("()"), json!([]));
        assert_eq!(ok("(1)"), json!(1));
        assert_eq!(ok("((('x')))"), json!("x"));
        assert_eq!(ok("{'t': ({'a': (1, 2)}, [])}"), json!({"t": [{"a": [1, 2]}, []]}));
        assert_eq!(ok("{}"), json!({}));
        assert_eq!(ok("[]"), json!([]));
        assert_eq!(ok("{'a': true, 'b': false, 'c': null}"), json!({"a": true, "b": false, "c": null}));
        assert_eq!(ok("{'a': 1, 'a': 2}"), json!({"a": 2}));
        assert_eq!(
            ok("{1: 'x', 1.5: 'y', True: 'z', None: 'n', -2: 'm'}"),
            json!({"1": "x", "1.5": "y", "true": "z", "null": "n", "-2": "m"})
        );
        assert_eq!(ok("True"), json!(true));
        assert_eq!(ok("None"), Value::Null);
        assert_eq!(ok("'x'"), json!("x"));
        assert_eq!(ok(" \t{ 'a' :\n1 } \r\n"), json!({"a": 1}));
    }

    #[test]
    fn python_numbers() {
        assert_eq!(ok("[-1, +2, 007, 0, -0]"), json!([-1, 2, 7, 0, 0]));
        assert_eq!(ok("[9223372036854775807, -9223372036854775808]"), json!([i64::MAX, i64::MIN]));
        assert_eq!(ok("(18446744073709551615,)"), json!([u64::MAX]));
        assert_eq!(ok("(18446744073709551616,)"), json!([18446744073709551616.0]));
        assert_eq!(ok("(-9223372036854775809,)"), json!([-9223372036854775809.0]));
        assert_eq!(
            ok("(1.0, 1., .5, -2.5e-3, 1e+100, 1E5, 1.5e-07)"),
            json!([1.0, 1.0, 0.5, -0.0025, 1e100, 1e5, 1.5e-7])
        );
        let huge = format!("({},)", "9".repeat(400));
        assert!(parse_body(huge.as_bytes()).is_err(), "an integer beyond f64 is not finite");
        let big = format!("({},)", "9".repeat(300));
        assert_eq!(ok(&big), json!([1e300]));
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for body in
            ["inf", "-inf", "nan", "(inf,)", "{'a': -inf}", "[1e400]", "NaN", "Infinity", "-Infinity", "{'a': +nan}"]
        {
            let e = err(body.as_bytes());
            assert!(e.reason.contains("not finite"), "{body}: {e}");
        }
    }

    #[test]
    fn refusals_with_offsets() {
        let cases: &[(&[u8], usize)] = &[
            (b"{'a': 1", 0),
            (b"{'a' 1}", 5),
            (b"{'a': 1 'b': 2}", 8),
            (b"{'a': }", 6),
            (b"{,}", 1),
            (b"[,]", 1),
            (b"[1,,2]", 3),
            (b"[1 2]", 3),
            (b"(1 2)", 3),
            (b"'abc", 0),
            (b"'abc\"", 0),
            (b"{'a': 1} x", 9),
            (b"{'a': 1}}", 8),
            (b"{'a': Nothing}", 6),
            (b"{'a': '\\x4'}", 7),
            (b"{'a': '\\u12'}", 7),
            (b"{'a': '\\U00110000'}", 7),
            (b"{'a': '\\N{BULLET}'}", 7),
            (b"{[1]: 2}", 1),
            (b"{(1, 2): 2}", 1),
            (b"{'a', 'b'}", 4),
            (b"-", 0),
            (b".", 0),
            (b"1e", 0),
            (b"1e+", 0),
            (b"1.5.3", 3),
            (b"12abc", 2),
            (b"@", 0),
            (b"{'a': 1}\0", 8),
            (b"\xff", 0),
            (b"{'\xe9': \xff}", 6),
            (b"\xef\xbb\xbf{'a': }", 9),
        ];
        for (body, offset) in cases {
            let e = err(body);
            assert_eq!(e.offset, *offset, "{:?}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn latin1_bodies_from_http_client() {
        // `requests` with urllib3 1.x sends a str body encoded as Latin-1.
        assert_eq!(parse_body(b"{'query': 'M\xfcller \xe9'}"), Ok(json!({"query": "Müller é"})));
        let e = err(b"{'query': 'M\xfcller'");
        assert!(e.reason.contains("Latin-1") && e.reason.contains("byte 12"), "{e}");
    }

    #[test]
    fn nesting_is_limited() {
        let ok_depth = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_body(ok_depth.as_bytes()).is_ok());
        let python_ok = format!("{}{}", "(1, ".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse_body(python_ok.as_bytes()).is_ok());
        for open in ["[", "(", "{'a': ", "[(", "{'k': ["] {
            let deep = open.repeat(100_000);
            let e = err(deep.as_bytes());
            assert!(e.reason.contains("nested"), "{open}: {e}");
        }
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_body(too_deep.as_bytes()).is_err());
    }

    #[test]
    fn python_repr_of_scalars_and_containers() {
        assert_eq!(to_python_repr(&json!({"a": 1, "b": [true, null]})), "{'a': 1, 'b': [True, None]}");
        assert_eq!(
            to_python_repr(&json!([false, -5, u64::MAX, i64::MIN])),
            "[False, -5, 18446744073709551615, -9223372036854775808]"
        );
        assert_eq!(to_python_repr(&json!({})), "{}");
        assert_eq!(to_python_repr(&json!([])), "[]");
        assert_eq!(to_python_repr(&json!([[], {}, [[]]])), "[[], {}, [[]]]");
    }

    #[test]
    fn python_repr_of_floats() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1e-300, "1e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (1e22, "1e+22"),
            (100.0, "100.0"),
        ];
        for (x, want) in cases {
            assert_eq!(to_python_repr(&json!(x)), *want, "{x:e}");
        }
    }

    #[test]
    fn python_repr_of_strings() {
        let cases: &[(&str, &str)] = &[
            ("", "''"),
            ("abc", "'abc'"),
            ("a'b", "\"a'b\""),
            ("a\"b", "'a\"b'"),
            ("a'b\"c", "'a\\'b\"c'"),
            ("back\\slash", "'back\\\\slash'"),
            ("\t\n\r", "'\\t\\n\\r'"),
            ("\0\x01\x1f\x7f", "'\\x00\\x01\\x1f\\x7f'"),
            ("\u{80}\u{9f}\u{a0}\u{ad}", "'\\x80\\x9f\\xa0\\xad'"),
            ("éü€😀", "'éü€😀'"),
            ("\u{2028}\u{feff}\u{200b}\u{e000}", "'\\u2028\\ufeff\\u200b\\ue000'"),
            ("\u{f0000}\u{e0001}\u{10ffff}", "'\\U000f0000\\U000e0001\\U0010ffff'"),
            ("\u{301}a\u{301}", "'\u{301}a\u{301}'"),
            ("\u{3000}", "'\\u3000'"),
        ];
        for (s, want) in cases {
            assert_eq!(to_python_repr(&json!(s)), *want, "{s:?}");
            assert_eq!(ok(want), json!(s), "{want}");
        }
    }
}
