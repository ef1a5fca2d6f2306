//! Authentication (PROTOCOL §3, §4): every refusal of the API 1.0 scheme, provoked for real,
//! with its status, code, sub-code, envelope, and nothing stored.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use viewlog_core::permissions;
use viewlog_protocol::dates;

/// Headers signed correctly for `path`, then one header replaced or removed.
fn altered(creds: &Creds, path: &str, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    with_header(&TestApp::headers(creds, path), name, value)
}

async fn missing_header(name: &str, what: &str) {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    let [record, _] = app
        .refused_everywhere(
            creds.account,
            |p| altered(&creds, p, name, None),
            400,
            "err_xdk_missing_credentials",
            false,
        )
        .await;
    let message = record.error()["message"].as_str().unwrap();
    assert!(message.starts_with("0001"), "{message}");
    assert!(message.contains(what), "the message names the header: {message}");
    // Present but empty is missing too.
    app.refused_everywhere(
        creds.account,
        |p| altered(&creds, p, name, Some("  ")),
        400,
        "err_xdk_missing_credentials",
        false,
    )
    .await;
}

#[tokio::test]
async fn missing_authorization_is_400_missing_credentials() {
    missing_header("Authorization", "Authorization").await;
}

#[tokio::test]
async fn missing_date_is_400_missing_credentials() {
    missing_header("x-mc-date", "x-mc-date").await;
}

#[tokio::test]
async fn missing_request_id_is_400_missing_credentials() {
    missing_header("x-mc-req-id", "x-mc-req-id").await;
}

#[tokio::test]
async fn missing_app_id_is_400_missing_credentials() {
    missing_header("x-mc-app-id", "x-mc-app-id").await;
}

#[tokio::test]
async fn malformed_authorization_is_400_missing_credentials() {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    let sig_of = |p: &str| {
        let h = TestApp::headers(&creds, p);
        let auth = h.iter().find(|(k, _)| k == "Authorization").unwrap().1.clone();
        (h, auth.split_once(':').unwrap().1.to_owned())
    };
    let forms: [fn(&str, &str) -> String; 6] = [
        |_, sig| format!("Basic {sig}"),
        |key, _| format!("MC {key}"),
        |key, _| format!("MC {key}:"),
        |_, sig| format!("MC :{sig}"),
        |key, sig| format!("MC{key}:{sig}"),
        |key, sig| format!("MC {key} x:{sig}"),
    ];
    for form in &forms {
        let [record, _] = app
            .refused_everywhere(
                creds.account,
                |p| {
                    let (h, sig) = sig_of(p);
                    let value = form(&creds.access_key, &sig);
                    with_header(&h, "Authorization", Some(&value))
                },
                400,
                "err_xdk_missing_credentials",
                false,
            )
            .await;
        assert!(record.error()["message"].as_str().unwrap().starts_with("0001 "), "{}", record.body);
    }
    // An over-long request id is malformed too.
    let long = "x".repeat(129);
    app.refused_everywhere(
        creds.account,
        |p| TestApp::headers_at(&creds, p, &dates::format_header_date(now()), &long),
        400,
        "err_xdk_missing_credentials",
        false,
    )
    .await;
}

#[tokio::test]
async fn unknown_app_id_is_200_developer_key() {
    let app = TestApp::spawn().await;
    let creds = Creds { app_id: "00000000-0000-0000-0000-000000000000".into(), ..app.creds.clone() };
    let [record, _] =
        app.refused_everywhere(creds.account, |p| TestApp::headers(&creds, p), 200, "err_developer_key", false).await;
    assert!(record.error()["message"].as_str().unwrap().starts_with("App ID is invalid"), "{}", record.body);
}

#[tokio::test]
async fn disabled_app_is_200_developer_key() {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    app.view_logs(&json!({})).await.ok();
    app.admin.set_application_disabled(&creds.app_id, true).await.unwrap();
    let [record, _] =
        app.refused_everywhere(creds.account, |p| TestApp::headers(&creds, p), 200, "err_developer_key", false).await;
    assert!(record.error()["message"].as_str().unwrap().starts_with("App ID is invalid"), "{}", record.body);
    // Enabled again, the same binding works again.
    app.admin.set_application_disabled(&creds.app_id, false).await.unwrap();
    app.view_logs(&json!({})).await.ok();
}

async fn expired_with_date(date: &str) {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    let [record, _] = app
        .refused_everywhere(
            creds.account,
            |p| TestApp::headers_at(&creds, p, date, &uuid::Uuid::new_v4().to_string()),
            401,
            "err_xdk_request_expired",
            false,
        )
        .await;
    assert!(record.error()["message"].as_str().unwrap().starts_with("0005"), "{}", record.body);
}

#[tokio::test]
async fn unparseable_date_is_401_request_expired() {
    expired_with_date("yesterday").await;
    // A zone outside the list is unparseable.
    let date = dates::format_header_date(now()).replace(" UTC", " CET");
    expired_with_date(&date).await;
}

#[tokio::test]
async fn date_before_the_skew_window_is_401_request_expired() {
    expired_with_date(&dates::format_header_date(now() - 16 * 60)).await;
}

#[tokio::test]
async fn date_after_the_skew_window_is_401_request_expired() {
    expired_with_date(&dates::format_header_date(now() + 16 * 60)).await;
}

#[tokio::test]
async fn date_inside_the_skew_window_is_accepted() {
    let app = TestApp::spawn().await;
    for offset in [-14 * 60, 14 * 60] {
        let date = dates::format_header_date(now() + offset);
        let headers = TestApp::headers_at(&app.creds, VIEW_LOGS, &date, &uuid::Uuid::new_v4().to_string());
        app.send(VIEW_LOGS, &headers, "{}").await.ok();
    }
}

#[tokio::test]
async fn the_skew_window_is_configurable() {
    let mut config = test_config();
    config.core.clock_skew = Duration::from_secs(60);
    let app = TestApp::spawn_with(config).await;
    let date = dates::format_header_date(now() - 120);
    let headers = TestApp::headers_at(&app.creds, VIEW_LOGS, &date, &uuid::Uuid::new_v4().to_string());
    app.send(VIEW_LOGS, &headers, "{}").await.refused(401, "err_xdk_request_expired", false);
    let date = dates::format_header_date(now() - 30);
    let headers = TestApp::headers_at(&app.creds, VIEW_LOGS, &date, &uuid::Uuid::new_v4().to_string());
    app.send(VIEW_LOGS, &headers, "{}").await.ok();
}

#[tokio::test]
async fn wrong_signature_and_unknown_access_key_answer_identically() {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    let wrong_secret = Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..creds.clone() };
    let [wrong, _] = app
        .refused_everywhere(
            creds.account,
            |p| TestApp::headers(&wrong_secret, p),
            401,
            "err_xdk_invalid_signature",
            false,
        )
        .await;
    assert_eq!(wrong.error()["message"], json!("0004 Invalid Signature"));
    // Signed over another path.
    let [other_path, _] = app
        .refused_everywhere(
            creds.account,
            |_| TestApp::headers(&creds, "/api/archive/get-archive-search-logs"),
            401,
            "err_xdk_invalid_signature",
            false,
        )
        .await;
    let unknown = Creds { access_key: "mYkEyThAtDoEsNoTeXiSt".into(), ..creds.clone() };
    let [unknown, _] = app
        .refused_everywhere(creds.account, |p| TestApp::headers(&unknown, p), 401, "err_xdk_invalid_signature", false)
        .await;
    assert_eq!(wrong.body, unknown.body, "no key enumeration");
    assert_eq!(wrong.body, other_path.body);
    // A signature over the right data with a wrong application key.
    let wrong_app_key = Creds { app_key: "not-the-application-key".into(), ..creds.clone() };
    let [bad_app_key, _] = app
        .refused_everywhere(
            creds.account,
            |p| TestApp::headers(&wrong_app_key, p),
            401,
            "err_xdk_invalid_signature",
            false,
        )
        .await;
    assert_eq!(wrong.body, bad_app_key.body);
}

#[tokio::test]
async fn revoked_binding_and_disabled_user_answer_as_a_wrong_signature() {
    let app = TestApp::spawn().await;
    let creds = app.creds.clone();
    let wrong_secret = Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..creds.clone() };
    let [wrong, _] = app
        .refused_everywhere(
            creds.account,
            |p| TestApp::headers(&wrong_secret, p),
            401,
            "err_xdk_invalid_signature",
            false,
        )
        .await;

    let revoked = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
    app.view_logs_as(&revoked, &json!({})).await.ok();
    app.admin.revoke_binding(&revoked.access_key).await.unwrap();
    let [r, _] = app
        .refused_everywhere(creds.account, |p| TestApp::headers(&revoked, p), 401, "err_xdk_invalid_signature", false)
        .await;
    assert_eq!(r.body, wrong.body);

    let disabled = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
    app.view_logs_as(&disabled, &json!({})).await.ok();
    app.admin.set_user_disabled(&disabled.email, true).await.unwrap();
    let [d, _] = app
        .refused_everywhere(creds.account, |p| TestApp::headers(&disabled, p), 401, "err_xdk_invalid_signature", false)
        .await;
    assert_eq!(d.body, wrong.body);

    // A disabled account: its users' bindings answer the same way.
    let other = app.tenant("initech", permissions::FULL_ADMINISTRATOR, None).await;
    app.view_logs_as(&other, &json!({})).await.ok();
    app.admin.set_account_disabled("initech", true).await.unwrap();
    let [a, _] = app
        .refused_everywhere(other.account, |p| TestApp::headers(&other, p), 401, "err_xdk_invalid_signature", false)
        .await;
    assert_eq!(a.body, wrong.body);

    // The others were not affected.
    app.view_logs(&json!({})).await.ok();
}

#[tokio::test]
async fn binding_past_its_ttl_is_418_binding_expired() {
    let app = TestApp::spawn().await;
    let short = app.tenant("acme", permissions::FULL_ADMINISTRATOR, Some(Duration::from_secs(1))).await;
    // The TTL must lapse: whole seconds, so 1 s after the second it was issued in.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let [record, _] = app
        .refused_everywhere(short.account, |p| TestApp::headers(&short, p), 418, "err_xdk_binding_expired", false)
        .await;
    assert!(record.error()["message"].as_str().unwrap().starts_with("0007"), "{}", record.body);
    // A binding without a TTL of the same account still works.
    app.view_logs(&json!({})).await.ok();
}

#[tokio::test]
async fn replayed_request_id_is_401_duplicate_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let date = dates::format_header_date(now());
    let id = uuid::Uuid::new_v4().to_string();
    let headers = TestApp::headers_at(&app.creds, RECORD, &date, &id);
    let first = json!({"data": [event_json(1, now())]});
    let reply = app.send(RECORD, &headers, first.to_string()).await.ok();
    assert_eq!(reply.data()[0], json!({"inserted": 1, "duplicates": 0}));
    assert_eq!(app.stored(app.creds.account).await, 1);

    // The very same request again, and the same headers with another body.
    for body in [first.clone(), json!({"data": [event_json(2, now())]})] {
        let again = app.send(RECORD, &headers, body.to_string()).await;
        let e = again.refused(401, "err_xdk_duplicate_request_id", false);
        assert!(e["message"].as_str().unwrap().starts_with("0006"), "{}", again.body);
    }
    assert_eq!(app.stored(app.creds.account).await, 1, "a replay stores nothing");

    // Re-signed with a fresh date, the id is still a replay.
    let later = dates::format_header_date(now() + 1);
    let headers = TestApp::headers_at(&app.creds, VIEW_LOGS, &later, &id);
    app.send(VIEW_LOGS, &headers, "{}").await.refused(401, "err_xdk_duplicate_request_id", false);
}

#[tokio::test]
async fn request_ids_are_per_access_key() {
    let app = TestApp::spawn().await;
    let other = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
    let date = dates::format_header_date(now());
    let id = uuid::Uuid::new_v4().to_string();
    app.send(VIEW_LOGS, &TestApp::headers_at(&app.creds, VIEW_LOGS, &date, &id), "{}").await.ok();
    app.send(VIEW_LOGS, &TestApp::headers_at(&other, VIEW_LOGS, &date, &id), "{}").await.ok();
}

#[tokio::test]
async fn a_request_refused_before_its_signature_verified_does_not_record_its_id() {
    let app = TestApp::spawn().await;
    let date = dates::format_header_date(now());
    let id = uuid::Uuid::new_v4().to_string();
    let wrong = Creds { secret_key: "V3JvbmdTZWNyZXQ=".into(), ..app.creds.clone() };
    let batch = json!({"data": [event_json(1, now())]}).to_string();

    let bad = app.send(RECORD, &TestApp::headers_at(&wrong, RECORD, &date, &id), batch.clone()).await;
    bad.refused(401, "err_xdk_invalid_signature", false);
    // Refused for its date or its application id: not recorded either.
    let old = dates::format_header_date(now() - 3600);
    app.send(RECORD, &TestApp::headers_at(&app.creds, RECORD, &old, &id), batch.clone()).await.refused(
        401,
        "err_xdk_request_expired",
        false,
    );
    let no_app = Creds { app_id: "unknown-app".into(), ..app.creds.clone() };
    app.send(RECORD, &TestApp::headers_at(&no_app, RECORD, &date, &id), batch.clone()).await.refused(
        200,
        "err_developer_key",
        false,
    );
    assert_eq!(app.stored(app.creds.account).await, 0);

    // The same id, correctly signed, is fresh.
    let good = app.send(RECORD, &TestApp::headers_at(&app.creds, RECORD, &date, &id), batch).await.ok();
    assert_eq!(good.data()[0], json!({"inserted": 1, "duplicates": 0}));
    assert_eq!(app.stored(app.creds.account).await, 1);
}

#[tokio::test]
async fn a_role_without_read_gets_403_on_get_view_logs() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    let recorder = app.tenant("acme", permissions::VIEW_LOG_RECORDER, None).await;
    let reply = app.view_logs_as(&recorder, &json!({})).await;
    let e = reply.refused(403, "err_xdk_operation_forbidden_for_address", false);
    assert!(e["message"].as_str().unwrap().starts_with("0003 Forbidden To Perform Operation For Address"), "{e}");
    // The recorder may record.
    let ok = app.record_as(&recorder, &[event_json(2, now())]).await.ok();
    assert_eq!(ok.data()[0], json!({"inserted": 1, "duplicates": 0}));
}

#[tokio::test]
async fn a_role_without_edit_gets_403_on_record_views_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let reader = app.tenant("acme", permissions::VIEW_LOG_READER, None).await;
    let reply = app.record_as(&reader, &[event_json(1, now())]).await;
    let e = reply.refused(403, "err_xdk_operation_forbidden_for_address", false);
    assert!(e["message"].as_str().unwrap().starts_with("0003"), "{e}");
    assert_eq!(app.stored(reader.account).await, 0);
    // The reader may read.
    app.view_logs_as(&reader, &json!({})).await.ok();
}

#[tokio::test]
async fn a_binding_presented_with_another_applications_id_is_an_invalid_signature() {
    let app = TestApp::spawn().await;
    let other_app = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
    // acme's first binding, presented with the second application's id and key.
    let mixed = Creds { app_id: other_app.app_id.clone(), app_key: other_app.app_key.clone(), ..app.creds.clone() };
    app.refused_everywhere(app.creds.account, |p| TestApp::headers(&mixed, p), 401, "err_xdk_invalid_signature", false)
        .await;
}
