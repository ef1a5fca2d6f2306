//! An acknowledged record-views batch survives SIGKILL of the server right after the
//! acknowledgement.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CYCLES: usize = 3;
const BATCHES: usize = 3;
const PER_BATCH: usize = 100;

const START: &str = "2024-01-01T00:00:00+0000";
const END: &str = "2024-12-31T23:59:59+0000";

fn batch(cycle: usize, batch: usize, run: &str) -> Value {
    let events: Vec<Value> = (0..PER_BATCH)
        .map(|i| {
            let n = (cycle * BATCHES + batch) * PER_BATCH + i;
            json!({
                "id": format!("{run}-{n}"),
                "from": format!("sender{n}@example.org"),
                "to": "legal@acme.example",
                "viewer": "auditor@acme.example",
                "source": "Archive Search",
                "contentViewed": (n & 1) == 0,
                "discoveryCase": n % 3 == 1,
                "messageDate": format!("2024-03-{:02}T08:00:00+0000", 1 + n % 28),
                "viewed": format!("2024-06-{:02}T{:02}:{:02}:{:02}+0000", 1 + n % 28, n % 24, n % 60, (n / 60) % 60),
                "subject": format!("durable {run} #{n}"),
                "action": "view",
            })
        })
        .collect();
    json!({ "data": events })
}

#[tokio::test]
async fn every_acknowledged_event_survives_sigkill_and_restart() {
    let db = Db::new();
    let creds = db.tenant("acme", "Full Administrator");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut acknowledged = BTreeSet::new();

    for cycle in 0..CYCLES {
        let server = db.serve(&[]).await;
        // Everything acknowledged by earlier incarnations is there.
        let subjects = stored_subjects(&server, &creds, &run).await;
        assert_eq!(subjects, acknowledged, "cycle {cycle}: acknowledged events are missing after SIGKILL");

        for b in 0..BATCHES {
            let body = batch(cycle, b, &run);
            let reply = server.post(&creds, "/api/viewlog/record-views", &body).await;
            reply.assert_ok();
            assert_eq!(reply.body["data"][0]["inserted"], PER_BATCH as u64, "{:#}", reply.body);
            for event in body["data"].as_array().unwrap() {
                acknowledged.insert(event["subject"].as_str().unwrap().to_owned());
            }
        }
        // SIGKILL right after the last acknowledgement: no shutdown code runs.
        server.kill();
    }

    let server = db.serve(&[]).await;
    let subjects = stored_subjects(&server, &creds, &run).await;
    assert_eq!(subjects.len(), CYCLES * BATCHES * PER_BATCH);
    assert_eq!(subjects, acknowledged);
    // Sending an acknowledged batch again stores nothing twice.
    let reply = server.post(&creds, "/api/viewlog/record-views", &batch(0, 0, &run)).await;
    reply.assert_ok();
    assert_eq!(reply.body["data"][0]["inserted"], 0);
    assert_eq!(reply.body["data"][0]["duplicates"], PER_BATCH as u64);
}

async fn stored_subjects(server: &Server, creds: &Creds, run: &str) -> BTreeSet<String> {
    let records = server.all_records(creds, run, START, END).await;
    let subjects: BTreeSet<String> = records.iter().map(|r| r["subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(subjects.len(), records.len(), "a record came back twice");
    subjects
}
