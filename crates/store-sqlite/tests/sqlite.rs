//! Behaviour particular to the SQLite store: opening files, cancellation on a real table, and
//! (ignored, run by hand in release mode) ingest and paging measurements.

use std::path::Path;
use std::time::{Duration, Instant};

use viewlog_store::conformance::{everything, T0};
use viewlog_store::{AccountId, Cursor, Direction, EventFilter, PageRequest, Store, StoreError, ViewEvent};
use viewlog_store_sqlite::{SqliteOptions, SqliteStore};

async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(path, SqliteOptions::default()).await
}

fn expect_corrupt(result: Result<SqliteStore, StoreError>, what: &str) {
    match result {
        Err(StoreError::Corrupt(message)) => assert!(!message.is_empty()),
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn creates_the_file_and_reopens_it_without_migrating_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let store = open(&path).await.expect("create");
    assert!(path.exists());
    assert_eq!(store.path(), path);
    assert_eq!(store.readers(), 4);
    store.create_account("acme", T0).await.expect("account");
    drop(store);
    let store = open(&path).await.expect("reopen");
    assert_eq!(store.list_accounts().await.expect("list").len(), 1);
    let db = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    assert_eq!(version, SqliteStore::schema_version());
}

#[tokio::test]
async fn refuses_a_database_from_a_newer_viewlog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("newer.db");
    drop(open(&path).await.expect("create"));
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        db.pragma_update(None, "user_version", SqliteStore::schema_version() + 1).expect("bump");
    }
    expect_corrupt(open(&path).await, "newer schema");
}

#[tokio::test]
async fn refuses_files_that_are_not_viewlog_databases() {
    let dir = tempfile::tempdir().expect("tempdir");

    let foreign = dir.path().join("foreign.db");
    {
        let db = rusqlite::Connection::open(&foreign).expect("raw open");
        db.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');").expect("create");
    }
    expect_corrupt(open(&foreign).await, "a database with tables of its own");
    // It was left as it was (not switched to WAL, not migrated).
    let db = rusqlite::Connection::open(&foreign).expect("raw open");
    let mode: String = db.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
    assert_eq!(mode, "delete");
    let tables: i64 = db.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).expect("count");
    assert_eq!(tables, 1);

    let other_app = dir.path().join("other-app.db");
    {
        let db = rusqlite::Connection::open(&other_app).expect("raw open");
        db.pragma_update(None, "application_id", 0x1234_5678).expect("app id");
    }
    expect_corrupt(open(&other_app).await, "another application's database");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).expect("write");
    expect_corrupt(open(&garbage).await, "not a database at all");
}

/// How the synthetic event ids are made.
#[derive(Clone, Copy)]
enum Ids {
    /// Random, like UUIDv4: the event-id index is written all over.
    Random,
    /// Rising with time, like UUIDv7 or ULID: the index grows at its end.
    TimeOrdered,
}

fn synthetic(i: u64, base: i64, spread: i64) -> ViewEvent {
    synthetic_with(i, base, spread, Ids::Random)
}

fn synthetic_with(i: u64, base: i64, spread: i64, ids: Ids) -> ViewEvent {
    // A cheap, well-mixed pseudo-random id (splitmix64), as real event ids are UUIDs.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ViewEvent {
        event_id: match ids {
            Ids::Random => {
                format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", z >> 32, (z >> 16) & 0xffff, z & 0xfff, i & 0xfff, i)
            }
            Ids::TimeOrdered => format!("{:012x}-7{:03x}-8{:03x}-{:016x}", i, z & 0xfff, (z >> 12) & 0xfff, z),
        },
        from: format!("sender{}@example{}.com", z % 1000, z % 7),
        to: format!("recipient{}@example.org", (z >> 8) % 5000),
        viewer: format!("admin{}@example.com", (z >> 16) % 20),
        source: "Message Tracking".into(),
        content_viewed: z.is_multiple_of(2),
        discovery_case: z.is_multiple_of(11),
        message_date: base - 86_400,
        viewed: base + (z % spread as u64) as i64,
        subject: format!("Ärende {} – quarterly figures for region {}", z % 100_000, (z >> 20) % 50),
        viewer_ip: Some(format!("10.0.{}.{}", (z >> 3) % 256, (z >> 11) % 256)),
        message_id: Some(format!("<{z:x}@mail.example.com>")),
        action: Some("view".into()),
        case_id: None,
    }
}

async fn fill(store: &SqliteStore, account: AccountId, n: u64, spread: i64) {
    for start in (0..n).step_by(10_000) {
        let batch: Vec<ViewEvent> = (start..(start + 10_000).min(n)).map(|i| synthetic(i, T0, spread)).collect();
        store.insert_events(account, &batch).await.expect("insert");
    }
}

/// A page request with a text filter that matches nothing and that the text index cannot
/// narrow (no letter or digit in it) scans the whole range; dropped by its deadline, it is
/// interrupted inside SQLite, and the (only) reader connection serves the next request
/// correctly. (Words no event holds are answered from the dictionaries in well under a
/// millisecond, too quickly to be caught running.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_search_is_interrupted_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions { readers: 1, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("big.db"), options).await.expect("open");
    let account = store.create_account("acme", T0).await.expect("account").id;
    fill(&store, account, 100_000, 30 * 86_400).await;

    let search = EventFilter { text: Some("@@@@@@".into()), ..everything() };
    let request = PageRequest { filter: search.clone(), cursor: None, direction: Direction::Older, limit: 25 };
    // How long the whole scan takes, uninterrupted (several ms even in release mode).
    let started = Instant::now();
    assert!(store.page(account, &request).await.expect("full scan").is_empty());
    let full_scan = started.elapsed();

    // A deadline far shorter than the scan. Should the deadline pass before the blocking
    // thread even started (a loaded machine), the operation is dropped without running and
    // nothing was interrupted: try again with a longer one.
    let mut deadline = full_scan / 20;
    let mut interrupted = false;
    for _ in 0..5 {
        let result = tokio::time::timeout(deadline, store.page(account, &request)).await;
        assert!(result.is_err(), "the scan cannot finish in {deadline:?} (a full scan took {full_scan:?})");
        // The blocking side notices the interrupt, counts it and returns the connection.
        let since = Instant::now();
        while since.elapsed() < full_scan * 3 + Duration::from_millis(500) {
            if store.interrupted_operations() > 0 {
                interrupted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if interrupted {
            break;
        }
        deadline = (deadline * 2).min(full_scan / 3);
    }
    assert!(interrupted, "the running scan was never interrupted");
    assert_eq!(store.interrupted_operations(), 1);

    // The same connection answers correctly afterwards, also the same slow query.
    let plain = PageRequest { filter: everything(), cursor: None, direction: Direction::Older, limit: 25 };
    assert_eq!(store.page(account, &plain).await.expect("page").len(), 25);
    assert!(store.page(account, &request).await.expect("full scan").is_empty());
    assert_eq!(store.count(account, &search).await.expect("count"), 0);
    assert_eq!(store.count(account, &everything()).await.expect("count"), 100_000);
    assert_eq!(store.interrupted_operations(), 1);
}

/// The CPU time this process has used (user and system), where `/proc` tells it. On a busy
/// machine wall time says little; CPU time compares runs better.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces);
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Ingest rate with batches of 10,000, and the cost of a deep page against the first.
/// Run by hand: `cargo test --release -p viewlog-store-sqlite --test sqlite -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand in release mode"]
async fn measure_ingest_and_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("bench.db")).await.expect("open");
    let account = store.create_account("acme", T0).await.expect("account").id;
    let total: u64 = std::env::var("VIEWLOG_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    // The usual case: events arrive about in time order (a minute of jitter), a year's worth.
    let per_event = 365 * 86_400 / total as i64;
    let make = |ids: Ids, offset: u64, n: u64| -> Vec<Vec<ViewEvent>> {
        (0..n / 10_000)
            .map(|b| {
                (b * 10_000..(b + 1) * 10_000)
                    .map(|i| synthetic_with(i + offset, T0 + i as i64 * per_event, 60, ids))
                    .collect()
            })
            .collect()
    };
    let ingest = |label: &'static str, account: AccountId, batches: Vec<Vec<ViewEvent>>| {
        let store = store.clone();
        async move {
            let n: usize = batches.iter().map(Vec::len).sum();
            let (started, cpu_started) = (Instant::now(), cpu_time());
            for batch in &batches {
                let outcome = store.insert_events(account, batch).await.expect("insert");
                assert_eq!(outcome.inserted as usize, batch.len());
            }
            let elapsed = started.elapsed();
            let cpu = match (cpu_started, cpu_time()) {
                (Some(before), Some(after)) => {
                    let cpu = after.saturating_sub(before);
                    format!(", {cpu:?} of CPU: {:.0} events per CPU second", n as f64 / cpu.as_secs_f64())
                }
                _ => String::new(),
            };
            println!(
                "ingest, {label}: {n} events in batches of 10,000 in {elapsed:?}: {:.0} events/s{cpu}",
                n as f64 / elapsed.as_secs_f64()
            );
        }
    };
    let batches = make(Ids::TimeOrdered, 0, total);
    ingest("in time order, time-ordered ids", account, batches.clone()).await;
    let random = store.create_account("random-ids", T0).await.expect("account").id;
    ingest("in time order, random ids (UUIDv4)", random, make(Ids::Random, total, total.min(200_000))).await;
    // The worst case: a backfill whose view times are spread at random over the whole year.
    let backfill = store.create_account("backfill", T0).await.expect("account").id;
    let spread: Vec<Vec<ViewEvent>> = (0..10)
        .map(|b| (b * 10_000..(b + 1) * 10_000).map(|i| synthetic(i + 2 * total, T0, 365 * 86_400)).collect())
        .collect();
    ingest("random times over a year, random ids", backfill, spread).await;
    let started = Instant::now();
    let outcome = store.insert_events(account, &batches[0]).await.expect("insert");
    assert_eq!(outcome.duplicates, 10_000);
    println!("re-sending a batch of 10,000 duplicates: {:?}", started.elapsed());

    let page_size = 100u32;
    let month = EventFilter { start: T0, end: T0 + 30 * 86_400, text: None, snapshot: i64::MAX };
    let mut cursor: Option<Cursor> = None;
    let mut timings = Vec::new();
    for n in 0.. {
        let request = PageRequest { filter: month.clone(), cursor, direction: Direction::Older, limit: page_size };
        let started = Instant::now();
        let page = store.page(account, &request).await.expect("page");
        timings.push(started.elapsed());
        if page.len() < page_size as usize || n > 10_000 {
            break;
        }
        cursor = page.last().map(|e| Cursor { viewed: e.event.viewed, seq: e.seq });
    }
    let pages = timings.len();
    let avg = |range: std::ops::Range<usize>| {
        let slice = &timings[range];
        slice.iter().sum::<Duration>() / slice.len() as u32
    };
    println!(
        "paging a month ({pages} pages of {page_size}): first 10 pages {:?} each, last 10 {:?} each",
        avg(0..10.min(pages)),
        avg(pages.saturating_sub(10)..pages)
    );
    for text in ["quarterly", "ärende 4242", "no such text"] {
        let request = PageRequest {
            filter: EventFilter { text: Some(text.into()), ..month.clone() },
            cursor: None,
            direction: Direction::Older,
            limit: page_size,
        };
        let started = Instant::now();
        let page = store.page(account, &request).await.expect("page");
        println!("text {text:?} over a month: {} records in {:?}", page.len(), started.elapsed());
    }
    let started = Instant::now();
    let n = store.count(account, &month).await.expect("count");
    println!("count of a month ({n}): {:?}", started.elapsed());

    // Copying the store: every event of the account in seq order, in pages of 10,000. The
    // first call builds the seq index.
    let started = Instant::now();
    let first = store.events_after(account, 0, 1).await.expect("events after");
    assert_eq!(first.len(), 1);
    println!(
        "the first events_after, building the seq index over {} events: {:?}",
        total + total.min(200_000) + 100_000,
        started.elapsed()
    );
    let started = Instant::now();
    let (mut after, mut copied) = (0, 0usize);
    loop {
        let events = store.events_after(account, after, 10_000).await.expect("events after");
        let Some(last) = events.last() else { break };
        after = last.seq;
        copied += events.len();
    }
    assert_eq!(copied as u64, total);
    let elapsed = started.elapsed();
    println!(
        "events_after over the whole account ({copied} events, pages of 10,000): {elapsed:?}: {:.0} events/s",
        copied as f64 / elapsed.as_secs_f64()
    );
}

/// What the `(account_id, seq)` index (for `events_after`) costs ingest: two stores, one with
/// the index dropped, take the same batches in turn (alternating which goes first), so that a
/// busy machine slows both alike. Run by hand:
/// `cargo test --release -p viewlog-store-sqlite --test sqlite -- --ignored --nocapture measure_seq_index_cost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand in release mode"]
async fn measure_seq_index_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with = open(&dir.path().join("with.db")).await.expect("open");
    let without = open(&dir.path().join("without.db")).await.expect("open");
    // The first events_after creates the index.
    let empty = with.create_account("empty", T0).await.expect("account").id;
    assert!(with.events_after(empty, 0, 1).await.expect("events after").is_empty());
    let total: u64 = std::env::var("VIEWLOG_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let per_event = 365 * 86_400 / total as i64;
    let stores = [("with the seq index", &with), ("without", &without)];
    let cases: [(&str, Ids, u64, i64); 3] = [
        ("in time order, time-ordered ids", Ids::TimeOrdered, total, 60),
        ("in time order, random ids (UUIDv4)", Ids::Random, total.min(200_000), 60),
        ("random times over a year, random ids", Ids::Random, 100_000, 365 * 86_400),
    ];
    for (case, (label, ids, n, spread)) in cases.into_iter().enumerate() {
        let mut accounts = Vec::new();
        for (_, store) in &stores {
            accounts.push(store.create_account(&format!("case-{case}"), T0).await.expect("account").id);
        }
        let offset = case as u64 * 10 * total;
        let mut wall = [Duration::ZERO; 2];
        let mut cpu = [Duration::ZERO; 2];
        for b in 0..n / 10_000 {
            let batch: Vec<ViewEvent> = (b * 10_000..(b + 1) * 10_000)
                .map(|i| {
                    let base = if spread == 60 { T0 + i as i64 * per_event } else { T0 };
                    synthetic_with(i + offset, base, spread, ids)
                })
                .collect();
            let order = if b % 2 == 0 { [0, 1] } else { [1, 0] };
            for s in order {
                let (started, cpu_started) = (Instant::now(), cpu_time());
                let outcome = stores[s].1.insert_events(accounts[s], &batch).await.expect("insert");
                assert_eq!(outcome.inserted, 10_000);
                wall[s] += started.elapsed();
                if let (Some(before), Some(after)) = (cpu_started, cpu_time()) {
                    cpu[s] += after.saturating_sub(before);
                }
            }
        }
        println!("ingest, {label}, {n} events in batches of 10,000:");
        for (s, (name, _)) in stores.iter().enumerate() {
            println!(
                "  {name:>18}: {:?} ({:.0} events/s), {:?} of CPU ({:.0} events per CPU second)",
                wall[s],
                n as f64 / wall[s].as_secs_f64(),
                cpu[s],
                n as f64 / cpu[s].as_secs_f64()
            );
        }
        println!(
            "  the index costs {:+.1}% wall time, {:+.1}% CPU time",
            (wall[0].as_secs_f64() / wall[1].as_secs_f64() - 1.0) * 100.0,
            (cpu[0].as_secs_f64() / cpu[1].as_secs_f64() - 1.0) * 100.0
        );
    }
    drop((with, without));
    for name in ["with.db", "without.db"] {
        let db = rusqlite::Connection::open(dir.path().join(name)).expect("raw open");
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
        let pages: i64 = db.pragma_query_value(None, "page_count", |r| r.get(0)).expect("page count");
        println!("{name}: {} MiB", pages * 8192 / (1 << 20));
    }
}
