//! Shared by the `logs`/`sync` tests: credentials files, events with a unique token in the
//! subject, ingestion through the client library (with retries, for servers injecting faults),
//! and reading the collector's NDJSON output back.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use viewlog_client::{ApiV1, Client, Credentials, RetryPolicy};
use viewlog_protocol::dates::format_date;
use viewlog_protocol::records::{ViewEventIn, ViewLogRecord};
use viewlog_protocol::secret::Secret;

/// Writes a credentials file as `viewlog demo --credentials` does (mode 0600).
pub fn credentials_file(dir: &Path, name: &str, base_url: &str, creds: &Creds) -> PathBuf {
    let path = dir.join(name);
    let body = json!({
        "baseUrl": base_url,
        "appId": creds.app_id,
        "appKey": creds.app_key,
        "accessKey": creds.access_key,
        "secretKey": creds.secret_key,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&body).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A library client for `base_url`, retrying hard (for servers that inject faults).
pub fn library_client(base_url: &str, creds: &Creds) -> Client {
    let credentials = Credentials::V1(ApiV1 {
        app_id: creds.app_id.clone(),
        app_key: Secret::new(creds.app_key.clone()),
        access_key: creds.access_key.clone(),
        secret_key: Secret::new(creds.secret_key.clone()),
    });
    let retry = RetryPolicy {
        max_attempts: 30,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
    };
    Client::with_retry(base_url, credentials, retry).unwrap()
}

/// A record whose subject carries the unique token `tok-{run}-{n}`.
pub fn tokened_record(run: &str, n: u64, viewed: i64) -> ViewLogRecord {
    const SOURCES: [&str; 4] = ["Message Tracking", "Archive Search", "Discovery Case", "Personal Portal"];
    ViewLogRecord {
        from: format!("sender{}@example.org", n % 97),
        to: format!("légal{}@acme.example", n % 3),
        viewer: format!("auditor{}@acme.example", n % 5),
        source: SOURCES[(n % 4) as usize].to_owned(),
        content_viewed: n.is_multiple_of(2),
        discovery_case: n % 5 == 1,
        message_date: format_date(viewed - 86_400 - (n % 1000) as i64),
        viewed: format_date(viewed),
        subject: format!("tok-{run}-{n} Größe, \"quoted\" – ✓"),
    }
}

/// The token of a subject made by [`tokened_record`].
pub fn token_of(subject: &str) -> &str {
    subject.split(' ').next().unwrap_or_default()
}

/// The record-views event that stores `r` (with an explicit id, so resending is harmless).
pub fn event_for(id: &str, r: &ViewLogRecord) -> ViewEventIn {
    ViewEventIn {
        id: Some(id.to_owned()),
        from: r.from.clone(),
        to: r.to.clone(),
        viewer: r.viewer.clone(),
        source: Some(r.source.clone()),
        content_viewed: r.content_viewed,
        discovery_case: r.discovery_case,
        message_date: r.message_date.clone(),
        viewed: r.viewed.clone(),
        subject: r.subject.clone(),
        viewer_ip: Some("10.0.0.1".into()),
        message_id: None,
        action: Some("view".into()),
        case_id: None,
    }
}

/// Stores records through record-views, retrying until the server acknowledges the batch
/// (the client retries 429, 5xx and dropped connections; a batch is idempotent by its ids).
pub async fn ingest(client: &Client, records: &[ViewLogRecord]) {
    let events: Vec<ViewEventIn> =
        records.iter().map(|r| event_for(&format!("id-{}", token_of(&r.subject)), r)).collect();
    for chunk in events.chunks(1000) {
        let mut tries = 0;
        loop {
            tries += 1;
            match client.record_views(chunk).await {
                Ok(_) => break,
                Err(e) if tries < 10 => eprintln!("record-views failed ({e}); sending the batch again"),
                Err(e) => panic!("record-views failed {tries} times: {e}"),
            }
        }
    }
}

/// One line of the collector's output: the record and its fingerprint, checked.
#[track_caller]
pub fn parse_line(line: &str) -> (ViewLogRecord, String) {
    let mut value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    let fingerprint = value
        .as_object_mut()
        .and_then(|o| o.remove("fingerprint"))
        .and_then(|f| f.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no fingerprint: {line}"));
    assert_record(&value);
    let record: ViewLogRecord = serde_json::from_value(value).unwrap();
    assert_eq!(fingerprint, viewlog_client::fingerprint::fingerprint(&record), "a wrong fingerprint: {line}");
    (record, fingerprint)
}

/// Every line of the files, in order; a torn last line fails.
#[track_caller]
pub fn read_records(files: &[PathBuf]) -> Vec<ViewLogRecord> {
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        assert!(text.is_empty() || text.ends_with('\n'), "{} ends in a torn line", file.display());
        records.extend(text.lines().map(|l| parse_line(l).0));
    }
    records
}

/// The output file and its rotations (`FILE.1`, `FILE.2`, …), oldest first.
pub fn output_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in 1.. {
        let mut name = path.file_name().unwrap().to_os_string();
        name.push(format!(".{n}"));
        let rotated = path.with_file_name(name);
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    files.push(path.to_path_buf());
    files
}

/// Checks that `got` holds every expected record exactly once (by the token in its subject),
/// field for field, and nothing else.
#[track_caller]
pub fn assert_exactly_once(got: &[ViewLogRecord], expected: &BTreeMap<String, ViewLogRecord>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for r in got {
        let token = token_of(&r.subject);
        let want = expected.get(token).unwrap_or_else(|| panic!("a record that was never ingested: {r:?}"));
        assert_eq!(r, want, "a record differs from what was ingested");
        *seen.entry(token).or_default() += 1;
    }
    let repeated: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<&String> = expected.keys().filter(|k| !seen.contains_key(k.as_str())).collect();
    assert!(
        repeated.is_empty() && missing.is_empty(),
        "{} of {} events collected; {} repeated (first: {:?}); {} missing (first: {:?})",
        seen.len(),
        expected.len(),
        repeated.len(),
        repeated.iter().take(10).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), expected.len());
}

/// A secret must not appear in what a command printed.
#[track_caller]
pub fn assert_no_secret(out: &Out, creds: &Creds) {
    for secret in [&creds.app_key, &creds.secret_key] {
        assert!(
            !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
            "{} printed a secret:\nstdout:\n{}\nstderr:\n{}",
            out.what,
            out.stdout,
            out.stderr
        );
    }
}
