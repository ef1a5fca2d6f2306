//! `viewlog migrate --from sqlite:PATH --to postgres://…` end to end: a SQLite store with
//! 100,000 imported events and every kind of principal is copied into a fresh PostgreSQL
//! database (`VIEWLOG_TEST_POSTGRES_URL`, see `pg_support`); every key binding then works (or,
//! revoked, does not) against a server on the copy with the same master key, and a client sees
//! the same pages from both stores; a migrate killed midway completes when run again, and a
//! further run copies nothing.

use crate::pg_support::*;
use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use viewlog_protocol::dates;

const ACME_EVENTS: usize = 100_000;
const GLOBEX_EVENTS: usize = 1_000;
const TOTAL_EVENTS: u64 = (ACME_EVENTS + GLOBEX_EVENTS) as u64;
const START: &str = "2024-01-01T00:00:00+0000";
const END: &str = "2024-03-31T23:59:59+0000";
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200;
const PASSWORD: &str = "a long passphrase for the migration";
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(300);

const VIEWERS: [&str; 7] = [
    "Åsa.Lindqvist@acme.example",
    "officer1@acme.example",
    "officer2@acme.example",
    "ZOË.Müller@acme.example",
    "auditor@acme.example",
    "counsel@acme.example",
    "officer3@acme.example",
];
const SUBJECTS: [&str; 9] = [
    "Quarterly results",
    "RE: contract renewal",
    "Board minutes",
    "FW: Übersicht Q3",
    "Invoice",
    "Merger — confidential",
    "Holiday rota",
    "Ticket update",
    "Legal hold notice",
];
const ACTIONS: [&str; 4] = ["view", "download", "export", "print"];

/// Event `n` of an account: its id, and `viewed` a permutation of 33,334 seconds 233 s apart
/// (three events to each, far apart in stored order, so that the order within a tie — the
/// stored order — is part of what must survive the copy).
fn event(account: &str, n: usize) -> Value {
    let viewed = T0 + ((n * 7_919) % 33_334) as i64 * 233;
    let discovery = n.is_multiple_of(11);
    let source = ["Message Tracking", "Archive Search", "Discovery Case"][n % 3];
    let (viewer, action) = (VIEWERS[n % VIEWERS.len()], ACTIONS[n % ACTIONS.len()]);
    json!({
        "id": format!("{account}-{n}"),
        "from": format!("sender{}@partner{}.example", n % 211, n % 17),
        "to": if n.is_multiple_of(3) { "legal@acme.example".to_owned() } else { format!("team{}@acme.example", n % 29) },
        "viewer": viewer,
        "source": source,
        "contentViewed": n.is_multiple_of(2),
        "discoveryCase": discovery,
        "messageDate": dates::format_date(viewed - (n % 30) as i64 * 86_400),
        "viewed": dates::format_date(viewed),
        "subject": format!("{} {} #{n}", SUBJECTS[n % SUBJECTS.len()], n % 1_000),
        "viewerIp": (!n.is_multiple_of(4)).then(|| format!("10.{}.{}.{}", n % 7, n % 251, n % 253)),
        "messageId": format!("<{n}.{account}@mail.example>"),
        "action": action,
        "caseId": discovery.then(|| format!("CASE-{}", n % 50)),
    })
}

/// The stored columns an API record does not show, as the generator made them.
fn extras(account: &str, n: usize) -> (String, Option<String>, Option<String>, Option<String>, Option<String>) {
    let e = event(account, n);
    let s = |k: &str| e[k].as_str().map(str::to_owned);
    (s("id").unwrap(), s("viewerIp"), s("messageId"), s("action"), s("caseId"))
}

/// The ids of an account's generated events in the order `viewlog import` stores them (seq
/// order): by viewed time, then by line.
fn import_order(account: &str, n: usize) -> Vec<String> {
    let mut keyed: Vec<(i64, usize)> = (0..n)
        .map(|i| {
            let viewed = event(account, i)["viewed"].as_str().unwrap().to_owned();
            (dates::parse_body_date(&viewed, dates::Bound::Start).unwrap(), i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| format!("{account}-{i}")).collect()
}

fn write_ndjson(path: &Path, account: &str, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        writeln!(out, "{}", event(account, i)).unwrap();
    }
    out.flush().unwrap();
}

/// A SQLite store with two accounts, their events and principals of every kind.
struct Source {
    db: Db,
    /// The key bindings, by name, and whether they must verify.
    bindings: Vec<(&'static str, Creds, bool)>,
    client_id: String,
    client_secret: String,
    /// The application the password user signs in with.
    app_id: String,
}

impl Source {
    fn key_file(&self) -> PathBuf {
        let mut p = self.db.path.clone().into_os_string();
        p.push(".key");
        PathBuf::from(p)
    }

    fn sqlite_url(&self) -> String {
        format!("sqlite:{}", self.db.path.display())
    }

    fn creds(&self, name: &str) -> &Creds {
        &self.bindings.iter().find(|(n, ..)| *n == name).unwrap().1
    }
}

/// The source store, built once and shared by the tests running at the same time (they only
/// read it: both copy from it, one also serves it); deleted when the last of them is done.
fn shared_source() -> Arc<Source> {
    static SHARED: Mutex<Weak<Source>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(source) = shared.upgrade() {
        return source;
    }
    let source = Arc::new(build_source());
    *shared = Arc::downgrade(&source);
    source
}

fn build_source() -> Source {
    let db = Db::new();
    db.admin(&["account", "create", "acme"]);
    db.admin(&["account", "create", "globex"]);
    db.admin(&["role", "create", "--account", "acme", "Auditor", "--permission", "Archive | View Logs | Read"]);
    let mut create_user = db.cmd(&["user", "create", "--account", "acme", "admin@acme.example", "--password-stdin"]);
    run(create_user.args(["--role", "Full Administrator", "--json"]), Some(&format!("{PASSWORD}\n"))).ok();
    for (account, email, role) in [
        ("acme", "reader@acme.example", "View Log Reader"),
        ("acme", "auditor@acme.example", "Auditor"),
        ("acme", "gone@acme.example", "View Log Reader"),
        ("globex", "boss@globex.example", "Full Administrator"),
    ] {
        db.admin(&["user", "create", "--account", account, email, "--role", role]);
    }
    let app = |account: &str, name: &str| {
        let a = db.admin(&["app", "create", "--account", account, name]);
        (a["appId"].as_str().unwrap().to_owned(), a["appKey"].as_str().unwrap().to_owned())
    };
    let (siem, exporter, globex) =
        (app("acme", "SIEM collector"), app("acme", "Exporter"), app("globex", "Globex SIEM"));
    let key = |user: &str, (app_id, app_key): &(String, String), ttl: Option<&str>| {
        let mut args = vec!["key", "create", "--user", user, "--app-id", app_id];
        if let Some(ttl) = ttl {
            args.extend(["--ttl", ttl]);
        }
        let k = db.admin(&args);
        if ttl.is_some() {
            assert!(k["expiresAt"].is_string(), "{k}");
        }
        Creds {
            app_id: app_id.clone(),
            app_key: app_key.clone(),
            access_key: k["accessKey"].as_str().unwrap().to_owned(),
            secret_key: k["secretKey"].as_str().unwrap().to_owned(),
        }
    };
    let bindings = vec![
        ("admin", key("admin@acme.example", &siem, None), true),
        ("reader with a TTL", key("reader@acme.example", &siem, Some("30d")), true),
        ("auditor (custom role)", key("auditor@acme.example", &exporter, None), true),
        ("revoked", key("reader@acme.example", &exporter, None), false),
        ("disabled user", key("gone@acme.example", &siem, None), false),
        ("globex", key("boss@globex.example", &globex, None), true),
    ];
    let revoked = &bindings[3].1.access_key;
    db.admin(&["key", "revoke", revoked]);
    db.admin(&["user", "disable", "gone@acme.example"]);
    db.admin(&["auth-profile", "set", "--account", "acme", "--binding-ttl", "12h", "--max-bindings", "4"]);
    let client = db.admin(&["api-client", "create", "--account", "acme", "--role", "Auditor", "exporter"]);

    for (account, n) in [("acme", ACME_EVENTS), ("globex", GLOBEX_EVENTS)] {
        let file = db.dir.path().join(format!("{account}.ndjson"));
        write_ndjson(&file, account, n);
        let mut cmd = db.cmd(&["import"]);
        cmd.arg(&file).args(["--account", account, "--json"]);
        let started = Instant::now();
        let (out, _) = run_for(&mut cmd, MIGRATE_TIMEOUT);
        let summary = out.ok().json();
        assert_eq!(summary["inserted"], n as u64, "{summary}");
        eprintln!("imported {n} events into SQLite in {:.1?}", started.elapsed());
        std::fs::remove_file(&file).unwrap();
    }
    Source {
        db,
        bindings,
        client_id: client["clientId"].as_str().unwrap().to_owned(),
        client_secret: client["clientSecret"].as_str().unwrap().to_owned(),
        app_id: siem.0,
    }
}

fn migrate_cmd(source: &Source, to: &PgDb, extra: &[&str]) -> std::process::Command {
    let mut cmd = viewlog(to.dir.path());
    cmd.args(["migrate", "--from", &source.sqlite_url(), "--to", &to.url, "--json"]).args(extra);
    cmd
}

/// Runs a migration to completion; returns its JSON summary.
fn migrate(source: &Source, to: &PgDb) -> (Value, Duration) {
    let (out, took) = run_for(&mut migrate_cmd(source, to, &[]), MIGRATE_TIMEOUT);
    (out.ok().json(), took)
}

/// The summary of a complete first copy of [`build_source`]'s store.
fn first_copy() -> Value {
    json!({
        "accounts": 2,
        // The three built-in roles of each account, and Auditor.
        "roles": 7,
        "users": 5,
        "applications": 3,
        "bindings": 6,
        "apiClients": 1,
        "eventsCopied": TOTAL_EVENTS,
        "eventsAlreadyThere": 0,
        "eventsInSource": TOTAL_EVENTS,
        "eventsInTarget": TOTAL_EVENTS,
    })
}

/// `LIST --account ACCOUNT --json` on a store, each item cut down to `fields` (identifiers
/// that differ between stores left out), sorted.
fn listed(list: &Value, fields: &[&str]) -> Vec<Value> {
    let mut items: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|item| Value::Object(fields.iter().map(|f| (f.to_string(), item[*f].clone())).collect()))
        .collect();
    items.sort_by_key(|v| v.to_string());
    items
}

/// Row counts of every table the migration fills, straight from the PostgreSQL database.
async fn table_counts(db: &PgDb) -> Vec<(String, i64)> {
    let sql = db.sql().await;
    let mut counts = Vec::new();
    for table in
        ["accounts", "auth_profiles", "roles", "users", "applications", "bindings", "api_clients", "view_events"]
    {
        let n: i64 = sql.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        counts.push((table.to_owned(), n));
    }
    counts
}

/// Event ids of an account in stored order.
async fn ids_in_stored_order(db: &PgDb, account: &str) -> Vec<String> {
    let sql = db.sql().await;
    let rows = sql
        .query(
            "SELECT e.event_id FROM view_events e JOIN accounts a ON a.id = e.account_id \
             WHERE a.name = $1 ORDER BY e.seq",
            &[&account],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// How many events a database holds; 0 before its schema exists.
async fn events_in(sql: &tokio_postgres::Client) -> i64 {
    match sql.query_one("SELECT count(*) FROM view_events", &[]).await {
        Ok(row) => row.get(0),
        Err(_) => 0,
    }
}

fn page_body(query: &str) -> Value {
    json!({"meta": {"pagination": {"pageSize": 500}}, "data": [{"query": query, "start": START, "end": END}]})
}

/// Walks a query to its end on both servers at once, comparing each page; returns how many
/// pages and records there were.
async fn same_pages(sqlite: &Server, postgres: &Server, creds: &Creds, query: &str) -> (usize, u64) {
    let (mut body_s, mut body_p) = (page_body(query), page_body(query));
    let (mut pages, mut records, mut total) = (0, 0, None);
    loop {
        let (s, p) = tokio::join!(sqlite.view_logs(creds, &body_s), postgres.view_logs(creds, &body_p));
        s.assert_ok();
        p.assert_ok();
        let (ms, mp) = (&s.body["meta"]["pagination"], &p.body["meta"]["pagination"]);
        assert_eq!(s.body["data"], p.body["data"], "page {pages} of {query:?} differs between the stores");
        assert_eq!(ms["totalCount"], mp["totalCount"], "page {pages} of {query:?}");
        assert_eq!(ms["pageSize"], mp["pageSize"]);
        assert_eq!(ms["next"].is_string(), mp["next"].is_string(), "page {pages} of {query:?}");
        assert_eq!(ms["previous"].is_string(), mp["previous"].is_string(), "page {pages} of {query:?}");
        let t = ms["totalCount"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(t), t, "totalCount changed within the walk");
        pages += 1;
        records += s.body["data"].as_array().unwrap().len() as u64;
        match (ms["next"].as_str(), mp["next"].as_str()) {
            (Some(ts), Some(tp)) => {
                body_s = json!({"meta": {"pagination": {"pageSize": 500, "pageToken": ts}}});
                body_p = json!({"meta": {"pagination": {"pageSize": 500, "pageToken": tp}}});
            }
            _ => break,
        }
    }
    assert_eq!(Some(records), total, "a walk of {query:?} yields totalCount records");
    (pages, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_store_migrates_into_postgres_and_serves_the_same_pages() {
    let source = shared_source();
    let target = PgDb::with_key_file(&source.key_file()).await;

    let (summary, took) = migrate(&source, &target);
    eprintln!("migrated {TOTAL_EVENTS} events from SQLite into PostgreSQL in {took:.1?}");
    assert_eq!(summary, first_copy(), "every record arrived");

    // Under the API: every event once, in the stored order, with the columns no record shows.
    let ids = ids_in_stored_order(&target, "acme").await;
    assert_eq!(ids, import_order("acme", ACME_EVENTS), "the source's seq order");
    let sql = target.sql().await;
    let rows = sql
        .query("SELECT event_id, viewer_ip, message_id, action, case_id FROM view_events ORDER BY seq", &[])
        .await
        .unwrap();
    let stored: std::collections::HashMap<String, _> = rows
        .iter()
        .map(|r| {
            let id: String = r.get(0);
            (id.clone(), (id, r.get(1), r.get(2), r.get(3), r.get(4)))
        })
        .collect();
    for (account, n) in [("acme", ACME_EVENTS), ("globex", GLOBEX_EVENTS)] {
        for i in 0..n {
            let want = extras(account, i);
            assert_eq!(stored.get(&want.0), Some(&want), "the stored columns of {}", want.0);
        }
    }

    // The principals, as the admin commands list them, are the same in both stores.
    let pg_admin = |args: &[&str]| target.admin(args);
    for account in ["acme", "globex"] {
        for (what, fields) in [
            ("key", &["accessKey", "createdAt", "expiresAt", "revoked"][..]),
            ("user", &["email", "disabled", "hasPassword", "createdAt"][..]),
            ("role", &["name", "builtin", "permissions"][..]),
            ("app", &["appId", "name", "disabled", "createdAt"][..]),
            ("api-client", &["clientId", "name", "revoked", "createdAt"][..]),
        ] {
            let args = [what, "list", "--account", account];
            let (s, p) = (listed(&source.db.admin(&args), fields), listed(&pg_admin(&args), fields));
            assert!(!s.is_empty() || what == "api-client", "{what} list of {account} is empty");
            assert_eq!(s, p, "{what} list of {account}");
        }
        let args = ["auth-profile", "show", "--account", account];
        assert_eq!(source.db.admin(&args), pg_admin(&args), "auth profile of {account}");
    }

    // A server on each store, with the same master key.
    let sqlite = source.db.serve(&[]).await;
    let postgres = target.serve(&[]).await;

    // Every binding works on the copy, with the answer it gets from the original; the revoked
    // one and the disabled user's are refused as a wrong signature is.
    for (name, creds, works) in &source.bindings {
        let body = json!({"meta": {"pagination": {"pageSize": 1}}, "data": [{"start": START, "end": END}]});
        let (s, p) = tokio::join!(sqlite.view_logs(creds, &body), postgres.view_logs(creds, &body));
        if *works {
            p.assert_ok();
            let want = if *name == "globex" { GLOBEX_EVENTS } else { ACME_EVENTS };
            assert_eq!(p.body["meta"]["pagination"]["totalCount"], want as u64, "{name}");
        } else {
            assert_eq!(p.status, 401, "{name}: {:#}", p.body);
            assert_eq!(p.code(), "err_xdk_invalid_signature", "{name}: {:#}", p.body);
        }
        assert_eq!((s.status, &s.body["data"], s.code()), (p.status, &p.body["data"], p.code()), "{name}");
    }

    // The API 2.0 client gets a token from the copy and reads with it.
    let token = postgres
        .http
        .post(format!("{}/oauth/token", postgres.base_url))
        .basic_auth(&source.client_id, Some(&source.client_secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let bearer = token["access_token"].as_str().unwrap_or_else(|| panic!("no token: {token}"));
    let read = postgres
        .http
        .post(format!("{}/api/archive/get-view-logs", postgres.base_url))
        .bearer_auth(bearer)
        .body(page_body("").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["meta"]["pagination"]["totalCount"], ACME_EVENTS as u64, "{read:#}");

    // The password hash came along: the administrator signs in on the copy.
    let login = postgres
        .http
        .post(format!("{}/api/login/login", postgres.base_url))
        .header("Authorization", format!("Basic-Cloud {}", STANDARD.encode(format!("admin@acme.example:{PASSWORD}"))))
        .header("x-mc-app-id", &source.app_id)
        .header("x-mc-date", dates::format_header_date(now()))
        .header("x-mc-req-id", uuid::Uuid::new_v4().to_string())
        .body(json!({"data": [{"userName": "admin@acme.example"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let signed_in = Creds {
        access_key: login["data"][0]["accessKey"].as_str().unwrap_or_else(|| panic!("{login:#}")).to_owned(),
        secret_key: login["data"][0]["secretKey"].as_str().unwrap().to_owned(),
        ..source.creds("admin").clone()
    };
    postgres.view_logs(&signed_in, &page_body("")).await.assert_ok();

    // A client sees the same pages from both stores: the whole range, and a text query (a
    // non-ASCII capital, folded the same way by both).
    let started = Instant::now();
    let admin = source.creds("admin");
    let (everything, asa, globex) = tokio::join!(
        same_pages(&sqlite, &postgres, admin, ""),
        same_pages(&sqlite, &postgres, admin, "ÅSA"),
        same_pages(&sqlite, &postgres, source.creds("globex"), ""),
    );
    assert_eq!(everything, (ACME_EVENTS.div_ceil(500), ACME_EVENTS as u64));
    assert_eq!(asa.1, ACME_EVENTS.div_ceil(VIEWERS.len()) as u64);
    assert_eq!(globex.1, GLOBEX_EVENTS as u64);
    eprintln!("compared every page of both stores in {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_migrate_completes_when_run_again_and_then_copies_nothing_more() {
    let source = shared_source();
    let target = PgDb::with_key_file(&source.key_file()).await;
    let sql = target.sql().await;

    // Batches of 2,000: SIGKILL lands once some of them, not all, are committed.
    let (mut child, _stdout, stderr) = Server::spawn(&mut migrate_cmd(&source, &target, &["--batch-size", "2000"]));
    let deadline = Instant::now() + MIGRATE_TIMEOUT;
    loop {
        let n = events_in(&sql).await;
        if n >= 20_000 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the migrate ended ({status}) before it could be killed midway, at {n} events:\n{}", stderr.text());
        }
        assert!(Instant::now() < deadline, "the migrate copied only {n} events in {MIGRATE_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = events_in(&sql).await as u64;
    assert!((20_000..TOTAL_EVENTS).contains(&before), "killed midway, at {before} events");
    assert_eq!(before % 2_000, 0, "a batch is one transaction: all of it or none");

    // Run again, it completes: the principals were all there, the events resume.
    let (summary, _) = migrate(&source, &target);
    assert_eq!(
        summary,
        json!({"accounts": 0, "roles": 0, "users": 0, "applications": 0, "bindings": 0, "apiClients": 0,
               "eventsCopied": TOTAL_EVENTS - before, "eventsAlreadyThere": before,
               "eventsInSource": TOTAL_EVENTS, "eventsInTarget": TOTAL_EVENTS})
    );
    // The same final counts as an uninterrupted copy, and the same stored order.
    let want: Vec<(String, i64)> = [
        ("accounts", 2),
        ("auth_profiles", 2),
        ("roles", 7),
        ("users", 5),
        ("applications", 3),
        ("bindings", 6),
        ("api_clients", 1),
        ("view_events", TOTAL_EVENTS as i64),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(table_counts(&target).await, want);
    let ids = ids_in_stored_order(&target, "acme").await;
    assert_eq!(ids, import_order("acme", ACME_EVENTS), "the source's seq order");

    // Running it again copies nothing new.
    let (again, took) = migrate(&source, &target);
    eprintln!("a migrate with nothing left to copy took {took:.1?}");
    assert_eq!(
        again,
        json!({"accounts": 0, "roles": 0, "users": 0, "applications": 0, "bindings": 0, "apiClients": 0,
               "eventsCopied": 0, "eventsAlreadyThere": TOTAL_EVENTS,
               "eventsInSource": TOTAL_EVENTS, "eventsInTarget": TOTAL_EVENTS})
    );
    assert_eq!(table_counts(&target).await, want);
    assert_eq!(ids_in_stored_order(&target, "acme").await, ids);

    // And what was revoked or disabled before the kill still is.
    let postgres = target.serve(&[]).await;
    for (name, creds, works) in &source.bindings {
        let reply = postgres.view_logs(creds, &page_body("")).await;
        assert_eq!(reply.status == 200, *works, "{name}: {:#}", reply.body);
    }
}
