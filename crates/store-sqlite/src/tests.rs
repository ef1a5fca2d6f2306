//! Tests that need the store's insides: cancellation and per-connection settings.

use std::time::{Duration, Instant};

use viewlog_store::conformance::Batches;
use viewlog_store::{Cursor, Direction, EventFilter, PageRequest, Store, StoredEvent, ViewEvent};

use super::*;

async fn store(readers: usize) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions { readers, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("viewlog.db"), options).await.expect("open");
    (store, dir)
}

/// The `now` replay records are judged against (any fixed time: the store uses the one given).
const NOW: i64 = 1_700_000_000;

/// Counts for minutes unless interrupted.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000000) SELECT count(*) FROM c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_interrupts_the_running_statement() {
    let (store, _dir) = store(1).await;
    let query = store.read_for_test(|db| db.query_row(ENDLESS, [], |r| r.get::<_, i64>(0)));
    let timed_out = tokio::time::timeout(Duration::from_millis(200), query).await;
    assert!(timed_out.is_err(), "the endless query cannot have finished");

    // The only reader connection is free again as soon as the interrupt lands, and works.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), store.ping()).await.expect("ping in time").expect("ping");
    assert!(started.elapsed() < Duration::from_secs(20));
    let seven = store.read_for_test(|db| db.query_row("SELECT 3 + 4", [], |r| r.get::<_, i64>(0))).await;
    assert_eq!(seven.expect("query after interrupt"), 7);
    assert_eq!(store.interrupted_operations(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_never_reaches_a_later_operation() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    for i in 0..300u64 {
        // Cancel quick operations at all sorts of moments: before they start, while they run,
        // just after they finish.
        let quick = store.read_for_test(|db| db.query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0)));
        let _ = tokio::time::timeout(Duration::from_micros(i * 7 % 400), quick).await;
        // The next operation on the same connection must never see that interrupt.
        assert_eq!(store.snapshot(account).await.expect("later operation"), 0, "iteration {i}");
    }
}

/// Holds a reader connection for `time` (an operation that sleeps on it); returns once it
/// holds it. The task's answer is 1.
async fn hold_a_reader(store: &SqliteStore, time: Duration) -> tokio::task::JoinHandle<StoreResult<i64>> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let other = store.clone();
    let busy = tokio::spawn(async move {
        other
            .read_for_test(move |db| {
                let _ = started_tx.send(());
                std::thread::sleep(time);
                db.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            })
            .await
    });
    started_rx.await.expect("the busy operation started");
    busy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_operations_run_on_the_calling_thread_while_a_connection_is_free() {
    let (store, _dir) = store(1).await;
    let here = std::thread::current().id();
    let ran_on = store.inner.readers.run_short(|_, _| Ok(std::thread::current().id())).await.expect("short");
    assert_eq!(ran_on, here, "a free connection: no hop to a blocking thread");

    // The only reader busy: the short operation waits for it like any other, off this thread.
    let busy = hold_a_reader(&store, Duration::from_millis(300)).await;
    let here = std::thread::current().id();
    let waited = Instant::now();
    let ran_on = store.inner.readers.run_short(|_, _| Ok(std::thread::current().id())).await.expect("short");
    assert_ne!(ran_on, here, "no connection free: it ran on a blocking thread");
    assert!(waited.elapsed() >= Duration::from_millis(100), "it waited for the connection");
    assert_eq!(busy.await.expect("join").expect("busy"), 1);
}

/// A short operation that had to wait for a blocking thread runs to its end even if its caller
/// goes away while its statement runs: an interrupted write would roll back the whole
/// transaction it joined (a group of replay records).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_operations_are_not_interrupted_when_their_caller_goes_away() {
    use std::sync::atomic::AtomicBool;
    let (store, _dir) = store(1).await;
    let busy = hold_a_reader(&store, Duration::from_millis(50)).await;
    let release = Arc::new(AtomicBool::new(false));
    let released = Arc::clone(&release);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let short = store.inner.readers.run_short(move |conn, _| {
        // A statement that runs until the test lets it end (10 s at most).
        conn.db.create_scalar_function("wait_for_release", 0, rusqlite::functions::FunctionFlags::SQLITE_UTF8, {
            let released = Arc::clone(&released);
            move |_| {
                if let Some(started) = started_tx.lock().ok().and_then(|mut tx| tx.take()) {
                    let _ = started.send(());
                }
                let waiting = Instant::now();
                while !released.load(Ordering::SeqCst) && waiting.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(1i64)
            }
        })?;
        // The loop after the wait is where an interrupt would land.
        let loop_after_wait =
            "WITH RECURSIVE c(x) AS (SELECT wait_for_release() UNION ALL SELECT x + 1 FROM c WHERE x < 1000) \
             SELECT max(x) FROM c";
        Ok(conn.db.query_row(loop_after_wait, [], |r| r.get::<_, i64>(0))?)
    });
    // It starts once the reader is free (after 50 ms) and is dropped while its statement runs.
    let mut short = Box::pin(short);
    tokio::select! {
        _ = &mut short => panic!("it cannot end before it is released"),
        started = started_rx => started.expect("its statement started"),
    }
    drop(short);
    release.store(true, Ordering::SeqCst);
    assert_eq!(busy.await.expect("join").expect("busy"), 1);
    // The next operation on the reader runs after the dropped one has finished.
    let two = store.read_for_test(|db| db.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))).await;
    assert_eq!(two.expect("the reader works"), 2);
    assert_eq!(store.interrupted_operations(), 0, "the dropped operation ran to its end");
}

/// The signature's lookups have connections of their own: queries holding every reader do
/// not hold them up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_lookups_do_not_wait_for_busy_readers() {
    let (store, _dir) = store(1).await;
    let busy = hold_a_reader(&store, Duration::from_millis(1_000)).await;
    let (app, principal) = store.signed_lookup("no-such-app", "no-such-key").await.expect("lookup");
    assert!(app.is_none() && principal.is_none());
    assert!(!busy.is_finished(), "the lookup did not wait for the only reader");
    assert_eq!(busy.await.expect("join").expect("busy"), 1);
}

fn event(i: usize) -> ViewEvent {
    ViewEvent {
        event_id: format!("ev-{i}"),
        from: format!("sender{i}@example.com"),
        to: "rcpt@example.org".into(),
        viewer: "admin@example.com".into(),
        source: "Message Tracking".into(),
        content_viewed: true,
        discovery_case: false,
        message_date: 1_600_000_000,
        viewed: 1_600_000_000 + (i as i64 % 5000),
        subject: format!("Subject number {i}"),
        viewer_ip: None,
        message_id: None,
        action: None,
        case_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_ingest_is_all_or_nothing() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let batch: Vec<ViewEvent> = (0..40_000).map(event).collect();
    let _ = tokio::time::timeout(Duration::from_millis(3), store.insert_events(account, &batch)).await;
    let snapshot = store.snapshot(account).await.expect("snapshot");
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    let count = store.count(account, &filter).await.expect("count");
    assert!(count == 0 || count == 40_000, "{count}");
    assert_eq!(snapshot as u64, count);
    // The writer works afterwards.
    let outcome = store.insert_events(account, &batch[..10]).await.expect("insert");
    assert_eq!(outcome.inserted + outcome.duplicates, 10);
}

async fn synchronous(pool: &Arc<conn::Pool>) -> i64 {
    pool.run(|conn, _| Ok(conn.db.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))?))
        .await
        .expect("pragma")
}

#[tokio::test]
async fn replay_records_commit_with_normal_sync_and_events_with_full() {
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;
    let (store, _dir) = store(1).await;
    let (writer, requests) = (&store.inner.writer, store.requests().await.expect("requests file"));
    assert_eq!((synchronous(writer).await, synchronous(requests).await), (FULL, NORMAL));
    let autocheckpoint = requests
        .run(|conn, _| Ok(conn.db.pragma_query_value(None, "wal_autocheckpoint", |r| r.get::<_, i64>(0))?))
        .await
        .expect("pragma");
    assert_eq!(autocheckpoint, requests::AUTOCHECKPOINT);
    let autocheckpoint = writer
        .run(|conn, _| Ok(conn.db.pragma_query_value(None, "wal_autocheckpoint", |r| r.get::<_, i64>(0))?))
        .await
        .expect("pragma");
    assert_eq!(autocheckpoint, conn::WRITER_AUTOCHECKPOINT);
    assert!(store.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("remember"));
    let account = store.create_account("acme", 0).await.expect("account").id;
    store.purge_requests(NOW).await.expect("purge");
    store.insert_events(account, &[event(1)]).await.expect("insert");
    assert_eq!((synchronous(writer).await, synchronous(requests).await), (FULL, NORMAL));
}

/// The events file's `PRAGMA data_version` as its one reader sees it: it changes when another
/// connection commits to the file (and SQLite then drops the reader's cache and memory map).
async fn events_file_version(store: &SqliteStore) -> i64 {
    store.read_for_test(|db| db.pragma_query_value(None, "data_version", |r| r.get(0))).await.expect("data_version")
}

/// Replay records go to the requests file: remembering and purging them leaves the events file
/// as its readers last saw it; an ingest does not.
#[tokio::test]
async fn replay_records_leave_the_events_file_alone() {
    let (store, dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let before = events_file_version(&store).await;
    for i in 0..5 {
        assert!(store.remember_request("AK", &format!("req-{i}"), NOW + 60, NOW).await.expect("remember"));
    }
    assert!(!store.remember_request("AK", "req-3", NOW + 60, NOW).await.expect("replay"));
    assert_eq!(store.purge_requests(NOW + 61).await.expect("purge"), 5);
    assert_eq!(events_file_version(&store).await, before);
    store.insert_events(account, &[event(1)]).await.expect("insert");
    assert_ne!(events_file_version(&store).await, before, "the check sees a commit to the events file");
    assert!(dir.path().join("viewlog.db-requests").is_file());
}

/// Options that open the requests file with the store, as a server does.
fn held() -> SqliteOptions {
    SqliteOptions { hold_requests_file: true, ..SqliteOptions::default() }
}

/// Puts back the columns migration 13 dropped, filled from the records: what a file of version
/// 12 or older held, for the tests that take a file back to such a version.
fn widen_events(db: &rusqlite::Connection) {
    for table in ["view_events", "late_events"] {
        for column in ["sender", "recipient", "viewer", "source", "subject"] {
            db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"))
                .expect("column");
        }
        db.execute_batch(&format!(
            "UPDATE {table} SET sender = record ->> '$.from', recipient = record ->> '$.to', \
             viewer = record ->> '$.viewer', source = record ->> '$.source', subject = record ->> '$.subject'"
        ))
        .expect("columns from the records");
    }
}

/// Without `hold_requests_file` the requests file is opened at the first replay record: a
/// process that only administers the database never creates or touches it.
#[tokio::test]
async fn the_requests_file_is_opened_at_the_first_replay_record() {
    let (store, dir) = store(1).await;
    let requests_file = requests::path_for(&dir.path().join("viewlog.db"));
    let account = store.create_account("acme", 0).await.expect("account").id;
    store.insert_events(account, &[event(1)]).await.expect("insert");
    assert!(!requests_file.exists(), "{} exists before any replay record", requests_file.display());
    assert!(store.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("remember"));
    assert!(requests_file.exists());
    assert!(!store.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("replay"));
    // Held exclusively from before its first access in WAL mode: its log's index is in this
    // process's memory, not in a shared-memory file.
    let mut shm = requests_file.into_os_string();
    shm.push("-shm");
    assert!(!std::path::Path::new(&shm).exists(), "{shm:?} exists");
}

/// One server per SQLite database: a store that holds the requests file keeps a second one from
/// holding it (with an error that says why) until it closes, while stores that only administer
/// the database open and work beside it.
#[tokio::test]
async fn a_second_server_cannot_hold_the_requests_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let first = SqliteStore::open(&path, held()).await.expect("first server");
    assert!(first.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("remember"));
    let quick = SqliteOptions { busy_timeout: Duration::from_millis(50), ..held() };
    match SqliteStore::open(&path, quick.clone()).await {
        Err(StoreError::Backend(e)) => {
            let message = e.to_string();
            assert!(message.contains("held by another process"), "{message}");
            assert!(message.contains("one viewlog server per SQLite database"), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let admin =
        SqliteStore::open(&path, SqliteOptions { busy_timeout: Duration::from_millis(50), ..SqliteOptions::default() })
            .await
            .expect("an administering store opens beside the server");
    let account = admin.create_account("acme", 0).await.expect("account").id;
    admin.insert_events(account, &[event(1)]).await.expect("insert");
    // Its own replay record would need the file the server holds: refused, not waited for long.
    assert!(admin.remember_request("AK", "req-2", NOW + 60, NOW).await.is_err());
    assert!(!first.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("still the server's"));
    drop(admin);
    drop(first);
    let second = SqliteStore::open(&path, quick).await.expect("the next server, once the first has stopped");
    assert!(!second.remember_request("AK", "req-1", NOW + 60, NOW).await.expect("records survive"));
}

/// Requests that arrive together write their replay records into one transaction and are
/// answered once it has committed: one commit for all of them, a request id repeated among them
/// is a replay all the same, and every record is in the file when the requests are answered.
#[tokio::test]
async fn replay_records_of_requests_arriving_together_share_one_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let store = SqliteStore::open(&path, held()).await.expect("open");
    let ids: Vec<String> = (0..50).map(|i| format!("req-{i}")).chain(["req-7".to_owned()]).collect();
    let fresh = futures::future::join_all(ids.iter().map(|id| store.remember_request("AK", id, NOW + 60, NOW))).await;
    let fresh: Vec<bool> = fresh.into_iter().map(|f| f.expect("remember")).collect();
    assert!(fresh[..50].iter().all(|f| *f), "{fresh:?}");
    assert!(!fresh[50], "the second req-7 is a replay of the first, not committed yet when it came");
    assert_eq!(store.replay_commits(), 1);

    // One after another, each waits for its own commit.
    assert!(store.remember_request("AK", "req-50", NOW + 60, NOW).await.expect("remember"));
    assert!(store.remember_request("AK", "req-51", NOW + 60, NOW).await.expect("remember"));
    assert_eq!(store.replay_commits(), 3);

    // A purge commits an open group before its own chunks.
    let (late, purged) =
        tokio::join!(store.remember_request("AK", "req-52", NOW + 60, NOW), store.purge_requests(NOW + 61));
    assert!(late.expect("remember"));
    assert_eq!(purged.expect("purge"), 53, "every record, the late one included, was committed and purged");
    assert_eq!(store.replay_commits(), 4);
    assert!(store.remember_request("AK", "req-0", NOW + 60, NOW).await.expect("fresh again after the purge"));
    drop(store);

    let again = SqliteStore::open(&path, held()).await.expect("reopen");
    assert!(!again.remember_request("AK", "req-0", NOW + 60, NOW).await.expect("committed before it was answered"));
}

/// A request that begins a group of replay records on a blocking thread (its connection was
/// busy) and goes away before that returns still gets its group committed: otherwise every
/// later request would join the open group and wait for a commit that never comes.
#[tokio::test]
async fn a_group_whose_first_request_went_away_is_committed() {
    let (store, _dir) = store(1).await;
    let requests = Arc::clone(store.requests().await.expect("requests file"));
    // Hold the requests file's one connection until released.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn(async move {
        requests
            .run(move |_, _| {
                let _ = started_tx.send(());
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
                Ok(())
            })
            .await
    });
    started_rx.await.expect("holding the connection");
    let mut first = Box::pin(store.remember_request("AK", "first", NOW + 60, NOW));
    assert!(futures::poll!(&mut first).is_pending(), "waits for the connection");
    release_tx.send(()).expect("release");
    holder.await.expect("join").expect("held");
    // Now it takes the connection and hands its insert to a blocking thread, then goes away.
    assert!(futures::poll!(&mut first).is_pending(), "its insert runs on a blocking thread");
    drop(first);

    let second = tokio::time::timeout(Duration::from_secs(5), store.remember_request("AK", "second", NOW + 60, NOW));
    assert!(second.await.expect("answered, not stuck behind an open group").expect("remember"));
    assert!(!store.remember_request("AK", "first", NOW + 60, NOW).await.expect("replay"), "its record was kept");
}

/// A database of schema version 4 kept its replay records itself: opening it moves them to the
/// requests file (a replay stays a replay) and drops them from the database.
#[tokio::test]
async fn replay_records_of_a_version_4_file_move_to_the_requests_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    drop(SqliteStore::open(&path, held()).await.expect("create"));
    std::fs::remove_file(requests::path_for(&path)).expect("no requests file yet");
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        widen_events(&db);
        db.execute_batch(
            "CREATE TABLE seen_requests (access_key TEXT NOT NULL, request_id TEXT NOT NULL, \
               expires_at INTEGER NOT NULL, PRIMARY KEY (access_key, request_id)) STRICT, WITHOUT ROWID;
             INSERT INTO seen_requests VALUES ('AK', 'old-request', 1700000060);
             DROP TABLE event_days; -- migration 6's
             ALTER TABLE view_events DROP COLUMN record; -- migration 7's
             DROP TABLE text_days; -- migration 8's
             DROP TABLE late_events; DROP TABLE late_accounts; -- migration 10's
             DROP TABLE event_ids; DROP TABLE recent_ids; ALTER TABLE accounts DROP COLUMN recent_ids;
             CREATE UNIQUE INDEX view_events_by_event_id ON view_events (account_id, event_id); -- migration 11's
             DROP TABLE text_sorted; -- migration 12's
             PRAGMA user_version = 4;",
        )
        .expect("version 4");
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("migrate");
    assert!(!store.remember_request("AK", "old-request", NOW + 60, NOW).await.expect("replay"));
    assert!(store.remember_request("AK", "new-request", NOW + 60, NOW).await.expect("new"));
    let left: i64 = store
        .read_for_test(|db| {
            db.query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'seen_requests'", [], |r| r.get(0))
        })
        .await
        .expect("schema");
    assert_eq!(left, 0);
}

/// A requests file of the first layout (the two strings under a primary key, in 4 KiB pages)
/// is converted on open: its records stay replays, its table goes; a new file has 1 KiB pages.
#[tokio::test]
async fn a_requests_file_of_the_first_layout_is_converted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    drop(SqliteStore::open(&path, held()).await.expect("create"));
    let page_size = |file: &std::path::Path| -> i64 {
        let db = rusqlite::Connection::open(file).expect("raw open");
        db.pragma_query_value(None, "page_size", |r| r.get(0)).expect("page size")
    };
    assert_eq!(page_size(&requests::path_for(&path)), 1024);
    std::fs::remove_file(requests::path_for(&path)).expect("remove the new file");
    {
        let db = rusqlite::Connection::open(requests::path_for(&path)).expect("raw open");
        db.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA application_id = 1987538034;
             CREATE TABLE seen_requests (access_key TEXT NOT NULL, request_id TEXT NOT NULL, \
               expires_at INTEGER NOT NULL, PRIMARY KEY (access_key, request_id)) STRICT, WITHOUT ROWID;
             CREATE INDEX seen_requests_by_expiry ON seen_requests (expires_at);
             INSERT INTO seen_requests VALUES ('AK', 'kept', 1700000060), ('AK', 'expired', 1699999000);",
        )
        .expect("first layout");
    }
    let store = SqliteStore::open(&path, held()).await.expect("convert");
    assert!(!store.remember_request("AK", "kept", NOW + 60, NOW).await.expect("replay"));
    assert!(store.remember_request("AK", "expired", NOW + 60, NOW).await.expect("expired: fresh"));
    assert!(!store.remember_request("AK", "expired", NOW + 60, NOW).await.expect("now a replay"));
    assert!(store.remember_request("OTHER", "kept", NOW + 60, NOW).await.expect("another key's id"));
    drop(store);
    let db = rusqlite::Connection::open(requests::path_for(&path)).expect("raw open");
    let old: i64 = db
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'seen_requests%'", [], |r| r.get(0))
        .expect("schema");
    assert_eq!(old, 0, "the first layout's table and index are gone");
    assert_eq!(page_size(&requests::path_for(&path)), 4096, "an older file keeps its pages");
}

/// Purging walks the records in chunks: over several chunks it deletes exactly the expired
/// records, and the others stay replays.
#[tokio::test]
async fn purging_walks_every_chunk() {
    let (store, _dir) = store(1).await;
    let n = requests::PURGE_CHUNK * 2 + 123;
    let expired = |i: usize| i.is_multiple_of(3);
    store
        .requests()
        .await
        .expect("requests file")
        .run(move |conn, _| {
            conn::in_write_tx(&conn.db, |tx| {
                for i in 0..n {
                    let expires_at = if expired(i) { NOW - 1 } else { NOW + 60 };
                    assert!(requests::remember(tx, "AK", &format!("req-{i}"), expires_at, NOW - 100)?);
                }
                Ok(())
            })
        })
        .await
        .expect("records");
    let purged = store.purge_requests(NOW).await.expect("purge");
    assert_eq!(purged, (0..n).filter(|i| expired(*i)).count() as u64);
    assert_eq!(store.purge_requests(NOW).await.expect("purge again"), 0);
    let left: i64 = store
        .requests()
        .await
        .expect("requests file")
        .run(|conn, _| Ok(conn.db.query_row("SELECT count(*) FROM replay_keys", [], |r| r.get(0))?))
        .await
        .expect("count");
    assert_eq!(left as usize, (0..n).filter(|i| !expired(*i)).count());
    for i in [1, 2, 4, n - 1] {
        assert!(!store.remember_request("AK", &format!("req-{i}"), NOW + 60, NOW).await.expect("replay"), "{i}");
    }
}

/// A requests file that belongs to another program is refused, and left as it was.
#[tokio::test]
async fn a_foreign_requests_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    {
        let other = rusqlite::Connection::open(requests::path_for(&path)).expect("other");
        other.execute_batch("PRAGMA application_id = 42; CREATE TABLE mine (x);").expect("foreign file");
    }
    match SqliteStore::open(&path, held()).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("requests file"), "{message}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let other = rusqlite::Connection::open(requests::path_for(&path)).expect("other");
    let mode: String = other.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
    assert_eq!(mode, "delete", "not switched to WAL");
}

#[tokio::test]
async fn connections_are_configured() {
    let (store, _dir) = store(2).await;
    let (mode, fk, query_only): (String, i64, i64) = store
        .read_for_test(|db| {
            Ok((
                db.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                db.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                db.pragma_query_value(None, "query_only", |r| r.get(0))?,
            ))
        })
        .await
        .expect("pragmas");
    assert_eq!((mode.as_str(), fk, query_only), ("wal", 1, 1));
    // The whole setting took: the bundled SQLite was built with the workspace's cap (it lowers
    // the setting to its own, 2 GiB, otherwise).
    let mmap: i64 =
        store.read_for_test(|db| db.pragma_query_value(None, "mmap_size", |r| r.get(0))).await.expect("mmap");
    assert_eq!(mmap, conn::MMAP_SIZE);
    let (version, app_id): (i64, i32) = store
        .read_for_test(|db| {
            Ok((
                db.pragma_query_value(None, "user_version", |r| r.get(0))?,
                db.pragma_query_value(None, "application_id", |r| r.get(0))?,
            ))
        })
        .await
        .expect("pragmas");
    assert_eq!(version, SqliteStore::schema_version());
    assert_eq!(app_id, schema::APPLICATION_ID);
    // Readers refuse to write.
    let write = store.read_for_test(|db| db.execute("DELETE FROM accounts", [])).await;
    assert!(write.is_err());
    assert_eq!(store.readers(), 2);
    let debug = format!("{store:?}");
    assert!(debug.contains("SqliteStore") && debug.contains("viewlog.db"), "{debug}");
}

#[tokio::test]
async fn page_requests_with_every_shape_run() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    store.insert_events(account, &(0..50).map(event).collect::<Vec<_>>()).await.expect("insert");
    for direction in [Direction::Older, Direction::Newer] {
        for cursor in [None, Some(viewlog_store::Cursor { viewed: 1_600_000_015, seq: 16 })] {
            for text in [None, Some("NUMBER 1".to_owned())] {
                let filter = EventFilter { start: 0, end: i64::MAX, text: text.clone(), snapshot: i64::MAX };
                let page =
                    store.page(account, &PageRequest { filter, cursor, direction, limit: 7 }).await.expect("page");
                assert!(!page.is_empty(), "{direction:?} {cursor:?} {text:?}");
            }
        }
    }
}

/// A file written by the first schema is brought up to date on open, its data kept: the new
/// tables work and the events written before the seq index existed are found through it.
#[tokio::test]
async fn a_version_1_file_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        db.execute_batch(schema::MIGRATIONS[0]).expect("schema 1");
        db.pragma_update(None, "user_version", 1).expect("version");
        db.pragma_update(None, "application_id", schema::APPLICATION_ID).expect("application id");
        db.execute("INSERT INTO accounts (id, name, created_at, last_seq) VALUES (7, 'acme', 0, 3)", [])
            .expect("account");
        for seq in 1..=3i64 {
            db.execute(
                "INSERT INTO view_events (account_id, viewed, seq, event_id, sender, recipient, viewer, source, \
                 subject, content_viewed, discovery_case, message_date) \
                 VALUES (7, ?1, ?2, ?3, 's', 'r', 'v', 'Message Tracking', 'subject', 1, 0, 0)",
                rusqlite::params![1_600_000_000 - seq, seq, format!("old-{seq}")],
            )
            .expect("event");
        }
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("open and migrate");
    let version: i64 =
        store.read_for_test(|db| db.pragma_query_value(None, "user_version", |r| r.get(0))).await.expect("version");
    assert_eq!(version, SqliteStore::schema_version());
    assert!(SqliteStore::schema_version() >= 2);
    let account = viewlog_store::AccountId(7);
    let seq_index = || {
        store.read_for_test(|db| {
            db.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'view_events_by_seq'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
    };
    assert_eq!(seq_index().await.expect("schema"), 0, "no migration makes the seq index");
    assert!(store.events_after(account, 0, 0).await.expect("events after").is_empty());
    assert_eq!(seq_index().await.expect("schema"), 0, "nor reading nothing");
    let events = store.events_after(account, 0, 10).await.expect("events after");
    assert_eq!(seq_index().await.expect("schema"), 1, "the first events_after makes it");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(store.auth_profile(account).await.expect("profile"), viewlog_store::AuthProfile::default());
    assert_eq!(store.record_login_failure("k", 5).await.expect("failure").count, 1);
    store.insert_events(account, &[event(1)]).await.expect("insert");
    let events = store.events_after(account, 3, 10).await.expect("events after");
    assert_eq!(events.iter().map(|e| (e.seq, e.event.event_id.as_str())).collect::<Vec<_>>(), vec![(4, "ev-1")]);
}

/// A version-2 file holding events gets, on open, the hour and day counts, the text index and
/// the wire records of those events (migrations 3, 4, 6 and 7 fill them): counts, pages and text
/// searches agree with a reference, and the records with the events, also once new events are
/// added next to the migrated ones.
#[tokio::test]
async fn a_version_2_file_gets_hour_and_day_counts_and_a_text_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.db");
    let subjects = ["Quarterly RESULTS", "Möte med Åsa", "Invoice 1729", "ΣΩΚΡΑΤΗΣ", "plain"];
    let base = 1_600_000_000i64;
    // (viewed, seq, subject, viewer)
    let old: Vec<(i64, i64, String, String)> = (1..=400i64)
        .map(|seq| {
            let viewed = base + (seq * 7_919) % (5 * 86_400) - 86_400;
            (viewed, seq, subjects[(seq % 5) as usize].to_owned(), format!("Viewer{}@Corp.example", seq % 13))
        })
        .collect();
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        db.execute_batch(schema::MIGRATIONS[0]).expect("schema 1");
        db.execute_batch(schema::MIGRATIONS[1]).expect("schema 2");
        db.pragma_update(None, "user_version", 2).expect("version");
        db.pragma_update(None, "application_id", schema::APPLICATION_ID).expect("application id");
        db.execute("INSERT INTO accounts (id, name, created_at, last_seq) VALUES (7, 'acme', 0, 400)", [])
            .expect("account");
        for (viewed, seq, subject, viewer) in &old {
            db.execute(
                "INSERT INTO view_events (account_id, viewed, seq, event_id, sender, recipient, viewer, source, \
                 subject, content_viewed, discovery_case, message_date) \
                 VALUES (7, ?1, ?2, ?3, 'sender@x.example', 'rcpt@y.example', ?4, 'Message Tracking', ?5, 1, 0, 0)",
                rusqlite::params![viewed, seq, format!("old-{seq}"), viewer, subject],
            )
            .expect("event");
        }
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("open and migrate");
    // The migrations rewrote the events: their write-ahead log was checkpointed and truncated.
    let wal = std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the write-ahead log is left empty after migrating");
    let account = viewlog_store::AccountId(7);
    let mut all: Vec<(i64, i64, String, String)> = old.clone();
    let check = |all: Vec<(i64, i64, String, String)>| {
        let store = store.clone();
        async move {
            // Whole days (counted from their sums), partial ones, whole and partial hours.
            let day = base - base.rem_euclid(86_400);
            let ranges = [
                (0, i64::MAX),
                (base, base + 86_400 - 1),
                (base + 1_234, base + 3 * 86_400 + 77),
                (day, day + 2 * 86_400 - 1),
                (day + 3_600, day + 2 * 86_400 + 7_200 - 1),
                (day - 86_400 + 59, day + 86_400 + 3_599),
            ];
            for (start, end) in ranges {
                for text in
                    [None, Some("åsa"), Some("RESULTS"), Some("1729"), Some("viewer1"), Some("σωκ"), Some("zzz")]
                {
                    let needle = text.map(str::to_lowercase).unwrap_or_default();
                    let mut expected: Vec<(i64, i64)> = all
                        .iter()
                        .filter(|(v, _, _, _)| *v >= start && *v <= end)
                        .filter(|(_, _, subject, viewer)| {
                            [subject.as_str(), viewer.as_str(), "sender@x.example", "rcpt@y.example"]
                                .iter()
                                .any(|f| f.to_lowercase().contains(&needle))
                        })
                        .map(|(v, s, _, _)| (*v, *s))
                        .collect();
                    expected.sort_unstable_by(|a, b| b.cmp(a));
                    let filter = EventFilter { start, end, text: text.map(str::to_owned), snapshot: i64::MAX };
                    let count = store.count(account, &filter).await.expect("count");
                    assert_eq!(count, expected.len() as u64, "{filter:?}");
                    let request = PageRequest {
                        filter: filter.clone(),
                        cursor: None,
                        direction: Direction::Older,
                        limit: 10_000,
                    };
                    let page = store.page(account, &request).await.expect("page");
                    let got: Vec<(i64, i64)> = page.iter().map(|e| (e.event.viewed, e.seq)).collect();
                    assert_eq!(got, expected, "{filter:?}");
                    // Migration 7 wrote the records of the events stored before it.
                    let records = store.wire_page(account, &request).await.expect("wire page");
                    assert_eq!(records, viewlog_store::WireRecords::from_events(&page), "{filter:?}");
                }
            }
        }
    };
    check(all.clone()).await;
    // New events land beside the migrated ones (and merge with their segments).
    let new: Vec<ViewEvent> = (0..300usize)
        .map(|i| {
            let mut e = event(i);
            e.viewed = base + (i as i64 * 3_571) % (4 * 86_400);
            e.subject = subjects[i % 5].to_owned();
            e.from = "sender@x.example".into();
            e.to = "rcpt@y.example".into();
            e
        })
        .collect();
    for chunk in new.chunks(7) {
        store.insert_events(account, chunk).await.expect("insert");
    }
    let stored = store
        .page(
            account,
            &PageRequest {
                filter: EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX },
                cursor: None,
                direction: Direction::Older,
                limit: 10_000,
            },
        )
        .await
        .expect("everything");
    all = stored.iter().map(|e| (e.event.viewed, e.seq, e.event.subject.clone(), e.event.viewer.clone())).collect();
    assert_eq!(all.len(), 700);
    check(all.clone()).await;
    // Migration 8 noted the migrated days as written long ago; compacting merges the days the
    // new events split into several segments, and every answer stays the same.
    assert_eq!(store.compact(0).await.expect("compact before everything"), 0);
    assert!(store.compact(i64::MAX).await.expect("compact") > 0);
    let days: i64 =
        store.read_for_test(|db| db.query_row("SELECT count(*) FROM text_days", [], |r| r.get(0))).await.expect("days");
    let segments: i64 = store
        .read_for_test(|db| db.query_row("SELECT count(*) FROM text_index", [], |r| r.get(0)))
        .await
        .expect("segments");
    assert_eq!(segments, days, "one segment per day");
    check(all).await;
}

/// A batch big enough to have its text index built beside the inserts, holding ids stored
/// before and ids repeated within it: the index names exactly the stored events, with their
/// seqs (a page reads the rows the index names, and fails on one the table lacks).
#[tokio::test]
async fn a_big_batch_with_duplicates_is_indexed_as_stored() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let tagged = |i: usize| {
        let mut e = event(i);
        e.subject = format!("Report w{}x", i % 7);
        e
    };
    let first: Vec<ViewEvent> = (0..500).map(tagged).collect();
    store.insert_events(account, &first).await.expect("first batch");
    // 400..4400, with 400..500 stored already and 4000..4400 sent twice.
    let mut big: Vec<ViewEvent> = (400..4400).map(tagged).collect();
    big.extend((4000..4400).map(tagged));
    assert!(big.len() >= events::BUILD_AHEAD_MIN);
    let outcome = store.insert_events(account, &big).await.expect("big batch");
    assert_eq!((outcome.inserted, outcome.duplicates), (3900, 500));
    let all = |text: Option<&str>| {
        let store = store.clone();
        let filter = EventFilter { start: 0, end: i64::MAX, text: text.map(str::to_owned), snapshot: i64::MAX };
        async move {
            let request = PageRequest { filter, cursor: None, direction: Direction::Older, limit: 10_000 };
            store.page(account, &request).await.expect("page")
        }
    };
    let stored = all(None).await;
    assert_eq!(stored.len(), 4400);
    for tag in 0..7 {
        let word = format!("w{tag}x");
        let mut want: Vec<(i64, i64)> =
            stored.iter().filter(|e| e.event.subject.contains(&word)).map(|e| (e.event.viewed, e.seq)).collect();
        want.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<(i64, i64)> = all(Some(&word)).await.iter().map(|e| (e.event.viewed, e.seq)).collect();
        assert_eq!(got, want, "{word}");
    }
}

/// The rows of the id tables and the accounts' count of recent ids:
/// `(event_ids, recent_ids, sum of accounts.recent_ids)`.
async fn id_rows(store: &SqliteStore) -> (i64, i64, i64) {
    store
        .read_for_test(|db| {
            db.query_row(
                "SELECT (SELECT count(*) FROM event_ids), (SELECT count(*) FROM recent_ids), \
                 (SELECT sum(recent_ids) FROM accounts)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await
        .expect("id rows")
}

/// Import options that allow a bulk load: unique ids promised.
const BULK: viewlog_store::ImportOptions = viewlog_store::ImportOptions { per_commit: 1, unique_ids: true };

/// Events 0..3000 in three batches.
fn three_batches() -> Vec<Vec<ViewEvent>> {
    (0..3).map(|c| (0..1000).map(|i| event(c * 1000 + i)).collect()).collect()
}

/// An import into a store without events, unique ids promised, claims no id while it loads and
/// fills the table of event ids at its end: afterwards every id is there, and taken.
#[tokio::test]
async fn a_bulk_import_fills_the_event_ids_at_its_end() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let batches = three_batches();
    let options = BULK;
    let outcome = store.import_events(account, Batches::of(batches), options).await.expect("import");
    assert_eq!(outcome.inserted, 3000);
    assert_eq!(id_rows(&store).await, (3000, 0, 0));
    let again = store.insert_events(account, &[event(7), event(2999), event(3000)]).await.expect("insert");
    assert_eq!((again.inserted, again.duplicates), (1, 2));
    assert_eq!(id_rows(&store).await, (3000, 1, 1));
}

/// The journal mode a new connection to the store's file finds, and whether a rollback journal
/// is left beside it.
fn journal_mode(dir: &tempfile::TempDir) -> (String, bool) {
    let path = dir.path().join("viewlog.db");
    let db = rusqlite::Connection::open(&path).expect("open");
    let mode = db.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
    (mode, dir.path().join("viewlog.db-journal").exists())
}

/// A bulk import with the file to itself is written with a rollback journal: this store's idle
/// readers are closed for it and open again afterwards, and the file is back in WAL mode.
#[tokio::test]
async fn a_bulk_import_alone_on_the_file_leaves_wal_for_its_transaction() {
    let (store, dir) = store(2).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    // The readers have been used: their connections are open.
    assert_eq!(store.snapshot(account).await.expect("snapshot"), 0);
    let batches = three_batches();
    let options = BULK;
    let outcome = store.import_events(account, Batches::of(batches), options).await.expect("import");
    assert_eq!(outcome.inserted, 3000);
    assert_eq!(store.imports_outside_wal(), 1);
    assert_eq!(journal_mode(&dir), ("wal".to_owned(), false));
    // Its commit (the journal's deletion) synced the directory too: synchronous=EXTRA, until the
    // next write sets FULL again.
    const EXTRA: i64 = 3;
    assert_eq!(synchronous(&store.inner.writer).await, EXTRA);
    // The switch did not wait for other processes; the writer waits for them again.
    let waits = store
        .inner
        .writer
        .run(|conn, _| Ok(conn.db.pragma_query_value(None, "busy_timeout", |r| r.get::<_, i64>(0))?))
        .await
        .expect("pragma");
    assert_eq!(waits, SqliteOptions::default().busy_timeout.as_millis() as i64);
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    assert_eq!(store.count(account, &filter).await.expect("count"), 3000);
    let text = EventFilter { text: Some("number 2999".into()), ..filter };
    assert_eq!(store.count(account, &text).await.expect("count"), 1);
    // A store that holds events takes an import through the WAL, in batches.
    let outcome = store.import_events(account, Batches::of(vec![vec![event(3000)]]), options).await.expect("import");
    assert_eq!(outcome.inserted, 1);
    assert_eq!(store.imports_outside_wal(), 1);
}

/// Out of WAL mode a bulk import holds the file exclusively until it commits. A reader let in
/// halfway (another process's read transaction) would make the commit wait for it, and fail
/// once the lock timeout ran out; it is refused at once instead, and the import commits.
#[tokio::test]
async fn a_bulk_import_outside_wal_keeps_other_readers_out_until_it_commits() {
    use futures::StreamExt;
    type Probe = Option<(rusqlite::Connection, Result<i64, String>)>;
    let (store, dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let path = dir.path().join("viewlog.db");
    let probe: Arc<std::sync::Mutex<Probe>> = Arc::default();
    let seen = Arc::clone(&probe);
    let batches = three_batches();
    let stream = futures::stream::iter(batches.into_iter().enumerate()).map(move |(i, batch)| {
        if i == 1 {
            // Halfway: a reader that keeps its read transaction open until the import ends.
            let other = rusqlite::Connection::open(&path).expect("open");
            other.busy_timeout(Duration::ZERO).expect("timeout");
            other.execute_batch("BEGIN").expect("begin");
            let read = other.query_row("SELECT count(*) FROM accounts", [], |r| r.get(0)).map_err(|e| e.to_string());
            *seen.lock().expect("probe") = Some((other, read));
        }
        batch
    });
    let options = BULK;
    let outcome = store.import_events(account, stream, options).await.expect("import");
    assert_eq!(outcome.inserted, 3000);
    assert_eq!(store.imports_outside_wal(), 1);
    let (other, read) = probe.lock().expect("probe").take().expect("probed");
    let refused = read.expect_err("the reader was let in");
    assert!(refused.contains("locked"), "{refused}");
    drop(other);
    assert_eq!(journal_mode(&dir), ("wal".to_owned(), false));
}

/// With another connection open on the file (a server beside the command-line tool), a bulk
/// import does not wait for it: it goes through the WAL, and the other connection reads on.
#[tokio::test]
async fn a_bulk_import_beside_another_connection_goes_through_the_wal() {
    let (store, dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let other = rusqlite::Connection::open(dir.path().join("viewlog.db")).expect("other");
    let count = |db: &rusqlite::Connection| -> i64 {
        db.query_row("SELECT count(*) FROM view_events", [], |r| r.get(0)).expect("count")
    };
    assert_eq!(count(&other), 0);
    let batches: Vec<Vec<ViewEvent>> = vec![(0..500).map(event).collect(), (500..1000).map(event).collect()];
    let options = BULK;
    let outcome = store.import_events(account, Batches::of(batches), options).await.expect("import");
    assert_eq!(outcome.inserted, 1000);
    assert_eq!(store.imports_outside_wal(), 0);
    assert_eq!(count(&other), 1000);
    assert_eq!(id_rows(&store).await, (1000, 0, 0));
    drop(other);
    assert_eq!(journal_mode(&dir), ("wal".to_owned(), false));
}

/// An import that promised unique ids and repeats one fails as a conflict and stores nothing,
/// no id either.
#[tokio::test]
async fn a_bulk_import_with_a_repeated_id_stores_nothing() {
    let (store, dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let batches = vec![(0..10).map(event).collect(), vec![event(10), event(3)]];
    let options = BULK;
    match store.import_events(account, Batches::of(batches), options).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("repeats"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // It had the file to itself and rolled back out of WAL mode, which is restored.
    assert_eq!(store.imports_outside_wal(), 1);
    assert_eq!(journal_mode(&dir), ("wal".to_owned(), false));
    assert_eq!(store.snapshot(account).await.expect("snapshot"), 0);
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    assert_eq!(store.count(account, &filter).await.expect("count"), 0);
    assert_eq!(id_rows(&store).await, (0, 0, 0));
    // Not a bulk load any more once the store holds events: a repeated id is a duplicate.
    store.insert_events(account, &[event(0)]).await.expect("insert");
    let batches = vec![vec![event(1), event(1), event(0)]];
    let outcome = store.import_events(account, Batches::of(batches), options).await.expect("import");
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 2));
    assert_eq!(id_rows(&store).await, (0, 2, 2));
}

/// The signature's lookups a server keeps follow what another process commits: a key revoked
/// or a user disabled through a second store on the same file (the command-line tool beside a
/// running server) shows at the server's next lookup, however often it looked the key up
/// before; the lookups are read again only after a commit.
#[tokio::test]
async fn cached_lookups_follow_commits_of_another_store() {
    use viewlog_store::{NewApplication, NewBinding, NewRole, NewUser};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let server = SqliteStore::open(&path, held()).await.expect("server");
    let admin = SqliteStore::open(&path, SqliteOptions::default()).await.expect("admin");
    let account = admin.create_account("acme", 0).await.expect("account");
    let role = admin
        .create_role(NewRole {
            account_id: account.id,
            name: "Reader".into(),
            permissions: vec!["p".into()],
            builtin: false,
        })
        .await
        .expect("role");
    let user = admin
        .create_user(
            NewUser {
                account_id: account.id,
                email: "a@acme.example".into(),
                role_id: Some(role.id),
                password_hash: None,
            },
            0,
        )
        .await
        .expect("user");
    let app = admin
        .create_application(
            NewApplication { account_id: account.id, app_id: "app".into(), name: "c".into(), app_key_sealed: vec![1] },
            0,
        )
        .await
        .expect("application");
    admin
        .create_binding(NewBinding {
            access_key: "AK".into(),
            account_id: account.id,
            user_id: user.id,
            application_id: app.id,
            secret_key_sealed: vec![2],
            created_at: 0,
            expires_at: None,
        })
        .await
        .expect("binding");
    let lookup = || async { server.signed_lookup("app", "AK").await.expect("lookup").1.expect("principal") };
    for _ in 0..3 {
        assert!(!lookup().await.binding.revoked);
    }
    let cached = || async { server.inner.lookups.run(|conn, _| Ok(conn.lookups.len())).await.expect("cache size") };
    let kept = cached().await;
    assert!(kept >= 1, "a lookup is kept");
    // Made-up keys are read every time and never kept.
    let made_up = "x".repeat(10_000);
    assert_eq!(server.signed_lookup(&made_up, "AK").await.expect("lookup").0, None);
    assert_eq!(server.signed_lookup("app", &made_up).await.expect("lookup").1, None);
    assert_eq!(cached().await, kept);
    admin.set_user_disabled(user.id, true).await.expect("disable");
    assert!(lookup().await.user.disabled);
    admin.revoke_binding("AK").await.expect("revoke");
    assert!(lookup().await.binding.revoked);
    assert!(lookup().await.binding.revoked);
}

/// A page without a text filter that runs out of its budget on the calling thread is run again
/// on a blocking thread: the same answer, and the overrun counted; within its budget it is
/// answered where it started.
#[tokio::test]
async fn an_inline_page_over_its_budget_is_run_again_on_a_blocking_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let events: Vec<ViewEvent> = (0..3000).map(event).collect();
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    let answers = |budget: Duration| {
        let (path, events, filter) = (path.clone(), events.clone(), filter.clone());
        async move {
            let options = SqliteOptions { inline_budget: budget, ..SqliteOptions::default() };
            let store = SqliteStore::open(&path, options).await.expect("open");
            let account = match store.account_by_name("acme").await.expect("account") {
                Some(a) => a.id,
                None => {
                    let id = store.create_account("acme", 0).await.expect("account").id;
                    store.insert_events(id, &events).await.expect("insert");
                    id
                }
            };
            let first = store.first_wire_page(account, &filter, 2000).await.expect("first page");
            let request = PageRequest {
                filter: EventFilter { snapshot: first.snapshot, ..filter.clone() },
                cursor: first.records.last_cursor(),
                direction: Direction::Older,
                limit: 2000,
            };
            let next = store.wire_page(account, &request).await.expect("next page");
            (first, next, store.inline_overruns())
        }
    };
    let (first, next, overruns) = answers(Duration::ZERO).await;
    assert_eq!(overruns, 2, "both pages ran out of a zero budget");
    assert_eq!((first.records.len(), first.total, next.len()), (2000, 3000, 1000));
    let (first_inline, next_inline, overruns) = answers(Duration::from_secs(60)).await;
    assert_eq!(overruns, 0);
    assert_eq!((first_inline, next_inline), (first, next));
}

/// A version-12 file kept the message's strings in columns beside each record, and a viewlog
/// older than migration 7 still running on it may have left records empty. Migration 13 writes
/// those records from the columns, then drops the columns: every event, in both tables, reads
/// back as it was stored, whole and in wire pages, with and without a text filter.
#[tokio::test]
async fn a_version_12_file_keeps_the_strings_in_its_records_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let options = SqliteOptions { late_fold_min: 1_000_000, ..SqliteOptions::default() };
    let store = SqliteStore::open(&path, options.clone()).await.expect("create");
    let account = store.create_account("acme", 0).await.expect("account").id;
    let subjects = ["Q4 \"plan\"\n\t\u{1F600}", "Möte med Åsa", "back\\slash </script>", ""];
    let events: Vec<ViewEvent> = (0..60usize)
        .map(|i| ViewEvent {
            // The second half is viewed over an hour before the first: late events.
            viewed: if i < 30 { 1_600_100_000 + i as i64 } else { 1_600_000_000 + i as i64 },
            subject: format!("{} {i}", subjects[i % 4]),
            viewer: format!("Viewer{}@Corp.example", i % 7),
            viewer_ip: (i % 2 == 0).then(|| format!("10.0.0.{i}")),
            case_id: (i % 5 == 0).then(|| format!("case-{i}")),
            ..event(i)
        })
        .collect();
    store.insert_events(account, &events[..30]).await.expect("insert");
    store.insert_events(account, &events[30..]).await.expect("insert late");
    let stored = store.events_after(account, 0, 1000).await.expect("after");
    assert_eq!(stored.len(), 60);
    drop(store);
    // Back to version 12: the strings in columns too, a quarter of the records empty.
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        let late: i64 = db.query_row("SELECT count(*) FROM late_events", [], |r| r.get(0)).expect("late");
        assert_eq!(late, 30, "the older half is late");
        widen_events(&db);
        for table in ["view_events", "late_events"] {
            db.execute(&format!("UPDATE {table} SET record = '' WHERE seq % 4 = 0"), []).expect("empty records");
        }
        db.pragma_update(None, "user_version", 12).expect("version");
    }
    let store = SqliteStore::open(&path, options).await.expect("open and migrate");
    let version: i64 =
        store.read_for_test(|db| db.pragma_query_value(None, "user_version", |r| r.get(0))).await.expect("version");
    assert_eq!(version, 13);
    let columns: Vec<String> = store
        .read_for_test(|db| {
            db.prepare("SELECT name FROM pragma_table_info('view_events') UNION ALL SELECT name FROM pragma_table_info('late_events')")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
        .expect("columns");
    assert_eq!(columns.len(), 24, "{columns:?}");
    assert!(!columns.iter().any(|c| ["sender", "recipient", "viewer", "source", "subject"].contains(&c.as_str())));
    let empty: i64 = store
        .read_for_test(|db| {
            db.query_row(
                "SELECT (SELECT count(*) FROM view_events WHERE record = '') + \
                 (SELECT count(*) FROM late_events WHERE record = '')",
                [],
                |r| r.get(0),
            )
        })
        .await
        .expect("empty records");
    assert_eq!(empty, 0);
    assert_eq!(store.events_after(account, 0, 1000).await.expect("after"), stored);
    for text in [None, Some("åsa"), Some("\"plan\""), Some("viewer3"), Some("</script>")] {
        let filter = EventFilter { start: 0, end: i64::MAX, text: text.map(str::to_owned), snapshot: i64::MAX };
        let first = store.first_page(account, &filter, 100).await.expect("first page");
        assert!(!first.events.is_empty(), "{text:?}");
        let mut expected: Vec<StoredEvent> = stored
            .iter()
            .filter(|e| {
                text.is_none_or(|t| {
                    let t = t.to_lowercase();
                    [&e.event.viewer, &e.event.from, &e.event.to, &e.event.subject]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&t))
                })
            })
            .cloned()
            .collect();
        expected.sort_by_key(|e| std::cmp::Reverse((e.event.viewed, e.seq)));
        assert_eq!(first.events, expected, "{text:?}");
        let wire = store.first_wire_page(account, &filter, 100).await.expect("first wire page");
        assert_eq!(wire.records, viewlog_store::WireRecords::from_events(&expected), "{text:?}");
    }
    // The late events fold into the time-ordered table as they are now.
    assert_eq!(store.fold_late(account).await.expect("fold"), 30);
    assert_eq!(store.events_after(account, 0, 1000).await.expect("after the fold"), stored);
}

/// A stored record that is not UTF-8 (a damaged file) fails its page as corrupt rather than
/// reaching a client as broken JSON, and its event as corrupt when read whole.
#[tokio::test]
async fn a_stored_record_that_is_not_utf8_is_refused() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    store.insert_events(account, &(0..5).map(event).collect::<Vec<_>>()).await.expect("insert");
    store
        .write(Durability::Full, |db, _| {
            Ok(db.execute("UPDATE view_events SET record = CAST(X'7b22ff227d' AS TEXT) WHERE seq = 3", [])?)
        })
        .await
        .expect("damage");
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    match store.first_wire_page(account, &filter, 10).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("not UTF-8"), "{message}"),
        other => panic!("expected a corrupt page, got {other:?}"),
    }
    // The record holds the event's strings: the event itself does not read either.
    match store.first_page(account, &filter, 10).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("record of event 3"), "{message}"),
        other => panic!("expected a corrupt event, got {other:?}"),
    }
    // The others do.
    let after: Vec<i64> = store.events_after(account, 3, 10).await.expect("after").iter().map(|e| e.seq).collect();
    assert_eq!(after, vec![4, 5]);
}

/// How many segments each day of the account's text index holds, by day.
async fn segments_per_day(store: &SqliteStore) -> Vec<(i64, i64)> {
    store
        .read_for_test(|db| {
            db.prepare("SELECT day, count(*) FROM text_index GROUP BY day ORDER BY day")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await
        .expect("segments per day")
}

/// Each segment of the text index, by day: whether it is noted as in time order, and whether
/// its keys are.
async fn segments_in_time_order(store: &SqliteStore) -> Vec<(i64, bool, bool)> {
    store
        .read_for_test(|db| {
            db.prepare(
                "SELECT day, EXISTS (SELECT 1 FROM text_sorted s WHERE s.id = text_index.id), keys \
                 FROM text_index ORDER BY day, id",
            )?
            .query_map([], |r| {
                let keys: Vec<u8> = r.get(2)?;
                let keys: Vec<(i64, i64)> = keys
                    .chunks_exact(crate::segments::KEY_LEN)
                    .map(|k| (crate::segments::read_i64(k, 0), crate::segments::read_i64(k, 8)))
                    .collect();
                Ok((r.get(0)?, r.get(1)?, keys.windows(2).all(|w| w[0] < w[1])))
            })?
            .collect()
        })
        .await
        .expect("segments")
}

/// The first page of `limit` of the account's events holding `text` over everything: its total
/// and its events, newest first.
async fn first_searched(
    store: &SqliteStore,
    account: viewlog_store::AccountId,
    text: &str,
    limit: u32,
) -> (u64, Vec<(i64, i64)>) {
    let filter = EventFilter { start: 0, end: i64::MAX, text: Some(text.into()), snapshot: i64::MAX };
    let page = store.first_page(account, &filter, limit).await.expect("first page");
    (page.total, page.events.iter().map(|e| (e.event.viewed, e.seq)).collect())
}

/// Every page of the account's events holding `text` over everything, newest first.
async fn searched(store: &SqliteStore, account: viewlog_store::AccountId, text: &str) -> Vec<(i64, i64)> {
    let filter = EventFilter { start: 0, end: i64::MAX, text: Some(text.into()), snapshot: i64::MAX };
    let request = PageRequest { filter, cursor: None, direction: Direction::Older, limit: 100_000 };
    store.page(account, &request).await.expect("page").iter().map(|e| (e.event.viewed, e.seq)).collect()
}

/// Stores 3,000 events over two days in 2020, in batches of 50: many segments per day, in
/// several size tiers. Returns the segments per day. The late events among them are folded,
/// so that a compaction only merges days.
async fn two_fragmented_days(store: &SqliteStore, account: viewlog_store::AccountId) -> Vec<(i64, i64)> {
    let spread = |i: usize| ViewEvent { viewed: 1_600_000_000 + (i as i64 * 29) % 86_400, ..event(i) };
    let events: Vec<ViewEvent> = (0..3_000).map(spread).collect();
    for batch in events.chunks(50) {
        store.insert_events(account, batch).await.expect("insert");
    }
    assert!(store.fold_late(account).await.expect("fold") > 0, "the batches after the first hold late events");
    let days = segments_per_day(store).await;
    assert_eq!(days.len(), 2, "{days:?}");
    assert!(days.iter().all(|&(_, n)| n > 1), "{days:?}");
    days
}

#[tokio::test]
async fn settled_days_are_compacted_into_one_segment_each() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let before = two_fragmented_days(&store, account).await;
    let needles = ["subject", "number 12", "1729", "sender29", "@", "zzz"];
    let mut found = Vec::new();
    for needle in needles {
        found.push(searched(&store, account, needle).await);
    }
    assert_eq!(found[0].len(), 3_000);
    // Days written since the cutoff are left alone.
    assert_eq!(store.compact(viewlog_protocol::dates::unix_now() - 300).await.expect("compact"), 0);
    assert_eq!(segments_per_day(&store).await, before);
    // Days not written since are merged, one segment each, and every search finds the same.
    assert_eq!(store.compact(i64::MAX).await.expect("compact"), 2);
    let after = segments_per_day(&store).await;
    assert_eq!(after, before.iter().map(|&(day, _)| (day, 1)).collect::<Vec<_>>());
    // Each in time order, and noted so.
    let ordered = segments_in_time_order(&store).await;
    assert_eq!(ordered, before.iter().map(|&(day, _)| (day, true, true)).collect::<Vec<_>>());
    for (needle, want) in needles.iter().zip(&found) {
        assert_eq!(&searched(&store, account, needle).await, want, "{needle}");
    }
    assert_eq!(store.compact(i64::MAX).await.expect("compact again"), 0, "nothing left to merge");
    // A later insert adds a segment to its day and marks the day written again (the other day
    // stays marked as looked at).
    let late = |from: usize, n: usize| -> Vec<ViewEvent> {
        (from..from + n).map(|i| ViewEvent { viewed: 1_600_000_000, ..event(i) }).collect()
    };
    store.insert_events(account, &late(3_000, 10)).await.expect("late insert");
    assert_eq!(store.fold_late(account).await.expect("fold"), 10);
    let written: Vec<i64> = store
        .read_for_test(|db| {
            db.prepare("SELECT written_at FROM text_days ORDER BY day")?.query_map([], |r| r.get(0))?.collect()
        })
        .await
        .expect("written");
    assert_eq!(written.len(), 2);
    assert!(written[0] >= viewlog_protocol::dates::unix_now() - 60, "{written:?}");
    assert_eq!(written[1], -1, "{written:?}");
    assert_eq!(segments_per_day(&store).await.iter().map(|&(_, n)| n).sum::<i64>(), 3);
    // Ten late events for a merged day of ~1,500 are not worth rewriting it.
    assert_eq!(store.compact(i64::MAX).await.expect("compact the late day"), 0);
    assert_eq!(segments_per_day(&store).await.iter().map(|&(_, n)| n).sum::<i64>(), 3);
    let noted: Vec<bool> = segments_in_time_order(&store).await.iter().map(|&(_, noted, _)| noted).collect();
    assert_eq!(noted, [true, false, true], "the late segment is not in time order");
    // An eighth of the day's events in late segments are.
    let first_day = segments_per_day(&store).await[0].0;
    let big: i64 = store
        .read_for_test(move |db| {
            db.query_row("SELECT max(events) FROM text_index WHERE day = ?1", [first_day], |r| r.get(0))
        })
        .await
        .expect("largest");
    let more = big as usize / 8;
    store.insert_events(account, &late(3_010, more)).await.expect("more late events");
    assert_eq!(store.fold_late(account).await.expect("fold"), more as u64);
    assert_eq!(store.compact(i64::MAX).await.expect("compact the late day"), 1);
    assert_eq!(segments_per_day(&store).await.iter().map(|&(_, n)| n).sum::<i64>(), 2);
    assert!(segments_in_time_order(&store).await.iter().all(|&(_, noted, sorted)| noted && sorted));
    assert_eq!(searched(&store, account, "subject").await.len(), 3_010 + more);
    // A day that is not over (today, or here one in 2096) is not merged, however long ago it
    // was written.
    for i in 0..40 {
        let e = ViewEvent { event_id: format!("later-{i}"), viewed: 4_000_000_000, ..event(i) };
        store.insert_events(account, &[e]).await.expect("a day not over");
    }
    let soon = viewlog_protocol::dates::unix_now() + 600;
    assert_eq!(store.compact(soon).await.expect("compact before the day is over"), 0);
    assert_eq!(store.compact(i64::MAX).await.expect("compact after it"), 1);
}

/// A version-11 file whose settled days were merged as written (not in time order) has them
/// looked at again after migration 12: the next compaction rewrites each in time order, and
/// every search finds what it found before.
#[tokio::test]
async fn days_settled_before_version_12_are_sorted_by_the_next_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let store = SqliteStore::open(&path, held()).await.expect("create");
    let account = store.create_account("acme", 0).await.expect("account").id;
    let before = two_fragmented_days(&store, account).await;
    let needles = ["subject", "1729", "sender29", "@"];
    let mut found = Vec::new();
    for needle in needles {
        found.push((searched(&store, account, needle).await, first_searched(&store, account, needle, 7).await));
    }
    drop(store);
    {
        // What version 11 left: the days looked at, their segments as written.
        let db = rusqlite::Connection::open(&path).expect("raw open");
        widen_events(&db);
        db.execute_batch("UPDATE text_days SET written_at = -1; DROP TABLE text_sorted; PRAGMA user_version = 11;")
            .expect("version 11");
    }
    let store = SqliteStore::open(&path, held()).await.expect("migrate");
    assert!(segments_in_time_order(&store).await.iter().all(|&(_, noted, _)| !noted));
    assert_eq!(store.compact(i64::MAX).await.expect("compact"), 2);
    let ordered = segments_in_time_order(&store).await;
    assert_eq!(ordered, before.iter().map(|&(day, _)| (day, true, true)).collect::<Vec<_>>());
    // First pages (their newest matches taken from the end of sorted postings) and whole
    // searches find what they found before.
    for (needle, (all, first)) in needles.iter().zip(&found) {
        assert_eq!(&searched(&store, account, needle).await, all, "{needle}");
        assert_eq!(&first_searched(&store, account, needle, 7).await, first, "{needle}");
        assert_eq!(first.1.as_slice(), &all[..all.len().min(7)], "{needle}");
    }
}

#[tokio::test]
async fn a_day_that_cannot_be_merged_does_not_hold_back_the_others() {
    let (store, dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let before = two_fragmented_days(&store, account).await;
    // Damage one segment of the first day (its keys no longer match its events).
    let first_day = before[0].0;
    let raw = rusqlite::Connection::open(dir.path().join("viewlog.db")).expect("raw open");
    raw.execute(
        "UPDATE text_index SET keys = x'00' WHERE id = (SELECT min(id) FROM text_index WHERE day = ?1)",
        [first_day],
    )
    .expect("damage");
    drop(raw);
    // The first day fails and stays as it was; the second is merged.
    assert_eq!(store.compact(i64::MAX).await.expect("compact"), 1);
    let after = segments_per_day(&store).await;
    assert_eq!(after, vec![before[0], (before[1].0, 1)]);
}

/// The late-event tables' row counts: `(late_events, late_accounts)`.
async fn late_rows(store: &SqliteStore) -> (i64, i64) {
    store
        .read_for_test(|db| {
            db.query_row("SELECT (SELECT count(*) FROM late_events), (SELECT count(*) FROM late_accounts)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .await
        .expect("late rows")
}

/// Everything the store answers about an account's events through each read: every page of
/// several filters in both directions and sizes (walked by cursor), their counts in the latest
/// snapshot and in `old_snapshot`, the first pages with their records, and the events in seq
/// order. Two stores holding the same events must answer alike, wherever the events lie.
async fn every_read(store: &SqliteStore, account: AccountId, old_snapshot: i64) -> Vec<String> {
    let mut out = Vec::new();
    let latest = store.snapshot(account).await.expect("snapshot");
    let ranges = [(0, i64::MAX), (1_600_000_000 + 5 * 3_600 + 17, 1_600_000_000 + 8 * 86_400 - 1_234)];
    for (start, end) in ranges {
        for text in [None, Some("number 1"), Some("sender7")] {
            for snapshot in [latest, old_snapshot] {
                let filter = EventFilter { start, end, text: text.map(Into::into), snapshot };
                let count = store.count(account, &filter).await.expect("count");
                out.push(format!("count {start}..{end} {text:?} @{snapshot}: {count}"));
                for limit in [1, 7, 1_000] {
                    for direction in [Direction::Older, Direction::Newer] {
                        // Newer walks from before the range's start.
                        let mut cursor = (direction == Direction::Newer).then_some(Cursor { viewed: i64::MIN, seq: 0 });
                        let mut keys = Vec::new();
                        loop {
                            let request = PageRequest { filter: filter.clone(), cursor, direction, limit };
                            let page = store.page(account, &request).await.expect("page");
                            let wire = store.wire_page(account, &request).await.expect("wire page");
                            assert_eq!(wire.len(), page.len());
                            for ((c, record), e) in wire.iter().zip(&page) {
                                assert_eq!((c.viewed, c.seq), (e.event.viewed, e.seq));
                                let mut want = Vec::new();
                                viewlog_protocol::records::write_record_json(&mut want, &e.event.record_fields());
                                assert_eq!(record, &want[..]);
                            }
                            let Some(next) = (match direction {
                                Direction::Older => page.last(),
                                Direction::Newer => page.first(),
                            }) else {
                                break;
                            };
                            cursor = Some(Cursor { viewed: next.event.viewed, seq: next.seq });
                            keys.extend(page.iter().map(|e| (e.event.viewed, e.seq, e.event.event_id.clone())));
                            if page.len() < limit as usize {
                                break;
                            }
                        }
                        out.push(format!("pages {start}..{end} {text:?} @{snapshot} {limit} {direction:?}: {keys:?}"));
                    }
                }
                let first = store.first_page(account, &filter, 5).await.expect("first page");
                let wire = store.first_wire_page(account, &filter, 5).await.expect("first wire page");
                assert_eq!((first.snapshot, first.total), (wire.snapshot, wire.total));
                let keys: Vec<_> = first.events.iter().map(|e| (e.event.viewed, e.seq)).collect();
                let wire_keys: Vec<_> = wire.records.iter().map(|(c, _)| (c.viewed, c.seq)).collect();
                assert_eq!(keys, wire_keys);
                out.push(format!("first {start}..{end} {text:?}: {} {keys:?}", first.total));
            }
        }
    }
    let after: Vec<_> = store
        .events_after(account, 0, 100_000)
        .await
        .expect("after")
        .iter()
        .map(|e| (e.seq, e.event.event_id.clone()))
        .collect();
    out.push(format!("after: {after:?}"));
    out
}

#[tokio::test]
async fn late_events_read_the_same_before_and_after_their_fold() {
    let (store, _dir) = store(1).await;
    let account = store.create_account("acme", 0).await.expect("account").id;
    let base = 1_600_000_000;
    let at = |i: usize, viewed: i64| ViewEvent { viewed, ..event(i) };
    // The newest events first: ten days in, so that what follows is late.
    let recent: Vec<ViewEvent> = (0..100).map(|i| at(i, base + 10 * 86_400 + i as i64)).collect();
    assert_eq!(store.insert_events(account, &recent).await.expect("recent").inserted, 100);
    let old_snapshot = store.snapshot(account).await.expect("snapshot");
    // A backfill over the nine days before, in no time order; it repeats an id of its own and
    // one of the recent events (with another time: the id decides).
    let mut backfill: Vec<ViewEvent> = (100..700).map(|i| at(i, base + (i as i64 * 7_919) % (9 * 86_400))).collect();
    backfill.push(at(150, base + 3));
    backfill.push(at(5, base + 4));
    let outcome = store.insert_events(account, &backfill).await.expect("backfill");
    assert_eq!((outcome.inserted, outcome.duplicates), (600, 2));
    // Events within the hour before the newest go to the end of the table; one of them repeats
    // a late event's id.
    let edge: Vec<ViewEvent> =
        (700..720).map(|i| at(i, base + 10 * 86_400 - 60 - i as i64)).chain([at(300, base + 10 * 86_400)]).collect();
    let outcome = store.insert_events(account, &edge).await.expect("edge");
    assert_eq!((outcome.inserted, outcome.duplicates), (20, 1));
    // And an event id stored late cannot come again late.
    let outcome = store.insert_events(account, &[at(301, base + 5)]).await.expect("again");
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1));
    assert_eq!(late_rows(&store).await, (600, 1), "the backfill, and only it, is late");

    let before = every_read(&store, account, old_snapshot).await;
    assert_eq!(store.fold_late(account).await.expect("fold"), 600);
    assert_eq!(late_rows(&store).await, (0, 0));
    let after = every_read(&store, account, old_snapshot).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    assert_eq!(before.len(), after.len());
    // The answers are the events themselves: seqs in insert order, each id once, pages newest
    // first.
    let all = store.events_after(account, 0, 10_000).await.expect("after");
    assert_eq!(all.len(), 720);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1));
    let mut by_time: Vec<_> = all.iter().map(|e| (e.event.viewed, e.seq, e.event.event_id.clone())).collect();
    by_time.sort_by(|a, b| b.cmp(a));
    assert!(before.contains(&format!("pages 0..{} None @{} 7 Older: {by_time:?}", i64::MAX, all.len())), "{before:?}");
    // A fold with nothing late moves nothing.
    assert_eq!(store.fold_late(account).await.expect("fold again"), 0);
}

#[tokio::test]
async fn late_events_are_folded_once_they_stop_or_pile_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions { late_fold_min: 50, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("viewlog.db"), options).await.expect("open");
    let account = store.create_account("acme", 0).await.expect("account").id;
    let base = 1_600_000_000;
    let at = |i: usize, viewed: i64| ViewEvent { viewed, ..event(i) };
    store.insert_events(account, &[at(0, base + 86_400)]).await.expect("newest");
    let late: Vec<ViewEvent> = (1..31).map(|i| at(i, base + i as i64)).collect();
    store.insert_events(account, &late).await.expect("late");
    assert_eq!(late_rows(&store).await, (30, 1));
    // Taking late events until just now: not due (30 of at least 50).
    let now = viewlog_protocol::dates::unix_now();
    assert_eq!(store.compact(now - 300).await.expect("compact"), 0);
    assert_eq!(late_rows(&store).await, (30, 1));
    // Quiet since the cutoff: folded (1), and its two days, one segment each as written, put
    // in time order (2).
    assert_eq!(store.compact(now + 300).await.expect("compact"), 3);
    assert_eq!(late_rows(&store).await, (0, 0));
    // Piling up to the least that is due: the insert that gets there starts a fold at once.
    let more: Vec<ViewEvent> = (31..81).map(|i| at(i, base + i as i64)).collect();
    store.insert_events(account, &more).await.expect("more late");
    let started = std::time::Instant::now();
    while late_rows(&store).await != (0, 0) {
        assert!(started.elapsed() < Duration::from_secs(30), "no fold: {:?}", late_rows(&store).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filter = EventFilter { start: 0, end: i64::MAX, text: None, snapshot: i64::MAX };
    assert_eq!(store.count(account, &filter).await.expect("count"), 81);
    // An import into a store that holds later events folds its late ones at its end.
    let imported: Vec<ViewEvent> = (81..121).map(|i| at(i, base + i as i64)).collect();
    let options = ImportOptions { per_commit: 10, unique_ids: true };
    let batches = futures::stream::iter(imported.chunks(15).map(<[ViewEvent]>::to_vec).collect::<Vec<_>>());
    let outcome = store.import_events(account, batches, options).await.expect("import");
    assert_eq!(outcome.inserted, 40);
    assert_eq!(late_rows(&store).await, (0, 0));
    assert_eq!(store.count(account, &filter).await.expect("count"), 121);
}

/// Ids are claimed in `recent_ids` and folded into `event_ids` once an account holds enough of
/// them: whichever table holds an id (and whichever table holds its event, late or not), it is
/// a duplicate, within a batch as across batches and accounts keep their own ids. Checked
/// against a model over many batches that cross several folds.
#[tokio::test]
async fn event_ids_are_taken_once_across_folds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions { id_fold_min: 40, late_fold_min: 1_000_000, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("viewlog.db"), options).await.expect("open");
    let acme = store.create_account("acme", 0).await.expect("account").id;
    let globex = store.create_account("globex", 0).await.expect("account").id;
    let base = 1_600_000_000;
    let mut taken = std::collections::HashSet::new();
    let mut folds = 0;
    let mut recent_before = 0;
    let mut x: u64 = 7;
    for round in 0..60usize {
        // Ids drawn from a range that repeats often; times now recent, now a week back (late).
        let batch: Vec<ViewEvent> = (0..25)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let i = (x >> 33) as usize % 2_000;
                let viewed =
                    if (x >> 20).is_multiple_of(3) { base + (i as i64) } else { base + 7 * 86_400 + round as i64 };
                ViewEvent { viewed, ..event(i) }
            })
            .collect();
        let account = if round % 5 == 4 { globex } else { acme };
        let mut want_new = 0;
        for e in &batch {
            if taken.insert((account, e.event_id.clone())) {
                want_new += 1;
            }
        }
        let outcome = store.insert_events(account, &batch).await.expect("insert");
        assert_eq!((outcome.inserted, outcome.duplicates), (want_new, 25 - want_new), "round {round}");
        let (folded, recent, counted) = id_rows(&store).await;
        assert_eq!(folded + recent, taken.len() as i64, "round {round}");
        assert_eq!(recent, counted, "round {round}: accounts.recent_ids counts the table");
        if recent < recent_before {
            folds += 1;
        }
        recent_before = recent;
    }
    assert!(folds >= 3, "{folds} folds");
    assert!(late_rows(&store).await.0 > 0, "some events went to the late table");
    for account in [acme, globex] {
        let stored = store.events_after(account, 0, 100_000).await.expect("after");
        let ids: std::collections::HashSet<_> = stored.iter().map(|e| e.event.event_id.clone()).collect();
        assert_eq!(ids.len(), stored.len(), "each id once");
        assert_eq!(ids.len(), taken.iter().filter(|(a, _)| *a == account).count());
    }
}

/// A version-10 file holding events in both tables gets their ids in `event_ids` (migration 11),
/// and the unique indexes that held them are gone: the ids stay taken.
#[tokio::test]
async fn a_version_10_file_gets_its_ids_in_a_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v10.db");
    {
        let db = rusqlite::Connection::open(&path).expect("raw open");
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        for migration in &schema::MIGRATIONS[..10] {
            db.execute_batch(migration).expect("schema");
        }
        db.pragma_update(None, "user_version", 10).expect("version");
        db.pragma_update(None, "application_id", schema::APPLICATION_ID).expect("application id");
        db.execute("INSERT INTO accounts (id, name, created_at, last_seq) VALUES (7, 'acme', 0, 4)", [])
            .expect("account");
        for (table, seq) in [("view_events", 1), ("view_events", 2), ("late_events", 3), ("late_events", 4)] {
            db.execute(
                &format!(
                    "INSERT INTO {table} (account_id, viewed, seq, event_id, sender, recipient, viewer, source, \
                     subject, content_viewed, discovery_case, message_date, record) \
                     VALUES (7, ?1, ?2, ?3, 's', 'r', 'v', 'Message Tracking', 'subject', 1, 0, 0, '{{}}')"
                ),
                rusqlite::params![1_600_000_000 + seq, seq, format!("old-{seq}")],
            )
            .expect("event");
        }
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("open and migrate");
    assert_eq!(id_rows(&store).await, (4, 0, 0));
    let indexes: i64 = store
        .read_for_test(|db| {
            db.query_row("SELECT count(*) FROM sqlite_schema WHERE name LIKE '%by_event_id'", [], |r| r.get(0))
        })
        .await
        .expect("schema");
    assert_eq!(indexes, 0);
    let account = viewlog_store::AccountId(7);
    let again: Vec<ViewEvent> = (1..=5).map(|seq| ViewEvent { event_id: format!("old-{seq}"), ..event(seq) }).collect();
    let outcome = store.insert_events(account, &again).await.expect("insert");
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 4));
    assert_eq!(id_rows(&store).await, (4, 1, 1));
}
