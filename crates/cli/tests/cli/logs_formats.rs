//! `viewlog logs`: every output format checked field for field against what was ingested
//! (commas, quotes, newlines and non-ASCII in subjects), newest first; `--limit`, `--query`,
//! `--start`/`--end` (absolute and relative), `--output`; credentials from a file, the
//! environment and a profile (kept 0600, refused when others may read it), never printed; and a
//! 200 answer with a non-empty `fail` reported as the error it is.

use crate::support::*;
use crate::sync_support::*;
use std::path::{Path, PathBuf};
use viewlog_protocol::dates::format_date;
use viewlog_protocol::records::ViewLogRecord;

const CSV_HEADER: &str = "viewed,viewer,from,to,subject,source,contentViewed,discoveryCase,messageDate";

/// The table's width when standard output is not a terminal.
const TABLE_WIDTH: usize = 160;

fn record(viewed: i64, viewer: &str, from: &str, subject: &str, n: i64) -> ViewLogRecord {
    ViewLogRecord {
        from: from.to_owned(),
        to: format!("recipient{n}@acme.example"),
        viewer: viewer.to_owned(),
        source: ["Message Tracking", "Archive Search", "Discovery Case"][(n % 3) as usize].to_owned(),
        content_viewed: n % 2 == 0,
        discovery_case: n % 3 == 2,
        message_date: format_date(viewed - 86_400 * (n + 1)),
        viewed: format_date(viewed),
        subject: subject.to_owned(),
    }
}

struct Fixture {
    db: Db,
    server: Server,
    reader: Creds,
    creds_file: PathBuf,
    /// Everything ingested, newest first; the last one was viewed three hours ago.
    records: Vec<ViewLogRecord>,
    now: i64,
}

const LONG_SUBJECT: &str = "A very long subject that goes on and on, well past the width of any table column: \
    minutes of the quarterly compliance review, the retention schedule, the litigation hold on the \
    Falcon project, and the list of every custodian whose mailbox is under review this quarter";

impl Fixture {
    async fn new() -> Fixture {
        let db = Db::new();
        let writer = db.tenant("acme", "View Log Recorder");
        let reader = db.tenant("acme", "View Log Reader");
        let server = db.serve(&[]).await;
        let now = now();
        let t = now - 1800;
        let records = vec![
            record(t + 700, "auditor@acme.example", "cfo@acme.example", "Quarterly results, Q3, final", 0),
            record(t + 600, "auditor@acme.example", "\"Doe, Jane\" <jane@globex.com>", "He said \"hello\", twice", 1),
            record(t + 500, "legal@acme.example", "ops@acme.example", "line one\nline two\r\nline three", 2),
            record(t + 400, "zoë.müller@acme.example", "jürgen@acme.example", "Größe – naïve café ✓ 日本語", 3),
            record(t + 300, "legal@acme.example", "board@acme.example", LONG_SUBJECT, 4),
            record(t + 200, "auditor@acme.example", "hr@acme.example", "tab\there; 'single' quotes", 5),
            record(t + 100, "auditor@acme.example", "it@acme.example", "", 6),
            record(now - 3 * 3600, "auditor@acme.example", "old@acme.example", "three hours ago", 7),
        ];
        let client = library_client(&server.base_url, &writer);
        let events: Vec<_> = records.iter().enumerate().map(|(i, r)| event_for(&format!("e{i}"), r)).collect();
        client.record_views(&events).await.unwrap();
        let creds_file = credentials_file(db.dir.path(), "creds.json", &server.base_url, &reader);
        Fixture { db, server, reader, creds_file, records, now }
    }

    fn dir(&self) -> &Path {
        self.db.dir.path()
    }

    /// `viewlog logs --credentials FILE ARGS`; must succeed and print no secret.
    #[track_caller]
    fn logs(&self, args: &[&str]) -> Out {
        let mut cmd = viewlog(self.dir());
        cmd.arg("logs").arg("--credentials").arg(&self.creds_file).args(args);
        let out = run(&mut cmd, None);
        out.ok();
        assert_no_secret(&out, &self.reader);
        out
    }

    /// The records viewed within the last two hours, newest first.
    fn recent(&self) -> Vec<ViewLogRecord> {
        self.records[..7].to_vec()
    }
}

#[track_caller]
fn ndjson_records(text: &str) -> Vec<ViewLogRecord> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            assert_record(&v);
            serde_json::from_value(v).unwrap()
        })
        .collect()
}

fn window_args(f: &Fixture) -> [String; 4] {
    ["--start".into(), format_date(f.now - 7200), "--end".into(), "now".into()]
}

#[tokio::test]
async fn every_format_holds_exactly_what_was_ingested_newest_first() {
    let f = Fixture::new().await;
    let w = window_args(&f);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    let want = f.recent();

    // NDJSON: one record a line, the nine fields.
    let out = f.logs(&[&w[..], &["--format", "ndjson"]].concat());
    assert_eq!(ndjson_records(&out.stdout), want);

    // JSON: one array.
    let out = f.logs(&[&w[..], &["--format", "json"]].concat());
    let array: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    array.iter().for_each(assert_record);
    let got: Vec<ViewLogRecord> = array.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert_eq!(got, want);
    // No record: still one (empty) array.
    let out = f.logs(&["--format", "json", "--start", "2001-01-01", "--end", "2001-01-02"]);
    assert_eq!(out.stdout.trim(), "[]");

    // CSV: the header row exactly, then every field as it was ingested.
    let out = f.logs(&[&w[..], &["--format", "csv"]].concat());
    assert_eq!(out.stdout.lines().next(), Some(CSV_HEADER));
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>().join(","), CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), want.len());
    for (row, r) in rows.iter().zip(&want) {
        let fields: Vec<&str> = row.iter().collect();
        let content_viewed = r.content_viewed.to_string();
        let discovery_case = r.discovery_case.to_string();
        assert_eq!(
            fields,
            [
                &r.viewed,
                &r.viewer,
                &r.from,
                &r.to,
                &r.subject,
                &r.source,
                &content_viewed,
                &discovery_case,
                &r.message_date
            ]
            .map(String::as_str)
        );
    }

    // Table: a header and one line per record, the subject cut with … only when too wide.
    let out = f.logs(&[&w[..], &["--format", "table"]].concat());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + want.len(), "a header and a line per record:\n{}", out.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["VIEWED", "VIEWER", "FROM", "TO", "SUBJECT"]);
    for (line, r) in lines[1..].iter().zip(&want) {
        assert!(line.chars().count() <= TABLE_WIDTH, "wider than {TABLE_WIDTH}: {line}");
        assert!(line.starts_with(&r.viewed), "{line}");
        assert!(line.contains(&r.viewer) && line.contains(&r.to), "{line}");
        let shown: String = r.subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if r.subject == LONG_SUBJECT {
            assert!(line.ends_with('…'), "a long subject is cut with …: {line}");
            let kept = line.trim_end_matches('…');
            let tail = kept.rsplit("  ").next().unwrap();
            assert!(tail.len() > 10 && LONG_SUBJECT.starts_with(tail), "{line}");
        } else {
            assert!(!line.contains('…'), "a subject that fits is not cut: {line}");
            assert!(line.trim_end().ends_with(shown.trim_end()), "the whole subject {shown:?} is shown: {line}");
        }
    }
    assert!(out.stderr.contains(&format!("{} records", want.len())), "{}", out.stderr);
}

#[tokio::test]
async fn limit_query_start_end_and_output() {
    let f = Fixture::new().await;
    let w = window_args(&f);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    let want = f.recent();

    // --limit: the newest N.
    let out = f.logs(&[&w[..], &["--format", "ndjson", "--limit", "3", "--page-size", "2"]].concat());
    assert_eq!(ndjson_records(&out.stdout), want[..3]);

    // --query: case-insensitive, Unicode-aware, over viewer, from, to and subject.
    let out = f.logs(&[&w[..], &["--format", "ndjson", "--query", "ZOË.MÜLLER"]].concat());
    assert_eq!(ndjson_records(&out.stdout), [want[3].clone()]);
    let out = f.logs(&[&w[..], &["--format", "ndjson", "--query", "doe, jane"]].concat());
    assert_eq!(ndjson_records(&out.stdout), [want[1].clone()]);
    let out = f.logs(&[&w[..], &["--format", "ndjson", "--query", "LINE TWO"]].concat());
    assert_eq!(ndjson_records(&out.stdout), [want[2].clone()]);

    // Relative --start: 2h leaves out the event of three hours ago, 4h takes it in.
    let out = f.logs(&["--format", "ndjson", "--start", "2h", "--end", "now"]);
    assert_eq!(ndjson_records(&out.stdout), want);
    let out = f.logs(&["--format", "ndjson", "--start", "4h", "--end", "now"]);
    assert_eq!(ndjson_records(&out.stdout), f.records);
    // Absolute bounds, both inclusive.
    let start = f.records[5].viewed.clone();
    let end = f.records[1].viewed.clone();
    let out = f.logs(&["--format", "ndjson", "--start", &start, "--end", &end]);
    assert_eq!(ndjson_records(&out.stdout), f.records[1..=5]);
    // A relative --end.
    let out = f.logs(&["--format", "ndjson", "--start", "4h", "--end", "2h"]);
    assert_eq!(ndjson_records(&out.stdout), [f.records[7].clone()]);

    // --output: nothing on standard output, the same records in the file (NDJSON by default).
    let file = f.dir().join("out.ndjson");
    let out = f.logs(&[&w[..], &["--output", file.to_str().unwrap()]].concat());
    assert_eq!(out.stdout, "");
    assert_eq!(ndjson_records(&std::fs::read_to_string(&file).unwrap()), want);
    let file = f.dir().join("out.csv");
    let out = f.logs(&[&w[..], &["--format", "csv", "-o", file.to_str().unwrap()]].concat());
    assert_eq!(out.stdout, "");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().next(), Some(CSV_HEADER));
    assert_eq!(csv::Reader::from_reader(text.as_bytes()).records().count(), want.len());
}

#[tokio::test]
async fn credentials_from_a_file_the_environment_or_a_profile_are_never_printed() {
    let f = Fixture::new().await;
    let want = f.recent();
    let args = ["logs", "--format", "ndjson", "--start", "2h", "--end", "now"];

    // The environment.
    let mut cmd = viewlog(f.dir());
    cmd.args(args)
        .env("VIEWLOG_BASE_URL", &f.server.base_url)
        .env("VIEWLOG_APP_ID", &f.reader.app_id)
        .env("VIEWLOG_APP_KEY", &f.reader.app_key)
        .env("VIEWLOG_ACCESS_KEY", &f.reader.access_key)
        .env("VIEWLOG_SECRET_KEY", &f.reader.secret_key);
    let out = run(&mut cmd, None);
    out.ok();
    assert_no_secret(&out, &f.reader);
    assert_eq!(ndjson_records(&out.stdout), want);

    // A profile saved from the credentials file, in a file of mode 0600.
    let profiles = f.dir().join("profiles.toml");
    let mut cmd = viewlog(f.dir());
    cmd.args(["profile", "save", "work", "--credentials"]).arg(&f.creds_file).arg("--profiles-file").arg(&profiles);
    let out = run(&mut cmd, None);
    out.ok();
    assert_no_secret(&out, &f.reader);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&profiles).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the profiles file holds secrets: mode {mode:o}");
    }
    let mut cmd = viewlog(f.dir());
    cmd.args(["profile", "list", "--profiles-file"]).arg(&profiles);
    let out = run(&mut cmd, None);
    assert!(out.ok().stdout.contains("work"), "{}", out.stdout);
    assert_no_secret(&out, &f.reader);

    let with_profile = || {
        let mut cmd = viewlog(f.dir());
        cmd.args(args).args(["--profile", "work", "--profiles-file"]).arg(&profiles);
        run(&mut cmd, None)
    };
    let out = with_profile();
    out.ok();
    assert_no_secret(&out, &f.reader);
    assert_eq!(ndjson_records(&out.stdout), want);

    // Others may read it: refused, saying why and how to fix it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&profiles, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = with_profile();
        let err = out.failed();
        assert!(err.contains("644") && err.contains("chmod 600"), "{err}");
        assert_eq!(out.stdout, "");
        assert_no_secret(&out, &f.reader);
    }
}

#[tokio::test]
async fn a_200_answer_with_a_fail_entry_is_an_error() {
    let f = Fixture::new().await;
    // start after end: the server answers 200 with err_validation_date_range.
    let body = serde_json::json!({"data": [{"start": "2024-02-01T00:00:00+0000", "end": "2024-01-01T00:00:00+0000"}]});
    let reply = f.server.view_logs(&f.reader, &body).await;
    assert_eq!((reply.status, reply.code()), (200, "err_validation_date_range"), "{:#}", reply.body);

    for (args, code) in [
        (["--start", "2024-02-01", "--end", "2024-01-01"], "err_validation_date_range"),
        (["--page-size", "0", "--start", "2h"], "err_validation_invalid_page_size"),
    ] {
        let mut cmd = viewlog(f.dir());
        cmd.args(["logs", "--format", "ndjson", "--credentials"]).arg(&f.creds_file).args(args);
        let out = run(&mut cmd, None);
        let err = out.failed();
        assert!(err.contains(code), "{err}");
        assert_eq!(out.stdout, "", "nothing is printed as if it were a result");
        assert_no_secret(&out, &f.reader);
    }

    // The library says the same.
    let client = library_client(&f.server.base_url, &f.reader);
    let filter = viewlog_client::ViewLogFilter { start: Some(f.now), end: Some(f.now - 60), ..Default::default() };
    let err = client.view_logs_page(&filter, None).await.unwrap_err();
    assert!(matches!(err, viewlog_client::ClientError::Failed { .. }), "{err:?}");
    assert_eq!(err.status(), Some(200));
    assert_eq!(err.code(), Some(viewlog_protocol::codes::ErrorCode::ErrValidationDateRange));
    // Streaming every record stops at the error, never yielding it as an empty success.
    use futures::TryStreamExt;
    let all: Result<Vec<ViewLogRecord>, _> = client.view_logs(filter).try_collect().await;
    assert!(all.is_err());
}

/// The credentials file `viewlog demo --credentials` writes works as it is, and none of its
/// secrets is printed.
#[tokio::test]
async fn the_demo_credentials_file_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("demo.json");
    let mut cmd = viewlog(dir.path());
    cmd.args(["demo", "--listen", "127.0.0.1:0", "--events", "300", "--credentials"]).arg(&creds_path);
    let (mut child, stdout, stderr) = Server::spawn(&mut cmd);
    let creds: serde_json::Value =
        wait_for(&mut child, &stderr, std::time::Duration::from_secs(60), "the credentials file", || {
            serde_json::from_str(&std::fs::read_to_string(&creds_path).ok()?).ok()
        });
    let addr = creds["baseUrl"].as_str().unwrap().strip_prefix("http://").unwrap().parse().unwrap();
    let _demo = Server::ready(child, addr, stdout, stderr).await;

    let mut cmd = viewlog(dir.path());
    cmd.args(["logs", "--format", "ndjson", "--start", "91d", "--end", "now", "--limit", "120", "--page-size", "50"])
        .arg("--credentials")
        .arg(&creds_path);
    let out = run(&mut cmd, None);
    out.ok();
    let records = ndjson_records(&out.stdout);
    assert_eq!(records.len(), 120);
    assert!(records.windows(2).all(|w| w[0].viewed >= w[1].viewed), "newest first");
    for field in ["appKey", "secretKey", "password", "clientSecret"] {
        let secret = creds[field].as_str().unwrap_or_else(|| panic!("no {field} in {creds}"));
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{field} was printed");
    }
}
