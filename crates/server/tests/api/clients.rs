//! What real clients send (PROTOCOL §6), one test per client style, and the date layouts
//! request bodies may use.

use crate::helpers::*;
use serde_json::{json, Value};
use viewlog_protocol::dates;
use viewlog_store::ViewEvent;

/// 2016-12-01T00:00:00Z, the seed's sample day.
const DAY: i64 = 1_480_550_400;

fn named(n: u64, viewed: i64, subject: &str, viewer: &str) -> ViewEvent {
    ViewEvent { subject: subject.into(), viewer: viewer.into(), ..event(n, viewed) }
}

/// Headers signed over `uri` with `date`, for a request sent to `VIEW_LOGS`.
fn signed(creds: &Creds, uri: &str, date: &str) -> Vec<(String, String)> {
    TestApp::headers_at(creds, uri, date, &uuid::Uuid::new_v4().to_string())
}

async fn python_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.insert(
        app.creds.account,
        &[
            named(1, DAY + 3600, "O'Brien \"quarterly\" report", "åsa@acme.example"),
            named(2, DAY + 7200, "Budget\u{a0}2024", "bob@acme.example"),
            named(3, DAY + 10_800, "Budget 2024", "carol@acme.example"),
            named(4, DAY + 14_400, "it's done", "dave@acme.example"),
            named(5, DAY - 1, "the day before", "åsa@acme.example"),
        ],
    )
    .await;
    app
}

async fn send_python(app: &TestApp, body: &[u8]) -> Reply {
    // The seed's sample: Content-Type application/json, body = str(payload).
    app.send(VIEW_LOGS, &TestApp::headers(&app.creds, VIEW_LOGS), body.to_vec()).await.ok()
}

#[tokio::test]
async fn python_str_payload_with_escaped_quote_and_double_quotes() {
    let app = python_app().await;
    // repr() of a string holding both quotes: single-quoted, the ' escaped.
    let body = r#"{'data': [{'query': 'O\'Brien "quarterly"', 'start': '2016-12-01T00:00:00+0000', 'end': '2016-12-01T23:59:59+0000'}]}"#;
    let reply = send_python(&app, body.as_bytes()).await;
    assert_eq!(reply.subjects(), vec!["O'Brien \"quarterly\" report"]);
    // A string holding only a ': Python switches to double quotes.
    let body =
        r#"{'data': [{'query': "it's", 'start': '2016-12-01T00:00:00+0000', 'end': '2016-12-01T23:59:59+0000'}]}"#;
    assert_eq!(send_python(&app, body.as_bytes()).await.subjects(), vec!["it's done"]);
}

#[tokio::test]
async fn python_str_payload_with_true_false_none_and_x_escapes() {
    let app = python_app().await;
    // \xa0 (no-break space) is not printable: repr() writes it as \xa0. True/False/None in
    // unknown keys and a None page token.
    let body = r#"{'meta': {'pagination': {'pageSize': 10, 'pageToken': None}}, 'data': [{'query': 'budget\xa02024', 'start': '2016-12-01T00:00:00+0000', 'end': '2016-12-01T23:59:59+0000', 'includeAll': True, 'strict': False, 'extra': None}]}"#;
    let reply = send_python(&app, body.as_bytes()).await;
    assert_eq!(reply.subjects(), vec!["Budget\u{a0}2024"], "the \\xa0 escape is a no-break space, not a space");
    assert_eq!(reply.page_size(), 10);
    assert_eq!(reply.total(), 1);
}

#[tokio::test]
async fn python_str_payload_with_raw_non_ascii_in_utf8_and_latin1() {
    let app = python_app().await;
    let text = "{'data': [{'query': 'ÅSA', 'start': '2016-12-01T00:00:00+0000', 'end': '2016-12-01T23:59:59+0000'}]}";
    // urllib3 2 sends a str body as UTF-8; http.client under urllib3 1 as Latin-1.
    let utf8 = text.as_bytes().to_vec();
    let latin1: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    assert_ne!(utf8, latin1);
    for body in [utf8, latin1] {
        let reply = send_python(&app, &body).await;
        assert_eq!(reply.subjects(), vec!["O'Brien \"quarterly\" report"]);
        assert_eq!(reply.data()[0]["viewer"], json!("åsa@acme.example"));
    }
}

#[tokio::test]
async fn python_str_payload_as_written_by_to_python_repr() {
    let app = python_app().await;
    let payload = json!({"data": [{"query": "O'Brien \"quarterly\"", "start": "2016-12-01T00:00:00+0000",
                                   "end": "2016-12-01T23:59:59+0000"}]});
    let body = viewlog_protocol::lenient::to_python_repr(&payload);
    assert!(body.starts_with("{'data': [{'"), "{body}");
    assert_eq!(send_python(&app, body.as_bytes()).await.subjects(), vec!["O'Brien \"quarterly\" report"]);
}

#[tokio::test]
async fn csharp_gmt_date_with_json_body() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &[named(1, DAY + 60, "String theory", "x@acme.example"), event(2, DAY + 120)]).await;
    // DateTime.ToString("R"): "Tue, 24 Nov 2015 12:50:11 GMT".
    let date = dates::format_header_date(now()).replace(" UTC", " GMT");
    assert!(date.ends_with(" GMT"));
    let body = "{\r\n\"data\": [\r\n{\r\n\"query\": \"String\",\r\n\"start\": \"2016-12-01T00:00:00+0000\",\r\n\"end\": \"2016-12-01T23:59:59+0000\"\r\n}\r\n]\r\n}";
    let reply = app.send(VIEW_LOGS, &signed(&app.creds, VIEW_LOGS, &date), body).await.ok();
    assert_eq!(reply.subjects(), vec!["String theory"]);
}

#[tokio::test]
async fn elastic_v1_string_page_size_and_token_only_follow_ups() {
    let app = TestApp::spawn().await;
    let events: Vec<ViewEvent> = (0..250).map(|n| event(n, DAY + n as i64 * 60)).collect();
    app.insert(app.creds.account, &events).await;
    // Noise outside the range.
    app.insert(app.creds.account, &[event(1000, DAY - 60), event(1001, DAY + 86_400)]).await;
    let first = json!({"meta": {"pagination": {"pageSize": "100"}},
                       "data": [{"start": "2016-12-01T00:00:00+0000", "end": "2016-12-01T23:59:59+0000"}]});
    let mut reply = app.view_logs(&first).await.ok();
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        assert_eq!(reply.page_size(), 100);
        assert_eq!(reply.total(), 250);
        sizes.push(reply.data().len());
        seen.extend(reply.subjects());
        let Some(next) = reply.next() else { break };
        // Elastic's follow-up: the token and nothing else.
        reply = app.view_logs(&json!({"meta": {"pagination": {"pageToken": next}}})).await.ok();
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    let expected: Vec<String> = (0..250).rev().map(|n| format!("Subject number {n}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn xsoar_offset_dates_and_null_page_size_beside_the_token() {
    let app = TestApp::spawn().await;
    let events: Vec<ViewEvent> = (0..25).map(|n| event(n, DAY + 3600 + n as i64)).collect();
    app.insert(app.creds.account, &events).await;
    app.insert(app.creds.account, &[event(99, DAY - 1)]).await;
    let item = json!({"start": "2016-12-01T00:00:00+00:00", "end": "2016-12-01T23:59:59+00:00"});
    let mut reply = app.view_logs(&json!({"meta": {"pagination": {"pageSize": 10}}, "data": [item]})).await.ok();
    let mut seen = reply.subjects();
    let mut sizes = vec![reply.data().len()];
    while let Some(token) = reply.next() {
        let body = json!({"meta": {"pagination": {"page_size": null, "pageToken": token}}, "data": [item]});
        reply = app.view_logs(&body).await.ok();
        assert_eq!(reply.page_size(), 10);
        sizes.push(reply.data().len());
        seen.extend(reply.subjects());
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(seen, (0..25).rev().map(|n| format!("Subject number {n}")).collect::<Vec<_>>());
}

/// Events viewed now (returned by the default range) and yesterday (not).
async fn today_app() -> TestApp {
    let app = TestApp::spawn().await;
    let t = today_now().await;
    app.insert(app.creds.account, &[event(1, t), event(2, t - 86_400)]).await;
    app
}

#[tokio::test]
async fn text_plain_and_missing_content_types_are_read() {
    let app = today_app().await;
    for content_type in
        [Some("text/plain"), Some("text/plain; charset=ISO-8859-1"), Some("application/x-www-form-urlencoded"), None]
    {
        let headers = with_header(&TestApp::headers(&app.creds, VIEW_LOGS), "Content-Type", content_type);
        let body = r#"{"data": [{"query": "number"}]}"#;
        let reply = app.send(VIEW_LOGS, &headers, body).await.ok();
        assert_eq!(reply.subjects(), vec!["Subject number 1"], "{content_type:?}");
    }
}

#[tokio::test]
async fn empty_item_empty_list_and_no_body_mean_the_defaults() {
    let app = today_app().await;
    let bodies: [Option<&str>; 6] =
        [Some(r#"{"data":[{}]}"#), Some(r#"{"data":[]}"#), Some("{}"), Some(""), Some(" \r\n"), None];
    for body in bodies {
        for content_type in [Some("application/json"), None] {
            let headers = with_header(&TestApp::headers(&app.creds, VIEW_LOGS), "Content-Type", content_type);
            let reply =
                app.request(reqwest::Method::POST, VIEW_LOGS, &headers, body.map(|b| b.as_bytes().to_vec())).await.ok();
            assert_eq!(reply.subjects(), vec!["Subject number 1"], "{body:?} {content_type:?}");
            assert_eq!(reply.page_size(), 25);
            assert_eq!(reply.total(), 1);
        }
    }
}

#[tokio::test]
async fn go_mimecast_absolute_url_and_edt_date() {
    let app = today_app().await;
    // The current time expressed at -0400, "EDT".
    let edt = dates::format_header_date(now() - 4 * 3600).replace(" UTC", " EDT");
    let absolute = format!("http://127.0.0.1:{}{VIEW_LOGS}", app.port());
    let reply = app.send(VIEW_LOGS, &signed(&app.creds, &absolute, &edt), "{}").await.ok();
    assert_eq!(reply.subjects(), vec!["Subject number 1"]);
    // Either scheme, and the path alone with that date.
    let https = format!("https://127.0.0.1:{}{VIEW_LOGS}", app.port());
    app.send(VIEW_LOGS, &signed(&app.creds, &https, &edt), "{}").await.ok();
    app.send(VIEW_LOGS, &signed(&app.creds, VIEW_LOGS, &edt), "{}").await.ok();
    // Another host is not this server's URL.
    let elsewhere = format!("http://api.example.com{VIEW_LOGS}");
    app.send(VIEW_LOGS, &signed(&app.creds, &elsewhere, &edt), "{}").await.refused(
        401,
        "err_xdk_invalid_signature",
        false,
    );
    // "EDT" really means -0400: UTC clock time labelled EDT is four hours off.
    let wrong = dates::format_header_date(now()).replace(" UTC", " EDT");
    app.send(VIEW_LOGS, &signed(&app.creds, &absolute, &wrong), "{}").await.refused(
        401,
        "err_xdk_request_expired",
        false,
    );
}

#[tokio::test]
async fn other_header_date_zones() {
    let app = TestApp::spawn().await;
    let t = now();
    let zones = [
        (dates::format_header_date(t).replace(" UTC", " UT"), "UT"),
        (dates::format_header_date(t).replace(" UTC", " Z"), "Z"),
        (dates::format_header_date(t).replace(" UTC", " +0000"), "+0000"),
        (dates::format_header_date(t + 3600).replace(" UTC", " +0100"), "+0100"),
        (dates::format_header_date(t - 5 * 3600).replace(" UTC", " EST"), "EST"),
        (dates::format_header_date(t - 7 * 3600).replace(" UTC", " PDT"), "PDT"),
        (dates::format_header_date(t - 6 * 3600).replace(" UTC", " CST"), "CST"),
    ];
    for (date, zone) in zones {
        let reply = app.send(VIEW_LOGS, &signed(&app.creds, VIEW_LOGS, &date), "{}").await;
        assert_eq!(reply.status, 200, "{zone}: {date}: {}", reply.body);
    }
}

#[tokio::test]
async fn powershell_space_after_the_colon() {
    let app = today_app().await;
    let headers = TestApp::headers(&app.creds, VIEW_LOGS);
    let auth = headers.iter().find(|(k, _)| k == "Authorization").unwrap().1.clone();
    let spaced = auth.replacen(':', ": ", 1);
    assert!(spaced.starts_with("MC ") && spaced.contains(": "), "{spaced}");
    let headers = with_header(&headers, "Authorization", Some(&spaced));
    let reply = app.send(VIEW_LOGS, &headers, "{}").await.ok();
    assert_eq!(reply.subjects(), vec!["Subject number 1"]);
}

async fn day_query(app: &TestApp, start: &str, end: &str) -> Vec<String> {
    let body: Value = json!({"data": [{"start": start, "end": end}], "meta": {"pagination": {"pageSize": 100}}});
    app.view_logs(&body).await.ok().subjects()
}

async fn edges_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.insert(
        app.creds.account,
        &[
            named(1, DAY - 1, "before", "v@acme.example"),
            named(2, DAY, "first second", "v@acme.example"),
            named(3, DAY + 43_200, "noon", "v@acme.example"),
            named(4, DAY + 86_399, "last second", "v@acme.example"),
            named(5, DAY + 86_400, "after", "v@acme.example"),
        ],
    )
    .await;
    app
}

#[tokio::test]
async fn bare_date_covers_the_whole_day() {
    let app = edges_app().await;
    assert_eq!(day_query(&app, "2016-12-01", "2016-12-01").await, vec!["last second", "noon", "first second"]);
    assert_eq!(
        day_query(&app, "2016-11-30", "2016-12-01").await,
        vec!["last second", "noon", "first second", "before"]
    );
}

#[tokio::test]
async fn fractional_seconds_and_zulu_and_offsets() {
    let app = edges_app().await;
    let all_day = vec!["last second", "noon", "first second"];
    assert_eq!(day_query(&app, "2016-12-01T00:00:00Z", "2016-12-01T23:59:59Z").await, all_day);
    // Fractions are dropped (towards the earlier second): both edges stay in.
    assert_eq!(day_query(&app, "2016-12-01T00:00:00.999+0000", "2016-12-01T23:59:59.999Z").await, all_day);
    assert_eq!(
        day_query(&app, "2016-12-01T00:00:00.5+00:00", "2016-12-01T12:00:00.000001+00:00").await,
        vec!["noon", "first second"]
    );
    // An offset moves the bounds: 2016-12-01T01:00:00+0100 is midnight UTC.
    assert_eq!(day_query(&app, "2016-12-01T01:00:00+0100", "2016-12-01T18:59:59-05:00").await, all_day);
    assert_eq!(day_query(&app, "2016-12-01T01:00:01+0100", "2016-12-01T18:59:58-05:00").await, vec!["noon"]);
}
