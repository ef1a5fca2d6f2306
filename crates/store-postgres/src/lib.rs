//! viewlog's PostgreSQL store: [`PostgresStore`], an implementation of
//! [`viewlog_store::Store`] on one PostgreSQL database that several `viewlog serve` processes
//! can share behind a load balancer.
//!
//! # Design
//!
//! - **Connections.** A `deadpool-postgres` pool of `tokio-postgres` connections
//!   ([`PostgresOptions::pool_size`]); the pool also bounds how many operations run at once.
//!   Statements are prepared once per connection and cached. Connections plan every statement
//!   with its actual parameters (`plan_cache_mode=force_custom_plan`): whether a text search is
//!   best answered from the trigram index or by reading the time range depends on the term.
//! - **Cancellation.** Dropping an operation's future cancels its running statement on the
//!   server and closes that connection (see the `conn` module); the operation's transaction,
//!   if any, is rolled back.
//! - **Durability.** Every write commits with `synchronous_commit` as the server has it, which
//!   is `on` by default: an `Ok` means the commit record is flushed. A server configured with
//!   `synchronous_commit=off` gets it switched back `on` for viewlog's connections (with a
//!   warning). Replay records are the one exception, as in the SQLite store: they commit with
//!   `synchronous_commit=off` (`SET LOCAL`), because losing the last fraction of a second of
//!   them to a crash only re-opens the replay window of requests that were already answered,
//!   while a WAL flush per API request would cost far more.
//! - **Events.** Keyed by `(account_id, seq)` (which `events_after` reads in order), paged
//!   through an index on `(account_id, viewed, seq)` with row-value keyset conditions (`(viewed, seq) < ($1, $2)`),
//!   never `OFFSET`. Idempotency is a unique index on `(account_id, event_id)`. Ingest takes
//!   the account's row lock (`SELECT last_seq … FOR NO KEY UPDATE`), inserts the batch's new
//!   events numbered from there in one `INSERT … SELECT FROM unnest(…)`, and bumps `last_seq`
//!   in the same transaction: the lock serialises an account's ingest, so seq order is commit
//!   order and `last_seq` is a sound snapshot bound.
//! - **Text filter**: see the `text` module. Lower-casing happens in Rust, exactly as in the
//!   SQLite store, so results do not depend on the database's locale. A `pg_trgm` GIN index
//!   over the lower-cased fields serves `LIKE '%…%'` when the extension is available; the
//!   planner (custom plans, see above) reads a rare term from it (a month of a 100,000-event
//!   account: well under a millisecond instead of tens) and a common one by walking the time
//!   index backwards until the page is full. The index is the main cost of ingest: each event
//!   adds about a hundred trigram entries (through GIN's pending list), several times the cost
//!   of the row and its B-tree entries. [`PostgresStore::explain_page`] shows the plan of a
//!   given search.
//! - **Shared state.** Replay records and rate-limit buckets are rows, so every server sharing
//!   the database shares them: a request id replayed against another server is refused, and
//!   one user's quota is one quota. A bucket is taken with one atomic upsert (the `rate`
//!   module); buckets idle for a day are forgotten by `purge_requests` (a forgotten bucket
//!   comes back full, as an idle one would be). Page tokens need nothing here: they are sealed under a key derived from the
//!   master key, which the servers share.
//! - **Schema** migrations are versioned in code and applied under an advisory lock (see the
//!   `schema` module); a database migrated by a newer viewlog is refused with
//!   [`StoreError::Corrupt`].

#![warn(missing_docs)]

mod conn;
mod error;
mod events;
mod rate;
mod schema;
mod text;
mod tls;

use std::time::Duration;

use deadpool_postgres::{GenericClient, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use viewlog_store::{
    AccessToken, Account, AccountId, ApiClient, Application, ApplicationKeyId, AuthProfile, Binding, EventFilter,
    InsertOutcome, LoginFailures, NewApiClient, NewApplication, NewBinding, NewRole, NewUser, PageRequest, Principal,
    RateDecision, RateKey, RatePolicy, Role, RoleId, Store, StoreError, StoreResult, StoredEvent, TokenPrincipal,
    UnixTime, User, UserId, ViewEvent,
};

use conn::Lease;
use error::{conflict_as, conflict_or_missing, Fail};

pub use tokio_postgres::Config as PgConfig;

/// Runs `$body` with `$c` bound to a pooled connection (`&mut deadpool_postgres::Client`); `$body` yields a
/// `Result<T, Fail>`. The connection is cancelled and closed if the future is dropped midway.
macro_rules! with_conn {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut lease = $self.lease().await?;
        let result = async {
            let $c = lease.client();
            $body
        }
        .await;
        lease.finish(result)
    }};
}

/// The sessions of viewlog on a database and how many of them use TLS
/// ([`PostgresStore::session_security`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSecurity {
    /// Sessions on the store's database under the store's `application_name` (every store and
    /// server sharing the database, this one included).
    pub sessions: i64,
    /// How many of them are encrypted.
    pub encrypted: i64,
}

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// How many connections the pool keeps at the most, and so how many operations run at once
    /// (at least 1). Several servers on one database each have a pool: keep the sum below the
    /// server's `max_connections`.
    pub pool_size: usize,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// How long opening a connection may take (unless the URL says `connect_timeout`).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`Store`] on a PostgreSQL database. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// How the pool's connections were made, for the cancel requests of abandoned operations.
    tls: tls::Tls,
    text_index: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("tls", &self.tls)
            .field("text_index", &self.text_index)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` (or `postgresql://`) URL, or a
    /// `key=value` connection string, and brings its schema up to date. Several servers may
    /// do so at once. Fails with [`StoreError::Corrupt`] for a database that a newer viewlog
    /// migrated.
    ///
    /// TLS follows a `postgres://` URL's `sslmode` and `sslrootcert` as libpq reads them, except
    /// that a connection with TLS always verifies the server's certificate and name: `require`,
    /// `verify-ca` and `verify-full`, or an `sslrootcert` PEM file of authorities with any mode
    /// but `disable`, connect with TLS; `disable` and `prefer` (the default) without one, without.
    /// A `key=value` string takes `sslmode=require`, not `sslrootcert` or the `verify-*` modes.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let (config, tls) = tls::parse(url)?;
        Self::connect_with(config, tls, options).await
    }

    /// [`connect`](Self::connect) with a parsed configuration: TLS if its `sslmode` is
    /// `require`, or if `root_cert` is given and the mode is not `disable`; the server's
    /// certificate signed by one of the authorities of the PEM file `root_cert` or, without one,
    /// by one of Mozilla's root authorities.
    pub async fn connect_with_config(
        config: PgConfig,
        root_cert: Option<&str>,
        options: PostgresOptions,
    ) -> StoreResult<PostgresStore> {
        let (config, tls) = tls::with_root_cert(config, root_cert)?;
        Self::connect_with(config, tls, options).await
    }

    async fn connect_with(mut config: PgConfig, tls: tls::Tls, options: PostgresOptions) -> StoreResult<PostgresStore> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("viewlog");
        }
        // Migrate over a connection of its own, then tune the pool's from what the server says.
        let (mut client, task) = tls.connect(&config).await.map_err(StoreError::backend)?;
        let text_index = schema::migrate(&mut client).await.map_err(Fail::into_store)?;
        let settings = client
            .query_one("SELECT current_setting('synchronous_commit'), current_setting('fsync')", &[])
            .await
            .map_err(StoreError::backend)?;
        let (synchronous_commit, fsync): (String, String) = (settings.get(0), settings.get(1));
        drop(client);
        // The connection ends once its client is gone; its outcome does not matter any more.
        let _ = task.await;

        let mut extra = String::from("-c plan_cache_mode=force_custom_plan");
        if synchronous_commit == "off" {
            tracing::warn!(
                "the server runs with synchronous_commit=off; viewlog sets it to on for its connections, \
                 so that an acknowledged write is a durable one"
            );
            extra.push_str(" -c synchronous_commit=on");
        }
        if fsync == "off" {
            tracing::warn!("the server runs with fsync=off: a crash of its machine can lose acknowledged events");
        }
        let joined = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {extra}"),
            _ => extra,
        };
        config.options(&joined);

        let manager = tls.manager(config, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(StoreError::backend)?;
        let encrypted = matches!(tls, tls::Tls::Verified(_));
        let store = PostgresStore { pool, tls, text_index };
        store.ping().await?;
        tracing::info!(tls = encrypted, "connected to PostgreSQL");
        Ok(store)
    }

    /// The schema version this code writes.
    pub fn schema_version() -> i64 {
        schema::current_version()
    }

    /// Whether the text filter has its trigram index (`pg_trgm` was available).
    pub fn has_text_index(&self) -> bool {
        self.text_index
    }

    /// Whether the sessions of viewlog on this database use TLS, as the server sees them
    /// (`pg_stat_ssl`): for checking a deployment, and for the tests. Counts every process's
    /// sessions under this store's `application_name`.
    pub async fn session_security(&self) -> StoreResult<SessionSecurity> {
        with_conn!(self, |c| {
            let row = query_one(
                &*c,
                "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = current_database() AND a.application_name = current_setting('application_name')",
                &[],
            )
            .await?;
            Ok(SessionSecurity { sessions: row.get(0), encrypted: row.get(1) })
        })
    }

    /// The pool's most connections.
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    /// PostgreSQL's plan for reading this page (`EXPLAIN`), or with `analyze` the plan as run
    /// with its timings and buffer counts (`EXPLAIN (ANALYZE, BUFFERS)`): for diagnosing slow
    /// searches.
    pub async fn explain_page(&self, account: AccountId, request: &PageRequest, analyze: bool) -> StoreResult<String> {
        with_conn!(self, |c| events::explain(c, account.0, events::Explained::Page(request), analyze).await)
    }

    /// [`explain_page`](Self::explain_page) for a count.
    pub async fn explain_count(&self, account: AccountId, filter: &EventFilter, analyze: bool) -> StoreResult<String> {
        with_conn!(self, |c| events::explain(c, account.0, events::Explained::Count(filter), analyze).await)
    }

    async fn lease(&self) -> StoreResult<Lease> {
        Lease::take(&self.pool, &self.tls).await
    }
}

// ----- statements -----

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

async fn query_opt<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Option<Row>, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

async fn query_one<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Row, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

async fn query_all<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

async fn execute<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// `NotFound(what)` unless the statement changed a row.
fn changed_one(changed: u64, what: impl FnOnce() -> String) -> Result<(), Fail> {
    if changed == 0 {
        Err(StoreError::NotFound(what()).into())
    } else {
        Ok(())
    }
}

fn map_rows<T>(rows: &[Row], f: fn(&Row) -> Result<T, tokio_postgres::Error>) -> Result<Vec<T>, Fail> {
    Ok(rows.iter().map(f).collect::<Result<_, _>>()?)
}

// ----- row mapping -----

// Text is ordered by code point (`COLLATE "C"`), as SQLite orders it, whatever the database's
// collation.
const ACCOUNT_COLUMNS: &str = "id, name, disabled, created_at";
const ROLE_COLUMNS: &str = "id, account_id, name, builtin, permissions";
const USER_COLUMNS: &str = "id, account_id, email, role_id, password_hash, disabled, created_at";
const APPLICATION_COLUMNS: &str = "id, account_id, app_id, name, app_key_sealed, disabled, created_at";
const BINDING_COLUMNS: &str =
    "access_key, account_id, user_id, application_id, secret_key_sealed, created_at, expires_at, revoked";
const API_CLIENT_COLUMNS: &str = "client_id, account_id, role_id, name, secret_hash, revoked, created_at";
const TOKEN_COLUMNS: &str = "token_hash, client_id, issued_at, expires_at, revoked";

type RowResult<T> = Result<T, tokio_postgres::Error>;

fn account_at(row: &Row, i: usize) -> RowResult<Account> {
    Ok(Account {
        id: AccountId(row.try_get(i)?),
        name: row.try_get(i + 1)?,
        disabled: row.try_get(i + 2)?,
        created_at: row.try_get(i + 3)?,
    })
}

fn account_row(row: &Row) -> RowResult<Account> {
    account_at(row, 0)
}

fn role_row(row: &Row) -> RowResult<Role> {
    Ok(Role {
        id: RoleId(row.try_get(0)?),
        account_id: AccountId(row.try_get(1)?),
        name: row.try_get(2)?,
        builtin: row.try_get(3)?,
        permissions: row.try_get(4)?,
    })
}

fn user_at(row: &Row, i: usize) -> RowResult<User> {
    Ok(User {
        id: UserId(row.try_get(i)?),
        account_id: AccountId(row.try_get(i + 1)?),
        email: row.try_get(i + 2)?,
        role_id: row.try_get::<_, Option<i64>>(i + 3)?.map(RoleId),
        password_hash: row.try_get(i + 4)?,
        disabled: row.try_get(i + 5)?,
        created_at: row.try_get(i + 6)?,
    })
}

fn user_row(row: &Row) -> RowResult<User> {
    user_at(row, 0)
}

fn application_at(row: &Row, i: usize) -> RowResult<Application> {
    Ok(Application {
        id: ApplicationKeyId(row.try_get(i)?),
        account_id: AccountId(row.try_get(i + 1)?),
        app_id: row.try_get(i + 2)?,
        name: row.try_get(i + 3)?,
        app_key_sealed: row.try_get(i + 4)?,
        disabled: row.try_get(i + 5)?,
        created_at: row.try_get(i + 6)?,
    })
}

fn application_row(row: &Row) -> RowResult<Application> {
    application_at(row, 0)
}

fn binding_at(row: &Row, i: usize) -> RowResult<Binding> {
    Ok(Binding {
        access_key: row.try_get(i)?,
        account_id: AccountId(row.try_get(i + 1)?),
        user_id: UserId(row.try_get(i + 2)?),
        application_id: ApplicationKeyId(row.try_get(i + 3)?),
        secret_key_sealed: row.try_get(i + 4)?,
        created_at: row.try_get(i + 5)?,
        expires_at: row.try_get(i + 6)?,
        revoked: row.try_get(i + 7)?,
    })
}

fn binding_row(row: &Row) -> RowResult<Binding> {
    binding_at(row, 0)
}

fn api_client_at(row: &Row, i: usize) -> RowResult<ApiClient> {
    Ok(ApiClient {
        client_id: row.try_get(i)?,
        account_id: AccountId(row.try_get(i + 1)?),
        role_id: RoleId(row.try_get(i + 2)?),
        name: row.try_get(i + 3)?,
        secret_hash: row.try_get(i + 4)?,
        revoked: row.try_get(i + 5)?,
        created_at: row.try_get(i + 6)?,
    })
}

fn api_client_row(row: &Row) -> RowResult<ApiClient> {
    api_client_at(row, 0)
}

fn token_at(row: &Row, i: usize) -> RowResult<AccessToken> {
    Ok(AccessToken {
        token_hash: row.try_get(i)?,
        client_id: row.try_get(i + 1)?,
        issued_at: row.try_get(i + 2)?,
        expires_at: row.try_get(i + 3)?,
        revoked: row.try_get(i + 4)?,
    })
}

fn login_failures_row(row: &Row) -> RowResult<LoginFailures> {
    let count: i64 = row.try_get(0)?;
    Ok(LoginFailures {
        count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
        first_at: row.try_get(1)?,
        last_at: row.try_get(2)?,
    })
}

/// Columns prefixed with a table alias: `b.access_key, b.account_id, …`.
fn prefixed(alias: &str, columns: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Inserts a binding in the caller's transaction or connection.
async fn insert_binding<C: GenericClient>(c: &C, binding: &NewBinding) -> Result<(), Fail> {
    let stmt = c
        .prepare_cached(&format!("INSERT INTO bindings ({BINDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, false)"))
        .await?;
    c.execute(
        &stmt,
        &[
            &binding.access_key,
            &binding.account_id.0,
            &binding.user_id.0,
            &binding.application_id.0,
            &binding.secret_key_sealed,
            &binding.created_at,
            &binding.expires_at,
        ],
    )
    .await
    // The access key is a credential's public half: not echoed in the error.
    .map_err(conflict_or_missing(
        || "binding with this access key".to_owned(),
        || {
            format!(
                "user {} or application {} in account {}",
                binding.user_id, binding.application_id, binding.account_id
            )
        },
    ))?;
    Ok(())
}

fn new_binding(binding: NewBinding) -> Binding {
    binding.into_binding()
}

impl Store for PostgresStore {
    // ----- accounts -----

    async fn create_account(&self, name: &str, now: UnixTime) -> StoreResult<Account> {
        with_conn!(self, |c| {
            let row =
                query_one(&*c, "INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id", &[&name, &now])
                    .await
                    .map_err(|e| match e {
                        Fail::Db(e) => conflict_as(|| format!("account {name}"))(e),
                        other => other,
                    })?;
            Ok(Account { id: AccountId(row.get(0)), name: name.to_owned(), disabled: false, created_at: now })
        })
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1");
            Ok(query_opt(&*c, &sql, &[&name]).await?.as_ref().map(account_row).transpose()?)
        })
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
            Ok(query_opt(&*c, &sql, &[&id.0]).await?.as_ref().map(account_row).transpose()?)
        })
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name COLLATE \"C\"");
            map_rows(&query_all(&*c, &sql, &[]).await?, account_row)
        })
    }

    async fn set_account_disabled(&self, id: AccountId, disabled: bool) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed = execute(&*c, "UPDATE accounts SET disabled = $2 WHERE id = $1", &[&id.0, &disabled]).await?;
            changed_one(changed, || format!("account {id}"))
        })
    }

    // ----- roles -----

    async fn create_role(&self, role: NewRole) -> StoreResult<Role> {
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO roles (account_id, name, builtin, permissions) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .await?;
            let row = c
                .query_one(&stmt, &[&role.account_id.0, &role.name, &role.builtin, &role.permissions])
                .await
                .map_err(conflict_or_missing(
                    || format!("role {} in account {}", role.name, role.account_id),
                    || format!("account {}", role.account_id),
                ))?;
            Ok(Role {
                id: RoleId(row.get(0)),
                account_id: role.account_id,
                name: role.name,
                permissions: role.permissions,
                builtin: role.builtin,
            })
        })
    }

    async fn role_by_name(&self, account: AccountId, name: &str) -> StoreResult<Option<Role>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = $1 AND name = $2");
            Ok(query_opt(&*c, &sql, &[&account.0, &name]).await?.as_ref().map(role_row).transpose()?)
        })
    }

    async fn list_roles(&self, account: AccountId) -> StoreResult<Vec<Role>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = $1 ORDER BY name COLLATE \"C\", id");
            map_rows(&query_all(&*c, &sql, &[&account.0]).await?, role_row)
        })
    }

    // ----- users -----

    async fn create_user(&self, user: NewUser, now: UnixTime) -> StoreResult<User> {
        let email = user.email.to_lowercase();
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO users (account_id, email, role_id, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .await?;
            let role = user.role_id.map(|r| r.0);
            let row = c
                .query_one(&stmt, &[&user.account_id.0, &email, &role, &user.password_hash, &now])
                .await
                .map_err(conflict_or_missing(
                    || format!("user {email}"),
                    || format!("account {} or its role {:?}", user.account_id, role),
                ))?;
            Ok(User {
                id: UserId(row.get(0)),
                account_id: user.account_id,
                email: email.clone(),
                role_id: user.role_id,
                password_hash: user.password_hash,
                disabled: false,
                created_at: now,
            })
        })
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_lowercase();
        with_conn!(self, |c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
            Ok(query_opt(&*c, &sql, &[&email]).await?.as_ref().map(user_row).transpose()?)
        })
    }

    async fn list_users(&self, account: AccountId) -> StoreResult<Vec<User>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 ORDER BY email COLLATE \"C\"");
            map_rows(&query_all(&*c, &sql, &[&account.0]).await?, user_row)
        })
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed = execute(&*c, "UPDATE users SET disabled = $2 WHERE id = $1", &[&id.0, &disabled]).await?;
            changed_one(changed, || format!("user {id}"))
        })
    }

    async fn set_user_password(&self, id: UserId, password_hash: Option<String>) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed =
                execute(&*c, "UPDATE users SET password_hash = $2 WHERE id = $1", &[&id.0, &password_hash]).await?;
            changed_one(changed, || format!("user {id}"))
        })
    }

    async fn set_user_role(&self, id: UserId, role: Option<RoleId>) -> StoreResult<()> {
        with_conn!(self, |c| {
            let role = role.map(|r| r.0);
            let stmt = c.prepare_cached("UPDATE users SET role_id = $2 WHERE id = $1").await?;
            // The composite foreign key refuses a role of another account.
            let changed = c.execute(&stmt, &[&id.0, &role]).await.map_err(conflict_or_missing(
                || format!("user {id}"),
                || format!("role {role:?} in the user's account"),
            ))?;
            changed_one(changed, || format!("user {id}"))
        })
    }

    // ----- applications -----

    async fn create_application(&self, app: NewApplication, now: UnixTime) -> StoreResult<Application> {
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO applications (account_id, app_id, name, app_key_sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .await?;
            let row = c
                .query_one(&stmt, &[&app.account_id.0, &app.app_id, &app.name, &app.app_key_sealed, &now])
                .await
                .map_err(conflict_or_missing(
                    || format!("application {}", app.app_id),
                    || format!("account {}", app.account_id),
                ))?;
            Ok(Application {
                id: ApplicationKeyId(row.get(0)),
                account_id: app.account_id,
                app_id: app.app_id,
                name: app.name,
                app_key_sealed: app.app_key_sealed,
                disabled: false,
                created_at: now,
            })
        })
    }

    async fn application_by_app_id(&self, app_id: &str) -> StoreResult<Option<Application>> {
        with_conn!(self, |c| {
            let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE app_id = $1");
            Ok(query_opt(&*c, &sql, &[&app_id]).await?.as_ref().map(application_row).transpose()?)
        })
    }

    async fn list_applications(&self, account: AccountId) -> StoreResult<Vec<Application>> {
        with_conn!(self, |c| {
            let sql = format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications WHERE account_id = $1 ORDER BY name COLLATE \"C\", id"
            );
            map_rows(&query_all(&*c, &sql, &[&account.0]).await?, application_row)
        })
    }

    async fn set_application_disabled(&self, app_id: &str, disabled: bool) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed =
                execute(&*c, "UPDATE applications SET disabled = $2 WHERE app_id = $1", &[&app_id, &disabled]).await?;
            changed_one(changed, || format!("application {app_id}"))
        })
    }

    // ----- key bindings -----

    async fn create_binding(&self, binding: NewBinding) -> StoreResult<Binding> {
        with_conn!(self, |c| {
            insert_binding(&*c, &binding).await?;
            Ok(new_binding(binding))
        })
    }

    async fn principal(&self, access_key: &str) -> StoreResult<Option<Principal>> {
        with_conn!(self, |c| {
            // One statement, so one consistent read.
            let sql = format!(
                "SELECT {}, {}, {}, {}, coalesce(r.permissions, '{{}}'::text[]) \
                 FROM bindings b \
                 JOIN users u ON u.id = b.user_id \
                 JOIN accounts a ON a.id = b.account_id \
                 JOIN applications p ON p.id = b.application_id \
                 LEFT JOIN roles r ON r.id = u.role_id \
                 WHERE b.access_key = $1",
                prefixed("b", BINDING_COLUMNS),
                prefixed("u", USER_COLUMNS),
                prefixed("a", ACCOUNT_COLUMNS),
                prefixed("p", APPLICATION_COLUMNS),
            );
            let Some(row) = query_opt(&*c, &sql, &[&access_key]).await? else { return Ok(None) };
            Ok(Some(Principal {
                binding: binding_at(&row, 0)?,
                user: user_at(&row, 8)?,
                account: account_at(&row, 15)?,
                application: application_at(&row, 19)?,
                permissions: row.try_get(26)?,
            }))
        })
    }

    async fn list_bindings(&self, account: AccountId) -> StoreResult<Vec<Binding>> {
        with_conn!(self, |c| {
            let sql = format!(
                "SELECT {BINDING_COLUMNS} FROM bindings WHERE account_id = $1 \
                 ORDER BY created_at DESC, access_key COLLATE \"C\" DESC"
            );
            map_rows(&query_all(&*c, &sql, &[&account.0]).await?, binding_row)
        })
    }

    async fn revoke_binding(&self, access_key: &str) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed =
                execute(&*c, "UPDATE bindings SET revoked = true WHERE access_key = $1", &[&access_key]).await?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
    }

    async fn create_binding_capped(
        &self,
        binding: NewBinding,
        max_per_user: u32,
    ) -> StoreResult<(Binding, Vec<String>)> {
        with_conn!(self, |c| {
            let tx = c.transaction().await?;
            // The user's row lock serialises sign-ins of one user, so two at once cannot both
            // keep the cap's worth of others. (It also answers NotFound for a missing user.)
            let user = query_opt(
                &tx,
                "SELECT 1 FROM users WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE",
                &[&binding.user_id.0, &binding.account_id.0],
            )
            .await?;
            if user.is_none() {
                return Err(StoreError::NotFound(format!(
                    "user {} in account {}",
                    binding.user_id, binding.account_id
                ))
                .into());
            }
            insert_binding(&tx, &binding).await?;
            // The new binding always stays; of the others, the newest `max_per_user - 1` do.
            let keep = i64::from(max_per_user.max(1) - 1);
            let rows = query_all(
                &tx,
                "DELETE FROM bindings WHERE access_key IN ( \
                     SELECT access_key FROM bindings WHERE user_id = $1 AND access_key <> $2 \
                     ORDER BY created_at DESC, access_key COLLATE \"C\" DESC OFFSET $3) \
                 RETURNING access_key, created_at",
                &[&binding.user_id.0, &binding.access_key, &keep],
            )
            .await?;
            tx.commit().await?;
            let mut removed: Vec<(i64, String)> =
                rows.iter().map(|r| Ok((r.try_get(1)?, r.try_get(0)?))).collect::<RowResult<_>>()?;
            // Oldest first.
            removed.sort();
            Ok((new_binding(binding), removed.into_iter().map(|(_, key)| key).collect()))
        })
    }

    async fn refresh_binding(
        &self,
        access_key: &str,
        created_at: UnixTime,
        expires_at: Option<UnixTime>,
    ) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed = execute(
                &*c,
                "UPDATE bindings SET created_at = $2, expires_at = $3 WHERE access_key = $1",
                &[&access_key, &created_at, &expires_at],
            )
            .await?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
    }

    async fn delete_binding(&self, access_key: &str) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed = execute(&*c, "DELETE FROM bindings WHERE access_key = $1", &[&access_key]).await?;
            changed_one(changed, || "binding with this access key".to_owned())
        })
    }

    // ----- sign-in settings and throttling -----

    async fn auth_profile(&self, account: AccountId) -> StoreResult<AuthProfile> {
        with_conn!(self, |c| {
            let row = query_opt(
                &*c,
                "SELECT binding_ttl, max_bindings_per_user FROM auth_profiles WHERE account_id = $1",
                &[&account.0],
            )
            .await?;
            let Some(row) = row else { return Ok(AuthProfile::default()) };
            let max: i64 = row.try_get(1)?;
            Ok(AuthProfile {
                binding_ttl: row.try_get(0)?,
                max_bindings_per_user: u32::try_from(max.max(0)).unwrap_or(u32::MAX),
            })
        })
    }

    async fn set_auth_profile(&self, account: AccountId, profile: AuthProfile) -> StoreResult<()> {
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO auth_profiles (account_id, binding_ttl, max_bindings_per_user) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE \
                     SET binding_ttl = excluded.binding_ttl, max_bindings_per_user = excluded.max_bindings_per_user",
                )
                .await?;
            c.execute(&stmt, &[&account.0, &profile.binding_ttl, &i64::from(profile.max_bindings_per_user)])
                .await
                .map_err(conflict_or_missing(
                    || format!("auth profile of account {account}"),
                    || format!("account {account}"),
                ))?;
            Ok(())
        })
    }

    async fn record_login_failure(&self, key: &str, now: UnixTime) -> StoreResult<LoginFailures> {
        with_conn!(self, |c| {
            let row = query_one(
                &*c,
                "INSERT INTO login_failures AS f (key, count, first_at, last_at) VALUES ($1, 1, $2, $2) \
                 ON CONFLICT (key) DO UPDATE SET count = f.count + 1, last_at = excluded.last_at \
                 RETURNING count, first_at, last_at",
                &[&key, &now],
            )
            .await?;
            Ok(login_failures_row(&row)?)
        })
    }

    async fn login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>> {
        with_conn!(self, |c| {
            let row =
                query_opt(&*c, "SELECT count, first_at, last_at FROM login_failures WHERE key = $1", &[&key]).await?;
            Ok(row.as_ref().map(login_failures_row).transpose()?)
        })
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        with_conn!(self, |c| {
            execute(&*c, "DELETE FROM login_failures WHERE key = $1", &[&key]).await?;
            Ok(())
        })
    }

    async fn purge_login_failures(&self, before: UnixTime) -> StoreResult<u64> {
        with_conn!(self, |c| execute(&*c, "DELETE FROM login_failures WHERE last_at < $1", &[&before]).await)
    }

    // ----- API 2.0 clients and tokens -----

    async fn create_api_client(&self, client: NewApiClient, now: UnixTime) -> StoreResult<ApiClient> {
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "INSERT INTO api_clients ({API_CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, false, $6)"
                ))
                .await?;
            c.execute(
                &stmt,
                &[&client.client_id, &client.account_id.0, &client.role_id.0, &client.name, &client.secret_hash, &now],
            )
            .await
            .map_err(conflict_or_missing(
                || format!("API client {}", client.client_id),
                || format!("role {} in account {}", client.role_id, client.account_id),
            ))?;
            Ok(client.into_api_client(now))
        })
    }

    async fn api_client(&self, client_id: &str) -> StoreResult<Option<(ApiClient, Account, Vec<String>)>> {
        with_conn!(self, |c| {
            let sql = format!(
                "SELECT {}, {}, r.permissions FROM api_clients k \
                 JOIN accounts a ON a.id = k.account_id \
                 JOIN roles r ON r.id = k.role_id \
                 WHERE k.client_id = $1",
                prefixed("k", API_CLIENT_COLUMNS),
                prefixed("a", ACCOUNT_COLUMNS),
            );
            let Some(row) = query_opt(&*c, &sql, &[&client_id]).await? else { return Ok(None) };
            Ok(Some((api_client_at(&row, 0)?, account_at(&row, 7)?, row.try_get(11)?)))
        })
    }

    async fn list_api_clients(&self, account: AccountId) -> StoreResult<Vec<ApiClient>> {
        with_conn!(self, |c| {
            let sql = format!(
                "SELECT {API_CLIENT_COLUMNS} FROM api_clients WHERE account_id = $1 \
                 ORDER BY name COLLATE \"C\", client_id COLLATE \"C\""
            );
            map_rows(&query_all(&*c, &sql, &[&account.0]).await?, api_client_row)
        })
    }

    async fn revoke_api_client(&self, client_id: &str) -> StoreResult<()> {
        with_conn!(self, |c| {
            let tx = c.transaction().await?;
            let changed =
                execute(&tx, "UPDATE api_clients SET revoked = true WHERE client_id = $1", &[&client_id]).await?;
            changed_one(changed, || format!("API client {client_id}"))?;
            execute(&tx, "UPDATE access_tokens SET revoked = true WHERE client_id = $1", &[&client_id]).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn store_token(&self, token: AccessToken) -> StoreResult<()> {
        with_conn!(self, |c| {
            let stmt = c
                .prepare_cached(&format!("INSERT INTO access_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"))
                .await?;
            c.execute(
                &stmt,
                &[&token.token_hash, &token.client_id, &token.issued_at, &token.expires_at, &token.revoked],
            )
            .await
            // A token hash is a credential's digest: not echoed in the error.
            .map_err(conflict_or_missing(
                || "token with this hash".to_owned(),
                || format!("API client {}", token.client_id),
            ))?;
            Ok(())
        })
    }

    async fn token_principal(&self, token_hash: &str) -> StoreResult<Option<TokenPrincipal>> {
        with_conn!(self, |c| {
            let sql = format!(
                "SELECT {}, {}, {}, r.permissions FROM access_tokens t \
                 JOIN api_clients k ON k.client_id = t.client_id \
                 JOIN accounts a ON a.id = k.account_id \
                 JOIN roles r ON r.id = k.role_id \
                 WHERE t.token_hash = $1",
                prefixed("t", TOKEN_COLUMNS),
                prefixed("k", API_CLIENT_COLUMNS),
                prefixed("a", ACCOUNT_COLUMNS),
            );
            let Some(row) = query_opt(&*c, &sql, &[&token_hash]).await? else { return Ok(None) };
            Ok(Some(TokenPrincipal {
                token: token_at(&row, 0)?,
                client: api_client_at(&row, 5)?,
                account: account_at(&row, 12)?,
                permissions: row.try_get(16)?,
            }))
        })
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<()> {
        with_conn!(self, |c| {
            let changed =
                execute(&*c, "UPDATE access_tokens SET revoked = true WHERE token_hash = $1", &[&token_hash]).await?;
            changed_one(changed, || "token with this hash".to_owned())
        })
    }

    async fn purge_tokens(&self, before: UnixTime) -> StoreResult<u64> {
        with_conn!(self, |c| execute(&*c, "DELETE FROM access_tokens WHERE expires_at < $1", &[&before]).await)
    }

    // ----- view events -----

    async fn insert_events(&self, account: AccountId, events: &[ViewEvent]) -> StoreResult<InsertOutcome> {
        if events.is_empty() {
            return Ok(InsertOutcome::default());
        }
        with_conn!(self, |c| events::insert(c, account.0, events).await)
    }

    async fn snapshot(&self, account: AccountId) -> StoreResult<i64> {
        with_conn!(self, |c| events::snapshot(c, account.0).await)
    }

    async fn page(&self, account: AccountId, request: &PageRequest) -> StoreResult<Vec<StoredEvent>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        with_conn!(self, |c| events::page(c, account.0, request).await)
    }

    async fn events_after(&self, account: AccountId, after_seq: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        with_conn!(self, |c| events::after(c, account.0, after_seq, limit).await)
    }

    async fn count(&self, account: AccountId, filter: &EventFilter) -> StoreResult<u64> {
        with_conn!(self, |c| events::count(c, account.0, filter).await)
    }

    // ----- state shared by server instances -----

    async fn remember_request(
        &self,
        access_key: &str,
        request_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool> {
        with_conn!(self, |c| {
            let tx = c.transaction().await?;
            // A record that expired before `now` counts as absent: it is overwritten.
            let insert = tx
                .prepare_cached(
                    "INSERT INTO seen_requests (access_key, request_id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (access_key, request_id) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE seen_requests.expires_at < $4",
                )
                .await?;
            let params: [&(dyn ToSql + Sync); 4] = [&access_key, &request_id, &expires_at, &now];
            // Sent together: one round trip for both (see the crate docs on durability).
            let (relaxed, changed) =
                futures::join!(tx.batch_execute("SET LOCAL synchronous_commit = off"), tx.execute(&insert, &params),);
            relaxed?;
            let fresh = changed? == 1;
            tx.commit().await?;
            Ok(fresh)
        })
    }

    async fn purge_requests(&self, now: UnixTime) -> StoreResult<u64> {
        with_conn!(self, |c| {
            let purged = execute(&*c, "DELETE FROM seen_requests WHERE expires_at < $1", &[&now]).await?;
            // The trait has no purge of rate buckets, and this runs periodically: forget
            // buckets untouched for a day, which any policy worth having has refilled by then
            // (a forgotten bucket comes back full).
            let idle_before_ms = now.saturating_sub(86_400).saturating_mul(1000);
            execute(&*c, "DELETE FROM rate_buckets WHERE last_ms < $1", &[&idle_before_ms]).await?;
            Ok(purged)
        })
    }

    /// Nothing to tidy: PostgreSQL's own indexes are kept by PostgreSQL (autovacuum).
    async fn compact(&self, _settled_before: UnixTime) -> StoreResult<u64> {
        Ok(0)
    }

    async fn take_rate_token(&self, key: &RateKey, policy: RatePolicy, now_ms: i64) -> StoreResult<RateDecision> {
        let key = rate::key_text(key);
        let capacity = policy.capacity as f64;
        let refill = rate::refill_rate(policy);
        with_conn!(self, |c| {
            let row = query_one(&*c, &rate::TAKE_SQL, &[&key, &capacity, &refill, &now_ms]).await?;
            Ok(rate::decision(policy, row.try_get(0)?, row.try_get(1)?))
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        with_conn!(self, |c| {
            query_one(&*c, "SELECT 1", &[]).await?;
            Ok(())
        })
    }
}
