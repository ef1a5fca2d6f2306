//! Platform and validation errors (PROTOCOL §4): routing, methods, body size, each validation
//! code with its `field` and `key`, and malformed bodies.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn unknown_path_is_404_not_found() {
    let app = TestApp::spawn().await;
    for path in ["/api/archive/get-view-log", "/api/nope", "/", "/api/archive/get-view-logs/x"] {
        let signed = TestApp::headers(&app.creds, path);
        app.send(path, &signed, "{}").await.refused(404, "err_not_found", false);
        app.request(Method::GET, path, &[], None).await.refused(404, "err_not_found", false);
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (Method::GET, VIEW_LOGS, "POST"),
        (Method::PUT, VIEW_LOGS, "POST"),
        (Method::DELETE, VIEW_LOGS, "POST"),
        (Method::GET, RECORD, "POST"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let signed = TestApp::headers(&app.creds, path);
        let reply = app.request(method.clone(), path, &signed, None).await;
        reply.refused(405, "err_method_not_allowed", false);
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn query_body_over_1_mib_is_413() {
    let app = TestApp::spawn().await;
    // A valid body padded with whitespace: exactly 1 MiB is read, one byte more is refused.
    let padded = |len: usize| {
        let mut body = br#"{"data":[{}]"#.to_vec();
        body.resize(len - 1, b' ');
        body.push(b'}');
        body
    };
    let headers = TestApp::headers(&app.creds, VIEW_LOGS);
    app.send(VIEW_LOGS, &headers, padded(1 << 20)).await.ok();
    let headers = TestApp::headers(&app.creds, VIEW_LOGS);
    let reply = app.send(VIEW_LOGS, &headers, padded((1 << 20) + 1)).await;
    reply.refused(413, "err_request_too_large", false);
    // Without a Content-Length (chunked), the limit holds as well.
    let headers = TestApp::headers(&app.creds, VIEW_LOGS);
    let (status, body) = post_chunked(&app.base_url, VIEW_LOGS, &headers, &padded(2 << 20)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["fail"][0]["errors"][0]["code"], json!("err_request_too_large"));
    let headers = TestApp::headers(&app.creds, VIEW_LOGS);
    let (status, body) = post_chunked(&app.base_url, VIEW_LOGS, &headers, &padded(1 << 20)).await;
    assert_eq!((status, &body["fail"]), (200, &json!([])), "{body}");
}

#[tokio::test]
async fn malformed_body_is_400() {
    let app = TestApp::spawn().await;
    let bodies: [&[u8]; 6] = [
        b"{{{",
        b"{'data': [",
        b"{\"data\": [{\"query\": \"unterminated}]}",
        b"[1, 2]",
        b"\"just a string\"",
        b"data=query",
    ];
    for body in bodies {
        for path in [VIEW_LOGS, RECORD] {
            let headers = TestApp::headers(&app.creds, path);
            let reply = app.send(path, &headers, body.to_vec()).await;
            reply.refused(400, "err_validation_malformed_body", false);
        }
    }
    assert_eq!(app.stored(app.creds.account).await, 0);
}

/// One `data` item that fails, echoed as the key, with `code` on `field`.
async fn invalid_item(app: &TestApp, item: Value, code: &str, field: &str) {
    let reply = app.view_logs(&json!({ "data": [item.clone()] })).await;
    reply.invalid(Some(&item), code, Some(field));
}

#[tokio::test]
async fn blank_dates_are_err_validation_blank() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    invalid_item(&app, json!({"start": ""}), "err_validation_blank", "start").await;
    invalid_item(&app, json!({"end": "   "}), "err_validation_blank", "end").await;
    invalid_item(&app, json!({"query": "x", "start": "2016-12-01", "end": ""}), "err_validation_blank", "end").await;
}

#[tokio::test]
async fn null_is_absence_in_a_query() {
    // err_validation_null cannot be reached in get-view-logs: null means "left out"
    // (PROTOCOL §1). It is reached through record-views (see ingest.rs).
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    let body = json!({"meta": {"pagination": {"pageSize": null, "pageToken": null}},
                      "data": [{"query": null, "start": null, "end": null}]});
    let reply = app.view_logs(&body).await.ok();
    assert_eq!(reply.subjects(), vec!["Subject number 1"]);
    assert_eq!(reply.page_size(), 25);
    let reply = app.view_logs(&json!({"meta": null, "data": null})).await.ok();
    assert_eq!(reply.subjects(), vec!["Subject number 1"]);
}

#[tokio::test]
async fn unreadable_dates_are_err_validation_invalid_date() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    let code = "err_validation_invalid_date";
    invalid_item(&app, json!({"start": "yesterday"}), code, "start").await;
    invalid_item(&app, json!({"end": "2016-13-01"}), code, "end").await;
    invalid_item(&app, json!({"start": "2016-02-30T00:00:00+0000"}), code, "start").await;
    invalid_item(&app, json!({"start": "Tue, 24 Nov 2015 12:50:11 UTC"}), code, "start").await;
    invalid_item(&app, json!({"end": 20161201}), code, "end").await;
    invalid_item(&app, json!({"start": "2016-12-01T25:00:00Z"}), code, "start").await;
}

#[tokio::test]
async fn start_after_end_is_err_validation_date_range() {
    let app = TestApp::spawn().await;
    // The event's own second, not the clock's when asking: a second may pass in between.
    let t = now();
    app.insert(app.creds.account, &[event(1, t)]).await;
    let code = "err_validation_date_range";
    invalid_item(&app, json!({"start": "2016-12-02T00:00:00+0000", "end": "2016-12-01T23:59:59+0000"}), code, "start")
        .await;
    invalid_item(&app, json!({"start": "2016-12-01T00:00:01Z", "end": "2016-12-01T00:00:00Z"}), code, "start").await;
    // Against a default: a start after the end of today.
    let tomorrow = wire(now() + 2 * 86_400);
    invalid_item(&app, json!({"start": tomorrow}), code, "start").await;
    // start == end is a valid one-second range.
    let reply = app.view_logs(&json!({"data": [{"start": wire(t), "end": wire(t)}]})).await.ok();
    assert_eq!(reply.subjects(), vec!["Subject number 1"]);
}

#[tokio::test]
async fn bad_page_sizes_are_err_validation_invalid_page_size() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    for size in [json!(0), json!(-1), json!("ten"), json!(2.5), json!(""), json!(true), json!([25])] {
        let body = json!({"meta": {"pagination": {"pageSize": size}}, "data": [{}]});
        let reply = app.view_logs(&body).await;
        reply.invalid(None, "err_validation_invalid_page_size", Some("pageSize"));
    }
}

#[tokio::test]
async fn unreadable_page_token_is_err_validation_invalid_page_token() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    for token in [json!("garbage"), json!("!!!!"), json!(42), json!("A".repeat(5000))] {
        let body = json!({"meta": {"pagination": {"pageToken": token}}});
        let reply = app.view_logs(&body).await;
        reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
    }
}

#[tokio::test]
async fn wrong_types_are_err_validation_invalid_value() {
    let app = TestApp::spawn().await;
    invalid_item(&app, json!({"query": 5}), "err_validation_invalid_value", "query").await;
    let reply = app.view_logs(&json!({"data": "everything"})).await;
    reply.invalid(None, "err_validation_invalid_value", Some("data"));
    let reply = app.view_logs(&json!({"meta": {"pagination": "big"}})).await;
    reply.invalid(None, "err_validation_invalid_value", Some("pagination"));
}

#[tokio::test]
async fn further_items_get_err_validation_multiple_items_and_item_0_is_answered() {
    let app = TestApp::spawn().await;
    let t = now();
    app.insert(app.creds.account, &[event(1, t), event(2, t), event(6, t)]).await;
    let second = json!({"query": "number 2"});
    let third = json!({});
    let body = json!({"data": [{"query": "viewer1@"}, second, third]});
    let reply = app.view_logs(&body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["meta"]["status"], json!(200));
    // Item 0's records (viewer1 = events 1 and 6), newest stored first.
    assert_eq!(reply.subjects(), vec!["Subject number 6", "Subject number 1"]);
    assert_eq!(reply.total(), 2);
    assert_eq!(reply.codes(), vec!["err_validation_multiple_items"; 2]);
    let fail = reply.body["fail"].as_array().unwrap();
    for (entry, key) in fail.iter().zip([&second, &third]) {
        assert_eq!(entry["key"], *key);
        let errors = entry["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0]["code"], json!("err_validation_multiple_items"));
        assert_eq!(errors[0]["retryable"], json!(false));
    }
    reply.rate();
}

#[tokio::test]
async fn a_validation_error_leaks_no_records() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[event(1, now())]).await;
    let reply = app.view_logs(&json!({"data": [{"start": "nope"}, {}]})).await;
    // The first item fails: no records, and only its failure (the further item is not answered).
    reply.invalid(Some(&json!({"start": "nope"})), "err_validation_invalid_date", Some("start"));
    assert!(!reply.body.to_string().contains("Subject number"));
}
