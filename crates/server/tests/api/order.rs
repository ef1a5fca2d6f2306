//! The order of the checks (PROTOCOL §4): headers, application id, date, signature, binding
//! TTL, request id, quota, permission, body. A request failing two checks gets the earlier
//! one's answer.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use viewlog_core::permissions;
use viewlog_protocol::dates;
use viewlog_store::RatePolicy;

fn wrong_secret(creds: &Creds) -> Creds {
    Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..creds.clone() }
}

fn unknown_app(creds: &Creds) -> Creds {
    Creds { app_id: "no-such-application".into(), ..creds.clone() }
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn missing_header_comes_before_the_application_id() {
    let app = TestApp::spawn().await;
    let h = with_header(&TestApp::headers(&unknown_app(&app.creds), VIEW_LOGS), "x-mc-date", None);
    app.send(VIEW_LOGS, &h, "{}").await.refused(400, "err_xdk_missing_credentials", false);
    let h = with_header(&TestApp::headers(&unknown_app(&app.creds), VIEW_LOGS), "Authorization", Some("MC nocolon"));
    app.send(VIEW_LOGS, &h, "{}").await.refused(400, "err_xdk_missing_credentials", false);
}

#[tokio::test]
async fn application_id_comes_before_the_date_and_the_signature() {
    let app = TestApp::spawn().await;
    let creds = unknown_app(&wrong_secret(&app.creds));
    for date in ["not a date".to_owned(), dates::format_header_date(now() - 7200)] {
        let h = TestApp::headers_at(&creds, VIEW_LOGS, &date, &fresh_id());
        app.send(VIEW_LOGS, &h, "{}").await.refused(200, "err_developer_key", false);
    }
    app.send(VIEW_LOGS, &TestApp::headers(&creds, VIEW_LOGS), "{}").await.refused(200, "err_developer_key", false);
}

#[tokio::test]
async fn date_comes_before_the_signature() {
    let app = TestApp::spawn().await;
    let unknown_key = Creds { access_key: "nobody".into(), ..app.creds.clone() };
    for creds in [wrong_secret(&app.creds), unknown_key] {
        for date in ["not a date".to_owned(), dates::format_header_date(now() - 7200)] {
            let h = TestApp::headers_at(&creds, VIEW_LOGS, &date, &fresh_id());
            app.send(VIEW_LOGS, &h, "{}").await.refused(401, "err_xdk_request_expired", false);
        }
    }
}

#[tokio::test]
async fn signature_comes_before_the_body_and_the_permission() {
    let app = TestApp::spawn().await;
    let wrong = wrong_secret(&app.creds);
    let h = TestApp::headers(&wrong, VIEW_LOGS);
    app.send(VIEW_LOGS, &h, "{{{ not a body").await.refused(401, "err_xdk_invalid_signature", false);
    let h = TestApp::headers(&wrong, VIEW_LOGS);
    app.send(VIEW_LOGS, &h, vec![b' '; (1 << 20) + 10]).await.refused(401, "err_xdk_invalid_signature", false);
    let recorder = wrong_secret(&app.tenant("acme", permissions::VIEW_LOG_RECORDER, None).await);
    let h = TestApp::headers(&recorder, VIEW_LOGS);
    app.send(VIEW_LOGS, &h, "{}").await.refused(401, "err_xdk_invalid_signature", false);
}

#[tokio::test]
async fn permission_comes_before_the_body() {
    let app = TestApp::spawn().await;
    let recorder = app.tenant("acme", permissions::VIEW_LOG_RECORDER, None).await;
    let forbidden = "err_xdk_operation_forbidden_for_address";
    let h = TestApp::headers(&recorder, VIEW_LOGS);
    app.send(VIEW_LOGS, &h, "{{{ not a body").await.refused(403, forbidden, false);
    let h = TestApp::headers(&recorder, VIEW_LOGS);
    app.send(VIEW_LOGS, &h, vec![b' '; (1 << 20) + 10]).await.refused(403, forbidden, false);
    let invalid = json!({"data": [{"start": "yesterday"}], "meta": {"pagination": {"pageSize": 0}}});
    app.view_logs_as(&recorder, &invalid).await.refused(403, forbidden, false);
}

/// A binding whose TTL lapsed answers 418 before the request id, the quota and the
/// permission, but after the date and the signature.
#[tokio::test]
async fn binding_ttl_sits_between_signature_and_request_id() {
    let mut config = test_config();
    config.core.rate = RatePolicy { capacity: 3, refill_per_sec: 0.001 };
    let app = TestApp::spawn_with(config).await;
    let ttl = Some(Duration::from_secs(2));
    let admin = app.tenant("acme", permissions::FULL_ADMINISTRATOR, ttl).await;
    let recorder = app.tenant("acme", permissions::VIEW_LOG_RECORDER, ttl).await;
    let busy = app.tenant("acme", permissions::FULL_ADMINISTRATOR, ttl).await;

    // While the bindings live: one request id used, one user's quota used up.
    let date = dates::format_header_date(now());
    let used = fresh_id();
    let replay = TestApp::headers_at(&admin, VIEW_LOGS, &date, &used);
    app.send(VIEW_LOGS, &replay, "{}").await.ok();
    for _ in 0..3 {
        app.view_logs_as(&busy, &json!({})).await.ok();
    }
    app.view_logs_as(&busy, &json!({})).await.refused(429, "err_xdk_rate_limit_exceeded", true);

    // Let the TTLs lapse (whole seconds).
    tokio::time::sleep(Duration::from_millis(3100)).await;

    let expired = "err_xdk_binding_expired";
    app.send(VIEW_LOGS, &replay, "{}").await.refused(418, expired, false);
    app.view_logs_as(&recorder, &json!({})).await.refused(418, expired, false);
    app.view_logs_as(&busy, &json!({})).await.refused(418, expired, false);
    app.send(VIEW_LOGS, &TestApp::headers(&wrong_secret(&admin), VIEW_LOGS), "{}").await.refused(
        401,
        "err_xdk_invalid_signature",
        false,
    );
    let old = TestApp::headers_at(&admin, VIEW_LOGS, &dates::format_header_date(now() - 7200), &fresh_id());
    app.send(VIEW_LOGS, &old, "{}").await.refused(401, "err_xdk_request_expired", false);
}

/// The request id is checked before the quota, the quota before the permission.
#[tokio::test]
async fn request_id_then_quota_then_permission() {
    let mut config = test_config();
    config.core.rate = RatePolicy { capacity: 2, refill_per_sec: 0.001 };
    let app = TestApp::spawn_with(config).await;
    let date = dates::format_header_date(now());
    let first = TestApp::headers_at(&app.creds, VIEW_LOGS, &date, &fresh_id());
    app.send(VIEW_LOGS, &first, "{}").await.ok();
    app.view_logs(&json!({})).await.ok();
    // Quota used up: a replay is still a replay, a fresh request is over quota.
    app.send(VIEW_LOGS, &first, "{}").await.refused(401, "err_xdk_duplicate_request_id", false);
    let reply = app.view_logs(&json!({})).await;
    reply.refused(429, "err_xdk_rate_limit_exceeded", true);

    let recorder = app.tenant("acme", permissions::VIEW_LOG_RECORDER, None).await;
    let forbidden = "err_xdk_operation_forbidden_for_address";
    app.view_logs_as(&recorder, &json!({})).await.refused(403, forbidden, false);
    app.view_logs_as(&recorder, &json!({})).await.refused(403, forbidden, false);
    app.view_logs_as(&recorder, &json!({})).await.refused(429, "err_xdk_rate_limit_exceeded", true);
    // Over quota, a valid batch is refused and not stored.
    let reply = app.post_as(&recorder, RECORD, &json!({"data": [event_json(1, now())]})).await;
    reply.refused(429, "err_xdk_rate_limit_exceeded", true);
    assert_eq!(app.stored(recorder.account).await, 0);
}
