//! Recording views (PROTOCOL §7): stored and readable, idempotent, all or nothing, bounded.

use crate::helpers::*;
use serde_json::{json, Value};

/// 2016-12-01T00:00:00Z.
const DAY: i64 = 1_480_550_400;

fn counts(reply: &Reply) -> (u64, u64) {
    assert_eq!(reply.data().len(), 1, "{}", reply.body);
    let d = &reply.data()[0];
    (d["inserted"].as_u64().unwrap(), d["duplicates"].as_u64().unwrap())
}

async fn day(app: &TestApp) -> Reply {
    app.view_logs(&range(DAY, DAY + 86_399, 100)).await.ok()
}

#[tokio::test]
async fn a_batch_is_stored_and_readable() {
    let app = TestApp::spawn().await;
    let batch = vec![
        json!({"id": "e-1", "from": "a@x.example", "to": "b@y.example", "viewer": "admin@acme.example",
               "source": "Archive Search", "contentViewed": true, "discoveryCase": true,
               "messageDate": "2016-11-30T10:00:00+0000", "viewed": "2016-12-01T08:13:39Z", "subject": "Quarterly",
               "viewerIp": "192.0.2.1", "messageId": "<1@x>", "action": "download", "caseId": "case-7"}),
        // Only the required fields: source, flags and subject take their defaults.
        json!({"from": "c@x.example", "to": "d@y.example", "viewer": "admin@acme.example",
               "messageDate": "2016-11-30T10:00:00.250+01:00", "viewed": "2016-12-01T09:00:00+00:00"}),
        json!({"id": 17, "from": "e@x.example", "to": "f@y.example", "viewer": "other@acme.example",
               "contentViewed": "true", "messageDate": "2016-11-30", "viewed": "2016-12-01T10:00:00+0000",
               "subject": "Ünïcödé ✓", "action": "print", "unknownKey": [1, 2]}),
    ];
    let reply = app.record(&batch).await.ok();
    assert_eq!(reply.body["meta"]["status"], json!(200));
    assert_eq!(counts(&reply), (3, 0));
    reply.rate();
    assert_eq!(app.stored(app.creds.account).await, 3);

    let read = day(&app).await;
    assert_eq!(read.total(), 3);
    assert_eq!(
        read.body["data"],
        json!([
            {"from": "e@x.example", "to": "f@y.example", "viewer": "other@acme.example", "source": "Message Tracking",
             "contentViewed": true, "discoveryCase": false, "messageDate": "2016-11-30T00:00:00+0000",
             "viewed": "2016-12-01T10:00:00+0000", "subject": "Ünïcödé ✓"},
            {"from": "c@x.example", "to": "d@y.example", "viewer": "admin@acme.example", "source": "Message Tracking",
             "contentViewed": false, "discoveryCase": false, "messageDate": "2016-11-30T09:00:00+0000",
             "viewed": "2016-12-01T09:00:00+0000", "subject": ""},
            {"from": "a@x.example", "to": "b@y.example", "viewer": "admin@acme.example", "source": "Archive Search",
             "contentViewed": true, "discoveryCase": true, "messageDate": "2016-11-30T10:00:00+0000",
             "viewed": "2016-12-01T08:13:39+0000", "subject": "Quarterly"},
        ])
    );
}

#[tokio::test]
async fn the_same_batch_twice_is_stored_once() {
    let app = TestApp::spawn().await;
    let batch: Vec<Value> = (0..5).map(|n| event_json(n, DAY + n as i64 * 60)).collect();
    assert_eq!(counts(&app.record(&batch).await.ok()), (5, 0));
    assert_eq!(counts(&app.record(&batch).await.ok()), (0, 5));
    assert_eq!(app.stored(app.creds.account).await, 5);
    // Old and new mixed; a duplicate within the batch too.
    let mixed = vec![event_json(0, DAY), event_json(5, DAY + 300), event_json(5, DAY + 300), event_json(6, DAY + 360)];
    assert_eq!(counts(&app.record(&mixed).await.ok()), (2, 2));
    assert_eq!(app.stored(app.creds.account).await, 7);
    // A different event under a known id is a duplicate and leaves the stored one as it was.
    let mut changed = event_json(1, DAY + 60);
    changed["subject"] = json!("rewritten");
    assert_eq!(counts(&app.record(&[changed]).await.ok()), (0, 1));
    let read = day(&app).await;
    assert_eq!(read.total(), 7);
    assert!(read.subjects().contains(&"Subject number 1".to_owned()));
    assert!(!read.subjects().contains(&"rewritten".to_owned()));
}

#[tokio::test]
async fn events_without_id_are_deduplicated_by_content() {
    let app = TestApp::spawn().await;
    let without_id = |n: u64, viewed: &str| {
        let mut e = event_json(n, DAY);
        e.as_object_mut().unwrap().remove("id");
        e["viewed"] = json!(viewed);
        e
    };
    let a = without_id(1, "2016-12-01T08:00:00+0000");
    let b = without_id(2, "2016-12-01T08:00:00+0000");
    assert_eq!(counts(&app.record(&[a.clone(), b.clone()]).await.ok()), (2, 0));
    assert_eq!(counts(&app.record(&[a.clone(), b.clone()]).await.ok()), (0, 2));
    // The same view written in another layout is the same content.
    let a_again = without_id(1, "2016-12-01T09:00:00+01:00");
    assert_eq!(counts(&app.record(&[a_again]).await.ok()), (0, 1));
    // Twice in one batch: once.
    let c = without_id(3, "2016-12-01T08:00:01Z");
    assert_eq!(counts(&app.record(&[c.clone(), c]).await.ok()), (1, 1));
    // Any difference makes another event.
    let mut a_other = a.clone();
    a_other["contentViewed"] = json!(!a["contentViewed"].as_bool().unwrap());
    let mut a_later = a;
    a_later["viewed"] = json!("2016-12-01T08:00:01+0000");
    assert_eq!(counts(&app.record(&[a_other, a_later]).await.ok()), (2, 0));
    assert_eq!(app.stored(app.creds.account).await, 5);
    assert_eq!(day(&app).await.total(), 5);
}

#[tokio::test]
async fn one_bad_event_fails_the_batch_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let good0 = event_json(0, DAY);
    let mut bad1 = event_json(1, DAY + 1);
    bad1["viewer"] = json!(null);
    bad1["viewed"] = json!("not a date");
    let good2 = event_json(2, DAY + 2);
    let mut bad3 = event_json(3, DAY + 3);
    bad3["viewer"] = json!("  ");
    bad3["action"] = json!("peek");
    bad3.as_object_mut().unwrap().remove("from");
    let batch = vec![good0, bad1.clone(), good2, bad3.clone()];
    let reply = app.record(&batch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["meta"]["status"], json!(200));
    assert_eq!(reply.body["data"], json!([]));
    reply.rate();
    let fail = reply.body["fail"].as_array().unwrap();
    assert_eq!(fail.len(), 2, "one entry per bad event: {}", reply.body);
    let described = |entry: &Value| -> Vec<(String, String)> {
        entry["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["retryable"], json!(false));
                assert!(e["message"].is_string());
                (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(fail[0]["key"], bad1);
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        described(&fail[0]),
        pairs(&[("viewer", "err_validation_null"), ("viewed", "err_validation_invalid_date")])
    );
    assert_eq!(fail[1]["key"], bad3);
    assert_eq!(
        described(&fail[1]),
        pairs(&[
            ("from", "err_validation_null"),
            ("viewer", "err_validation_blank"),
            ("action", "err_validation_invalid_value")
        ])
    );
    assert_eq!(app.stored(app.creds.account).await, 0, "all or nothing");
    // Fixed, the batch goes in whole.
    let mut fixed = batch;
    fixed[1] = event_json(1, DAY + 1);
    fixed[3] = event_json(3, DAY + 3);
    assert_eq!(counts(&app.record(&fixed).await.ok()), (4, 0));
}

#[tokio::test]
async fn at_most_100_bad_events_are_listed() {
    let app = TestApp::spawn().await;
    let batch: Vec<Value> = (0..150)
        .map(|n| {
            let mut e = event_json(n, DAY + n as i64);
            if n % 4 != 0 {
                e["viewed"] = json!(format!("bad {n}"));
            }
            e
        })
        .collect();
    let reply = app.record(&batch).await;
    assert_eq!((reply.status, &reply.body["data"]), (200, &json!([])));
    let fail = reply.body["fail"].as_array().unwrap();
    let bad: Vec<usize> = (0..150).filter(|n| n % 4 != 0).collect();
    assert_eq!(bad.len(), 112);
    assert_eq!(fail.len(), 100, "the first 100 of the 112 bad events");
    for (entry, n) in fail.iter().zip(&bad) {
        assert_eq!(entry["key"], batch[*n]);
    }
    assert!(reply.codes().iter().all(|c| c == "err_validation_invalid_date"));
    assert_eq!(app.stored(app.creds.account).await, 0);
}

#[tokio::test]
async fn a_batch_that_is_not_a_list_of_events_is_refused() {
    let app = TestApp::spawn().await;
    let reply = app.post(RECORD, &json!({"data": {"from": "a"}})).await;
    reply.invalid(None, "err_validation_invalid_value", Some("data"));
    let reply = app.record(&[json!("an event?")]).await;
    reply.invalid(Some(&json!("an event?")), "err_validation_invalid_value", None);
    // Nothing to record is not an error.
    assert_eq!(counts(&app.record(&[]).await.ok()), (0, 0));
    assert_eq!(counts(&app.post(RECORD, &json!({})).await.ok()), (0, 0));
    assert_eq!(app.stored(app.creds.account).await, 0);
}

#[tokio::test]
async fn more_than_10000_events_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let batch: Vec<Value> = (0..10_001).map(|n| event_json(n, DAY + n as i64)).collect();
    let reply = app.record(&batch).await;
    let entry = reply.invalid(None, "err_validation_invalid_value", Some("data"));
    assert!(entry["errors"][0]["message"].as_str().unwrap().contains("10000"), "{}", reply.body);
    assert_eq!(app.stored(app.creds.account).await, 0);
    // 10,000 is the limit, not over it.
    let reply = app.record(&batch[..10_000]).await.ok();
    assert_eq!(counts(&reply), (10_000, 0));
    assert_eq!(app.stored(app.creds.account).await, 10_000);
}

/// A valid one-event batch padded with whitespace to `len` bytes.
fn padded_batch(len: usize) -> Vec<u8> {
    let mut body = json!({"data": [event_json(1, DAY)]}).to_string().into_bytes();
    body.pop(); // the closing brace
    body.resize(len - 1, b' ');
    body.push(b'}');
    body
}

#[tokio::test]
async fn ingest_body_over_16_mib_is_413_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let headers = TestApp::headers(&app.creds, RECORD);
    let reply = app.send(RECORD, &headers, padded_batch((16 << 20) + 1)).await;
    reply.refused(413, "err_request_too_large", false);
    assert_eq!(app.stored(app.creds.account).await, 0);
    // Over the query limit but within the ingest limit: accepted.
    let headers = TestApp::headers(&app.creds, RECORD);
    let reply = app.send(RECORD, &headers, padded_batch(2 << 20)).await.ok();
    assert_eq!(counts(&reply), (1, 0));
}

#[tokio::test]
async fn ingest_body_of_exactly_16_mib_is_read() {
    let app = TestApp::spawn().await;
    let headers = TestApp::headers(&app.creds, RECORD);
    let reply = app.send(RECORD, &headers, padded_batch(16 << 20)).await.ok();
    assert_eq!(counts(&reply), (1, 0));
}
