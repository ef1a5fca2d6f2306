//! The shared conformance suite, run against a SQLite file in a fresh directory per case, and
//! the cases that need the file itself.

use viewlog_store::conformance::{event, everything, T0};
use viewlog_store::{Direction, PageRequest, Store};
use viewlog_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteOptions { readers: 2, ..SqliteOptions::default() };
    let store = SqliteStore::open(dir.path().join("viewlog.db"), options).await.expect("open");
    (store, dir)
}

viewlog_store::conformance_tests!(fresh_store);

/// Everything committed survives closing the store and opening the file again.
#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("viewlog.db");
    let (account, events, snapshot) = {
        let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("open");
        let account = store.create_account("acme", T0).await.expect("account");
        let events: Vec<_> = (0..50).map(|i| event(&format!("e{i}"), T0 + i)).collect();
        store.insert_events(account.id, &events).await.expect("insert");
        assert!(store.remember_request("AK", "req", T0 + 600, T0).await.expect("remember"));
        let snapshot = store.snapshot(account.id).await.expect("snapshot");
        (account, events, snapshot)
    };
    let store = SqliteStore::open(&path, SqliteOptions::default()).await.expect("reopen");
    assert_eq!(store.account_by_name("acme").await.expect("account"), Some(account.clone()));
    assert_eq!(store.snapshot(account.id).await.expect("snapshot"), snapshot);
    let page = store
        .page(account.id, &PageRequest { filter: everything(), cursor: None, direction: Direction::Older, limit: 100 })
        .await
        .expect("page");
    assert_eq!(page.len(), 50);
    assert_eq!(page.last().map(|e| &e.event), events.first());
    assert!(!store.remember_request("AK", "req", T0 + 600, T0 + 1).await.expect("remember"), "replay record kept");
    // Ingest goes on after the old seqs.
    store.insert_events(account.id, &[event("after", T0)]).await.expect("insert");
    assert_eq!(store.snapshot(account.id).await.expect("snapshot"), snapshot + 1);
}
