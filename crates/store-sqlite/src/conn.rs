//! Connections, the pools that hand them out, and cancellation.
//!
//! Every operation takes a connection from a [`Pool`] (the writer pool holds one, the reader pool
//! a few), moves it into `tokio::task::spawn_blocking`, and runs there; the async side only
//! waits. If the waiting future is dropped (a deadline passed, the client went away), a drop
//! guard interrupts the running statement through the connection's [`InterruptHandle`]; the
//! interrupted statement fails with `SQLITE_INTERRUPT`, which becomes
//! [`StoreError::Interrupted`]. Operations of a few microseconds ([`Pool::run_short`], run on
//! the calling thread when a connection is free) and short writes that must not be undone
//! halfway ([`Pool::run_to_end`]) are never interrupted: once started they run to their end.
//!
//! An interrupt must never reach a *later* statement run for another operation on the same
//! connection. The guard and the blocking side share a [`Cancel`] whose interrupt handle is set
//! ("armed") before the work starts and taken away ("disarmed"), under the same lock the guard
//! interrupts under, before the connection goes back to the pool. So an interrupt can only be
//! issued while this operation still owns the connection. (SQLite also forgets an interrupt
//! that arrives when no statement is running, once the next statement starts.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, InterruptHandle, OpenFlags};
use tokio::sync::Semaphore;
use viewlog_store::{StoreError, StoreResult};

use crate::dictionaries::Dictionaries;
use crate::error::Fail;

/// Pages of write-ahead log after which a commit of the events file checkpoints it (SQLite's
/// default is 1,000). A 10,000-event batch writes a few thousand pages, many of them the same
/// ones as the batch before (the ends of the tables it appends to, the recent ids, the hour
/// sums, the b-trees' inner pages): checkpointing every few batches copies each such page into
/// the database once for all of them, and syncs the database once.
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 10_000;

/// How much a commit on a connection must survive (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: in WAL mode every commit syncs the log, so it survives a power loss.
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash of the process but the last few may be
    /// lost on a power loss. Only for cheap, short-lived state (replay records).
    Normal,
    /// `synchronous=EXTRA`: `FULL`, and with a rollback journal the directory is synced once
    /// the journal is deleted, which is what commits the transaction (a bulk import outside
    /// WAL mode, `import.rs`).
    Extra,
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The one connection that writes; it also creates the file.
    Writer,
    /// A connection that only reads (`PRAGMA query_only`).
    Reader,
    /// The one connection to the requests file (`requests.rs`), which it creates.
    Requests,
}

/// How to open connections.
#[derive(Debug, Clone)]
pub(crate) struct ConnConfig {
    /// The database file.
    pub(crate) path: PathBuf,
    /// How long a statement waits for another process's lock before failing.
    pub(crate) busy_timeout: Duration,
    /// The writer's page cache, KiB.
    pub(crate) writer_cache_kib: u32,
    /// The text segments' dictionaries kept between searches, shared by the pools made from
    /// this configuration's clones.
    pub(crate) dictionaries: Arc<Dictionaries>,
}

/// How much of the file connections map into memory: 64 GiB, the compile-time maximum the
/// workspace gives the bundled SQLite (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`; SQLite's own
/// default cap is 2 GiB, and SQLite lowers the setting to whatever cap it was built with).
/// Beyond it, pages are read with `pread` and copied.
pub(crate) const MMAP_SIZE: i64 = 1 << 36;

/// The page size of a new database file.
const PAGE_SIZE: i64 = 8192;

/// A connection with what the pool knows about it.
pub(crate) struct Conn {
    /// The SQLite connection.
    pub(crate) db: Connection,
    durability: Durability,
    /// The signature's lookups this connection read (used on the lookups' readers only).
    pub(crate) lookups: crate::lookups::LookupCache,
    /// Replay records written in the open transaction and waiting for its commit (the requests
    /// file's connection only, see `requests::join_group`). While it is set, the transaction is
    /// left open on purpose.
    pub(crate) replay_group: Option<crate::requests::Group>,
}

impl Conn {
    /// Opens and configures a connection.
    pub(crate) fn open(config: &ConnConfig, kind: Kind) -> Result<Conn, Fail> {
        let flags = match kind {
            Kind::Writer | Kind::Requests => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Kind::Reader => OpenFlags::SQLITE_OPEN_READ_WRITE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(&config.path, flags)?;
        db.busy_timeout(config.busy_timeout)?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        // Room for every statement the store prepares (some 70, the page query's shapes
        // included), so that none is evicted and prepared again.
        db.set_prepared_statement_cache_capacity(128);
        // The bundled SQLite is built with STAT4, which marks a cached statement to be prepared
        // again whenever a parameter that bounds an index range is bound anew: every page query
        // was parsed and planned again on every request (`sqlite3Reprepare` in the profile).
        // The query planner stability guarantee keeps the plan made at prepare time; the plans
        // the store relies on are checked by the tests of `events.rs`.
        db.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Read the file through a memory map: a page read is a memory access rather than a
        // `pread` and a copy into the connection's cache, and mapped pages are the kernel's page
        // cache, not the process's private memory.
        db.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        let mut durability = Durability::Full;
        match kind {
            Kind::Writer => {
                // Refuse a foreign or newer file before changing anything in it.
                let version = crate::schema::check(&db)?;
                if version == 0 {
                    // A new file: rows of events are a few hundred bytes, and a WITHOUT ROWID
                    // table wants pages that hold a few dozen of them. Only possible before the
                    // first table is written (and before WAL mode).
                    db.pragma_update(None, "page_size", PAGE_SIZE)?;
                }
                use_wal(&db, "the database")?;
                db.pragma_update(None, "synchronous", "FULL")?;
                // Negative: KiB rather than pages.
                db.pragma_update(None, "cache_size", -i64::from(config.writer_cache_kib))?;
                db.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
            }
            Kind::Reader => db.pragma_update(None, "query_only", "ON")?,
            Kind::Requests => {
                // Before the file's first access in WAL mode: the log's index then lives in this
                // process's memory and no commit takes a file lock (see `requests.rs`).
                db.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
                crate::requests::prepare(&db)?;
                // Replay records commit with synchronous=NORMAL (see the crate docs).
                db.pragma_update(None, "synchronous", "NORMAL")?;
                db.pragma_update(None, "wal_autocheckpoint", crate::requests::AUTOCHECKPOINT)?;
                durability = Durability::Normal;
            }
        }
        Ok(Conn { db, durability, lookups: Default::default(), replay_group: None })
    }

    /// Sets `PRAGMA synchronous` for the next transactions, if it is not set so already.
    /// Must be called outside a transaction.
    pub(crate) fn set_durability(&mut self, durability: Durability) -> Result<(), Fail> {
        if self.durability != durability {
            let value = match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
                Durability::Extra => "EXTRA",
            };
            self.db.pragma_update(None, "synchronous", value)?;
            self.durability = durability;
        }
        Ok(())
    }
}

/// A read transaction on a reader connection: the statements run while it lives see one
/// snapshot of the database. `BEGIN` and `COMMIT` are cached statements (rusqlite's
/// `Transaction` parses them anew each time, which shows in a profile of short reads). Ends
/// with `COMMIT` when dropped (a read transaction has nothing to undo).
pub(crate) struct ReadTx<'a> {
    db: &'a Connection,
}

impl<'a> ReadTx<'a> {
    /// Starts the transaction (SQLite takes the read snapshot at the first read).
    pub(crate) fn begin(db: &'a Connection) -> Result<ReadTx<'a>, Fail> {
        db.prepare_cached("BEGIN")?.execute([])?;
        Ok(ReadTx { db })
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        let ended = self.db.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
        if let Err(e) = ended {
            // The pool notices a connection left inside a transaction and replaces it.
            tracing::warn!(error = %e, "ending a read transaction failed");
        }
    }
}

/// Starts an immediate write transaction. `BEGIN` and `COMMIT` are cached statements:
/// rusqlite's `Transaction` parses them anew each time, a cost every signed request paid for its
/// replay record.
pub(crate) fn begin_write(db: &Connection) -> Result<(), Fail> {
    db.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    Ok(())
}

/// Commits the open transaction.
pub(crate) fn commit(db: &Connection) -> Result<(), Fail> {
    db.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// Rolls back the open transaction, if there is one. Should that fail too, the pool replaces a
/// connection left inside a transaction.
pub(crate) fn roll_back_open(db: &Connection) {
    if !db.is_autocommit() {
        let _ = db.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
    }
}

/// Runs `f` in an immediate write transaction: committed if `f` succeeds, rolled back if it
/// (or the commit) fails.
pub(crate) fn in_write_tx<T>(db: &Connection, f: impl FnOnce(&Connection) -> Result<T, Fail>) -> Result<T, Fail> {
    begin_write(db)?;
    let done = f(db).and_then(|value| {
        commit(db)?;
        Ok(value)
    });
    if done.is_err() {
        roll_back_open(db);
    }
    done
}

/// Counters kept for operators and tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Operations stopped while running (interrupted statement or cancel check).
    pub(crate) interrupted: AtomicU64,
    /// Reads started on the calling thread that ran out of their budget and were handed to a
    /// blocking thread (`Pool::try_inline`).
    pub(crate) inline_overruns: AtomicU64,
    /// Commits of groups of replay records (`requests::commit_group`).
    pub(crate) replay_commits: AtomicU64,
    /// Bulk imports written with a rollback journal rather than through the WAL (`import.rs`).
    pub(crate) imports_outside_wal: AtomicU64,
}

/// How many SQLite virtual-machine steps pass between two checks of an inline read's budget
/// (some 50–100 µs of work; checking every thousand cost ~4% of the page benchmark).
const INLINE_CHECK_EVERY: std::os::raw::c_int = 10_000;

/// The cancellation state one operation shares between its future and its blocking half.
#[derive(Default)]
struct Cancel {
    cancelled: AtomicBool,
    /// Set while the blocking half runs statements on the connection.
    handle: Mutex<Option<InterruptHandle>>,
}

impl Cancel {
    fn lock(&self) -> MutexGuard<'_, Option<InterruptHandle>> {
        self.handle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms the interrupt; `false` if the operation was cancelled already (do not start).
    fn arm(&self, handle: InterruptHandle) -> bool {
        let mut slot = self.lock();
        if self.cancelled.load(Ordering::SeqCst) {
            return false;
        }
        *slot = Some(handle);
        true
    }

    /// Disarms the interrupt: after this, cancelling touches the connection no more.
    fn disarm(&self) {
        self.lock().take();
    }

    /// Cancels the operation, interrupting its statement if one may be running.
    fn cancel(&self) {
        let slot = self.lock();
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(handle) = slot.as_ref() {
            handle.interrupt();
        }
    }
}

/// Cancels its operation when dropped; once the operation has finished that is a no-op.
struct CancelOnDrop(Arc<Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What the blocking half of an operation can ask about its cancellation.
pub(crate) struct Ctx<'a> {
    cancel: &'a Cancel,
    dictionaries: &'a Dictionaries,
}

impl Ctx<'_> {
    /// The cache of text segments' dictionaries the store's readers share.
    pub(crate) fn dictionaries(&self) -> &Dictionaries {
        self.dictionaries
    }

    /// `Interrupted` if the operation's future has been dropped. Long multi-statement operations
    /// call it between statements, where SQLite's interrupt cannot reach.
    pub(crate) fn check(&self) -> Result<(), Fail> {
        if self.cancel.cancelled.load(Ordering::Relaxed) {
            Err(StoreError::Interrupted.into())
        } else {
            Ok(())
        }
    }
}

/// Runs `f` with the context of an operation that is never cancelled and reads `dictionaries`.
#[cfg(test)]
pub(crate) fn with_test_cache<T>(dictionaries: &Dictionaries, f: impl FnOnce(&Ctx<'_>) -> T) -> T {
    let cancel = Cancel::default();
    f(&Ctx { cancel: &cancel, dictionaries })
}

/// Switches `db` (`what`, for the error) to WAL mode; an error if it stays in another mode.
pub(crate) fn use_wal(db: &Connection, what: &str) -> Result<(), Fail> {
    let mode: String = db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!("could not switch {what} to WAL mode (journal_mode={mode})").into()).into())
    }
}

/// A fixed number of connections of one kind, handed out one operation at a time.
pub(crate) struct Pool {
    kind: Kind,
    config: ConnConfig,
    size: usize,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("kind", &self.kind)
            .field("size", &self.size)
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl Pool {
    /// A pool of the given connections (opened already, so that opening errors show at start).
    pub(crate) fn new(kind: Kind, config: ConnConfig, conns: Vec<Conn>, stats: Arc<Stats>) -> Arc<Pool> {
        let size = conns.len().max(1);
        Arc::new(Pool { kind, config, size, idle: Mutex::new(conns), permits: Arc::new(Semaphore::new(size)), stats })
    }

    /// How many connections the pool holds.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Closes the pool's idle connections; the next operations open new ones. Connections in
    /// use stay open.
    pub(crate) fn close_idle(&self) {
        let closed = std::mem::take(&mut *self.idle());
        drop(closed);
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on one of the pool's connections on a blocking thread; waits for a free
    /// connection first. Dropping the returned future interrupts `f`'s running statement.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        self.run_on_blocking_thread(f, true).await
    }

    /// Like [`Pool::run`], except that dropping the returned future does not interrupt `f` once
    /// it has started: it runs to its end and its result is dropped. For short writes that must
    /// not be undone halfway (an interrupted statement rolls back the whole transaction).
    pub(crate) async fn run_to_end<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        self.run_on_blocking_thread(f, false).await
    }

    /// [`Pool::run`], interrupting `f` if the returned future is dropped only if `interruptible`
    /// (otherwise `f` runs to its end and its result is dropped).
    async fn run_on_blocking_thread<T, F>(self: &Arc<Self>, f: F, interruptible: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the connection pool is closed".into()))?;
        let cancel = Arc::new(Cancel::default());
        let _guard = interruptible.then(|| CancelOnDrop(Arc::clone(&cancel)));
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let result = pool.run_blocking(&cancel, f);
            drop(permit);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(join) => Err(StoreError::backend(join)),
        }
    }

    /// Runs `f`, an operation of a few microseconds (a lookup by key, one small write), on the
    /// calling thread if a connection is free at once, else like [`Pool::run`]. The hop to a
    /// blocking thread and back costs more than such an operation: two context switches and
    /// their wake-ups. What `f` may wait for must be short too: a reader never waits for a
    /// lock in WAL mode, and the requests file's one connection holds its file exclusively.
    /// Work whose length is not known beforehand uses [`Pool::try_inline`].
    ///
    /// `f` is never interrupted, on a blocking thread either: it is short, and an interrupted
    /// write would roll back the whole transaction it joined (SQLite ends an explicit
    /// transaction whose statement was interrupted), a group of replay records included.
    pub(crate) async fn run_short<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                // Nothing can drop this operation halfway: it runs to its end before the
                // caller's future is polled again, so it needs no interrupt.
                let result = self.run_blocking(&Cancel::default(), f);
                drop(permit);
                result
            }
            Err(_) => self.run_to_end(f).await,
        }
    }

    /// Runs `f` on the calling thread if a connection is free at once and `f` finishes within
    /// `budget` (SQLite's progress handler interrupts it after that, checking every
    /// [`INLINE_CHECK_EVERY`] virtual-machine steps); `None` if no connection was free or the
    /// budget ran out, and the caller runs `f` again with [`Pool::run`]. For reads that are
    /// usually short but not always (a page whose count must read the rows of partial hours, a
    /// page from an old token over a range filled since): the calling thread is held for about
    /// `budget` at most.
    pub(crate) fn try_inline<T>(
        self: &Arc<Self>,
        budget: Duration,
        f: impl FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail>,
    ) -> StoreResult<Option<T>> {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return Ok(None);
        };
        let result = self.run_blocking(&Cancel::default(), |conn, ctx| {
            let started = std::time::Instant::now();
            conn.db.progress_handler(INLINE_CHECK_EVERY, Some(move || started.elapsed() > budget));
            let result = f(conn, ctx);
            conn.db.progress_handler(0, None::<fn() -> bool>);
            match result {
                // Nothing else interrupts an operation on the calling thread.
                Err(fail) if fail.is_interrupt() => {
                    roll_back_open(&conn.db);
                    Ok(None)
                }
                other => other.map(Some),
            }
        });
        drop(permit);
        if matches!(result, Ok(None)) {
            self.stats.inline_overruns.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn run_blocking<T>(
        &self,
        cancel: &Cancel,
        f: impl FnOnce(&mut Conn, &Ctx<'_>) -> Result<T, Fail>,
    ) -> StoreResult<T> {
        let taken = self.idle().pop();
        let mut conn = match taken {
            Some(conn) => conn,
            // After `close_idle`, or after a panic lost a connection: open one.
            None => Conn::open(&self.config, self.kind).map_err(Fail::into_store)?,
        };
        let ran = cancel.arm(conn.db.get_interrupt_handle());
        let result = if ran {
            f(&mut conn, &Ctx { cancel, dictionaries: &self.config.dictionaries })
        } else {
            // Cancelled before it started: do nothing at all.
            Err(StoreError::Interrupted.into())
        };
        // Disarm before the connection can serve anyone else.
        cancel.disarm();
        if let Err(fail) = &result {
            if ran && fail.is_interrupt() {
                self.stats.interrupted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(kind = ?self.kind, "SQLite operation interrupted");
            }
        }
        if conn.db.is_autocommit() || conn.replay_group.is_some() {
            self.idle().push(conn);
        } else {
            // A transaction left open by mistake would poison the next operation; a fresh
            // connection replaces this one when needed. (A group of replay records keeps its
            // transaction open until its commit, which the group's first request scheduled.)
            tracing::warn!(kind = ?self.kind, "dropping a SQLite connection left inside a transaction");
        }
        result.map_err(Fail::into_store)
    }
}
