//! Tenant isolation: no key, token or query of one account ever returns another's events.

use crate::helpers::*;
use serde_json::{json, Value};
use viewlog_core::permissions;
use viewlog_store::ViewEvent;

/// 2016-12-01T00:00:00Z.
const DAY: i64 = 1_480_550_400;

/// Events of one tenant, named after it in every searchable field, on the same seconds and
/// with the same ids as the other tenant's.
fn tenant_events(name: &str, count: u64) -> Vec<ViewEvent> {
    (0..count)
        .map(|n| ViewEvent {
            from: format!("{name}-sender{n}@mail.example"),
            to: format!("{name}-rcpt{n}@mail.example"),
            viewer: format!("{name}-viewer{n}@mail.example"),
            subject: format!("{name} subject {n}"),
            ..event(n, DAY + (n / 2) as i64)
        })
        .collect()
}

fn assert_only(reply: &Reply, tenant: &str, other: &str) {
    for record in reply.data() {
        for field in ["from", "to", "viewer", "subject"] {
            let value = record[field].as_str().unwrap();
            assert!(value.starts_with(tenant), "{field} {value:?} of a record answered to {tenant}");
        }
    }
    assert!(!reply.body.to_string().contains(other), "{}", reply.body);
}

async fn walk(app: &TestApp, creds: &Creds, body: &Value) -> (u64, Vec<Reply>) {
    let mut replies = vec![app.view_logs_as(creds, body).await.ok()];
    while let Some(next) = replies.last().unwrap().next() {
        replies.push(app.view_logs_as(creds, &json!({"meta": {"pagination": {"pageToken": next}}})).await.ok());
    }
    (replies[0].total(), replies)
}

#[tokio::test]
async fn two_accounts_see_only_their_own_events() {
    let app = TestApp::spawn().await;
    let acme = app.creds.clone();
    let globex = app.tenant("globex", permissions::FULL_ADMINISTRATOR, None).await;
    assert_ne!(acme.account, globex.account);
    app.insert(acme.account, &tenant_events("acme", 40)).await;
    app.insert(globex.account, &tenant_events("globex", 70)).await;

    let all_day = range(DAY, DAY + 86_399, 15);
    for (creds, me, other, count) in [(&acme, "acme", "globex", 40u64), (&globex, "globex", "acme", 70)] {
        // Everything in the range.
        let (total, pages) = walk(&app, creds, &all_day).await;
        assert_eq!(total, count);
        let records: usize = pages.iter().map(|p| p.data().len()).sum();
        assert_eq!(records as u64, count);
        pages.iter().for_each(|p| assert_only(p, me, other));
        // A query naming the other tenant finds nothing.
        for text in [other.to_owned(), format!("{other}-viewer1@"), format!("{other} subject 3")] {
            let mut body = all_day.clone();
            body["data"][0]["query"] = json!(text);
            let reply = app.view_logs_as(creds, &body).await.ok();
            assert_eq!((reply.total(), reply.data().len()), (0, 0), "{me} asking for {text:?}");
        }
        // The default range and a query shared by both tenants' texts.
        let mut body = all_day.clone();
        body["data"][0]["query"] = json!("subject 1");
        let (_, pages) = walk(&app, creds, &body).await;
        pages.iter().for_each(|p| assert_only(p, me, other));
        assert_only(&app.view_logs_as(creds, &json!({})).await.ok(), me, other);
    }

    // Tokens cross neither way.
    let acme_next = app.view_logs_as(&acme, &all_day).await.ok().next().unwrap();
    let globex_next = app.view_logs_as(&globex, &all_day).await.ok().next().unwrap();
    for (creds, token) in [(&acme, globex_next), (&globex, acme_next)] {
        let reply = app.view_logs_as(creds, &json!({"meta": {"pagination": {"pageToken": token}}})).await;
        reply.invalid(None, "err_validation_invalid_page_token", Some("pageToken"));
    }
}

#[tokio::test]
async fn keys_of_one_account_cannot_act_for_another() {
    let app = TestApp::spawn().await;
    let acme = app.creds.clone();
    let globex = app.tenant("globex", permissions::FULL_ADMINISTRATOR, None).await;
    app.insert(globex.account, &tenant_events("globex", 5)).await;
    // acme's access key and secret with globex's application: not acme's application.
    let mixed = Creds { app_id: globex.app_id.clone(), app_key: globex.app_key.clone(), ..acme.clone() };
    app.refused_everywhere(acme.account, |p| TestApp::headers(&mixed, p), 401, "err_xdk_invalid_signature", false)
        .await;
    // globex's access key signed with acme's secret.
    let forged = Creds { access_key: globex.access_key.clone(), ..acme.clone() };
    app.refused_everywhere(globex.account, |p| TestApp::headers(&forged, p), 401, "err_xdk_invalid_signature", false)
        .await;
    assert_eq!(app.stored(acme.account).await, 0);
    assert_eq!(app.stored(globex.account).await, 5);
}

#[tokio::test]
async fn ingest_goes_to_the_callers_account_and_ids_are_per_account() {
    let app = TestApp::spawn().await;
    let acme = app.creds.clone();
    let globex = app.tenant("globex", permissions::FULL_ADMINISTRATOR, None).await;
    let batch: Vec<Value> = (0..3).map(|n| event_json(n, DAY + n as i64)).collect();
    let a = app.record_as(&acme, &batch).await.ok();
    assert_eq!(a.data()[0], json!({"inserted": 3, "duplicates": 0}));
    // The same ids in another account are that account's own events.
    let g = app.record_as(&globex, &batch).await.ok();
    assert_eq!(g.data()[0], json!({"inserted": 3, "duplicates": 0}));
    assert_eq!(app.stored(acme.account).await, 3);
    assert_eq!(app.stored(globex.account).await, 3);
    let extra = app.record_as(&globex, &[event_json(9, DAY + 9)]).await.ok();
    assert_eq!(extra.data()[0], json!({"inserted": 1, "duplicates": 0}));
    let reply = app.view_logs_as(&acme, &range(DAY, DAY + 86_399, 25)).await.ok();
    assert_eq!(reply.total(), 3);
    assert!(!reply.subjects().contains(&"Subject number 9".to_owned()));
}
