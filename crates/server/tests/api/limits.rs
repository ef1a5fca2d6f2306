//! Rate limits (PROTOCOL §4): 429 when the quota is used up, the `X-RateLimit-*` headers on
//! every answer, and the per-address bucket for requests no user is known for.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use viewlog_core::permissions;
use viewlog_protocol::dates;
use viewlog_store::RatePolicy;

fn limited(capacity: u64, refill_per_sec: f64) -> viewlog_server::ServerConfig {
    let mut config = test_config();
    config.core.rate = RatePolicy { capacity, refill_per_sec };
    config
}

#[tokio::test]
async fn quota_used_up_is_429_retryable_and_the_call_does_not_run() {
    let app = TestApp::spawn_with(limited(3, 1.0)).await;
    // Keep asking until refused (the bucket refills at 1/s, so a slow machine only needs more
    // requests, never fails).
    let mut refused = None;
    for n in 0..50 {
        let reply = app.record(&[event_json(n, now())]).await;
        if reply.status == 429 {
            refused = Some((n, reply));
            break;
        }
        let reply = reply.ok();
        let (limit, _, _) = reply.rate();
        assert_eq!(limit, 3);
    }
    let (n, reply) = refused.expect("the quota never ran out");
    assert!(n >= 3, "at least the capacity was allowed: {n}");
    let e = reply.refused(429, "err_xdk_rate_limit_exceeded", true);
    assert!(e["message"].as_str().unwrap().starts_with("0008"), "{e}");
    let (limit, remaining, reset) = reply.rate();
    assert_eq!((limit, remaining), (3, 0));
    assert!(reset > 0 && reset <= 1000, "reset in ms until the next request is added back: {reset}");
    assert_eq!(app.stored(app.creds.account).await, n, "the refused batch was not stored");
}

#[tokio::test]
async fn remaining_counts_down_and_reset_is_in_milliseconds() {
    // A slow refill (one request per 100 s) makes the countdown exact.
    let app = TestApp::spawn_with(limited(4, 0.01)).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let reply = app.view_logs(&json!({})).await.ok();
        let (limit, remaining, reset) = reply.rate();
        assert_eq!(limit, 4);
        assert!(reset > 0 && reset <= 100_000, "{reset}");
        seen.push(remaining);
    }
    assert_eq!(seen, vec![3, 2, 1, 0]);
    let reply = app.view_logs(&json!({})).await;
    reply.refused(429, "err_xdk_rate_limit_exceeded", true);
    let (_, remaining, reset) = reply.rate();
    assert_eq!(remaining, 0);
    assert!(reset > 90_000 && reset <= 100_000, "{reset}");
    // The quota is the user's: a second binding of the same user shares it...
    let second = app.admin.create_binding(&app.creds.email, &app.creds.app_id, None).await.unwrap();
    let same_user = Creds {
        access_key: second.binding.access_key.clone(),
        secret_key: second.secret_key.expose().to_owned(),
        ..app.creds.clone()
    };
    app.view_logs_as(&same_user, &json!({})).await.refused(429, "err_xdk_rate_limit_exceeded", true);
    // ... and another user has their own.
    let other = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
    let reply = app.view_logs_as(&other, &json!({})).await.ok();
    assert_eq!(reply.rate().1, 3);
}

#[tokio::test]
async fn a_flood_of_bad_signatures_is_throttled_per_address() {
    let app = TestApp::spawn_with(limited(3, 0.01)).await;
    let wrong = Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..app.creds.clone() };
    for remaining in [2, 1, 0] {
        let reply = app.view_logs_as(&wrong, &json!({})).await;
        reply.refused(401, "err_xdk_invalid_signature", false);
        assert_eq!(reply.rate().1, remaining);
    }
    let reply = app.view_logs_as(&wrong, &json!({})).await;
    reply.refused(429, "err_xdk_rate_limit_exceeded", true);
    // Unknown application ids and missing headers draw from the same bucket.
    let unknown = Creds { app_id: "nope".into(), ..app.creds.clone() };
    app.view_logs_as(&unknown, &json!({})).await.refused(429, "err_xdk_rate_limit_exceeded", true);
    let headers = with_header(&TestApp::headers(&app.creds, VIEW_LOGS), "x-mc-date", None);
    app.send(VIEW_LOGS, &headers, "{}").await.refused(429, "err_xdk_rate_limit_exceeded", true);
    // A verified user is charged to their own bucket, not the address's.
    let (limit, remaining, _) = app.view_logs(&json!({})).await.ok().rate();
    assert_eq!((limit, remaining), (3, 2));
}

/// Every answer carries the three headers: successes, every kind of error, 404 and 405.
#[tokio::test]
async fn rate_limit_headers_are_on_every_answer() {
    let app = TestApp::spawn().await;
    let recorder = app.tenant("acme", permissions::VIEW_LOG_RECORDER, None).await;
    let wrong = Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..app.creds.clone() };
    let unknown_app = Creds { app_id: "nope".into(), ..app.creds.clone() };
    let old = dates::format_header_date(now() - 3600);
    let replay = TestApp::headers(&app.creds, VIEW_LOGS);

    let mut replies = vec![
        ("success", app.view_logs(&json!({})).await),
        ("ingest", app.record(&[event_json(1, now())]).await),
        ("missing credentials", app.send(VIEW_LOGS, &with_header(&replay, "x-mc-req-id", None), "{}").await),
        ("developer key", app.view_logs_as(&unknown_app, &json!({})).await),
        ("expired", app.send(VIEW_LOGS, &TestApp::headers_at(&app.creds, VIEW_LOGS, &old, "r-1"), "{}").await),
        ("signature", app.view_logs_as(&wrong, &json!({})).await),
        ("first", app.send(VIEW_LOGS, &replay, "{}").await),
        ("duplicate", app.send(VIEW_LOGS, &replay, "{}").await),
        ("forbidden", app.view_logs_as(&recorder, &json!({})).await),
        ("invalid", app.view_logs(&json!({"data": [{"start": "nope"}]})).await),
        ("malformed", app.send(VIEW_LOGS, &TestApp::headers(&app.creds, VIEW_LOGS), "{{").await),
        ("too large", app.send(VIEW_LOGS, &TestApp::headers(&app.creds, VIEW_LOGS), vec![b' '; 2 << 20]).await),
        ("not found", app.request(Method::POST, "/api/nothing", &[], None).await),
        ("not allowed", app.request(Method::GET, VIEW_LOGS, &[], None).await),
    ];
    let expected = [200, 200, 400, 200, 401, 401, 200, 401, 403, 200, 400, 413, 404, 405];
    for ((what, reply), status) in replies.iter_mut().zip(expected) {
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        let (limit, remaining, _) = reply.rate();
        assert_eq!(limit, 1000, "{what}");
        assert!(remaining < 1000, "{what}: this request was charged");
    }
}
