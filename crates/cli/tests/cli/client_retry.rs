//! The client waits out `X-RateLimit-Reset`, which is in milliseconds: against a server whose
//! quota is two requests refilled at five a second, paging quickly through ten pages succeeds,
//! page after page, in seconds (read as seconds, each wait would be minutes, capped at 30 s).

use crate::support::*;
use crate::sync_support::*;
use futures::TryStreamExt;
use std::time::{Duration, Instant};
use viewlog_client::ViewLogFilter;
use viewlog_protocol::records::ViewLogRecord;

const EVENTS: u64 = 50;
const PAGE: u32 = 5;

#[tokio::test]
async fn rate_limited_paging_waits_the_reset_milliseconds_and_gets_every_page() {
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let prober = db.tenant("acme", "View Log Reader");
    let server = db.serve(&["--rate-capacity", "2", "--rate-refill-per-sec", "5"]).await;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let now = now();
    let records: Vec<ViewLogRecord> = (0..EVENTS).map(|n| tokened_record(&run_id, n, now - 600 + n as i64)).collect();
    // One request: within the writer's own quota of two.
    let events: Vec<_> = records.iter().map(|r| event_for(&format!("id-{}", token_of(&r.subject)), r)).collect();
    library_client(&server.base_url, &writer).record_views(&events).await.unwrap();
    let expected = records.iter().map(|r| (token_of(&r.subject).to_owned(), r.clone())).collect();

    // The quota bites, and its reset is milliseconds (a fifth of a second at most here).
    let body = serde_json::json!({});
    let mut limited = None;
    for _ in 0..5 {
        let reply = server.view_logs(&prober, &body).await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("five quick requests on a quota of two were all answered");
    assert_eq!(limited.code(), "err_xdk_rate_limit_exceeded");
    let reset: u64 = limited.header("x-ratelimit-reset").expect("X-RateLimit-Reset").parse().unwrap();
    assert!(reset > 0 && reset <= 1000, "X-RateLimit-Reset {reset} is not milliseconds to the next request");

    // The library, with its default retry policy: every page, each after the wait it was told.
    let client = viewlog_client::Client::new(
        &server.base_url,
        viewlog_client::Credentials::V1(viewlog_client::ApiV1 {
            app_id: reader.app_id.clone(),
            app_key: viewlog_protocol::secret::Secret::new(reader.app_key.clone()),
            access_key: reader.access_key.clone(),
            secret_key: viewlog_protocol::secret::Secret::new(reader.secret_key.clone()),
        }),
    )
    .unwrap();
    let filter =
        ViewLogFilter { start: Some(now - 3600), end: Some(now), query: Some(run_id.clone()), page_size: Some(PAGE) };
    let started = Instant::now();
    let pages: Vec<_> = tokio::time::timeout(Duration::from_secs(60), client.view_logs_pages(filter).try_collect())
        .await
        .expect("paging did not finish within a minute: the reset was not read as milliseconds")
        .expect("a page failed after its retries");
    let took = started.elapsed();
    assert!(pages.len() >= (EVENTS / PAGE as u64) as usize, "{} pages", pages.len());
    let got: Vec<ViewLogRecord> = pages.into_iter().flat_map(|p| p.records).collect();
    assert_exactly_once(&got, &expected);
    assert!(took < Duration::from_secs(20), "ten pages at five requests a second took {took:?}");
    eprintln!("{EVENTS} records in pages of {PAGE} under a quota of 2 + 5/s: {took:?}");

    // The command line pages the same way.
    let creds = credentials_file(db.dir.path(), "reader.json", &server.base_url, &reader);
    let started = Instant::now();
    let mut cmd = viewlog(db.dir.path());
    cmd.args(["logs", "--format", "ndjson", "--start", "1h", "--end", "now", "--page-size", "5", "--query", &run_id])
        .arg("--credentials")
        .arg(&creds);
    let out = run(&mut cmd, None);
    out.ok();
    let got: Vec<ViewLogRecord> = out.stdout.lines().map(|l| parse_record(l)).collect();
    assert_exactly_once(&got, &expected);
    assert!(started.elapsed() < Duration::from_secs(30), "viewlog logs took {:?}", started.elapsed());
}

#[track_caller]
fn parse_record(line: &str) -> ViewLogRecord {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_record(&v);
    serde_json::from_value(v).unwrap()
}
