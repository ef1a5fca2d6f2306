//! The schema and its migrations.
//!
//! [`MIGRATIONS`] is the whole history of the schema: entry `i` takes a database from version
//! `i` to `i + 1`. The version lives in `PRAGMA user_version`; each migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the version bump, so a crash leaves the database
//! at one version or the next, never between. Migrations are append-only: never edit one that
//! has shipped, add another.

use rusqlite::{Connection, TransactionBehavior};
use viewlog_store::StoreError;

use crate::error::Fail;

/// `PRAGMA application_id` of a viewlog database ("vwlg"), set by the first migration. A file
/// with another application id belongs to some other program and is refused.
pub(crate) const APPLICATION_ID: i32 = 0x7677_6c67;

/// The migrations, oldest first. The schema version of a database is the number applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    -- The highest seq any of the account's events holds: the snapshot bound. Bumped in the
    -- transaction that inserts the events, so it also serialises the account's ingest.
    last_seq    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    name        TEXT    NOT NULL,
    builtin     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name),
    UNIQUE (account_id, id)
) STRICT;

-- A role's permissions, in the order they were given.
CREATE TABLE role_permissions (
    role_id     INTEGER NOT NULL REFERENCES roles (id),
    position    INTEGER NOT NULL,
    permission  TEXT    NOT NULL,
    PRIMARY KEY (role_id, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    -- Lower-cased by the store; unique across all accounts.
    email         TEXT    NOT NULL UNIQUE,
    role_id       INTEGER,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    UNIQUE (account_id, id),
    -- A user's role belongs to the user's account.
    FOREIGN KEY (account_id, role_id) REFERENCES roles (account_id, id)
) STRICT;
CREATE INDEX users_by_account ON users (account_id, email);

CREATE TABLE applications (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    -- The public application id (x-mc-app-id); unique across all accounts.
    app_id         TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    app_key_sealed BLOB    NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    UNIQUE (account_id, id)
) STRICT;
CREATE INDEX applications_by_account ON applications (account_id, name);

CREATE TABLE bindings (
    access_key        TEXT    NOT NULL PRIMARY KEY,
    account_id        INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    application_id    INTEGER NOT NULL,
    secret_key_sealed BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER,
    revoked           INTEGER NOT NULL DEFAULT 0,
    -- The user and the application belong to the binding's account.
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id),
    FOREIGN KEY (account_id, application_id) REFERENCES applications (account_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX bindings_by_account ON bindings (account_id, created_at);
CREATE INDEX bindings_by_user ON bindings (account_id, user_id);
CREATE INDEX bindings_by_application ON bindings (account_id, application_id);

-- View events, clustered by account and time: a page is one contiguous range of this b-tree.
-- seq is assigned at insert from accounts.last_seq: unique within the account, increasing in
-- commit order, the tie-breaker of the newest-first order and the paging snapshot bound.
CREATE TABLE view_events (
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    viewed         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    viewer         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    content_viewed INTEGER NOT NULL,
    discovery_case INTEGER NOT NULL,
    message_date   INTEGER NOT NULL,
    viewer_ip      TEXT,
    message_id     TEXT,
    action         TEXT,
    case_id        TEXT,
    PRIMARY KEY (account_id, viewed, seq)
) STRICT, WITHOUT ROWID;
-- Idempotency: an event id is stored once per account.
CREATE UNIQUE INDEX view_events_by_event_id ON view_events (account_id, event_id);

-- Request ids seen per access key (replay protection), kept until expires_at.
CREATE TABLE seen_requests (
    access_key  TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (access_key, request_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX seen_requests_by_expiry ON seen_requests (expires_at);
"#,
    // 2: sign-in (authentication profiles, capped bindings, login throttling), API 2.0 clients
    // and tokens.
    r#"
-- An account's sign-in settings; an account without a row has the defaults.
CREATE TABLE auth_profiles (
    account_id            INTEGER PRIMARY KEY REFERENCES accounts (id),
    -- Seconds a binding created by sign-in lives; NULL: it never lapses.
    binding_ttl           INTEGER,
    max_bindings_per_user INTEGER NOT NULL
) STRICT;

-- Sign-in bindings are capped per user, oldest removed first.
CREATE INDEX bindings_by_user_age ON bindings (user_id, created_at);

-- Failed sign-ins per key (a user's address, a client address), shared by every server.
CREATE TABLE login_failures (
    login_key TEXT    NOT NULL PRIMARY KEY,
    failures  INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX login_failures_by_last ON login_failures (last_at);

-- API 2.0 clients: an OAuth client id acting with one role of its account.
CREATE TABLE api_clients (
    client_id   TEXT    NOT NULL PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    role_id     INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    -- SHA-256 of the client secret, hex.
    secret_hash TEXT    NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    -- The client's role belongs to the client's account.
    FOREIGN KEY (account_id, role_id) REFERENCES roles (account_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX api_clients_by_account ON api_clients (account_id, name);

-- Issued bearer tokens, kept only as hashes.
CREATE TABLE access_tokens (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    client_id   TEXT    NOT NULL REFERENCES api_clients (client_id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- Reading an account's events in seq order (events_after, for copying a store) needs an
-- index on (account_id, seq). It costs ingest about a tenth of its speed, and most stores are
-- never copied, so no migration creates it: the first events_after does (events::SEQ_INDEX).
"#,
    // 3: events per hour (counting a range) and the first text index (searching one); the hours
    // are filled from the events already stored, the text index by migration 4, which replaces
    // it.
    r#"
-- How many events of an account were viewed in each hour (viewed div 3600), kept by the
-- transaction that inserts them (hours.rs).
CREATE TABLE event_hours (
    account_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour)
) STRICT, WITHOUT ROWID;

-- The folded searchable text of an account's events, in segments per day of viewed
-- (segments.rs): keys and body are packed blobs, so a rowid table.
CREATE TABLE text_segments (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    keys        BLOB    NOT NULL,
    body        BLOB    NOT NULL
) STRICT;
CREATE INDEX text_segments_by_day ON text_segments (account_id, day);
"#,
    // 4: the text index with a dictionary of words (segments.rs), refilled from the events.
    TEXT_INDEX,
    // 5: replay records live in the requests file beside the database (requests.rs, which
    // moves the records kept here into it before this runs).
    r#"
DROP TABLE seen_requests;
"#,
    // 6: events per day beside the events per hour (hours.rs), filled from the hours.
    r#"
-- How many events of an account were viewed in each day (viewed div 86400), kept with
-- event_hours by the transaction that inserts them (hours.rs).
CREATE TABLE event_days (
    account_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) STRICT, WITHOUT ROWID;
"#,
    // 7: each event's record as get-view-logs writes it (records.rs), filled from the columns.
    r#"
-- The event's get-view-logs record, JSON written once at insert (records.rs): a page copies
-- it instead of reading and escaping the fields again. Never empty once migration 7 is done.
ALTER TABLE view_events ADD COLUMN record TEXT NOT NULL DEFAULT '';
"#,
    // 8: when each day of the text index last took a segment, so that days ingest has left
    // alone get their segments merged into one (segments.rs, "settled days").
    r#"
-- When an insert last added a segment to each day of an account's text index (segments.rs). A
-- day not written since a cutoff is settled: SqliteStore::compact merges its segments into one.
CREATE TABLE text_days (
    account_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    written_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) STRICT, WITHOUT ROWID;
INSERT INTO text_days (account_id, day, written_at) SELECT DISTINCT account_id, day, 0 FROM text_index;
"#,
    // 9: each term of a text segment carries the key of its first event (segments.rs,
    // `META_LEN`): rewritten by `segments::migration_widen_term_meta`, no change of tables.
    r#"
SELECT 1;
"#,
    // 10: events that arrive late go to a table of their own, in arrival order, until a fold
    // moves them into view_events in time order (late.rs).
    r#"
-- Events viewed well before the newest event their account held when they arrived (late.rs):
-- appended in seq order here rather than changing a page in the middle of view_events, until
-- a fold moves them there. Reads merge both tables. An event id is in one of them at most.
CREATE TABLE late_events (
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    viewed         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    viewer         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    content_viewed INTEGER NOT NULL,
    discovery_case INTEGER NOT NULL,
    message_date   INTEGER NOT NULL,
    viewer_ip      TEXT,
    message_id     TEXT,
    action         TEXT,
    case_id        TEXT,
    record         TEXT    NOT NULL,
    PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX late_events_by_time ON late_events (account_id, viewed, seq);
CREATE UNIQUE INDEX late_events_by_event_id ON late_events (account_id, event_id);
-- How many late events each account holds and when it last took one: when to fold them.
CREATE TABLE late_accounts (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts (id),
    events      INTEGER NOT NULL,
    last_at     INTEGER NOT NULL
) STRICT;
"#,
    // 11: event ids claimed in tables of their own rather than in unique indexes on the two
    // events tables (ids.rs), filled from the events stored.
    r#"
-- An account's event ids but its recent ones (ids.rs): looked up by every insert, written by
-- a fold of the recent ones.
CREATE TABLE event_ids (
    account_id  INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    PRIMARY KEY (account_id, event_id)
) STRICT, WITHOUT ROWID;
-- The ids an account's inserts claimed since its last fold, counted in accounts.recent_ids.
CREATE TABLE recent_ids (
    account_id  INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    PRIMARY KEY (account_id, event_id)
) STRICT, WITHOUT ROWID;
ALTER TABLE accounts ADD COLUMN recent_ids INTEGER NOT NULL DEFAULT 0;
INSERT INTO event_ids (account_id, event_id)
    SELECT account_id, event_id FROM view_events
    UNION ALL SELECT account_id, event_id FROM late_events
    ORDER BY 1, 2;
DROP INDEX view_events_by_event_id;
DROP INDEX late_events_by_event_id;
"#,
    // 12: a settled day's segment holds its events in time order, noted in a table of its own;
    // days settled before are looked at again, so that compaction sorts them (segments.rs,
    // `Order::Time`).
    r#"
-- The segments of the text index whose events are in time order (segments.rs, Order::Time): a
-- search takes a page's newest matches from the end of their postings. A table of its own, as
-- a column added to text_index would come after its big columns.
CREATE TABLE text_sorted (
    id  INTEGER PRIMARY KEY
) STRICT;
-- Days merged before this version: the next compaction sorts them.
UPDATE text_days SET written_at = 0 WHERE written_at = -1;
"#,
    // 13: the message's five strings (sender, recipient, viewer, source, subject) are kept only
    // in each event's record, which held them already (records.rs): both events tables are
    // rewritten without those columns. Records still missing (rows written by a viewlog older
    // than migration 7) are written first, from the columns (`before`).
    r#"
CREATE TABLE view_events_13 (
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    viewed         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    content_viewed INTEGER NOT NULL,
    discovery_case INTEGER NOT NULL,
    message_date   INTEGER NOT NULL,
    viewer_ip      TEXT,
    message_id     TEXT,
    action         TEXT,
    case_id        TEXT,
    -- The event's get-view-logs record (records.rs): its strings are kept nowhere else.
    record         TEXT    NOT NULL,
    PRIMARY KEY (account_id, viewed, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO view_events_13
    SELECT account_id, viewed, seq, event_id, content_viewed, discovery_case, message_date, viewer_ip,
           message_id, action, case_id, record
    FROM view_events ORDER BY account_id, viewed, seq;
DROP TABLE view_events;
ALTER TABLE view_events_13 RENAME TO view_events;

CREATE TABLE late_events_13 (
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    viewed         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    content_viewed INTEGER NOT NULL,
    discovery_case INTEGER NOT NULL,
    message_date   INTEGER NOT NULL,
    viewer_ip      TEXT,
    message_id     TEXT,
    action         TEXT,
    case_id        TEXT,
    record         TEXT    NOT NULL,
    PRIMARY KEY (account_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO late_events_13
    SELECT account_id, viewed, seq, event_id, content_viewed, discovery_case, message_date, viewer_ip,
           message_id, action, case_id, record
    FROM late_events ORDER BY account_id, seq;
DROP TABLE late_events;
ALTER TABLE late_events_13 RENAME TO late_events;
CREATE INDEX late_events_by_time ON late_events (account_id, viewed, seq);
"#,
];

/// Migration 4: the text index with its term dictionary replaces migration 3's segments of text
/// alone; `segments::migration_fill` fills it from the events stored.
pub(crate) const TEXT_INDEX: &str = r#"
DROP TABLE IF EXISTS text_segments;

-- The folded searchable text of an account's events and the dictionary of its words, in
-- segments per day of viewed (segments.rs). The small columns first: SQLite reaches a column
-- of a big row by walking the overflow pages before it.
CREATE TABLE text_index (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    max_seq     INTEGER NOT NULL,
    terms       BLOB    NOT NULL,
    term_meta   BLOB    NOT NULL,
    keys        BLOB    NOT NULL,
    postings    BLOB    NOT NULL,
    body        BLOB    NOT NULL
) STRICT;
CREATE INDEX text_index_by_day ON text_index (account_id, day);
"#;

/// What a migration needs done before its SQL, in its transaction: writing what SQL cannot
/// compute from what the SQL then drops.
fn before(tx: &rusqlite::Transaction<'_>, version: i64) -> Result<(), Fail> {
    if version == 13 {
        crate::records::migration_fill(tx, crate::records::Fill::Missing)?;
        let events: i64 =
            tx.query_row("SELECT (SELECT count(*) FROM view_events) + (SELECT count(*) FROM late_events)", [], |r| {
                r.get(0)
            })?;
        if events > 0 {
            tracing::info!(
                events,
                "migration 13: rewriting the stored events without the columns their records hold (some 5 s \
                 per million events; the file grows by the new tables' size, and the old tables' pages are \
                 then free for later writes: VACUUM, with no server running, gives them back)"
            );
        }
    }
    Ok(())
}

/// What a migration does beyond its SQL, run in its transaction right after it: filling what
/// SQL cannot compute (folding text the way Rust does).
fn after(tx: &rusqlite::Transaction<'_>, version: i64) -> Result<(), Fail> {
    if version == 3 {
        tx.execute_batch(crate::hours::FILL)?;
    }
    if version == 4 {
        crate::segments::migration_fill(tx)?;
    }
    if version == 6 {
        tx.execute_batch(crate::hours::FILL_DAYS)?;
    }
    if version == 7 {
        crate::records::migration_fill(tx, crate::records::Fill::All)?;
    }
    if version == 9 {
        crate::segments::migration_widen_term_meta(tx)?;
    }
    Ok(())
}

/// The schema version this code writes and understands.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Checks that the file is an empty database or viewlog's at a version this code knows; returns
/// that version. Runs before anything is written, so a refused file is left as it was.
pub(crate) fn check(db: &Connection) -> Result<i64, Fail> {
    let app_id: i32 = db.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!("not a viewlog database (application_id {app_id:#x})")).into());
    }
    if version > current_version() {
        return Err(StoreError::Corrupt(format!(
            "the schema is at version {version}, newer than this viewlog knows ({}); upgrade viewlog",
            current_version()
        ))
        .into());
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!("negative schema version {version}")).into());
    }
    if version == 0 {
        let tables: i64 = db.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables != 0 {
            return Err(StoreError::Corrupt("not a viewlog database (it has tables of its own)".into()).into());
        }
    }
    Ok(version)
}

/// Brings the database up to [`current_version`], one migration per transaction; refuses what
/// [`check`] refuses. Safe against another process migrating at the same time: the version is
/// read again inside each `BEGIN IMMEDIATE`.
pub(crate) fn migrate(db: &mut Connection) -> Result<(), Fail> {
    let mut applied = 0;
    loop {
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = check(&tx)?;
        if version == current_version() {
            tx.commit()?;
            if applied > 0 {
                // A migration that rewrites the events (7) leaves a write-ahead log as big as
                // the table: checkpoint it and give the space back.
                if let Err(e) = db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                    tracing::warn!(error = %e, "could not truncate the write-ahead log after migrating");
                }
            }
            return Ok(());
        }
        let index =
            usize::try_from(version).map_err(|_| StoreError::Corrupt(format!("negative schema version {version}")))?;
        before(&tx, version + 1)?;
        tx.execute_batch(MIGRATIONS[index])?;
        after(&tx, version + 1)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        applied += 1;
        tracing::info!(version = version + 1, "applied SQLite schema migration");
    }
}
