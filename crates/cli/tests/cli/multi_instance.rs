//! Several `viewlog serve` processes on one PostgreSQL database (issue 5): they share replay
//! records, page tokens (one master key), rate buckets and the events themselves.
//!
//! Each test makes a database of its own on the server named by `VIEWLOG_TEST_POSTGRES_URL`
//! (see `pg_support`) and starts two servers on it, on two ports, with one master key file.

use crate::pg_support::*;
use crate::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use viewlog_protocol::dates;

const VIEW_LOGS: &str = "/api/archive/get-view-logs";
const RECORD: &str = "/api/viewlog/record-views";
const START: &str = "2024-05-01T00:00:00+0000";
const END: &str = "2024-06-30T23:59:59+0000";
/// 2024-05-01T00:00:00Z.
const T0: i64 = 1_714_521_600;

/// Event `n` of a run: a unique id and subject; `viewed` spread over three weeks with several
/// events to a second, so that pages also cut through ties.
fn event(tag: &str, n: usize) -> Value {
    let viewed = T0 + ((n * 7_919) % 3_000) as i64 * 600;
    json!({
        "id": format!("{tag}-{n}"),
        "from": format!("sender{}@example.org", n % 97),
        "to": "legal@acme.example",
        "viewer": format!("officer{}@acme.example", n % 13),
        "source": "Archive Search",
        "contentViewed": n.is_multiple_of(2),
        "discoveryCase": n.is_multiple_of(5),
        "messageDate": dates::format_date(viewed - 86_400),
        "viewed": dates::format_date(viewed),
        "subject": format!("{tag} #{n}"),
        "action": "view",
    })
}

fn batch(tag: &str, range: std::ops::Range<usize>) -> Value {
    json!({ "data": range.map(|n| event(tag, n)).collect::<Vec<_>>() })
}

/// Records a batch; returns (inserted, duplicates).
async fn record(server: &Server, creds: &Creds, body: &Value) -> (u64, u64) {
    let reply = server.post(creds, RECORD, body).await;
    reply.assert_ok();
    let d = &reply.body["data"][0];
    (d["inserted"].as_u64().unwrap(), d["duplicates"].as_u64().unwrap())
}

/// A POST with the given (already signed) headers, exactly as they are.
async fn send(server: &Server, path: &str, headers: &[(String, String)], body: &Value) -> Reply {
    let mut req = server.http.post(format!("{}{path}", server.base_url)).body(body.to_string());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Reply { status, headers, body }
}

fn first_page(page_size: u32, query: &str) -> Value {
    json!({"meta": {"pagination": {"pageSize": page_size}}, "data": [{"query": query, "start": START, "end": END}]})
}

fn follow(token: &str) -> Value {
    json!({"meta": {"pagination": {"pageToken": token}}})
}

fn subjects(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|r| r["subject"].as_str().unwrap().to_owned()).collect()
}

fn total_count(page: &Value) -> u64 {
    page["meta"]["pagination"]["totalCount"].as_u64().unwrap_or_else(|| panic!("no totalCount: {page:#}"))
}

/// Follows `next` from the first page to the end, sending request `i` to `servers[i % 2]`;
/// returns every page's body. Each page must carry the first page's `totalCount`.
async fn walk_alternating(servers: [&Server; 2], creds: &Creds, page_size: u32, query: &str) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    let mut body = first_page(page_size, query);
    loop {
        let reply = servers[pages.len() % 2].view_logs(creds, &body).await;
        reply.assert_ok();
        if let Some(first) = pages.first() {
            assert_eq!(total_count(&reply.body), total_count(first), "totalCount changed within one query");
        }
        let next = reply.body["meta"]["pagination"]["next"].as_str().map(str::to_owned);
        pages.push(reply.body);
        match next {
            Some(token) => body = follow(&token),
            None => return pages,
        }
    }
}

/// Every subject of a walk, checked to appear once, and their number checked against
/// `totalCount`.
#[track_caller]
fn once_each(pages: &[Value]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for page in pages {
        for s in subjects(page) {
            assert!(seen.insert(s.clone()), "{s} came twice in one walk");
        }
    }
    assert_eq!(seen.len() as u64, total_count(&pages[0]), "a walk yields totalCount records");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_used_on_one_instance_is_refused_by_the_other() {
    let db = PgDb::create().await;
    let creds = db.tenant("acme", "Full Administrator");
    let a = db.serve(&[]).await;
    let b = db.serve(&[]).await;
    assert_ne!(a.addr, b.addr);
    let body = first_page(25, "");

    for (first, second) in [(&a, &b), (&b, &a)] {
        // The very same request, byte for byte: the same date, request id and signature.
        let headers = signed_headers(&creds, VIEW_LOGS);
        send(first, VIEW_LOGS, &headers, &body).await.assert_ok();
        for (server, which) in [(second, "the other instance"), (first, "the same instance")] {
            let replay = send(server, VIEW_LOGS, &headers, &body).await;
            assert_eq!(replay.status, 401, "a replay on {which}: {:#}", replay.body);
            assert_eq!(replay.code(), "err_xdk_duplicate_request_id", "a replay on {which}: {:#}", replay.body);
        }
    }
    // Fresh request ids go through on both.
    a.view_logs(&creds, &body).await.assert_ok();
    b.view_logs(&creds, &body).await.assert_ok();

    // The ids live in the shared database (one row per verified request).
    let sql = db.sql().await;
    let seen: i64 = sql.query_one("SELECT count(*) FROM seen_requests", &[]).await.unwrap().get(0);
    assert_eq!(seen, 4, "two replayed requests and two fresh ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_from_one_instance_work_on_the_other() {
    let db = PgDb::create().await;
    let creds = db.tenant("acme", "Full Administrator");
    let a = db.serve(&[]).await;
    let b = db.serve(&[]).await;
    const N: usize = 1_000;
    assert_eq!(record(&a, &creds, &batch("tok", 0..N / 2)).await, (N as u64 / 2, 0));
    assert_eq!(record(&b, &creds, &batch("tok", N / 2..N)).await, (N as u64 / 2, 0));
    let expected: BTreeSet<String> = (0..N).map(|n| format!("tok #{n}")).collect();

    // A token minted by A, followed on B, gives what A gives for it.
    let one = a.view_logs(&creds, &first_page(40, "")).await;
    one.assert_ok();
    let token = one.body["meta"]["pagination"]["next"].as_str().unwrap();
    let on_b = b.view_logs(&creds, &follow(token)).await;
    let on_a = a.view_logs(&creds, &follow(token)).await;
    on_b.assert_ok();
    on_a.assert_ok();
    assert_eq!(on_b.body["data"], on_a.body["data"]);
    // (Tokens are sealed with fresh nonces, so only their presence is compared.)
    let (pb, pa) = (&on_b.body["meta"]["pagination"], &on_a.body["meta"]["pagination"]);
    assert_eq!((&pb["totalCount"], &pb["pageSize"]), (&pa["totalCount"], &pa["pageSize"]));
    assert!(pb["next"].is_string() && pb["previous"].is_string(), "{pb}");
    assert_eq!(subjects(&on_b.body).len(), 40);

    // Following `next` alternately across A and B yields every event exactly once, and the
    // same pages whichever instance starts.
    let ab = walk_alternating([&a, &b], &creds, 37, "").await;
    assert_eq!(ab.len(), N.div_ceil(37));
    assert_eq!(total_count(&ab[0]), N as u64);
    assert_eq!(once_each(&ab), expected);
    let ba = walk_alternating([&b, &a], &creds, 37, "").await;
    assert_eq!(
        ab.iter().map(|p| &p["data"]).collect::<Vec<_>>(),
        ba.iter().map(|p| &p["data"]).collect::<Vec<_>>(),
        "the same pages whichever instance answers"
    );

    // `previous` walks back over the same pages, alternately too.
    let mut back = vec![ab.last().unwrap().clone()];
    while let Some(token) = back.last().unwrap()["meta"]["pagination"]["previous"].as_str() {
        let server = if back.len() % 2 == 0 { &a } else { &b };
        let reply = server.view_logs(&creds, &follow(token)).await;
        reply.assert_ok();
        back.push(reply.body);
    }
    back.reverse();
    assert_eq!(
        back.iter().map(|p| &p["data"]).collect::<Vec<_>>(),
        ab.iter().map(|p| &p["data"]).collect::<Vec<_>>(),
        "previous retraces next"
    );

    // A text query's token travels too.
    let filtered = walk_alternating([&a, &b], &creds, 7, "officer3@").await;
    let want: BTreeSet<String> = (0..N).filter(|n| n % 13 == 3).map(|n| format!("tok #{n}")).collect();
    assert_eq!(once_each(&filtered), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_quota_is_one_quota_across_instances() {
    let db = PgDb::create().await;
    let creds = db.tenant("acme", "View Log Reader");
    let other = db.tenant("acme", "View Log Reader");
    let limits = ["--rate-capacity", "10", "--rate-refill-per-sec", "0.001"];
    let a = db.serve(&limits).await;
    let b = db.serve(&limits).await;
    let body = first_page(5, "");

    // Ten requests spread over both instances draw one bucket of ten.
    for i in 0..10u64 {
        let server = if i % 2 == 0 { &a } else { &b };
        let reply = server.view_logs(&creds, &body).await;
        reply.assert_ok();
        assert_eq!(reply.header("X-RateLimit-Limit"), Some("10"));
        let remaining = (9 - i).to_string();
        assert_eq!(reply.header("X-RateLimit-Remaining"), Some(remaining.as_str()), "request {i}");
    }
    // The eleventh is refused on either.
    for server in [&a, &b] {
        let reply = server.view_logs(&creds, &body).await;
        assert_eq!(reply.status, 429, "{:#}", reply.body);
        assert_eq!(reply.code(), "err_xdk_rate_limit_exceeded", "{:#}", reply.body);
        assert_eq!(reply.header("X-RateLimit-Remaining"), Some("0"));
        let reset: u64 = reply.header("X-RateLimit-Reset").unwrap().parse().unwrap();
        assert!(reset > 1_000, "the next token is ~1000 s away: {reset} ms");
    }
    // Another user's quota is their own; health checks are never throttled.
    a.view_logs(&other, &body).await.assert_ok();
    b.view_logs(&other, &body).await.assert_ok();
    for server in [&a, &b] {
        let health = server.http.get(format!("{}/healthz", server.base_url)).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingest_through_both_instances_stores_every_event_once() {
    const TASKS: usize = 6;
    const BATCHES: usize = 5;
    const PER_BATCH: usize = 150;
    const SHARED: usize = 4;
    const DISTINCT: usize = (TASKS * BATCHES + SHARED) * PER_BATCH;

    let db = PgDb::create().await;
    let creds = db.tenant("acme", "Full Administrator");
    let a = Arc::new(db.serve(&[]).await);
    let b = Arc::new(db.serve(&[]).await);

    let mut writers = Vec::new();
    // Batches of distinct ids, each task alternating between the instances.
    for t in 0..TASKS {
        let (a, b, creds) = (a.clone(), b.clone(), creds.clone());
        writers.push(tokio::spawn(async move {
            let (mut inserted, mut duplicates) = (0, 0);
            for k in 0..BATCHES {
                let server = if (t + k) % 2 == 0 { &a } else { &b };
                let first = (t * BATCHES + k) * PER_BATCH;
                let (i, d) = record(server, &creds, &batch("ingest", first..first + PER_BATCH)).await;
                inserted += i;
                duplicates += d;
            }
            (inserted, duplicates)
        }));
    }
    // Batches sent to both instances at once: the same ids twice.
    for s in 0..SHARED {
        let (a, b, creds) = (a.clone(), b.clone(), creds.clone());
        writers.push(tokio::spawn(async move {
            let first = (TASKS * BATCHES + s) * PER_BATCH;
            let body = batch("ingest", first..first + PER_BATCH);
            let (x, y) = tokio::join!(record(&a, &creds, &body), record(&b, &creds, &body));
            assert_eq!(x.0 + y.0, PER_BATCH as u64, "each shared event stored by exactly one instance");
            assert_eq!(x.1 + y.1, PER_BATCH as u64, "and a duplicate for the other");
            (x.0 + y.0, x.1 + y.1)
        }));
    }
    // Meanwhile a reader walks alternately: each walk is one consistent snapshot.
    let reader = {
        let (a, b, creds) = (a.clone(), b.clone(), creds.clone());
        let done = writers.iter().map(|w| w.abort_handle()).collect::<Vec<_>>();
        tokio::spawn(async move {
            let mut totals = Vec::new();
            while totals.len() < 20 && !done.iter().all(|w| w.is_finished()) {
                let pages = walk_alternating([&a, &b], &creds, 250, "").await;
                once_each(&pages);
                totals.push(total_count(&pages[0]));
            }
            totals
        })
    };

    let (mut inserted, mut duplicates) = (0, 0);
    for w in writers {
        let (i, d) = w.await.unwrap();
        inserted += i;
        duplicates += d;
    }
    assert_eq!(inserted, DISTINCT as u64, "every distinct event inserted once");
    assert_eq!(duplicates, (SHARED * PER_BATCH) as u64);
    let totals = reader.await.unwrap();
    eprintln!("totalCount of the walks made during the ingest: {totals:?}");
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "totalCount never went back: {totals:?}");
    assert!(totals.iter().all(|&t| t <= DISTINCT as u64), "{totals:?}");

    // Afterwards both instances see all of it, once.
    let expected: BTreeSet<String> = (0..DISTINCT).map(|n| format!("ingest #{n}")).collect();
    for servers in [[&*a, &*b], [&*b, &*a]] {
        let pages = walk_alternating(servers, &creds, 500, "").await;
        assert_eq!(total_count(&pages[0]), DISTINCT as u64);
        assert_eq!(once_each(&pages), expected);
    }
    // Under the API: one row per event, seqs 1..=N without a gap, and the snapshot bound there.
    let sql = db.sql().await;
    let row = sql
        .query_one("SELECT count(*), count(DISTINCT event_id), min(seq), max(seq) FROM view_events", &[])
        .await
        .unwrap();
    let (rows, ids, min, max): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((rows, ids, min, max), (DISTINCT as i64, DISTINCT as i64, 1, DISTINCT as i64));
    let last_seq: i64 = sql.query_one("SELECT last_seq FROM accounts WHERE name = 'acme'", &[]).await.unwrap().get(0);
    assert_eq!(last_seq, DISTINCT as i64);
    // And the count of a text query agrees with its walk.
    let officer: HashSet<String> = (0..DISTINCT).filter(|n| n % 13 == 5).map(|n| format!("ingest #{n}")).collect();
    let pages = walk_alternating([&*a, &*b], &creds, 500, "officer5@").await;
    assert_eq!(once_each(&pages).into_iter().collect::<HashSet<_>>(), officer);
}

/// The admin commands and a server reach PostgreSQL over TLS when the URL asks for it
/// (`sslmode=verify-full`, `sslrootcert` the test authority): events go in and come out, and
/// every viewlog session on the database is encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_tls_url_keeps_every_connection_encrypted() {
    const CA_ENV: &str = "VIEWLOG_TEST_POSTGRES_CA";
    let ca = std::env::var(CA_ENV)
        .unwrap_or_else(|_| panic!("{CA_ENV} is not set: `eval \"$(bash .ci/postgres.sh)\"` sets it"));
    let mut db = PgDb::create().await;
    let sep = if db.url.contains('?') { '&' } else { '?' };
    db.url = format!("{}{sep}sslmode=verify-full&sslrootcert={ca}", db.url);
    let creds = db.tenant("acme", "Full Administrator");
    let server = db.serve(&[]).await;
    assert_eq!(record(&server, &creds, &batch("tls", 0..20)).await, (20, 0));
    let walked = once_each(&walk_alternating([&server, &server], &creds, 7, "").await);
    assert_eq!(walked.len(), 20);
    // The server's sessions and this store's own.
    let store = viewlog_store_postgres::PostgresStore::connect(&db.url, Default::default()).await.expect("connect");
    let security = store.session_security().await.expect("pg_stat_ssl");
    assert!(security.sessions >= 2 && security.encrypted == security.sessions, "{security:?}");
}
