//! Slow searches cannot starve the server: a query whose client went away is stopped inside
//! SQLite, and one that passes its deadline is stopped and answered 503.

use crate::helpers::{event, test_config, wire, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

/// Enough events that a search for a term no event holds scans for a long while.
async fn big_app(config: viewlog_server::ServerConfig) -> TestApp {
    let app = TestApp::spawn_with(config).await;
    let base = 1_700_000_000;
    for chunk in 0..30u64 {
        let events: Vec<_> =
            (0..10_000u64).map(|i| event(chunk * 10_000 + i, base + (chunk * 10_000 + i) as i64)).collect();
        app.insert(app.creds.account, &events).await;
    }
    app
}

/// A search the text index cannot narrow: a needle without letters or digits is looked for in
/// the text of every event of the range (a needle made of words no event holds is answered from
/// the dictionaries in a few milliseconds, too quickly to be caught running).
fn slow_search() -> serde_json::Value {
    json!({"data": [{"query": "@@@@@@", "start": wire(1_600_000_000), "end": wire(1_800_000_000)}]})
}

#[tokio::test]
async fn a_search_whose_client_went_away_is_interrupted() {
    let app = big_app(test_config()).await;
    // How long the search takes when nobody leaves.
    let started = Instant::now();
    app.view_logs(&slow_search()).await.ok();
    let full = started.elapsed();
    let before = app.store.interrupted_operations();
    // The client gives up early: its connection closes while the query runs.
    let gave_up = full / 4;
    let body = slow_search();
    let request = app.view_logs(&body);
    assert!(tokio::time::timeout(gave_up, request).await.is_err(), "the search finished in {gave_up:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store.interrupted_operations() == before {
        assert!(Instant::now() < deadline, "the abandoned search was not interrupted (a full search takes {full:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server is still fine.
    app.view_logs(&json!({})).await.ok();
}

#[tokio::test]
async fn a_search_past_its_deadline_is_stopped_and_answered_503() {
    let mut config = test_config();
    // Long enough for the query to have started (a query cancelled before it starts never
    // runs, and is not counted as interrupted), far shorter than the scan takes.
    config.core.query_deadline = Duration::from_millis(20);
    let app = big_app(config).await;
    let before = app.store.interrupted_operations();
    let reply = app.view_logs(&slow_search()).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error()["code"], "err_service_unavailable");
    assert_eq!(reply.error()["retryable"], true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store.interrupted_operations() == before {
        assert!(Instant::now() < deadline, "the query past its deadline was not interrupted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
