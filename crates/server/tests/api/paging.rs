//! Paging (PROTOCOL §1, §2): complete and stable walks under concurrent ingest, `previous`,
//! page-size clamping and overriding, and tokens that must not open.

use crate::helpers::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use viewlog_core::permissions;
use viewlog_store::ViewEvent;

/// 2020-09-13T12:26:40Z.
const BASE: i64 = 1_600_000_000;

/// `n` events, three to a `viewed` second (ties), minutes apart, stored in order of `n`.
fn spread(count: u64) -> Vec<ViewEvent> {
    (0..count).map(|n| event(n, BASE + (n / 3) as i64 * 60)).collect()
}

/// The subjects in the order the API must answer: `viewed` descending, then stored last first.
fn newest_first(events: &[ViewEvent]) -> Vec<String> {
    let mut order: Vec<(i64, usize, &ViewEvent)> = events.iter().enumerate().map(|(i, e)| (e.viewed, i, e)).collect();
    order.sort_by_key(|&(viewed, i, _)| std::cmp::Reverse((viewed, i)));
    order.into_iter().map(|(_, _, e)| e.subject.clone()).collect()
}

async fn wait_for(counter: &AtomicU64, above: u64) -> u64 {
    for _ in 0..2000 {
        let n = counter.load(Ordering::SeqCst);
        if n > above {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the ingesting task made no progress");
}

#[tokio::test]
async fn walking_next_is_complete_and_stable_under_concurrent_ingest_and_previous_walks_back() {
    let app = TestApp::spawn().await;
    let events = spread(307);
    app.insert(app.creds.account, &events).await;
    let expected = newest_first(&events);
    let (start, end) = (BASE, BASE + 110 * 60);
    let query = range(start, end, 25);

    // Page 1 fixes the snapshot.
    let mut replies = vec![app.view_logs(&query).await.ok()];

    // From now on another task records views into the same range through record-views (Full
    // Administrator), newest, oldest and tied with stored ones, until told to stop.
    let ingested = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ingester = {
        let (http, base_url, creds) = (app.http.clone(), app.base_url.clone(), app.creds.clone());
        let (ingested, stop) = (ingested.clone(), stop.clone());
        tokio::spawn(async move {
            let mut k = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<Value> = [end, start, BASE + 60 * (k as i64 % 100), end - 1]
                    .into_iter()
                    .map(|viewed| {
                        k += 1;
                        let mut e = event_json(10_000 + k, viewed);
                        e["subject"] = json!(format!("late {k}"));
                        e
                    })
                    .collect();
                let reply = post_signed(&http, &base_url, &creds, RECORD, &json!({ "data": batch })).await.ok();
                assert_eq!(reply.data()[0]["inserted"], json!(4));
                ingested.fetch_add(4, Ordering::SeqCst);
            }
        })
    };

    // Forward: after every page, wait until more events were committed.
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let reply = replies.last().unwrap();
        assert_eq!(reply.total(), 307, "totalCount stays the first page's");
        assert_eq!(reply.page_size(), 25);
        pages.push(reply.subjects());
        let seen = ingested.load(Ordering::SeqCst);
        wait_for(&ingested, seen).await;
        let Some(next) = reply.next() else { break };
        replies.push(app.view_logs(&json!({"meta": {"pagination": {"pageToken": next}}})).await.ok());
    }
    let walked: Vec<String> = pages.concat();
    assert_eq!(walked, expected, "every record of the snapshot once, newest first, ties stable");
    assert_eq!(pages.len(), 13);
    assert_eq!(pages.last().unwrap().len(), 307 - 12 * 25);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.previous().is_some(), i > 0, "previous only after page 1 (page {})", i + 1);
        assert_eq!(reply.next().is_some(), i + 1 < replies.len(), "next except on the last page (page {})", i + 1);
    }

    // Backward from the last page: the same pages, in reverse.
    let mut back = vec![pages.last().unwrap().clone()];
    let mut token = replies.last().unwrap().previous();
    let mut first_again = None;
    while let Some(t) = token {
        let seen = ingested.load(Ordering::SeqCst);
        wait_for(&ingested, seen).await;
        let reply = app.view_logs(&json!({"meta": {"pagination": {"pageToken": t}}})).await.ok();
        assert_eq!(reply.total(), 307);
        assert!(reply.next().is_some());
        back.push(reply.subjects());
        token = reply.previous();
        first_again = Some(reply);
    }
    back.reverse();
    assert_eq!(back, pages, "previous walks back over exactly the same pages");
    let first_again = first_again.unwrap();
    assert!(first_again.previous().is_none(), "page 1 reached backwards has no previous");
    // ... and its next leads to page 2 again.
    let again = app.view_logs(&json!({"meta": {"pagination": {"pageToken": first_again.next().unwrap()}}})).await.ok();
    assert_eq!(again.subjects(), pages[1]);

    stop.store(true, Ordering::SeqCst);
    ingester.await.unwrap();
    let late = ingested.load(Ordering::SeqCst);
    assert!(late >= 100, "the ingester ran between the pages ({late} events)");
    assert!(!walked.iter().any(|s| s.starts_with("late ")));

    // A new query sees everything stored so far.
    let fresh = app.view_logs(&query).await.ok();
    assert_eq!(fresh.total(), 307 + late);
    assert!(fresh.subjects().iter().any(|s| s.starts_with("late ")));
    assert_eq!(app.stored(app.creds.account).await, 307 + late);
}

#[tokio::test]
async fn page_size_over_500_is_clamped_and_echoed() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &spread(600)).await;
    let mut query = range(BASE, BASE + 86_400, 25);
    query["meta"]["pagination"]["pageSize"] = json!(9000);
    let first = app.view_logs(&query).await.ok();
    assert_eq!(first.page_size(), 500);
    assert_eq!(first.data().len(), 500);
    assert_eq!(first.total(), 600);
    let second = app.view_logs(&json!({"meta": {"pagination": {"pageToken": first.next().unwrap()}}})).await.ok();
    assert_eq!(second.page_size(), 500);
    assert_eq!(second.data().len(), 100);
    assert!(second.next().is_none());
    // As a string too, and exactly 500.
    query["meta"]["pagination"]["pageSize"] = json!("100000");
    assert_eq!(app.view_logs(&query).await.ok().page_size(), 500);
    query["meta"]["pagination"]["pageSize"] = json!(500);
    assert_eq!(app.view_logs(&query).await.ok().data().len(), 500);
    query["meta"]["pagination"]["pageSize"] = json!(501);
    assert_eq!(app.view_logs(&query).await.ok().page_size(), 500);
    // Numbers beyond any integer type are larger numbers too: clamped, not refused.
    let huge = format!("1{}", "0".repeat(40));
    for size in [json!(u64::MAX), json!(huge), serde_json::from_str::<Value>(&huge).unwrap(), json!(1e300)] {
        query["meta"]["pagination"]["pageSize"] = size.clone();
        let reply = app.view_logs(&query).await.ok();
        assert_eq!((reply.page_size(), reply.data().len()), (500, 500), "{size}");
    }
    // A whole number written as a float is that number.
    query["meta"]["pagination"]["pageSize"] = json!(30.0);
    let reply = app.view_logs(&query).await.ok();
    assert_eq!((reply.page_size(), reply.data().len()), (30, 30));
}

#[tokio::test]
async fn page_size_beside_a_token_overrides_the_tokens() {
    let app = TestApp::spawn().await;
    let events = spread(60);
    app.insert(app.creds.account, &events).await;
    let expected = newest_first(&events);
    let first = app.view_logs(&range(BASE, BASE + 86_400, 10)).await.ok();
    assert_eq!(first.subjects(), expected[..10]);
    let body = json!({"meta": {"pagination": {"pageToken": first.next().unwrap(), "pageSize": 20}}});
    let second = app.view_logs(&body).await.ok();
    assert_eq!(second.page_size(), 20);
    assert_eq!(second.subjects(), expected[10..30]);
    // The new size travels in the tokens it hands out.
    let third = app.view_logs(&json!({"meta": {"pagination": {"pageToken": second.next().unwrap()}}})).await.ok();
    assert_eq!(third.page_size(), 20);
    assert_eq!(third.subjects(), expected[30..50]);
    // A bad size beside a token is still refused.
    let body = json!({"meta": {"pagination": {"pageToken": third.next().unwrap(), "pageSize": 0}}});
    app.view_logs(&body).await.invalid(None, "err_validation_invalid_page_size", Some("pageSize"));
}

#[tokio::test]
async fn a_token_sent_with_data_follows_the_tokens_filters() {
    let app = TestApp::spawn().await;
    let events = spread(60);
    app.insert(app.creds.account, &events).await;
    let mut body = range(BASE, BASE + 86_400, 5);
    body["data"][0]["query"] = json!("viewer1@");
    let first = app.view_logs(&body).await.ok();
    assert_eq!(first.total(), 12);
    let other = json!({"meta": {"pagination": {"pageToken": first.next().unwrap()}},
                       "data": [{"query": "nothing matches this", "start": "2001-01-01", "end": "2001-01-02"}]});
    let second = app.view_logs(&other).await.ok();
    assert_eq!(second.total(), 12);
    assert_eq!(second.data().len(), 5);
    assert!(second.data().iter().all(|r| r["viewer"] == json!("viewer1@acme.example")), "{}", second.body);
    let wanted: Vec<String> = newest_first(&events)
        .into_iter()
        .filter(|s| s.trim_start_matches("Subject number ").parse::<u64>().unwrap() % 5 == 1)
        .collect();
    assert_eq!([first.subjects(), second.subjects()].concat(), wanted[..10]);
}

#[tokio::test]
async fn a_single_page_has_neither_next_nor_previous_and_an_empty_range_is_empty() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &spread(25)).await;
    let reply = app.view_logs(&range(BASE, BASE + 86_400, 25)).await.ok();
    assert_eq!(reply.data().len(), 25);
    assert!(reply.next().is_none() && reply.previous().is_none(), "{}", reply.body);
    let empty = app.view_logs(&range(BASE - 86_400, BASE - 1, 25)).await.ok();
    assert_eq!(empty.data().len(), 0);
    assert_eq!(empty.total(), 0);
    assert!(empty.next().is_none() && empty.previous().is_none(), "{}", empty.body);
}

fn flip(token: &str, at: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let app = TestApp::spawn().await;
    app.insert(app.creds.account, &spread(30)).await;
    let first = app.view_logs(&range(BASE, BASE + 86_400, 10)).await.ok();
    let token = first.next().unwrap();
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "URL-safe: {token}");
    for at in [0, token.len() / 2, token.len() - 2] {
        let reply = app.view_logs(&json!({"meta": {"pagination": {"pageToken": flip(&token, at)}}})).await;
        reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
        assert!(!reply.body.to_string().contains("Subject"), "{}", reply.body);
    }
    for bad in [token[..token.len() - 4].to_owned(), format!("{token}AAAA"), token.to_uppercase()] {
        let reply = app.view_logs(&json!({"meta": {"pagination": {"pageToken": bad}}})).await;
        reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
    }
    // The token itself still works.
    app.view_logs(&json!({"meta": {"pagination": {"pageToken": token}}})).await.ok();
}

#[tokio::test]
async fn another_accounts_token_is_refused_and_leaks_nothing() {
    let app = TestApp::spawn().await;
    let globex = app.tenant("globex", permissions::FULL_ADMINISTRATOR, None).await;
    let mine: Vec<ViewEvent> =
        (0..30).map(|n| ViewEvent { subject: format!("acme {n}"), ..event(n, BASE + n as i64) }).collect();
    let theirs: Vec<ViewEvent> =
        (0..30).map(|n| ViewEvent { subject: format!("globex {n}"), ..event(n, BASE + n as i64) }).collect();
    app.insert(app.creds.account, &mine).await;
    app.insert(globex.account, &theirs).await;

    let acme_first = app.view_logs(&range(BASE, BASE + 86_400, 10)).await.ok();
    let globex_first = app.view_logs_as(&globex, &range(BASE, BASE + 86_400, 10)).await.ok();
    for (creds, token) in [(&app.creds, globex_first.next().unwrap()), (&globex, acme_first.next().unwrap())] {
        let reply = app.view_logs_as(creds, &json!({"meta": {"pagination": {"pageToken": token}}})).await;
        reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
        let text = reply.body.to_string();
        assert!(!text.contains("acme ") && !text.contains("globex "), "{text}");
    }
    // With data beside it, still refused: the foreign token is not ignored in favour of data.
    let body = json!({"meta": {"pagination": {"pageToken": globex_first.next().unwrap()}},
                      "data": [{"start": wire(BASE), "end": wire(BASE + 86_400)}]});
    app.view_logs(&body).await.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
}

#[tokio::test]
async fn another_servers_token_is_refused() {
    // Two servers, each with its own master key and an account with the same id.
    let one = TestApp::spawn().await;
    let two = TestApp::spawn().await;
    assert_eq!(one.creds.account, two.creds.account);
    one.insert(one.creds.account, &spread(30)).await;
    two.insert(two.creds.account, &spread(30)).await;
    let token = one.view_logs(&range(BASE, BASE + 86_400, 10)).await.ok().next().unwrap();
    let reply = two.view_logs(&json!({"meta": {"pagination": {"pageToken": token}}})).await;
    reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
}
