//! Behaviour particular to the PostgreSQL store: several stores (servers) on one database,
//! migrations, the schema version, the text filter's SQL and index, and abandoned operations.
//! Every test needs `VIEWLOG_TEST_POSTGRES_URL` (see `common`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::ScratchDb;
use viewlog_store::conformance::{event, everything, T0};
use viewlog_store::{
    AccountId, Direction, EventFilter, PageRequest, RateKey, RatePolicy, Store, StoreError, UserId, ViewEvent,
};
use viewlog_store_postgres::{PostgresOptions, PostgresStore};

fn options(pool_size: usize) -> PostgresOptions {
    PostgresOptions { pool_size, ..PostgresOptions::default() }
}

async fn open(db: &ScratchDb) -> PostgresStore {
    PostgresStore::connect(&db.url, options(4)).await.expect("connect")
}

fn with_text(text: &str) -> EventFilter {
    EventFilter { text: Some(text.to_owned()), ..everything() }
}

async fn ids_matching(store: &PostgresStore, account: AccountId, text: &str) -> Vec<String> {
    let request = PageRequest { filter: with_text(text), cursor: None, direction: Direction::Older, limit: 1_000 };
    let mut ids: Vec<String> =
        store.page(account, &request).await.expect("page").into_iter().map(|e| e.event.event_id).collect();
    ids.sort();
    assert_eq!(store.count(account, &with_text(text)).await.expect("count"), ids.len() as u64, "count of {text:?}");
    ids
}

/// Two servers on one database: a request id remembered by one is a replay on the other, one
/// rate bucket is drawn on by both, and ingest through both numbers one account's events once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_replay_records_rate_buckets_and_seqs() {
    let db = ScratchDb::create().await;
    let (a, b) = (open(&db).await, open(&db).await);

    assert!(a.remember_request("AK", "req-1", T0 + 300, T0).await.expect("remember"));
    assert!(!b.remember_request("AK", "req-1", T0 + 300, T0).await.expect("remember"), "replayed on the other");
    assert!(b.remember_request("AK", "req-2", T0 + 300, T0).await.expect("remember"));
    assert!(!a.remember_request("AK", "req-2", T0 + 300, T0 + 1).await.expect("remember"));
    assert_eq!(b.purge_requests(T0 + 301).await.expect("purge"), 2);
    assert!(a.remember_request("AK", "req-1", T0 + 900, T0 + 302).await.expect("remember"), "purged by the other");

    let key = RateKey::User(UserId(7));
    let policy = RatePolicy { capacity: 4, refill_per_sec: 1.0 };
    let t = 5_000_000i64;
    let mut remaining = Vec::new();
    for (i, store) in [&a, &b, &a, &b].into_iter().enumerate() {
        let d = store.take_rate_token(&key, policy, t).await.expect("take");
        assert!(d.allowed, "take {i}");
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, vec![3, 2, 1, 0], "one bucket, whichever server takes");
    assert!(!a.take_rate_token(&key, policy, t).await.expect("take").allowed, "one quota");
    assert!(!b.take_rate_token(&key, policy, t + 10).await.expect("take").allowed, "one quota");
    assert!(b.take_rate_token(&key, policy, t + 1_000).await.expect("take").allowed, "refilled for both");
    assert!(!a.take_rate_token(&key, policy, t + 1_000).await.expect("take").allowed);

    // Concurrent takes on one key from both servers never hand out more than the capacity.
    let key = RateKey::Address("192.0.2.9".into());
    let policy = RatePolicy { capacity: 25, refill_per_sec: 0.0 };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let key = key.clone();
        tasks.push(tokio::spawn(async move { store.take_rate_token(&key, policy, t).await.expect("take").allowed }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.expect("task"));
    }
    assert_eq!(allowed, 25);

    // Concurrent ingest into one account through both: distinct seqs, all committed ones below
    // the snapshot.
    let account = a.create_account("acme", T0).await.expect("account").id;
    let mut tasks = Vec::new();
    for t in 0..6 {
        let store = Arc::clone(if t % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            for batch in 0..5 {
                let events: Vec<ViewEvent> = (0..30).map(|i| event(&format!("t{t}b{batch}i{i}"), T0 + i)).collect();
                assert_eq!(store.insert_events(account, &events).await.expect("insert").inserted, 30);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let request = PageRequest { filter: everything(), cursor: None, direction: Direction::Older, limit: 10_000 };
    let stored = b.page(account, &request).await.expect("page");
    assert_eq!(stored.len(), 900);
    let mut seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=900).collect::<Vec<_>>(), "seqs are dense, unique and end at the snapshot");
    assert_eq!(a.snapshot(account).await.expect("snapshot"), 900);
}

/// Servers starting at once against an empty database all succeed: one migrates, the others
/// wait for it and find the schema current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_succeed() {
    let db = ScratchDb::create().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move { PostgresStore::connect(&url, options(2)).await }));
    }
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.expect("task").expect("every concurrent start succeeds"));
    }
    assert!(stores.iter().all(PostgresStore::has_text_index), "pg_trgm is part of the test server");
    let account = stores[0].create_account("acme", T0).await.expect("account");
    for store in &stores {
        assert_eq!(store.account(account.id).await.expect("account"), Some(account.clone()));
    }
    let client = common::connect(&db.url).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM viewlog_schema ORDER BY version", &[])
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=PostgresStore::schema_version()).collect::<Vec<_>>(), "each migration once");
    let indexes: i64 = client
        .query_one("SELECT count(*) FROM pg_indexes WHERE indexname = 'view_events_text'", &[])
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(indexes, 1);
    // And again, now that there is nothing to do.
    drop(PostgresStore::connect(&db.url, options(1)).await.expect("reconnect"));
}

/// A database that a newer viewlog migrated is refused, and left as it was.
#[tokio::test]
async fn refuses_a_schema_from_a_newer_viewlog() {
    let db = ScratchDb::create().await;
    let store = open(&db).await;
    store.create_account("acme", T0).await.expect("account");
    drop(store);
    let client = common::connect(&db.url).await;
    client
        .execute("INSERT INTO viewlog_schema (version) VALUES ($1)", &[&(PostgresStore::schema_version() + 1)])
        .await
        .expect("bump");
    match PostgresStore::connect(&db.url, options(1)).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let accounts: i64 = client.query_one("SELECT count(*) FROM accounts", &[]).await.expect("count").get(0);
    assert_eq!(accounts, 1);
}

/// Connection failures are errors, not panics.
#[tokio::test]
async fn bad_urls_and_missing_databases_are_errors() {
    assert!(matches!(PostgresStore::connect("postgres://[bad", options(1)).await, Err(StoreError::Backend(_))));
    let missing = common::with_database(&common::admin_url(), "viewlog_no_such_database");
    assert!(matches!(PostgresStore::connect(&missing, options(1)).await, Err(StoreError::Backend(_))));
}

/// Stores and reads back a few events, so that the pool has connections open.
async fn use_store(store: &PostgresStore) {
    let account = store.create_account("acme", 0).await.expect("account").id;
    let events: Vec<ViewEvent> = (0..10).map(|i| event(&format!("tls-{i}"), T0 + i)).collect();
    assert_eq!(store.insert_events(account, &events).await.expect("insert").inserted, 10);
    assert_eq!(store.count(account, &everything()).await.expect("count"), 10);
}

/// `sslmode=require` (or `verify-full`, or an `sslrootcert` alone) makes every connection of the
/// store use TLS, the server's certificate verified against the `sslrootcert` authority; against
/// Mozilla's roots (no `sslrootcert`) the test server's certificate is refused. Without
/// `sslmode`, connections stay unencrypted, as before.
#[tokio::test]
async fn tls_is_used_when_asked_for_and_the_certificate_verified() {
    let ca = common::ca_file();
    let with = |url: &str, params: &str| format!("{url}{}{params}", if url.contains('?') { '&' } else { '?' });

    let plain = ScratchDb::create().await;
    let store = PostgresStore::connect(&plain.url, options(2)).await.expect("plain");
    use_store(&store).await;
    let security = store.session_security().await.expect("pg_stat_ssl");
    assert!(security.sessions >= 1 && security.encrypted == 0, "{security:?}");

    for params in [format!("sslmode=verify-full&sslrootcert={ca}"), format!("sslrootcert={ca}")] {
        let db = ScratchDb::create().await;
        let store = PostgresStore::connect(&with(&db.url, &params), options(2)).await.expect("TLS");
        use_store(&store).await;
        let security = store.session_security().await.expect("pg_stat_ssl");
        assert!(security.sessions >= 1 && security.encrypted == security.sessions, "{params}: {security:?}");
    }

    let db = ScratchDb::create().await;
    let config: viewlog_store_postgres::PgConfig = with(&db.url, "sslmode=require").parse().expect("config");
    let store = PostgresStore::connect_with_config(config, Some(&ca), options(2)).await.expect("TLS");
    use_store(&store).await;
    let security = store.session_security().await.expect("pg_stat_ssl");
    assert!(security.sessions >= 1 && security.encrypted == security.sessions, "{security:?}");

    let refused = PostgresStore::connect(&with(&db.url, "sslmode=require"), options(1)).await;
    let message = match refused {
        Err(StoreError::Backend(e)) => format!("{e} {e:?}"),
        other => panic!("expected the certificate refused, got {other:?}"),
    };
    assert!(message.contains("UnknownIssuer"), "{message}");

    // The right authority, the wrong name: the server's certificate names 127.0.0.1 and
    // localhost only.
    assert!(db.url.contains("@127.0.0.1:"), "the test server's URL names 127.0.0.1: {}", db.url);
    let renamed = with(&db.url.replace("@127.0.0.1:", "@wrong.invalid:"), "hostaddr=127.0.0.1&sslmode=verify-full");
    let refused = PostgresStore::connect(&format!("{renamed}&sslrootcert={ca}"), options(1)).await;
    let message = match refused {
        Err(StoreError::Backend(e)) => format!("{e} {e:?}"),
        other => panic!("expected the host name refused, got {other:?}"),
    };
    assert!(message.contains("NotValidForName"), "{message}");
}

/// `%`, `_` and `\` in a query are literal characters, and a match never runs from one field
/// into the next (not even for a query holding the separator the index joins them with).
#[tokio::test]
async fn text_filter_wildcards_are_literal_and_fields_stay_apart() {
    let db = ScratchDb::create().await;
    let store = open(&db).await;
    let account = store.create_account("acme", T0).await.expect("account").id;
    let mut events = Vec::new();
    for (i, subject) in ["100% Sure", "a_b", "back\\slash", "aXb", "plain", "Tab\u{1f}Sep"].iter().enumerate() {
        let mut e = event(&format!("s{i}"), T0 + i as i64);
        e.subject = (*subject).to_owned();
        events.push(e);
    }
    let mut joined = event("joined", T0 + 10);
    joined.viewer = "left-ZYX".into();
    joined.from = "WVU-right".into();
    events.push(joined);
    store.insert_events(account, &events).await.expect("insert");

    assert_eq!(ids_matching(&store, account, "%").await, vec!["s0"]);
    assert_eq!(ids_matching(&store, account, "0% s").await, vec!["s0"]);
    assert_eq!(ids_matching(&store, account, "_").await, vec!["s1"]);
    assert_eq!(ids_matching(&store, account, "a_b").await, vec!["s1"], "_ is not any character");
    assert_eq!(ids_matching(&store, account, "\\").await, vec!["s2"]);
    assert_eq!(ids_matching(&store, account, "K\\S").await, vec!["s2"]);
    assert_eq!(ids_matching(&store, account, "%%").await, Vec::<String>::new());
    assert_eq!(ids_matching(&store, account, "zyx").await, vec!["joined"]);
    assert_eq!(ids_matching(&store, account, "zyxwvu").await, Vec::<String>::new());
    assert_eq!(ids_matching(&store, account, "zyx\u{1f}wvu").await, Vec::<String>::new(), "fields stay apart");
    assert_eq!(ids_matching(&store, account, "B\u{1f}s").await, vec!["s5"], "the separator inside a field");
}

/// Case folding is Rust's, whatever the database's locale (the CI cluster runs in the C
/// locale, where PostgreSQL's own `lower('Å')` is `Å`): full mappings and final sigma too.
#[tokio::test]
async fn text_filter_folds_case_like_rust_in_any_locale() {
    let db = ScratchDb::create().await;
    let store = open(&db).await;
    let account = store.create_account("acme", T0).await.expect("account").id;
    let mut events = Vec::new();
    for (i, subject) in ["ÅSA ÖBERG", "ΟΔΥΣΣΕΥΣ", "\u{212a}elvin", "İstanbul", "STRASSE"].iter().enumerate()
    {
        let mut e = event(&format!("u{i}"), T0 + i as i64);
        e.subject = (*subject).to_owned();
        events.push(e);
    }
    store.insert_events(account, &events).await.expect("insert");
    for (text, expected) in [
        ("åsa", vec!["u0"]),
        ("Åsa ö", vec!["u0"]),
        ("οδυσσευς", vec!["u1"]),
        ("ΟΔΥΣΣΕΥΣ", vec!["u1"]),
        ("kelvin", vec!["u2"]),
        ("\u{212a}ELVIN", vec!["u2"]),
        ("i\u{307}stanbul", vec!["u3"]),
        ("straße", vec![]),
    ] {
        let expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        assert_eq!(ids_matching(&store, account, text).await, expected, "{text:?}");
    }
}

/// With statistics, a rare term is answered from the trigram index and a term every record
/// holds by reading the time range in order; both answers are exact.
#[tokio::test]
async fn text_filter_uses_the_trigram_index_for_rare_terms() {
    let db = ScratchDb::create().await;
    let store = open(&db).await;
    assert!(store.has_text_index());
    let account = store.create_account("acme", T0).await.expect("account").id;
    for batch in 0..4 {
        let events: Vec<ViewEvent> = (0..5_000)
            .map(|i| {
                let n = batch * 5_000 + i;
                let mut e = event(&format!("e{n}"), T0 + n);
                if n == 12_345 {
                    e.subject = "Zanzibar shipment".into();
                }
                e
            })
            .collect();
        store.insert_events(account, &events).await.expect("insert");
    }
    common::connect(&db.url).await.batch_execute("ANALYZE view_events").await.expect("analyze");

    let rare = with_text("zanzibar");
    let plan = store.explain_count(account, &rare, false).await.expect("explain");
    assert!(plan.contains("view_events_text"), "{plan}");
    assert_eq!(store.count(account, &rare).await.expect("count"), 1);
    let request = PageRequest { filter: rare, cursor: None, direction: Direction::Older, limit: 25 };
    let plan = store.explain_page(account, &request, false).await.expect("explain");
    assert!(plan.contains("view_events_text"), "{plan}");
    let page = store.page(account, &request).await.expect("page");
    assert_eq!(page.iter().map(|e| e.event.event_id.as_str()).collect::<Vec<_>>(), vec!["e12345"]);

    let common = PageRequest { filter: with_text("example"), cursor: None, direction: Direction::Older, limit: 25 };
    let plan = store.explain_page(account, &common, false).await.expect("explain");
    assert!(plan.contains("view_events_by_time") && !plan.contains("view_events_text"), "{plan}");
    let page = store.page(account, &common).await.expect("page");
    assert_eq!(page.first().map(|e| e.event.event_id.as_str()), Some("e19999"));
    let analyzed = store.explain_page(account, &common, true).await.expect("explain analyze");
    assert!(analyzed.contains("actual time"), "{analyzed}");
}

/// Operations abandoned midway (their futures dropped, as a deadline does) leave nothing
/// behind: with a single connection in the pool, every later operation still gets one and
/// reads its own answers.
#[tokio::test]
async fn abandoned_operations_do_not_disturb_later_ones() {
    let db = ScratchDb::create().await;
    let store = PostgresStore::connect(&db.url, options(1)).await.expect("connect");
    let account = store.create_account("acme", T0).await.expect("account").id;
    let events: Vec<ViewEvent> = (0..3_000).map(|i| event(&format!("e{i}"), T0 + i)).collect();
    store.insert_events(account, &events).await.expect("insert");
    let request = PageRequest { filter: with_text("ubject e2"), cursor: None, direction: Direction::Older, limit: 500 };
    let expected = store.page(account, &request).await.expect("page");
    assert_eq!(expected.len(), 500);
    for round in 0..30u64 {
        let abandoned = tokio::time::timeout(Duration::from_micros(round * 150), store.page(account, &request)).await;
        if let Ok(page) = abandoned {
            assert_eq!(page.expect("page"), expected);
        }
        let late: Vec<ViewEvent> = vec![event(&format!("late{round}"), T0 - 1)];
        let inserted = tokio::time::timeout(Duration::from_micros(round * 100), store.insert_events(account, &late));
        let _ = inserted.await;
        let answer = tokio::time::timeout(Duration::from_secs(10), store.count(account, &with_text("ubject e2")))
            .await
            .expect("a connection is free again");
        assert_eq!(answer.expect("count"), 1_111, "round {round}");
        assert_eq!(store.page(account, &request).await.expect("page"), expected, "round {round}");
    }
    // Every abandoned insert either committed whole or not at all, and seqs stayed dense.
    let all = store
        .page(account, &PageRequest { filter: everything(), cursor: None, direction: Direction::Older, limit: 10_000 })
        .await
        .expect("page");
    let mut seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>());
    assert_eq!(store.snapshot(account).await.expect("snapshot"), all.len() as i64);
}

/// Measures, by hand (`cargo test --release -p viewlog-store-postgres --test postgres --
/// --ignored --nocapture`): ingest of 100,000 events in batches of 10,000 with and without
/// the trigram index, and the plans and timings of a month's search for common, rare and
/// absent terms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_ingest_and_text_search() {
    const EVENTS: i64 = 100_000;
    const YEAR: i64 = 365 * 86_400;
    let names = ["alice", "bob", "carol", "dmitri", "erin", "åsa.öberg", "zoë", "grace", "heidi", "ivan"];
    let words =
        ["Quarterly", "results", "Invoice", "Holiday", "schedule", "Merger", "Résumé", "Wire", "Audit", "Draft"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut events = Vec::with_capacity(EVENTS as usize);
    for i in 0..EVENTS {
        let mut e = event(&format!("m{i}"), T0 - YEAR + next(YEAR as u64) as i64);
        e.viewer = format!("{}@acme.example", names[next(10) as usize]);
        e.from = format!("{}{}@partner{}.example", names[next(10) as usize], next(200), next(50));
        e.to = format!("{}{}@acme.example", names[next(10) as usize], next(300));
        e.subject = format!(
            "{} {} {} {}",
            words[next(10) as usize],
            words[next(10) as usize],
            words[next(10) as usize],
            next(1_000_000)
        );
        events.push(e);
    }
    for indexed in [true, false] {
        let db = ScratchDb::create().await;
        let store = open(&db).await;
        let admin = common::connect(&db.url).await;
        if !indexed {
            admin.batch_execute("DROP INDEX view_events_text").await.expect("drop");
        }
        let account = store.create_account("acme", T0).await.expect("account").id;
        let started = std::time::Instant::now();
        for batch in events.chunks(10_000) {
            store.insert_events(account, batch).await.expect("insert");
        }
        let elapsed = started.elapsed();
        println!("trigram index {indexed}: ingest {} events/s", (EVENTS as f64 / elapsed.as_secs_f64()).round());
        admin.batch_execute("VACUUM ANALYZE view_events").await.expect("analyze");
        let sizes = admin
            .query_one(
                "SELECT pg_size_pretty(pg_table_size('view_events')), \
                        pg_size_pretty(pg_indexes_size('view_events'))",
                &[],
            )
            .await
            .expect("sizes");
        println!("  table {}, all indexes {}", sizes.get::<_, String>(0), sizes.get::<_, String>(1));
        let month = EventFilter { start: T0 - 30 * 86_400, end: T0, text: None, snapshot: i64::MAX };
        for text in ["acme", "holiday", "åsa", "999999", "zzqx"] {
            let filter = EventFilter { text: Some(text.to_owned()), ..month.clone() };
            let request = PageRequest { filter: filter.clone(), cursor: None, direction: Direction::Older, limit: 100 };
            let matches = store.count(account, &filter).await.expect("count");
            for (what, plan) in [
                ("page ", store.explain_page(account, &request, true).await.expect("explain")),
                ("count", store.explain_count(account, &filter, true).await.expect("explain")),
            ] {
                let time = plan.lines().find(|l| l.contains("Execution Time")).unwrap_or_default().trim().to_owned();
                let access: Vec<&str> = plan
                    .lines()
                    .filter(|l| l.contains("Scan"))
                    .map(|l| l.trim().trim_start_matches("->").trim().split("  (").next().unwrap_or_default())
                    .collect();
                println!("  {text:>8} {what} {matches:>6} matches  {time:<28} {}", access.join(" / "));
            }
        }
    }
}

/// Where `pg_trgm` cannot be had (here: the role may not create extensions in the database),
/// the store starts anyway and filters text exactly as well, only without the index; once the
/// extension can be had, the next start creates the index.
#[tokio::test]
async fn works_without_pg_trgm_and_creates_the_index_once_it_can() {
    let db = ScratchDb::create().await;
    let owner = common::connect(&db.url).await;
    owner
        .batch_execute(&format!("REVOKE CREATE ON DATABASE {} FROM PUBLIC, CURRENT_USER", db.name))
        .await
        .expect("revoke");
    let store = open(&db).await;
    assert!(!store.has_text_index());
    let stats: i64 = owner
        .query_one("SELECT count(*) FROM pg_statistic_ext WHERE stxname = 'view_events_text_stats'", &[])
        .await
        .expect("statistics")
        .get(0);
    assert_eq!(stats, 1, "the planner gets statistics of the searched text instead");
    let account = store.create_account("acme", T0).await.expect("account").id;
    let mut e = event("e1", T0);
    e.subject = "ÅSA".into();
    store.insert_events(account, &[e, event("e2", T0)]).await.expect("insert");
    assert_eq!(ids_matching(&store, account, "åsa").await, vec!["e1"]);
    drop(store);

    owner.batch_execute(&format!("GRANT CREATE ON DATABASE {} TO CURRENT_USER", db.name)).await.expect("grant");
    let store = open(&db).await;
    assert!(store.has_text_index());
    assert_eq!(ids_matching(&store, account, "åsa").await, vec!["e1"]);
}

/// Events stored before the hour counts existed (schema version 1) get theirs from migration 2:
/// counts that sum hours agree with the events, at once and after more are inserted.
#[tokio::test]
async fn the_hour_counts_are_filled_for_events_stored_before_them() {
    assert_eq!(PostgresStore::schema_version(), 2, "this test rewinds the database to version 1");
    let db = ScratchDb::create().await;
    let store = open(&db).await;
    let account = store.create_account("acme", T0).await.expect("account").id;
    let mut events: Vec<ViewEvent> = (0..300i64).map(|i| event(&format!("e{i}"), T0 - 86_400 + i * 613)).collect();
    store.insert_events(account, &events).await.expect("insert");
    drop(store);
    let client = common::connect(&db.url).await;
    client
        .batch_execute("DROP TABLE event_hours; DELETE FROM viewlog_schema WHERE version = 2")
        .await
        .expect("back to version 1");
    let store = open(&db).await;
    let check = |events: Vec<ViewEvent>| {
        let store = store.clone();
        async move {
            let ranges = [
                (T0 - 86_400, T0 + 86_400),
                (T0 - 86_400 + 1_000, T0 + 3_599 * 20),
                (T0 - 5_000, T0 - 5_000 + 7_200),
                (T0 - 3_600 * 10, T0 - 3_600 * 8 - 1),
            ];
            for (start, end) in ranges {
                let filter = EventFilter { start, end, text: None, snapshot: i64::MAX };
                let expected = events.iter().filter(|e| e.viewed >= start && e.viewed <= end).count() as u64;
                assert_eq!(store.count(account, &filter).await.expect("count"), expected, "{start}..{end}");
            }
        }
    };
    check(events.clone()).await;
    let hours: i64 =
        client.query_one("SELECT coalesce(sum(events), 0)::bigint FROM event_hours", &[]).await.expect("sum").get(0);
    assert_eq!(hours, 300);
    let more: Vec<ViewEvent> = (0..50i64).map(|i| event(&format!("more{i}"), T0 - 40_000 + i * 997)).collect();
    store.insert_events(account, &more).await.expect("insert more");
    events.extend(more);
    check(events).await;
}
