//! Cross-checks `to_python_repr` and `parse_body` against a real Python 3: Python's `repr()` of a
//! value (which is its `str()` for everything but a bare string) must be exactly what
//! `to_python_repr` writes, and `parse_body` must read it back.
//!
//! python3 is required (it is on developer machines and in CI): without it this test fails.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{json_value, same_value, stable_string};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use viewlog_protocol::lenient::{parse_body, to_python_repr};

/// Python's `repr()` of each value, one JSON document per line in, one repr per line out.
fn python_str(values: &[Value]) -> Vec<String> {
    const SCRIPT: &str = "import json, sys\nfor line in sys.stdin:\n    v = json.loads(line)\n    assert isinstance(v, str) or str(v) == repr(v)\n    print(repr(v))\n";
    let mut input = String::new();
    for value in values {
        input.push_str(&serde_json::to_string(value).expect("a JSON value serializes"));
        input.push('\n');
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONUTF8", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs python3 on the PATH and could not run it: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python3 ran");
    writer.join().expect("the writer thread").expect("python3 read its input");
    assert!(output.status.success(), "python3 failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("python3 wrote UTF-8");
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), values.len(), "python3 wrote one line per value");
    lines
}

fn check(values: &[Value]) {
    let from_python = python_str(values);
    let mut failures = Vec::new();
    for (value, python) in values.iter().zip(&from_python) {
        let ours = to_python_repr(value);
        if &ours != python {
            failures.push(format!("value {value}\n  python: {python}\n  ours:   {ours}"));
        }
        match parse_body(python.as_bytes()) {
            Ok(read) if same_value(&read, value) => {}
            other => failures.push(format!("python's {python} read as {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

fn chars(range: std::ops::Range<u32>) -> String {
    range.filter_map(char::from_u32).collect()
}

#[test]
fn tricky_values_match_python() {
    let mut values = vec![
        json!({"data": [{"query": "String", "start": "2016-12-01T00:00:00+0000", "end": "2016-12-01T23:59:59+0000"}]}),
        json!({"meta": {"pagination": {"pageSize": 100, "pageToken": null}}, "data": [{"query": "O'Brien", "flag": true, "other": false}]}),
        json!("O'Brien"),
        json!("say \"hi\""),
        json!("both ' and \""),
        json!("back\\slash \\' \\\""),
        json!("Müller, 東京, 😀, e\u{301}, \u{200d}"),
        json!(["\u{a0}", "\u{ad}", "\u{2028}", "\u{2029}", "\u{200b}", "\u{feff}", "\u{e000}", "\u{f8ff}", "\u{fffd}"]),
        json!([
            "\u{fdd0}",
            "\u{fffe}",
            "\u{ffff}",
            "\u{e0001}",
            "\u{f0000}",
            "\u{10ffff}",
            "\u{1f468}\u{200d}\u{1f469}"
        ]),
        json!(["\u{3000}", "\u{1680}", "\u{2000}", "\u{202f}", "\u{205f}", "\u{61c}", "\u{180e}"]),
        json!([0, -1, 1, i64::MIN, i64::MAX, u64::MAX, 9007199254740993u64]),
        json!([0.0, -0.0, 1.0, -1.5, 0.1, 0.2, 1e16, 1e15, 1e-4, 1e-5, 1.5e-7, 1e100, 1e308, 5e-324, f64::MAX]),
        json!([123_456_789.123_456_79, 1e22, 1e21, 9999999999999998.0, 0.30000000000000004, 2.5e-05, 100.0]),
        json!({"": "", "a": [], "b": {}, "c": [[]], "d": [{}], "nested": {"x": {"y": {"z": [1, [2, [3]]]}}}}),
        json!({"keys 'quoted'": 1, "keys \"dq\"": 2, "key\n": 3}),
        json!(null),
        json!(true),
        json!(""),
    ];
    // Every character of the old blocks, and the ASCII and Latin-1 ones one by one.
    values.push(Value::String(chars(0..0x800)));
    values.push(Value::String(chars(0x2000..0x2070)));
    values.push(Value::String(chars(0xfe00..0x10000)));
    values.extend((0..0x100).filter_map(char::from_u32).map(|c| Value::String(c.to_string())));
    values.extend((0..0x100).filter_map(char::from_u32).map(|c| Value::String(format!("'{c}\""))));
    check(&values);
}

#[test]
fn float_reprs_match_python() {
    // A fixed pseudo-random walk over f64 bit patterns (xorshift64*), finite ones only, and the
    // shortest decimals of a few magnitudes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut values = Vec::new();
    while values.len() < 3000 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let x = f64::from_bits(bits);
        if x.is_finite() {
            values.push(json!(x));
        }
    }
    for e in -330..310 {
        for m in [1.0, 1.5, 9.999, 2.220446049250313] {
            let x = m * 10f64.powi(e);
            if x.is_finite() {
                values.push(json!(x));
            }
        }
    }
    check(&values);
}

#[test]
fn random_values_match_python() {
    let mut runner = TestRunner::deterministic();
    let strategy = json_value(stable_string());
    let mut values = Vec::new();
    for _ in 0..500 {
        values.push(strategy.new_tree(&mut runner).expect("a value").current());
    }
    check(&values);
}
