//! viewlog's embedded SQLite store: [`SqliteStore`], an implementation of
//! [`viewlog_store::Store`] on one SQLite file.
//!
//! # Design
//!
//! - **Connections.** One writer connection and a small pool of reader connections
//!   ([`SqliteOptions::readers`]), in WAL mode so readers never wait for the writer. Every
//!   operation runs on a blocking thread (`tokio::task::spawn_blocking`); the async side only
//!   waits. The pools also bound how many queries run at once. The two operations of every
//!   signed request that take microseconds (the signature's lookups by key, the replay
//!   record's insert) run on the calling thread instead when a connection is free at once:
//!   the hop to a blocking thread and back cost more than they do. The lookups have two
//!   reader connections of their own, so that queries holding every reader cannot make each
//!   request's signature check wait or hop.
//! - **Cancellation.** Dropping an operation's future (a deadline, a client that went away)
//!   interrupts its running statement (`sqlite3_interrupt`); the operation ends with
//!   [`StoreError::Interrupted`] and its transaction is rolled back. The interrupt is disarmed
//!   before the connection is returned to its pool, so it can never reach a later operation.
//!   The operations of a few microseconds (the signature's lookups, the replay record's insert)
//!   and the purge of replay records run to their end instead: an interrupted insert would roll
//!   back the group of other requests' records it joined.
//! - **Durability.** Events and administrative writes commit with `PRAGMA synchronous=FULL`
//!   (in WAL mode: the log is synced at every commit, so an `Ok` survives a power loss).
//!   Replay records commit with `synchronous=NORMAL`: losing the last few to a power cut
//!   only re-opens a replay window of seconds for requests that were already signed and
//!   accepted, while a sync per API request would cost far more. Failed sign-in records
//!   likewise: losing the last few only forgets a few failures, and a flood of bad passwords
//!   must not buy a disk sync each. `synchronous` is a per-connection setting, switched on the
//!   writer around the latter.
//! - **Replay records** live in a file of their own beside the database, `<db>-requests`, with
//!   a connection of their own (the `requests` module): a write to the events file at every API
//!   request would make every reader drop its memory map of the file at its next read. That
//!   connection holds the file exclusively (no file locks per commit), opened at the first
//!   replay record or, for a server, at start ([`SqliteOptions::hold_requests_file`]): a second
//!   server on the same database is refused, administering it beside the server is not.
//!   Requests that arrive together share one commit of their records (group commit); each is
//!   answered after the commit that holds its record.
//! - **Records as the wire writes them**: each event's get-view-logs record is kept as JSON
//!   (`view_events.record`, written at insert), so a page is answered by copying each row's
//!   record ([`viewlog_store::WireRecords`]). The message's five strings (sender, recipient,
//!   viewer, source, subject) are kept only there; an event read whole (copying a store) takes
//!   them from its record (the `records` module). A page without a text filter reads on the
//!   calling thread when a reader is free: a range of the primary key and a count from the day
//!   sums take less than the hop to a blocking thread and back.
//! - **Events** are clustered by account and time (`PRIMARY KEY (account_id, viewed, seq)`,
//!   `WITHOUT ROWID`, 8 KiB pages), so a page is one contiguous range read; paging is keyset
//!   paging with row values, never `OFFSET`. Idempotency: an insert claims each event's id,
//!   looked up in `event_ids` and added to `recent_ids` (`INSERT … ON CONFLICT DO NOTHING`,
//!   counting changes); an account's recent ids are folded into `event_ids` once they reach an
//!   eighth of them ([`SqliteOptions::id_fold_min`]), so that a batch of random ids changes the
//!   few pages of a small table rather than a page of a big one per event (the `ids` module).
//!   `seq` comes from the account's `last_seq`, bumped in the inserting transaction (SQLite has
//!   one writer, so seqs increase in commit order). Reading in seq order (`events_after`,
//!   for copying a store) needs an index on `(account_id, seq)`, which would cost every
//!   ingest some 10%: it is created by the first `events_after` instead of a migration. That
//!   first call holds the write lock while it builds the index.
//! - **Late events**: an event viewed over an hour before its account's newest (a backfill)
//!   would change a page in the middle of that table; it is appended to `late_events` instead
//!   (clustered by account and seq), and every read merges the two tables. A fold moves an
//!   account's late events into `view_events` in time order, one transaction writing each page
//!   once: when the account stops taking them (the server's compaction), when they reach a
//!   quarter of its other events ([`SqliteOptions::late_fold_min`]: started by the insert
//!   that gets there, on a task of its own) and at the end of an import (the `late` module).
//! - **Text filter**: Unicode case-insensitive substring matching over viewer, sender,
//!   recipient and subject (the `text` module), answered by a text index: per-day segments of
//!   the folded fields with a dictionary of their words (`segments`), searched through the
//!   dictionary (`search`).
//! - **Rate limits** live in memory, bounded in number ([`SqliteOptions::max_rate_buckets`]):
//!   one SQLite file is served by one server process.
//! - **Schema** migrations are versioned in code and tracked by `PRAGMA user_version`; a file
//!   written by a newer viewlog, or by another program, is refused with
//!   [`StoreError::Corrupt`].

#![warn(missing_docs)]

mod conn;
mod dictionaries;
mod error;
mod events;
mod hours;
mod ids;
mod import;
mod late;
mod lookups;
mod rate;
mod records;
use records::RecordRows;
mod requests;
mod schema;
mod search;
mod segments;
mod text;
mod trigrams;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use rusqlite::{params, OptionalExtension, Row};
use viewlog_store::{
    AccessToken, Account, AccountId, ApiClient, Application, ApplicationKeyId, AuthProfile, Binding, EventFilter,
    FirstPage, FirstWirePage, ImportOptions, InsertOutcome, LoginFailures, NewApiClient, NewApplication, NewBinding,
    NewRole, NewUser, PageRequest, Principal, RateDecision, RateKey, RatePolicy, Role, RoleId, Store, StoreError,
    StoreResult, StoredEvent, TokenPrincipal, UnixTime, User, UserId, ViewEvent, WireRecords,
};

use conn::{Conn, ConnConfig, Ctx, Durability, Kind, Pool, Stats};
use dictionaries::Dictionaries;
use error::{conflict_as, Fail};

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How many reader connections to keep, and so how many reads run at once (at least 1).
    pub readers: usize,
    /// How long a statement waits for a lock held by another process (the command-line tool
    /// writing to the same file, say) before failing.
    pub busy_timeout: Duration,
    /// How many rate-limit buckets to keep in memory at the most (full ones are evicted first).
    pub max_rate_buckets: usize,
    /// The writer connection's page cache in KiB (readers keep SQLite's default of 2 MiB).
    /// Ingest looks up event ids all over; a larger cache saves reads, not writes.
    pub writer_cache_kib: u32,
    /// Open the requests file (`<db>-requests`, replay records) at once rather than at the first
    /// replay record, and fail if another process holds it: what a server does at start. The
    /// file is held exclusively by the store that opens it, for the store's life.
    pub hold_requests_file: bool,
    /// How long a page without a text filter may run on the calling thread before it is handed
    /// to a blocking thread (and started again there). Such a page usually takes tens of
    /// microseconds, less than the hop to a blocking thread and back.
    pub inline_budget: Duration,
    /// How many bytes of text segments' dictionaries, and of their indexes by trigram, the
    /// readers keep between searches (see `dictionaries.rs`); 0 keeps none. A search reads the
    /// dictionaries of every day of its range: a year of ten million events a year holds about
    /// 12 MB of them. A dictionary's index (about three times its size) is built on its second
    /// use and kept only in room no dictionary needs.
    pub dictionary_cache_bytes: usize,
    /// The fewest late events (viewed over an hour before their account's newest, so kept
    /// apart until folded into the time-ordered table) that make a fold due at once; a fold is
    /// also due at a quarter of the account's other events, up to a million, and once the
    /// account took none for the compaction's settling time (see the crate docs).
    pub late_fold_min: u64,
    /// The fewest recent event ids (claimed since the account's last fold, see the crate docs)
    /// that make a fold of them into the account's other ids due; a fold is also due at an
    /// eighth of those other ids, up to a million.
    pub id_fold_min: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            max_rate_buckets: 100_000,
            writer_cache_kib: 16 * 1024,
            hold_requests_file: false,
            inline_budget: Duration::from_millis(1),
            dictionary_cache_bytes: 16 << 20,
            late_fold_min: late::FOLD_MIN as u64,
            id_fold_min: ids::FOLD_MIN as u64,
        }
    }
}

/// A [`Store`] on one SQLite file. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// Reader connections kept for the signature's lookups (see `Inner::lookups`): each lookup
/// takes microseconds on the thread that asks, so two serve many requests at once.
const LOOKUP_READERS: usize = 2;

struct Inner {
    path: PathBuf,
    writer: Arc<Pool>,
    readers: Arc<Pool>,
    /// Reader connections of their own for the lookups by key of every signed request, so
    /// that queries holding every reader do not make them wait (`LOOKUP_READERS`).
    lookups: Arc<Pool>,
    /// The one connection to the requests file (replay records, `requests.rs`), opened at the
    /// first need (see `SqliteStore::requests`).
    requests: tokio::sync::OnceCell<Arc<Pool>>,
    /// How to open it.
    requests_config: ConnConfig,
    /// See [`SqliteOptions::inline_budget`].
    inline_budget: Duration,
    rate: rate::RateLimiter,
    stats: Arc<Stats>,
    /// Whether this store made sure the seq index exists (see `events::SEQ_INDEX`).
    seq_index: AtomicBool,
    /// Whether a fold of late events started by an insert is under way (`start_fold`).
    folding: AtomicBool,
    /// See [`SqliteOptions::late_fold_min`].
    late_fold_min: i64,
    /// See [`SqliteOptions::id_fold_min`].
    id_fold_min: i64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("writer", &self.inner.writer)
            .field("readers", &self.inner.readers)
            .field("rate_buckets", &self.inner.rate.len())
            .field("interrupted", &self.interrupted_operations())
            .finish()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file if it is missing and bringing its schema
    /// up to date. Fails with [`StoreError::Corrupt`] for a file that is not a viewlog database
    /// or that a newer viewlog wrote.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, options)).await.map_err(StoreError::backend)?
    }

    fn open_blocking(path: PathBuf, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let config = ConnConfig {
            path: path.clone(),
            busy_timeout: options.busy_timeout,
            writer_cache_kib: options.writer_cache_kib,
            dictionaries: Arc::new(Dictionaries::new(options.dictionary_cache_bytes)),
        };
        let requests_config = ConnConfig { path: requests::path_for(&path), ..config.clone() };
        // The writer, the readers, the lookups' readers and, if opened now, the requests file.
        type Opened = (Conn, Vec<Conn>, Vec<Conn>, Option<Conn>);
        let open = || -> Result<Opened, Fail> {
            let mut writer = Conn::open(&config, Kind::Writer)?;
            // Refused before anything is written if the database is not viewlog's.
            schema::check(&writer.db)?;
            // Replay records a database kept itself before schema version 5 move into the
            // requests file before the migration that drops them.
            let requests = if options.hold_requests_file || requests::kept_in(&writer.db)? {
                let requests = requests::open(&requests_config)?;
                requests::adopt(&writer.db, &requests.db)?;
                Some(requests)
            } else {
                None
            };
            schema::migrate(&mut writer.db)?;
            let readers =
                (0..options.readers.max(1)).map(|_| Conn::open(&config, Kind::Reader)).collect::<Result<_, _>>()?;
            let lookups = (0..LOOKUP_READERS).map(|_| Conn::open(&config, Kind::Reader)).collect::<Result<_, _>>()?;
            Ok((writer, readers, lookups, requests))
        };
        let (writer, readers, lookups, requests) = open().map_err(Fail::into_store)?;
        let stats = Arc::new(Stats::default());
        let requests =
            requests.map(|conn| Pool::new(Kind::Requests, requests_config.clone(), vec![conn], Arc::clone(&stats)));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Pool::new(Kind::Writer, config.clone(), vec![writer], Arc::clone(&stats)),
                readers: Pool::new(Kind::Reader, config.clone(), readers, Arc::clone(&stats)),
                lookups: Pool::new(Kind::Reader, config, lookups, Arc::clone(&stats)),
                requests: tokio::sync::OnceCell::new_with(requests),
                requests_config,
                inline_budget: options.inline_budget,
                path,
                rate: rate::RateLimiter::new(options.max_rate_buckets),
                stats,
                seq_index: AtomicBool::new(false),
                folding: AtomicBool::new(false),
                late_fold_min: i64::try_from(options.late_fold_min).unwrap_or(i64::MAX),
                id_fold_min: i64::try_from(options.id_fold_min).unwrap_or(i64::MAX),
            }),
        })
    }

    /// The requests file's connection, opened at the first replay record or purge unless
    /// [`SqliteOptions::hold_requests_file`] opened it with the store. Whoever opens it holds it
    /// (`requests::open`), so a process that only administers the database (the command-line
    /// tool beside a running server) never touches it.
    async fn requests(&self) -> StoreResult<&Arc<Pool>> {
        self.inner
            .requests
            .get_or_try_init(|| async {
                let config = self.inner.requests_config.clone();
                let stats = Arc::clone(&self.inner.stats);
                tokio::task::spawn_blocking(move || {
                    let conn = requests::open(&config).map_err(Fail::into_store)?;
                    Ok(Pool::new(Kind::Requests, config, vec![conn], stats))
                })
                .await
                .map_err(StoreError::backend)?
            })
            .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The number of reader connections.
    pub fn readers(&self) -> usize {
        self.inner.readers.size()
    }

    /// How many page reads ran out of their budget on the calling thread and were run again on
    /// a blocking thread (see [`SqliteOptions::inline_budget`]).
    pub fn inline_overruns(&self) -> u64 {
        self.inner.stats.inline_overruns.load(Ordering::Relaxed)
    }

    /// How many commits the replay records of signed requests took: requests that arrive
    /// together share one (see `remember_request`).
    pub fn replay_commits(&self) -> u64 {
        self.inner.stats.replay_commits.load(Ordering::Relaxed)
    }

    /// How many bulk imports into a store without events were written with a rollback journal
    /// rather than through the WAL (see `Store::import_events`).
    pub fn imports_outside_wal(&self) -> u64 {
        self.inner.stats.imports_outside_wal.load(Ordering::Relaxed)
    }

    /// How many operations were stopped while running because their future was dropped.
    pub fn interrupted_operations(&self) -> u64 {
        self.inner.stats.interrupted.load(Ordering::Relaxed)
    }

    /// The schema version this code writes (the file's `PRAGMA user_version` once opened).
    pub fn schema_version() -> i64 {
        schema::current_version()
    }

    /// Runs `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        self.inner.readers.run(move |conn, ctx| f(&conn.db, ctx)).await
    }

    /// Runs the page read `f` like [`SqliteStore::read`], or, when `short`, first on the
    /// calling thread if a reader is free at once, within [`SqliteOptions::inline_budget`]
    /// (`Pool::try_inline`). A page without a text filter is usually short: a range of the
    /// primary key, at most a page's rows copied, and a count from the day and hour sums (a
    /// month's first page: some 30 µs of SQLite in the page benchmark, less than the hop to a
    /// blocking thread and back). Not always: the count reads the rows of the partial hours at
    /// the range's ends, and a page from an old token skips the events stored in its range
    /// since; such a read runs out of its budget and runs again on a blocking thread, with the
    /// query deadline. A text filter's search can take milliseconds and always hops.
    async fn read_page<T, F>(&self, short: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Connection, &Ctx<'_>) -> Result<T, Fail> + Send + Sync + 'static,
    {
        if short {
            let done = self.inner.readers.try_inline(self.inner.inline_budget, |conn, ctx| f(&conn.db, ctx))?;
            if let Some(done) = done {
                return Ok(done);
            }
        }
        self.read(move |db, ctx| f(db, ctx)).await
    }

    /// Runs `f` in an immediate write transaction on the writer connection (rolled back if `f`
    /// fails), committed with the given durability.
    async fn write<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        Self::write_on(&self.inner.writer, durability, f).await
    }

    /// Runs `f` in an immediate write transaction on the one connection of `pool` (rolled back
    /// if `f` fails), committed with the given durability.
    async fn write_on<T, F>(pool: &Arc<Pool>, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &Ctx<'_>) -> Result<T, Fail> + Send + 'static,
    {
        pool.run(move |conn, ctx| {
            conn.set_durability(durability)?;
            conn::in_write_tx(&conn.db, |db| f(db, ctx))
        })
        .await
    }

    /// Moves the account's late events into the time-ordered table now, in one write
    /// transaction (see `late`); returns how many moved. The server's compaction does this for
    /// accounts that stopped taking late events; a benchmark or a test may want it at once.
    pub async fn fold_late(&self, account: AccountId) -> StoreResult<u64> {
        // Folding adds no data: a fold lost to a power cut leaves the late events where they were.
        self.write(Durability::Normal, move |tx, _| late::fold(tx, account.0)).await
    }

    /// Starts a fold of the account's late events on a task of its own, unless one is under
    /// way: a client that goes away must not cancel it, and the writes behind it wait for it.
    fn start_fold(&self, account: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.folding.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        runtime.spawn(async move {
            let started = std::time::Instant::now();
            match store.fold_late(AccountId(account)).await {
                Ok(moved) => {
                    tracing::info!(account, moved, secs = started.elapsed().as_secs_f64(), "folded late events")
                }
                Err(e) => tracing::warn!(account, error = %e, "folding late events failed"),
            }
            store.inner.folding.store(false, Ordering::Release);
        });
    }

    #[cfg(test)]
    pub(crate) async fn read_for_test<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.read(move |db, _| Ok(f(db)?)).await
    }
}

// ----- replay records -----

/// Schedules the commit of the requests connection's open group of replay records (see
/// `requests.rs`) on the runtime, behind the tasks queued on it now: the requests among them
/// join the group first. (On a runtime with several workers another worker may run it sooner:
/// smaller groups, the same answers.)
fn schedule_replay_commit(pool: Arc<Pool>, stats: Arc<Stats>) {
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        let committed = pool.run_short(move |conn, _| {
            commit_replay_group(conn, &stats);
            Ok(())
        });
        if let Err(e) = committed.await {
            // The group's requests learn it from the group; this is about the connection.
            tracing::warn!(error = %e, "committing replay records failed");
        }
    });
}

/// Commits the open group of replay records, if any (a purge may have committed it already),
/// and counts the commit.
fn commit_replay_group(conn: &mut Conn, stats: &Stats) {
    if requests::commit_group(conn) {
        stats.replay_commits.fetch_add(1, Ordering::Relaxed);
    }
}

// ----- row mapping -----

const ACCOUNT_COLUMNS: &str = "id, name, disabled, created_at";
const USER_COLUMNS: &str = "id, account_id, email, role_id, password_hash, disabled, created_at";
const APPLICATION_COLUMNS: &str = "id, account_id, app_id, name, app_key_sealed, disabled, created_at";
const BINDING_COLUMNS: &str =
    "access_key, account_id, user_id, application_id, secret_key_sealed, created_at, expires_at, revoked";
const API_CLIENT_COLUMNS: &str = "client_id, account_id, role_id, name, secret_hash, revoked, created_at";
/// A role with its permissions, one row per permission (or one with NULL for none).
const ROLE_SELECT: &str = "SELECT r.id, r.account_id, r.name, r.builtin, p.permission \
     FROM roles r LEFT JOIN role_permissions p ON p.role_id = r.id";

fn account_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    account_at(row, 0)
}

/// An account read from [`ACCOUNT_COLUMNS`] starting at column `i`.
fn account_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(row.get(i)?),
        name: row.get(i + 1)?,
        disabled: row.get(i + 2)?,
        created_at: row.get(i + 3)?,
    })
}

fn api_client_row(row: &Row<'_>) -> rusqlite::Result<ApiClient> {
    Ok(ApiClient {
        client_id: row.get(0)?,
        account_id: AccountId(row.get(1)?),
        role_id: RoleId(row.get(2)?),
        name: row.get(3)?,
        secret_hash: row.get(4)?,
        revoked: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<User> {
    user_at(row, 0)
}

/// A user read from [`USER_COLUMNS`] starting at column `i`.
fn user_at(row: &Row<'_>, i: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(i)?),
        account_id: AccountId(row.get(i + 1)?),
        email: row.get(i + 2)?,
        role_id: row.get::<_, Option<i64>>(i + 3)?.map(RoleId),
        password_hash: row.get(i + 4)?,
        disabled: row.get(i + 5)?,
        created_at: row.get(i + 6)?,
    })
}

fn application_row(row: &Row<'_>) -> rusqlite::Result<Application> {
    application_at(row, 0)
}

/// An application read from [`APPLICATION_COLUMNS`] starting at column `i`.
fn application_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Application> {
    Ok(Application {
        id: ApplicationKeyId(row.get(i)?),
        account_id: AccountId(row.get(i + 1)?),
        app_id: row.get(i + 2)?,
        name: row.get(i + 3)?,
        app_key_sealed: row.get(i + 4)?,
        disabled: row.get(i + 5)?,
        created_at: row.get(i + 6)?,
    })
}

fn binding_row(row: &Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        access_key: row.get(0)?,
        account_id: AccountId(row.get(1)?),
        user_id: UserId(row.get(2)?),
        application_id: ApplicationKeyId(row.get(3)?),
        secret_key_sealed: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        revoked: row.get(7)?,
    })
}

/// Reads [`ROLE_SELECT`] rows into roles, grouping consecutive rows of one role.
/// The principal of an access key (see [`Store::principal`]).
fn read_principal(db: &rusqlite::Connection, access_key: &str) -> Result<Option<Principal>, Fail> {
    // One statement, so one consistent read: one row per permission of the user's role.
    let mut stmt = db.prepare_cached(
        "SELECT b.access_key, b.account_id, b.user_id, b.application_id, b.secret_key_sealed, \
                    b.created_at, b.expires_at, b.revoked, \
                    u.id, u.account_id, u.email, u.role_id, u.password_hash, u.disabled, u.created_at, \
                    a.id, a.name, a.disabled, a.created_at, \
                    p.id, p.account_id, p.app_id, p.name, p.app_key_sealed, p.disabled, p.created_at, \
                    rp.permission \
             FROM bindings b \
             JOIN users u ON u.id = b.user_id \
             JOIN accounts a ON a.id = b.account_id \
             JOIN applications p ON p.id = b.application_id \
             LEFT JOIN role_permissions rp ON rp.role_id = u.role_id \
             WHERE b.access_key = ?1 \
             ORDER BY rp.position",
    )?;
    let mut rows = stmt.query([access_key])?;
    let mut principal: Option<Principal> = None;
    while let Some(row) = rows.next()? {
        let permission: Option<String> = row.get(26)?;
        match principal.as_mut() {
            Some(p) => p.permissions.extend(permission),
            None => {
                principal = Some(Principal {
                    binding: binding_row(row)?,
                    user: user_at(row, 8)?,
                    account: account_at(row, 15)?,
                    application: application_at(row, 19)?,
                    permissions: permission.into_iter().collect(),
                })
            }
        }
    }
    Ok(principal)
}

/// An application by its public id (see [`Store::application_by_app_id`]).
fn read_application(db: &rusqlite::Connection, app_id: &str) -> Result<Option<Application>, Fail> {
    Ok(db
        .prepare_cached(&format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE app_id = ?1"))?
        .query_row([app_id], application_row)
        .optional()?)
}

fn collect_roles(rows: rusqlite::Rows<'_>) -> rusqlite::Result<Vec<Role>> {
    let mut rows = rows;
    let mut roles: Vec<Role> = Vec::new();
    while let Some(row) = rows.next()? {
        let id = RoleId(row.get(0)?);
        let permission: Option<String> = row.get(4)?;
        match roles.last_mut() {
            Some(role) if role.id == id => role.permissions.extend(permission),
            _ => roles.push(Role {
                id,
                account_id: AccountId(row.get(1)?),
                name: row.get(2)?,
                builtin: row.get(3)?,
                permissions: permission.into_iter().collect(),
            }),
        }
    }
    Ok(roles)
}

/// `NotFound` unless the account exists.
fn require_account(db: &rusqlite::Connection, account: AccountId) -> Result<(), Fail> {
    let found =
        db.prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")?.query_row([account.0], |_| Ok(())).optional()?;
    found.ok_or_else(|| StoreError::NotFound(format!("account {account}")).into())
}

/// `NotFound` unless the table has a row `id` in the account.
fn require_in_account(
    db: &rusqlite::Connection,
    table: &'static str,
    what: &str,
    account: AccountId,
    id: i64,
) -> Result<(), Fail> {
    let found = db
        .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1 AND account_id = ?2"))?
        .query_row([id, account.0], |_| Ok(()))
        .optional()?;
    found.ok_or_else(|| StoreError::NotFound(format!("{what} {id} in account {account}")).into())
}

/// `NotFound(what)` unless the statement changed a row.
fn changed_one(changed: usize, what: impl FnOnce() -> String) -> Result<(), Fail> {
    if changed == 0 {
        Err(StoreError::NotFound(what()).into())
    } else {
        Ok(())
    }
}

/// Inserts a binding in the caller's transaction, after checking that its user and application
/// belong to its account.
fn insert_binding(tx: &rusqlite::Connection, binding: NewBinding) -> Result<Binding, Fail> {
    require_in_account(tx, "users", "user", binding.account_id, binding.user_id.0)?;
    require_in_account(tx, "applications", "application", binding.account_id, binding.application_id.0)?;
    tx.prepare_cached(&format!("INSERT INTO bindings ({BINDING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)"))?
        .execute(params![
            binding.access_key,
            binding.account_id.0,
            binding.user_id.0,
            binding.application_id.0,
            binding.secret_key_sealed,
            binding.created_at,
            binding.expires_at,
        ])
        // The access key is a credential's public half: not echoed in the error.
        .map_err(conflict_as(|| "binding with this access key".to_owned()))?;
    Ok(binding.into_binding())
}

/// Reads rows of `(…, permission)`, the permission in column `permission_column`, into the
/// first row's value (made by `first`) and the permissions in row order. `None` for no rows.
fn with_permissions<T>(
    mut rows: rusqlite::Rows<'_>,
    permission_column: usize,
    first: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<(T, Vec<String>)>> {
    let Some(row) = rows.next()? else { return Ok(None) };
    let value = first(row)?;
    let mut permissions: Vec<String> = row.get::<_, Option<String>>(permission_column)?.into_iter().collect();
    while let Some(row) = rows.next()? {
        permissions.extend(row.get::<_, Option<String>>(permission_column)?);
    }
    Ok(Some((value, permissions)))
}

impl Store for SqliteStore {
    // ----- accounts -----

    async fn create_account(&self, name: &str, now: UnixTime) -> StoreResult<Account> {
        let name = name.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let id: i64 = tx
                .prepare_cached("INSERT INTO accounts (name, created_at) VALUES (?1, ?2) RETURNING id")?
                .query_row(params![name, now], |r| r.get(0))
                .map_err(conflict_as(|| format!("account {name}")))?;
            Ok(Account { id: AccountId(id), name, disabled: false, created_at: now })
        })
        .await
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        let name = name.to_owned();
        self.read(move |db, _| {
            Ok(db
                .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"))?
                .query_row([name], account_row)
                .optional()?)
        })
        .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.read(move |db, _| {
            Ok(db
                .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"))?
                .query_row([id.0], account_row)
                .optional()?)
        })
        .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(move |db, _| {
            let mut stmt = db.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"))?;
            let rows = stmt.query_map([], account_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET disabled = ?2 WHERE id = ?1")?
                .execute(params![id.0, disabled])?;
            changed_one(changed, || format!("account {id}"))
        })
        .await
    }

    // ----- roles -----

    async fn create_role(&self, role: NewRole) -> StoreResult<Role> {
        self.write(Durability::Full, move |tx, _| {
            require_account(tx, role.account_id)?;
            let id: i64 = tx
                .prepare_cached("INSERT INTO roles (account_id, name, builtin) VALUES (?1, ?2, ?3) RETURNING id")?
                .query_row(params![role.account_id.0, role.name, role.builtin], |r| r.get(0))
                .map_err(conflict_as(|| format!("role {} in account {}", role.name, role.account_id)))?;
            let mut insert =
                tx.prepare_cached("INSERT INTO role_permissions (role_id, position, permission) VALUES (?1, ?2, ?3)")?;
            for (position, permission) in role.permissions.iter().enumerate() {
                insert.execute(params![id, position as i64, permission])?;
            }
            Ok(Role {
                id: RoleId(id),
                account_id: role.account_id,
                name: role.name,
                permissions: role.permissions,
                builtin: role.builtin,
            })
        })
        .await
    }

    async fn role_by_name(&self, account: AccountId, name: &str) -> StoreResult<Option<Role>> {
        let name = name.to_owned();
        self.read(move |db, _| {
            let mut stmt = db.prepare_cached(&format!(
                "{ROLE_SELECT} WHERE r.account_id = ?1 AND r.name = ?2 ORDER BY p.position"
            ))?;
            let roles = collect_roles(stmt.query(params![account.0, name])?)?;
            Ok(roles.into_iter().next())
        })
        .await
    }

    async fn list_roles(&self, account: AccountId) -> StoreResult<Vec<Role>> {
        self.read(move |db, _| {
            let mut stmt =
                db.prepare_cached(&format!("{ROLE_SELECT} WHERE r.account_id = ?1 ORDER BY r.name, r.id, p.position"))?;
            let roles = collect_roles(stmt.query([account.0])?)?;
            Ok(roles)
        })
        .await
    }

    // ----- users -----

    async fn create_user(&self, user: NewUser, now: UnixTime) -> StoreResult<User> {
        self.write(Durability::Full, move |tx, _| {
            let email = user.email.to_lowercase();
            require_account(tx, user.account_id)?;
            if let Some(role) = user.role_id {
                require_in_account(tx, "roles", "role", user.account_id, role.0)?;
            }
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO users (account_id, email, role_id, password_hash, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )?
                .query_row(params![user.account_id.0, email, user.role_id.map(|r| r.0), user.password_hash, now], |r| {
                    r.get(0)
                })
                .map_err(conflict_as(|| format!("user {email}")))?;
            Ok(User {
                id: UserId(id),
                account_id: user.account_id,
                email,
                role_id: user.role_id,
                password_hash: user.password_hash,
                disabled: false,
                created_at: now,
            })
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_lowercase();
        self.read(move |db, _| {
            Ok(db
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"))?
                .query_row([email], user_row)
                .optional()?)
        })
        .await
    }

    async fn list_users(&self, account: AccountId) -> StoreResult<Vec<User>> {
        self.read(move |db, _| {
            let mut stmt =
                db.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = ?1 ORDER BY email"))?;
            let rows = stmt.query_map([account.0], user_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            let changed =
                tx.prepare_cached("UPDATE users SET disabled = ?2 WHERE id = ?1")?.execute(params![id.0, disabled])?;
            changed_one(changed, || format!("user {id}"))
        })
        .await
    }

    async fn set_user_password(&self, id: UserId, password_hash: Option<String>) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            let changed = tx
                .prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
                .execute(params![id.0, password_hash])?;
            changed_one(changed, || format!("user {id}"))
        })
        .await
    }

    async fn set_user_role(&self, id: UserId, role: Option<RoleId>) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            let account: i64 = tx
                .prepare_cached("SELECT account_id FROM users WHERE id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
            if let Some(role) = role {
                require_in_account(tx, "roles", "role", AccountId(account), role.0)?;
            }
            tx.prepare_cached("UPDATE users SET role_id = ?2 WHERE id = ?1")?
                .execute(params![id.0, role.map(|r| r.0)])?;
            Ok(())
        })
        .await
    }

    // ----- applications -----

    async fn create_application(&self, app: NewApplication, now: UnixTime) -> StoreResult<Application> {
        self.write(Durability::Full, move |tx, _| {
            require_account(tx, app.account_id)?;
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO applications (account_id, app_id, name, app_key_sealed, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )?
                .query_row(params![app.account_id.0, app.app_id, app.name, app.app_key_sealed, now], |r| r.get(0))
                .map_err(conflict_as(|| format!("application {}", app.app_id)))?;
            Ok(Application {
                id: ApplicationKeyId(id),
                account_id: app.account_id,
                app_id: app.app_id,
                name: app.name,
                app_key_sealed: app.app_key_sealed,
                disabled: false,
                created_at: now,
            })
        })
        .await
    }

    async fn application_by_app_id(&self, app_id: &str) -> StoreResult<Option<Application>> {
        let app_id = app_id.to_owned();
        self.read(move |db, _| read_application(db, &app_id)).await
    }

    async fn list_applications(&self, account: AccountId) -> StoreResult<Vec<Application>> {
        self.read(move |db, _| {
            let mut stmt = db.prepare_cached(&format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications WHERE account_id = ?1 ORDER BY name, id"
            ))?;
            let rows = stmt.query_map([account.0], application_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_application_disabled(&self, app_id: &str, disabled: bool) -> StoreResult<()> {
        let app_id = app_id.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed = tx
                .prepare_cached("UPDATE applications SET disabled = ?2 WHERE app_id = ?1")?
                .execute(params![app_id, disabled])?;
            changed_one(changed, || format!("application {app_id}"))
        })
        .await
    }

    // ----- key bindings -----

    async fn create_binding(&self, binding: NewBinding) -> StoreResult<Binding> {
        self.write(Durability::Full, move |tx, _| insert_binding(tx, binding)).await
    }

    async fn principal(&self, access_key: &str) -> StoreResult<Option<Principal>> {
        let access_key = access_key.to_owned();
        self.read(move |db, _| read_principal(db, &access_key)).await
    }

    async fn signed_lookup(
        &self,
        app_id: &str,
        access_key: &str,
    ) -> StoreResult<(Option<Application>, Option<Principal>)> {
        let (app_id, access_key) = (app_id.to_owned(), access_key.to_owned());
        // Two lookups by key: on the calling thread (see `Pool::run_short`), on a connection
        // that queries cannot hold, in one read transaction, kept by the connection until the
        // database changes (`lookups.rs`).
        self.inner
            .lookups
            .run_short(move |conn, _| {
                conn.lookups.lookup(&conn.db, &app_id, &access_key, |db| {
                    Ok((read_application(db, &app_id)?, read_principal(db, &access_key)?))
                })
            })
            .await
    }

    async fn list_bindings(&self, account: AccountId) -> StoreResult<Vec<Binding>> {
        self.read(move |db, _| {
            let mut stmt = db.prepare_cached(&format!(
                "SELECT {BINDING_COLUMNS} FROM bindings WHERE account_id = ?1 \
                 ORDER BY created_at DESC, access_key DESC"
            ))?;
            let rows = stmt.query_map([account.0], binding_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn revoke_binding(&self, access_key: &str) -> StoreResult<()> {
        let access_key = access_key.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed =
                tx.prepare_cached("UPDATE bindings SET revoked = 1 WHERE access_key = ?1")?.execute([access_key])?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
        .await
    }

    /// Every binding of the user counts towards the cap, revoked and lapsed ones too (they are
    /// the first to go when they are the oldest). The new binding itself is never removed, so a
    /// cap of 0 acts as 1. Of bindings created in the same second, the one with the smaller
    /// access key counts as the older. The removed keys come back oldest first.
    async fn create_binding_capped(
        &self,
        binding: NewBinding,
        max_per_user: u32,
    ) -> StoreResult<(Binding, Vec<String>)> {
        self.write(Durability::Full, move |tx, _| {
            let created = insert_binding(tx, binding)?;
            let others_kept = i64::from(max_per_user.max(1) - 1);
            let mut removed: Vec<String> = tx
                .prepare_cached(
                    "SELECT access_key FROM bindings WHERE user_id = ?1 AND access_key <> ?2 \
                     ORDER BY created_at DESC, access_key DESC LIMIT -1 OFFSET ?3",
                )?
                .query_map(params![created.user_id.0, created.access_key, others_kept], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            removed.reverse();
            let mut delete = tx.prepare_cached("DELETE FROM bindings WHERE access_key = ?1")?;
            for key in &removed {
                delete.execute([key])?;
            }
            Ok((created, removed))
        })
        .await
    }

    async fn refresh_binding(
        &self,
        access_key: &str,
        created_at: UnixTime,
        expires_at: Option<UnixTime>,
    ) -> StoreResult<()> {
        let access_key = access_key.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed = tx
                .prepare_cached("UPDATE bindings SET created_at = ?2, expires_at = ?3 WHERE access_key = ?1")?
                .execute(params![access_key, created_at, expires_at])?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
        .await
    }

    async fn delete_binding(&self, access_key: &str) -> StoreResult<()> {
        let access_key = access_key.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed = tx.prepare_cached("DELETE FROM bindings WHERE access_key = ?1")?.execute([access_key])?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
        .await
    }

    // ----- sign-in settings and throttling -----

    /// The default also for an account that does not exist (nothing was set for it).
    async fn auth_profile(&self, account: AccountId) -> StoreResult<AuthProfile> {
        self.read(move |db, _| {
            let profile = db
                .prepare_cached("SELECT binding_ttl, max_bindings_per_user FROM auth_profiles WHERE account_id = ?1")?
                .query_row([account.0], |r| {
                    Ok(AuthProfile { binding_ttl: r.get(0)?, max_bindings_per_user: r.get(1)? })
                })
                .optional()?;
            Ok(profile.unwrap_or_default())
        })
        .await
    }

    async fn set_auth_profile(&self, account: AccountId, profile: AuthProfile) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            require_account(tx, account)?;
            tx.prepare_cached(
                "INSERT INTO auth_profiles (account_id, binding_ttl, max_bindings_per_user) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (account_id) DO UPDATE \
                 SET binding_ttl = excluded.binding_ttl, max_bindings_per_user = excluded.max_bindings_per_user",
            )?
            .execute(params![account.0, profile.binding_ttl, profile.max_bindings_per_user])?;
            Ok(())
        })
        .await
    }

    /// The count stops at `u32::MAX`; `first_at` and `last_at` are the earliest and latest
    /// times recorded, should servers' clocks disagree.
    async fn record_login_failure(&self, key: &str, now: UnixTime) -> StoreResult<LoginFailures> {
        let key = key.to_owned();
        // synchronous=NORMAL (see the crate docs): throttling state, cheap to lose a little of.
        self.write(Durability::Normal, move |tx, _| {
            Ok(tx
                .prepare_cached(
                    "INSERT INTO login_failures (login_key, failures, first_at, last_at) VALUES (?1, 1, ?2, ?2) \
                     ON CONFLICT (login_key) DO UPDATE SET failures = min(failures + 1, 4294967295), \
                     first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at) \
                     RETURNING failures, first_at, last_at",
                )?
                .query_row(params![key, now], |r| {
                    Ok(LoginFailures { count: r.get(0)?, first_at: r.get(1)?, last_at: r.get(2)? })
                })?)
        })
        .await
    }

    async fn login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>> {
        let key = key.to_owned();
        self.read(move |db, _| {
            Ok(db
                .prepare_cached("SELECT failures, first_at, last_at FROM login_failures WHERE login_key = ?1")?
                .query_row([key], |r| Ok(LoginFailures { count: r.get(0)?, first_at: r.get(1)?, last_at: r.get(2)? }))
                .optional()?)
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(Durability::Normal, move |tx, _| {
            tx.prepare_cached("DELETE FROM login_failures WHERE login_key = ?1")?.execute([key])?;
            Ok(())
        })
        .await
    }

    async fn purge_login_failures(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(Durability::Normal, move |tx, _| {
            let deleted = tx.prepare_cached("DELETE FROM login_failures WHERE last_at < ?1")?.execute([before])?;
            Ok(deleted as u64)
        })
        .await
    }

    // ----- API 2.0 clients and tokens -----

    async fn create_api_client(&self, client: NewApiClient, now: UnixTime) -> StoreResult<ApiClient> {
        self.write(Durability::Full, move |tx, _| {
            require_in_account(tx, "roles", "role", client.account_id, client.role_id.0)?;
            tx.prepare_cached(&format!(
                "INSERT INTO api_clients ({API_CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)"
            ))?
            .execute(params![
                client.client_id,
                client.account_id.0,
                client.role_id.0,
                client.name,
                client.secret_hash,
                now
            ])
            .map_err(conflict_as(|| format!("API client {}", client.client_id)))?;
            Ok(client.into_api_client(now))
        })
        .await
    }

    async fn api_client(&self, client_id: &str) -> StoreResult<Option<(ApiClient, Account, Vec<String>)>> {
        let client_id = client_id.to_owned();
        self.read(move |db, _| {
            // One statement, so one consistent read: one row per permission of the client's role.
            let mut stmt = db.prepare_cached(
                "SELECT c.client_id, c.account_id, c.role_id, c.name, c.secret_hash, c.revoked, c.created_at, \
                        a.id, a.name, a.disabled, a.created_at, rp.permission \
                 FROM api_clients c \
                 JOIN accounts a ON a.id = c.account_id \
                 LEFT JOIN role_permissions rp ON rp.role_id = c.role_id \
                 WHERE c.client_id = ?1 \
                 ORDER BY rp.position",
            )?;
            let found =
                with_permissions(stmt.query([client_id])?, 11, |row| Ok((api_client_row(row)?, account_at(row, 7)?)))?;
            Ok(found.map(|((client, account), permissions)| (client, account, permissions)))
        })
        .await
    }

    /// By name, then client id.
    async fn list_api_clients(&self, account: AccountId) -> StoreResult<Vec<ApiClient>> {
        self.read(move |db, _| {
            let mut stmt = db.prepare_cached(&format!(
                "SELECT {API_CLIENT_COLUMNS} FROM api_clients WHERE account_id = ?1 ORDER BY name, client_id"
            ))?;
            let rows = stmt.query_map([account.0], api_client_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn revoke_api_client(&self, client_id: &str) -> StoreResult<()> {
        let client_id = client_id.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed =
                tx.prepare_cached("UPDATE api_clients SET revoked = 1 WHERE client_id = ?1")?.execute([&client_id])?;
            changed_one(changed, || format!("API client {client_id}"))?;
            tx.prepare_cached("UPDATE access_tokens SET revoked = 1 WHERE client_id = ?1")?.execute([&client_id])?;
            Ok(())
        })
        .await
    }

    /// `NotFound` if the client does not exist, `Conflict` if the hash is stored already.
    async fn store_token(&self, token: AccessToken) -> StoreResult<()> {
        self.write(Durability::Full, move |tx, _| {
            let client = tx
                .prepare_cached("SELECT 1 FROM api_clients WHERE client_id = ?1")?
                .query_row([&token.client_id], |_| Ok(()))
                .optional()?;
            client.ok_or_else(|| StoreError::NotFound(format!("API client {}", token.client_id)))?;
            tx.prepare_cached(
                "INSERT INTO access_tokens (token_hash, client_id, issued_at, expires_at, revoked) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![token.token_hash, token.client_id, token.issued_at, token.expires_at, token.revoked])
            // A token's hash is not echoed in errors either.
            .map_err(conflict_as(|| "token with this hash".to_owned()))?;
            Ok(())
        })
        .await
    }

    async fn token_principal(&self, token_hash: &str) -> StoreResult<Option<TokenPrincipal>> {
        let token_hash = token_hash.to_owned();
        self.read(move |db, _| {
            // One statement, so one consistent read: one row per permission of the client's role.
            let mut stmt = db.prepare_cached(
                "SELECT t.token_hash, t.client_id, t.issued_at, t.expires_at, t.revoked, \
                        c.client_id, c.account_id, c.role_id, c.name, c.secret_hash, c.revoked, c.created_at, \
                        a.id, a.name, a.disabled, a.created_at, rp.permission \
                 FROM access_tokens t \
                 JOIN api_clients c ON c.client_id = t.client_id \
                 JOIN accounts a ON a.id = c.account_id \
                 LEFT JOIN role_permissions rp ON rp.role_id = c.role_id \
                 WHERE t.token_hash = ?1 \
                 ORDER BY rp.position",
            )?;
            let found = with_permissions(stmt.query([token_hash])?, 16, |row| {
                let token = AccessToken {
                    token_hash: row.get(0)?,
                    client_id: row.get(1)?,
                    issued_at: row.get(2)?,
                    expires_at: row.get(3)?,
                    revoked: row.get(4)?,
                };
                let client = ApiClient {
                    client_id: row.get(5)?,
                    account_id: AccountId(row.get(6)?),
                    role_id: RoleId(row.get(7)?),
                    name: row.get(8)?,
                    secret_hash: row.get(9)?,
                    revoked: row.get(10)?,
                    created_at: row.get(11)?,
                };
                Ok((token, client, account_at(row, 12)?))
            })?;
            Ok(found.map(|((token, client, account), permissions)| TokenPrincipal {
                token,
                client,
                account,
                permissions,
            }))
        })
        .await
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(Durability::Full, move |tx, _| {
            let changed = tx
                .prepare_cached("UPDATE access_tokens SET revoked = 1 WHERE token_hash = ?1")?
                .execute([token_hash])?;
            changed_one(changed, || "token with this hash".to_owned())
        })
        .await
    }

    async fn purge_tokens(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(Durability::Full, move |tx, _| {
            let deleted = tx.prepare_cached("DELETE FROM access_tokens WHERE expires_at < ?1")?.execute([before])?;
            Ok(deleted as u64)
        })
        .await
    }

    // ----- view events -----

    /// Late events (viewed well before the account's newest) go to a table of their own; the
    /// insert that makes them due a fold starts one, which later writes wait for (`late`).
    async fn insert_events(&self, account: AccountId, events: &[ViewEvent]) -> StoreResult<InsertOutcome> {
        let events = events.to_vec();
        let check = events::IdCheck::Claim { fold_min: self.inner.id_fold_min };
        let inserted =
            self.write(Durability::Full, move |tx, ctx| events::insert(tx, ctx, account.0, &events, check)).await?;
        if inserted.late.is_some_and(|held| held.fold_due(self.inner.late_fold_min)) {
            self.start_fold(account.0);
        }
        Ok(inserted.outcome)
    }

    /// Pulls the batches on the writer's thread; into a store without events and with unique
    /// ids promised, one transaction that fills the table of event ids at the end, written with a
    /// rollback journal if no other connection has the file open (`import` module).
    async fn import_events<B>(
        &self,
        account: AccountId,
        batches: B,
        options: ImportOptions,
    ) -> StoreResult<InsertOutcome>
    where
        B: Stream<Item = Vec<ViewEvent>> + Send + Unpin + 'static,
    {
        let others = import::OtherConns {
            readers: vec![Arc::clone(&self.inner.readers), Arc::clone(&self.inner.lookups)],
            stats: Arc::clone(&self.inner.stats),
            id_fold_min: self.inner.id_fold_min,
        };
        self.inner.writer.run(move |conn, ctx| import::import(conn, ctx, account.0, batches, options, &others)).await
    }

    async fn snapshot(&self, account: AccountId) -> StoreResult<i64> {
        self.read(move |db, _| events::snapshot(db, account.0)).await
    }

    async fn page(&self, account: AccountId, request: &PageRequest) -> StoreResult<Vec<StoredEvent>> {
        let request = request.clone();
        self.read(move |db, ctx| events::page(db, ctx, account.0, &request)).await
    }

    /// Copies each row's stored record. Without a text filter on the calling thread when a
    /// reader is free (see `SqliteStore::read_page`).
    async fn wire_page(&self, account: AccountId, request: &PageRequest) -> StoreResult<WireRecords> {
        let request = request.clone();
        let short = request.filter.text.is_none();
        self.read_page(short, move |db, ctx| events::page::<RecordRows>(db, ctx, account.0, &request)?.finish()).await
    }

    /// The first call creates the index it reads (see the crate docs), holding the write lock
    /// while it does.
    async fn events_after(&self, account: AccountId, after_seq: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if !self.inner.seq_index.load(Ordering::Acquire) {
            self.write(Durability::Full, |tx, _| Ok(tx.execute_batch(events::SEQ_INDEX)?)).await?;
            self.inner.seq_index.store(true, Ordering::Release);
        }
        self.read(move |db, _| events::after(db, account.0, after_seq, limit)).await
    }

    /// One read transaction: the snapshot, the count and the page agree.
    async fn first_page(&self, account: AccountId, filter: &EventFilter, limit: u32) -> StoreResult<FirstPage> {
        let filter = filter.clone();
        let (snapshot, total, events) =
            self.read(move |db, ctx| events::first_page(db, ctx, account.0, filter, limit)).await?;
        Ok(FirstPage { snapshot, total, events })
    }

    /// One read transaction, copying each row's stored record. Without a text filter on the
    /// calling thread when a reader is free (see `SqliteStore::read_page`).
    async fn first_wire_page(
        &self,
        account: AccountId,
        filter: &EventFilter,
        limit: u32,
    ) -> StoreResult<FirstWirePage> {
        let filter = filter.clone();
        let short = filter.text.is_none();
        self.read_page(short, move |db, ctx| {
            let (snapshot, total, records) =
                events::first_page::<RecordRows>(db, ctx, account.0, filter.clone(), limit)?;
            Ok(FirstWirePage { snapshot, total, records: records.finish()? })
        })
        .await
    }

    async fn count(&self, account: AccountId, filter: &EventFilter) -> StoreResult<u64> {
        let filter = filter.clone();
        self.read(move |db, ctx| events::count(db, ctx, account.0, &filter)).await
    }

    // ----- state shared by server instances -----

    async fn remember_request(
        &self,
        access_key: &str,
        request_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (access_key, request_id) = (access_key.to_owned(), request_id.to_owned());
        // In the requests file, with synchronous=NORMAL (see the crate docs): a replay record
        // lost to a power cut only re-opens the replay window of a request already answered.
        // One small insert on this process's own connection: on the calling thread (see
        // `Pool::run_short`), into the group of records the next commit takes (`requests.rs`).
        let pool = self.requests().await?;
        let (committer, stats) = (Arc::clone(pool), Arc::clone(&self.inner.stats));
        let joined = pool
            .run_short(move |conn, _| {
                let joined = requests::join_group(conn, &access_key, &request_id, expires_at, now)?;
                // Scheduled here rather than by the caller once this returns: on a blocking
                // thread this runs to its end even if the caller has gone away meanwhile, and a
                // group nobody commits would hold up every request after it.
                if joined.leads {
                    schedule_replay_commit(committer, stats);
                }
                Ok(joined)
            })
            .await?;
        requests::committed(joined.committed).await?;
        Ok(joined.fresh)
    }

    async fn purge_requests(&self, now: UnixTime) -> StoreResult<u64> {
        // Housekeeping of replay records: synchronous=NORMAL like their insertion.
        // In chunks, one short transaction each, so that requests never wait long for their
        // replay records' connection.
        let mut purged = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let from = after.take();
            let stats = Arc::clone(&self.inner.stats);
            // Not interrupted if the purge goes away (see `Pool::run_to_end`): it commits the
            // replay records of other requests first.
            let (n, last) = self
                .requests()
                .await?
                .run_to_end(move |conn, _| {
                    // Replay records written but not committed yet go first.
                    commit_replay_group(conn, &stats);
                    conn.set_durability(Durability::Normal)?;
                    conn::in_write_tx(&conn.db, |tx| requests::purge_chunk(tx, now, from.as_deref()))
                })
                .await?;
            purged += n;
            match last {
                Some(last) => after = Some(last),
                None => return Ok(purged),
            }
        }
    }

    /// Folds the late events of each account that took none since `settled_before` or holds
    /// enough of them (`late::to_fold`), one write transaction per account. Then merges into one,
    /// in time order, the segments of each day of the text index that is over, took none since
    /// `settled_before` and holds enough of them, or puts a day's one segment in time order
    /// (`segments::settle_day`): one write transaction per day, so that ingest never waits for
    /// more than one day's merge. An account or a day
    /// whose turn fails is logged and left as it was (the next pass tries it again), so that
    /// one does not hold back the others. Returns the accounts folded and the days merged.
    async fn compact(&self, settled_before: UnixTime) -> StoreResult<u64> {
        let mut merged = 0;
        let min = self.inner.late_fold_min;
        for account in self.read(move |db, _| late::to_fold(db, settled_before, min)).await? {
            match self.fold_late(AccountId(account)).await {
                Ok(_) => merged += 1,
                Err(StoreError::Interrupted) => return Err(StoreError::Interrupted),
                Err(e) => tracing::warn!(account, error = %e, "folding late events failed"),
            }
        }
        let days = self.read(move |db, _| segments::unsettled_days(db, settled_before)).await?;
        for (account, day) in days {
            // Merging adds no data: a merge lost to a power cut leaves the segments it merged.
            match self.write(Durability::Normal, move |tx, _| segments::settle_day(tx, account, day)).await {
                Ok(true) => merged += 1,
                Ok(false) => {}
                Err(StoreError::Interrupted) => return Err(StoreError::Interrupted),
                Err(e) => tracing::warn!(account, day, error = %e, "merging a day of the text index failed"),
            }
        }
        Ok(merged)
    }

    /// Takes a token from an in-memory bucket. One SQLite file is served by one server process,
    /// so the buckets of this process are all the buckets there are; they are not persisted (a
    /// restart refills them) and their number is bounded by [`SqliteOptions::max_rate_buckets`].
    async fn take_rate_token(&self, key: &RateKey, policy: RatePolicy, now_ms: i64) -> StoreResult<RateDecision> {
        Ok(self.inner.rate.take(key, policy, now_ms))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|db, _| {
            let _: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
