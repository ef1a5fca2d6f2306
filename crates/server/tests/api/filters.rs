//! Filters (PROTOCOL §1): inclusive bounds, today's defaults, and the text query.

use crate::helpers::*;
use serde_json::{json, Value};
use viewlog_store::ViewEvent;

/// 2016-12-01T00:00:00Z.
const DAY: i64 = 1_480_550_400;

fn at(n: u64, viewed: i64) -> ViewEvent {
    ViewEvent { subject: format!("at {n}"), ..event(n, viewed) }
}

async fn subjects(app: &TestApp, body: Value) -> Vec<String> {
    app.view_logs(&body).await.ok().subjects()
}

#[tokio::test]
async fn start_and_end_are_inclusive_at_both_bounds() {
    let app = TestApp::spawn().await;
    let (t0, t1) = (DAY + 1000, DAY + 2000);
    app.insert(app.creds.account, &[at(1, t0 - 1), at(2, t0), at(3, t0 + 500), at(4, t1), at(5, t1 + 1)]).await;
    assert_eq!(subjects(&app, range(t0, t1, 100)).await, vec!["at 4", "at 3", "at 2"]);
    assert_eq!(subjects(&app, range(t0, t0, 100)).await, vec!["at 2"]);
    assert_eq!(subjects(&app, range(t1, t1, 100)).await, vec!["at 4"]);
    assert_eq!(subjects(&app, range(t0 + 1, t1 - 1, 100)).await, vec!["at 3"]);
    let reply = app.view_logs(&range(t0 - 1, t1 + 1, 100)).await.ok();
    assert_eq!(reply.total(), 5);
}

#[tokio::test]
async fn defaults_are_today_utc() {
    let app = TestApp::spawn().await;
    let t = today_now().await;
    let midnight = t - t.rem_euclid(86_400);
    app.insert(
        app.creds.account,
        &[
            at(1, t),
            at(2, midnight),
            at(3, midnight - 1),
            at(4, t - 86_400),
            at(5, midnight + 86_400),
            at(6, midnight + 86_399),
        ],
    )
    .await;
    let today = vec!["at 6", "at 1", "at 2"];
    assert_eq!(subjects(&app, json!({})).await, today);
    // Only one bound given: the other is today's.
    assert_eq!(
        subjects(&app, json!({"data": [{"start": wire(midnight - 86_400)}]})).await,
        vec!["at 6", "at 1", "at 2", "at 3", "at 4"]
    );
    assert_eq!(subjects(&app, json!({"data": [{"end": wire(midnight)}]})).await, vec!["at 2"]);
}

#[tokio::test]
async fn query_is_case_insensitive_on_viewer_from_to_and_subject() {
    let app = TestApp::spawn().await;
    let base = event(0, DAY + 60);
    let events = [
        ViewEvent {
            event_id: "v".into(),
            viewer: "Carol.Viewer@acme.example".into(),
            subject: "by viewer".into(),
            ..base.clone()
        },
        ViewEvent {
            event_id: "f".into(),
            from: "Dave.Sender@outside.example".into(),
            subject: "by from".into(),
            ..base.clone()
        },
        ViewEvent {
            event_id: "t".into(),
            to: "Erin.Recipient@acme.example".into(),
            subject: "by to".into(),
            ..base.clone()
        },
        ViewEvent { event_id: "s".into(), subject: "Quarterly RESULTS".into(), ..base.clone() },
        ViewEvent {
            event_id: "u".into(),
            viewer: "åsa.öberg@acme.example".into(),
            subject: "Größe ÉTÉ".into(),
            ..base.clone()
        },
        ViewEvent {
            event_id: "src".into(),
            source: "Discovery Case Zebra".into(),
            subject: "by source".into(),
            ..base
        },
    ];
    app.insert(app.creds.account, &events).await;
    let q = |text: &str| json!({"data": [{"query": text, "start": wire(DAY), "end": wire(DAY + 86_399)}]});
    assert_eq!(subjects(&app, q("carol.VIEWER")).await, vec!["by viewer"]);
    assert_eq!(subjects(&app, q("DAVE.sender@OUTSIDE")).await, vec!["by from"]);
    assert_eq!(subjects(&app, q("erin.recipient")).await, vec!["by to"]);
    assert_eq!(subjects(&app, q("quarterly results")).await, vec!["Quarterly RESULTS"]);
    assert_eq!(subjects(&app, q("sults")).await, vec!["Quarterly RESULTS"]);
    // Non-ASCII, both ways.
    assert_eq!(subjects(&app, q("ÅSA")).await, vec!["Größe ÉTÉ"]);
    assert_eq!(subjects(&app, q("ÖBERG@")).await, vec!["Größe ÉTÉ"]);
    assert_eq!(subjects(&app, q("größe été")).await, vec!["Größe ÉTÉ"]);
    // The source is not searched.
    assert_eq!(subjects(&app, q("zebra")).await, Vec::<String>::new());
    assert_eq!(subjects(&app, q("Discovery Case")).await, Vec::<String>::new());
    // No match at all.
    let reply = app.view_logs(&q("no such text")).await.ok();
    assert_eq!((reply.data().len(), reply.total()), (0, 0));
    // Special characters are literal, not patterns.
    assert_eq!(subjects(&app, q("%")).await, Vec::<String>::new());
    assert_eq!(subjects(&app, q("_")).await, Vec::<String>::new());
}

#[tokio::test]
async fn empty_query_means_all() {
    let app = TestApp::spawn().await;
    let events: Vec<ViewEvent> = (0..7).map(|n| at(n, DAY + n as i64)).collect();
    app.insert(app.creds.account, &events).await;
    let all: Vec<String> = (0..7).rev().map(|n| format!("at {n}")).collect();
    for query in [json!(""), json!(null)] {
        let body = json!({"data": [{"query": query, "start": wire(DAY), "end": wire(DAY + 86_399)}]});
        assert_eq!(subjects(&app, body).await, all);
    }
    assert_eq!(subjects(&app, range(DAY, DAY + 86_399, 25)).await, all);
}

#[tokio::test]
async fn records_carry_every_field_in_wire_form() {
    let app = TestApp::spawn().await;
    let e = ViewEvent {
        viewer_ip: Some("192.0.2.7".into()),
        message_id: Some("<m@x>".into()),
        action: Some("download".into()),
        case_id: Some("case-1".into()),
        ..event(4, DAY + 3723)
    };
    app.insert(app.creds.account, &[e]).await;
    let reply = app.view_logs(&range(DAY, DAY + 86_399, 25)).await.ok();
    assert_eq!(
        reply.data()[0],
        json!({
            "from": "sender4@outside.example",
            "to": "staff4@acme.example",
            "viewer": "viewer4@acme.example",
            "source": "Message Tracking",
            "contentViewed": true,
            "discoveryCase": false,
            "messageDate": "2016-12-01T00:02:03+0000",
            "viewed": "2016-12-01T01:02:03+0000",
            "subject": "Subject number 4",
        })
    );
}

/// Events stored a few at a time leave each day of the text index in several segments; the
/// service compacts the days ingest has left alone for `SETTLED_AFTER` seconds (what the
/// server does every minute), and every query answers as it did before.
#[tokio::test]
async fn compacting_settled_days_leaves_query_answers_as_they_were() {
    use viewlog_core::vault::{MasterKey, Vault};
    use viewlog_core::{CoreConfig, Service, SETTLED_AFTER};
    let app = TestApp::spawn().await;
    // 62 events over two days (44 and 18), stored one at a time.
    for n in 0..62u64 {
        let e = ViewEvent { subject: format!("invoice {} at {n}", n % 7), ..event(n, DAY + n as i64 * 2_000) };
        app.insert(app.creds.account, &[e]).await;
    }
    let q = |text: &str| json!({"data": [{"query": text, "start": wire(DAY), "end": wire(DAY + 2 * 86_400 - 1)}]});
    let texts = ["invoice 3", "at 1", "INVOICE", "t 5", "zzz"];
    let mut before = Vec::new();
    for text in texts {
        let reply = app.view_logs(&q(text)).await.ok();
        before.push((reply.subjects(), reply.total()));
    }
    assert_eq!(before[2].1, 62);
    let service = Service::new(app.store.clone(), Vault::new(&MasterKey::generate()), CoreConfig::default());
    let now = viewlog_core::now();
    assert_eq!(service.compact_settled(now).await.expect("compact"), 0, "just written: not settled yet");
    assert_eq!(service.compact_settled(now + SETTLED_AFTER + 1).await.expect("compact"), 2, "both days");
    for (text, want) in texts.iter().zip(&before) {
        let reply = app.view_logs(&q(text)).await.ok();
        assert_eq!(&(reply.subjects(), reply.total()), want, "{text}");
    }
}
