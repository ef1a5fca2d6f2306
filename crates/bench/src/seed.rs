//! Seeded databases, cached under `target/bench-data/` by event count and format version.

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use viewlog_core::admin::Admin;
use viewlog_core::permissions;
use viewlog_core::synth::Generator;
use viewlog_core::vault::{MasterKey, Vault};
use viewlog_protocol::dates;
use viewlog_store::{Store, ViewEvent};
use viewlog_store_sqlite::{SqliteOptions, SqliteStore};

/// Bumped whenever what a seeded database holds changes; part of the cache's file names.
pub const FORMAT: u32 = 1;
/// The account the benchmark's events belong to.
pub const ACCOUNT: &str = "bench";
/// The organisation the generator invents.
pub const DOMAIN: &str = "acme.example";
/// Events per insert transaction while seeding.
pub const SEED_BATCH: usize = 10_000;
/// The year the events are viewed in: 2024-01-01T00:00:00Z …
pub const YEAR_START: i64 = 1_704_067_200;
/// … to 2024-12-31T23:59:59Z.
pub const YEAR_END: i64 = 1_735_689_599;

/// The credentials and facts of a seeded database, kept beside it as `<db>.bench.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedInfo {
    /// The format version it was seeded with.
    pub format: u32,
    /// The store's schema version when it was seeded.
    pub schema: i64,
    /// How many events it holds.
    pub events: u64,
    /// The application id.
    pub app_id: String,
    /// The application key.
    pub app_key: String,
    /// The access key.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// How long seeding took, in seconds.
    pub seed_secs: f64,
}

/// The cache directory of this format and schema.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(format!("v{FORMAT}-schema{}", SqliteStore::schema_version()))
}

fn sidecar(db: &Path) -> PathBuf {
    with_suffix(db, ".bench.json")
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Removes a database with its WAL, shared memory, key and sidecar files.
pub fn remove_db(db: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal", "-requests", "-requests-wal", "-requests-shm", ".key", ".bench.json"]
    {
        let p = with_suffix(db, suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    Ok(())
}

/// The wire form of an event (record-views' field names), as record-views and import read it.
pub fn event_json(e: &ViewEvent) -> Value {
    let mut v = json!({
        "id": e.event_id,
        "from": e.from,
        "to": e.to,
        "viewer": e.viewer,
        "source": e.source,
        "contentViewed": e.content_viewed,
        "discoveryCase": e.discovery_case,
        "messageDate": dates::format_date(e.message_date),
        "viewed": dates::format_date(e.viewed),
        "subject": e.subject,
    });
    for (k, o) in
        [("viewerIp", &e.viewer_ip), ("messageId", &e.message_id), ("action", &e.action), ("caseId", &e.case_id)]
    {
        if let Some(s) = o {
            v[k] = Value::String(s.clone());
        }
    }
    v
}

/// A database of `events` generated events, seeded if the cache lacks it (or `fresh`).
/// Returns its path and facts.
pub async fn dataset(data_dir: &Path, events: u64, fresh: bool) -> Result<(PathBuf, SeedInfo)> {
    let dir = cache_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join(format!("events-{events}.db"));
    if !fresh {
        if let Ok(text) = std::fs::read_to_string(sidecar(&db)) {
            if let Ok(info) = serde_json::from_str::<SeedInfo>(&text) {
                if info.format == FORMAT && info.events == events && db.exists() {
                    eprintln!("using the cached database {} ({events} events)", db.display());
                    // A cache seeded before settling existed (or interrupted in it) settles
                    // now; when settled already, this is one query.
                    let store = Arc::new(SqliteStore::open(&db, SqliteOptions::default()).await?);
                    settle(&store).await?;
                    close(store).await?;
                    return Ok((db, info));
                }
            }
        }
    }
    remove_db(&db)?;
    let info = seed(&db, events).await?;
    std::fs::write(sidecar(&db), serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("writing {}", sidecar(&db).display()))?;
    Ok((db, info))
}

/// Creates the account, an administrator, an application and a binding, then `events` events
/// viewed over 2024, inserted in batches of 10,000 in an order unrelated to their time.
async fn seed(db: &Path, events: u64) -> Result<SeedInfo> {
    let started = Instant::now();
    eprintln!("seeding {} with {events} events (once; cached for later runs)", db.display());
    let (master, _) = MasterKey::load_or_create(&with_suffix(db, ".key"))?;
    let store = Arc::new(
        SqliteStore::open(db, SqliteOptions::default()).await.with_context(|| format!("opening {}", db.display()))?,
    );
    let admin = Admin::new(store.clone(), Vault::new(&master));
    let account = admin.create_account(ACCOUNT).await?;
    let email = format!("admin@{DOMAIN}");
    admin.create_user(ACCOUNT, &email, Some(permissions::FULL_ADMINISTRATOR), None).await?;
    let app = admin.create_application(ACCOUNT, "viewlog-bench").await?;
    let binding = admin.create_binding(&email, &app.application.app_id, None).await?;

    // Each event's time is drawn independently over the year, so the generator's order is
    // already unrelated to time order; each batch is shuffled as well, for good measure.
    let mut generator = Generator::new(2024, DOMAIN, YEAR_START, YEAR_END);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut left = events;
    let mut pending: Option<tokio::task::JoinHandle<Result<()>>> = None;
    let mut done = 0u64;
    let mut next_report = events / 10;
    while left > 0 {
        let n = left.min(SEED_BATCH as u64) as usize;
        let mut batch = generator.batch(n);
        batch.shuffle(&mut rng);
        if let Some(p) = pending.take() {
            p.await??;
        }
        let s = store.clone();
        let id = account.id;
        // Inserting one batch while the next is generated.
        pending = Some(tokio::spawn(async move {
            let outcome = s.insert_events(id, &batch).await?;
            if outcome.inserted != batch.len() as u64 {
                bail!("a seed batch stored {} of {} events", outcome.inserted, batch.len());
            }
            Ok(())
        }));
        left -= n as u64;
        done += n as u64;
        if done >= next_report {
            eprintln!("  {done}/{events} events ({:.0} s)", started.elapsed().as_secs_f64());
            next_report += (events / 10).max(1);
        }
    }
    if let Some(p) = pending.take() {
        p.await??;
    }
    drop(admin);
    settle(&store).await?;
    close(store).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    eprintln!("seeded {events} events in {seed_secs:.0} s");
    Ok(SeedInfo {
        format: FORMAT,
        schema: SqliteStore::schema_version(),
        events,
        app_id: app.application.app_id.clone(),
        app_key: app.app_key.expose().to_owned(),
        access_key: binding.binding.access_key.clone(),
        secret_key: binding.secret_key.expose().to_owned(),
        seed_secs,
    })
}

/// Compacts everything the seed wrote, as a server does to the days ingest has left alone
/// for [`viewlog_core::SETTLED_AFTER`] seconds: the store is measured as a server keeps it
/// once the ingest that filled it is minutes old.
async fn settle(store: &SqliteStore) -> Result<()> {
    let started = Instant::now();
    let days = store.compact(i64::MAX).await.context("compacting the seeded store")?;
    if days > 0 {
        eprintln!(
            "  compacted {days} days of the text index and accounts' late events in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Drops the last handle of a store, so its connections close and its WAL is folded in.
async fn close(store: Arc<SqliteStore>) -> Result<()> {
    match Arc::try_unwrap(store) {
        Ok(s) => drop(s),
        Err(_) => bail!("the seeded store is still in use"),
    }
    // The connections close on the blocking pool; give them a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(())
}

/// A working copy of a cached database (the benchmark writes to it: request ids, ingest).
/// Each file is synced before this returns: otherwise the kernel would write the copy (GBs
/// for the 10M store) back to disk during the measurements that follow, and every `fsync` of
/// the server's would wait behind it. Each is then read through once, so that the first run
/// reads the store from the page cache, as a server that has been running does, rather than
/// from the disk (in one full run the first two runs' 10M searches took 2-4x the third's).
pub fn working_copy(db: &Path, work_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let name = db.file_name().context("a database file name")?;
    let copy = work_dir.join(name);
    remove_db(&copy)?;
    for suffix in ["", "-wal", "-requests", "-requests-wal", ".key"] {
        let from = with_suffix(db, suffix);
        if from.exists() {
            let to = with_suffix(&copy, suffix);
            std::fs::copy(&from, &to)
                .and_then(|_| std::fs::File::open(&to)?.sync_all())
                .and_then(|_| std::io::copy(&mut std::fs::File::open(&to)?, &mut std::io::sink()))
                .with_context(|| format!("copying {} to {}", from.display(), work_dir.display()))?;
        }
    }
    Ok(copy)
}

/// An empty database with the benchmark's account, for `viewlog import` to fill.
pub async fn empty_db(db: &Path) -> Result<()> {
    remove_db(db)?;
    let store = Arc::new(SqliteStore::open(db, SqliteOptions::default()).await?);
    let admin = Admin::new(store.clone(), Vault::new(&MasterKey::generate()));
    admin.create_account(ACCOUNT).await?;
    drop(admin);
    close(store).await
}

/// An NDJSON file of `events` generated events (ids included), cached.
pub fn import_file(data_dir: &Path, events: u64) -> Result<PathBuf> {
    let dir = cache_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("import-{events}.ndjson"));
    if path.exists() {
        return Ok(path);
    }
    eprintln!("writing {} ({events} events to import)", path.display());
    let tmp = with_suffix(&path, ".tmp");
    let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut generator = Generator::new(99, DOMAIN, YEAR_START, YEAR_END);
    for i in 0..events {
        let mut e = generator.event();
        e.event_id = format!("import-{i}-{}", e.event_id);
        serde_json::to_writer(&mut out, &event_json(&e))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
