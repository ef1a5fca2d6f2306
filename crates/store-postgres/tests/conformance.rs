//! The shared conformance suite, each case in a database of its own on the test server
//! (`VIEWLOG_TEST_POSTGRES_URL`; without it every case fails, see `common`).

mod common;

use common::ScratchDb;
use viewlog_store_postgres::{PostgresOptions, PostgresStore};

async fn fresh_store() -> (PostgresStore, ScratchDb) {
    let db = ScratchDb::create().await;
    let options = PostgresOptions { pool_size: 4, ..PostgresOptions::default() };
    let store = PostgresStore::connect(&db.url, options).await.expect("connect");
    (store, db)
}

viewlog_store::conformance_tests!(fresh_store);
