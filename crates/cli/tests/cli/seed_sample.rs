//! The seed's own Python sample, vendored verbatim, against `viewlog demo` — and the sample the
//! demo prints, which must be the seed's with only its values filled in.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use viewlog_protocol::dates;

/// The Python block of the seed page, from `import base64` to `print(r.text)`, unmodified.
const SEED_SAMPLE: &str = include_str!("../fixtures/seed_sample.py");

const EVENTS: usize = 2000;

/// `viewlog demo --listen 127.0.0.1:0 --credentials FILE --events 2000`, ready once the
/// credentials file is written, the banner printed and `/healthz` answers.
async fn demo(dir: &Path) -> (Server, Value) {
    let creds_path = dir.join("credentials.json");
    let mut cmd = viewlog(dir);
    cmd.args(["demo", "--listen", "127.0.0.1:0", "--credentials"])
        .arg(&creds_path)
        .args(["--events", &EVENTS.to_string()]);
    let (mut child, stdout, stderr) = Server::spawn(&mut cmd);
    let creds: Value = wait_for(&mut child, &stderr, Duration::from_secs(60), "the credentials file", || {
        serde_json::from_str(&std::fs::read_to_string(&creds_path).ok()?).ok()
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the credentials file holds secrets: mode {mode:o}");
    }
    for field in ["baseUrl", "appId", "appKey", "accessKey", "secretKey", "email", "password"] {
        assert!(creds[field].as_str().is_some_and(|s| !s.is_empty()), "credentials lack {field}: {creds}");
    }
    let addr = creds["baseUrl"].as_str().unwrap().strip_prefix("http://").unwrap().parse().unwrap();
    wait_for(&mut child, &stderr, Duration::from_secs(30), "the end of the banner", || {
        stdout.find(|l| l.starts_with("Press Ctrl-C").then_some(()))
    });
    (Server::ready(child, addr, stdout, stderr).await, creds)
}

/// Replaces the one occurrence of `from`, which must be there exactly once.
#[track_caller]
fn fill(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the seed's sample should contain {from:?} exactly once");
    let filled = text.replacen(from, to, 1);
    assert!(filled.contains(to), "replacing {from:?} did not happen");
    filled
}

/// The seed's sample with its five variables and the three body values filled in, and nothing
/// else touched.
fn filled_sample(creds: &Value, query: &str, start: &str, end: &str) -> String {
    let var = |name: &str| creds[name].as_str().unwrap().to_owned();
    let mut s = SEED_SAMPLE.to_owned();
    s = fill(&s, r#"base_url = "https://xx-api.mimecast.com""#, &format!(r#"base_url = "{}""#, var("baseUrl")));
    s = fill(&s, r#"access_key = "YOUR ACCESS KEY""#, &format!(r#"access_key = "{}""#, var("accessKey")));
    s = fill(&s, r#"secret_key = "YOUR SECRET KEY""#, &format!(r#"secret_key = "{}""#, var("secretKey")));
    s = fill(&s, r#"app_id = "YOUR APPLICATION ID""#, &format!(r#"app_id = "{}""#, var("appId")));
    s = fill(&s, r#"app_key = "YOUR APPLICATION KEY""#, &format!(r#"app_key = "{}""#, var("appKey")));
    s = fill(&s, "'query': 'String'", &format!("'query': '{query}'"));
    s = fill(&s, "'start': '2016-12-01T00:00:00+0000'", &format!("'start': '{start}'"));
    s = fill(&s, "'end': '2016-12-01T23:59:59+0000'", &format!("'end': '{end}'"));
    assert_eq!(s.lines().count(), SEED_SAMPLE.lines().count());
    s
}

/// Parses what the sample printed (`print(r.text)`) and checks a full page of records.
#[track_caller]
fn check_page(printed: &str, start: i64, end: i64) -> Value {
    let body: Value =
        serde_json::from_str(printed.trim()).unwrap_or_else(|e| panic!("the sample printed no JSON ({e}):\n{printed}"));
    assert_eq!(body["meta"]["status"], 200, "{body:#}");
    assert_eq!(body["fail"], serde_json::json!([]), "{body:#}");
    let records = body["data"].as_array().unwrap_or_else(|| panic!("no data: {body:#}"));
    assert_eq!(records.len(), 25, "the default page size is 25: {body:#}");
    let mut previous = i64::MAX;
    for record in records {
        assert_record(record);
        let viewed = dates::parse_body_date(record["viewed"].as_str().unwrap(), dates::Bound::Start).unwrap();
        assert!((start..=end).contains(&viewed), "viewed outside the range: {record}");
        assert!(viewed <= previous, "records are newest first");
        previous = viewed;
    }
    body
}

#[tokio::test]
async fn the_seeds_sample_with_only_its_variables_filled_in_reads_the_demo() {
    require_python();
    let dir = tempfile::tempdir().unwrap();
    let (server, creds) = demo(dir.path()).await;
    let (start, end) = (now() - 91 * 86_400, now() + 3600);
    let (start_text, end_text) = (dates::format_date(start), dates::format_date(end));

    // Everything: the demo's events span the last 90 days.
    let out = run_python(dir.path(), &filled_sample(&creds, "", &start_text, &end_text));
    let body = check_page(&out.stdout, start, end);
    assert_eq!(body["meta"]["pagination"]["totalCount"], EVENTS as u64, "{:#}", body["meta"]);
    assert!(body["meta"]["pagination"]["next"].is_string(), "more pages follow: {:#}", body["meta"]);

    // A text filter, in another letter case: every record holds it in one of the four fields.
    let out = run_python(dir.path(), &filled_sample(&creds, "ACME", &start_text, &end_text));
    let body = check_page(&out.stdout, start, end);
    for record in body["data"].as_array().unwrap() {
        let hay = ["viewer", "from", "to", "subject"].map(|f| record[f].as_str().unwrap().to_lowercase());
        assert!(hay.iter().any(|h| h.contains("acme")), "{record} does not match 'ACME'");
    }
    drop(server);
}

/// The value a sample line assigns: the last quoted string on it.
fn value_span(line: &str) -> Option<(usize, usize)> {
    let quote = if line.trim_end().ends_with('"') { '"' } else { '\'' };
    let close = line.rfind(quote)?;
    let open = line[..close].rfind(quote)?;
    Some((open + 1, close))
}

/// The line with its value masked.
fn masked(line: &str) -> String {
    match value_span(line) {
        Some((a, b)) => format!("{}<value>{}", &line[..a], &line[b..]),
        None => line.to_owned(),
    }
}

#[tokio::test]
async fn the_sample_the_demo_prints_is_the_seeds_with_only_its_values_changed_and_runs() {
    require_python();
    let dir = tempfile::tempdir().unwrap();
    let (server, creds) = demo(dir.path()).await;

    let stdout = server.stdout.text();
    let printed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "import base64")
        .take_while(|l| *l != "print(r.text)")
        .chain(std::iter::once("print(r.text)"))
        .collect();
    let seed: Vec<&str> = SEED_SAMPLE.lines().collect();
    assert_eq!(printed.len(), seed.len(), "the printed sample has other lines than the seed's:\n{stdout}");

    let mut start = None;
    let mut end = None;
    let mut changed = Vec::new();
    for (p, s) in printed.iter().zip(&seed) {
        if p == s {
            continue;
        }
        assert_eq!(masked(p), masked(s), "the printed sample changes more than a value on this line");
        let (a, b) = value_span(p).unwrap();
        let value = &p[a..b];
        let name = s.trim_start_matches('\'').split(['\'', ' ']).next().unwrap();
        match name {
            "base_url" => assert_eq!(value, creds["baseUrl"]),
            "access_key" => assert_eq!(value, creds["accessKey"]),
            "secret_key" => assert_eq!(value, creds["secretKey"]),
            "app_id" => assert_eq!(value, creds["appId"]),
            "app_key" => assert_eq!(value, creds["appKey"]),
            "query" => assert!(!value.contains(['\'', '\\']), "{value:?}"),
            "start" | "end" => {
                assert!(is_mimecast_date(value), "{name} {value:?} is not yyyy-MM-ddTHH:mm:ss+0000");
                let t = dates::parse_body_date(value, dates::Bound::Start).unwrap();
                if name == "start" {
                    start = Some(t)
                } else {
                    end = Some(t)
                }
            }
            other => panic!("the printed sample changes {other:?}, which is not one of its variables: {p}"),
        }
        changed.push(name.to_owned());
    }
    for var in ["base_url", "access_key", "secret_key", "app_id", "app_key", "start", "end"] {
        assert!(changed.iter().any(|c| c == var), "the printed sample leaves {var} as the seed's placeholder");
    }
    let (start, end) = (start.unwrap(), end.unwrap());
    assert!(start < end && (end - now()).abs() < 600, "start {start}, end {end}");

    // And it runs, as printed.
    let mut script = printed.join("\n");
    script.push('\n');
    let out = run_python(dir.path(), &script);
    check_page(&out.stdout, start, end);
    drop(server);
}
