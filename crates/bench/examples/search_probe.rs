//! Times first pages of June 2024 (pageSize 100, with or without a query) in process, straight
//! on a `SqliteStore`: what the page and search rows cost without HTTP, signing or the server's
//! scheduling, and a process to point `perf record` at.
//!
//! ```text
//! cp target/bench-data/v1-schema12/events-10000000.db /tmp/probe.db
//! cargo run --release -p viewlog-bench --example search_probe -- /tmp/probe.db --query 1729
//! ```
//!
//! Work on a copy of a seeded store: opening it may leave a write-ahead log beside it.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use viewlog_bench::workload;
use viewlog_store::{AccountId, EventFilter, Store};
use viewlog_store_sqlite::{SqliteOptions, SqliteStore};

/// First pages of June 2024 on a benchmark store, timed in process.
#[derive(Parser)]
struct Args {
    /// The database (a copy of a seeded benchmark store).
    db: std::path::PathBuf,
    /// The text filter; none for a plain page.
    #[arg(long)]
    query: Option<String>,
    /// How many first pages to time.
    #[arg(long, default_value_t = 2000)]
    times: usize,
    /// The account (a benchmark store holds one, the first).
    #[arg(long, default_value_t = 1)]
    account: i64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(probe(&args))
}

async fn probe(args: &Args) -> Result<()> {
    let store = SqliteStore::open(&args.db, SqliteOptions::default())
        .await
        .with_context(|| format!("opening {}", args.db.display()))?;
    let (start, end) = workload::month()?;
    let filter = EventFilter { start, end, text: args.query.clone(), snapshot: i64::MAX };
    let mut millis = Vec::with_capacity(args.times);
    let mut total = 0;
    for _ in 0..args.times.max(1) {
        let started = Instant::now();
        let page = store.first_wire_page(AccountId(args.account), &filter, 101).await?;
        millis.push(started.elapsed().as_secs_f64() * 1e3);
        total = page.total;
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() - 1) as f64 * q).round() as usize];
    println!(
        "query {:?}: {total} events in June; {} first pages: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
        args.query.as_deref().unwrap_or(""),
        millis.len(),
        at(0.5),
        at(0.9),
        at(0.99)
    );
    Ok(())
}
