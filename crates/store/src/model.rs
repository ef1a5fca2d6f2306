//! The records the store keeps: tenants, their principals and their view events.
//!
//! Times are whole seconds since the Unix epoch (UTC): Mimecast's wire dates carry seconds and
//! nothing finer, so nothing finer is stored.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// The store's key of an account (a tenant).
    AccountId
);
id_type!(
    /// The store's key of a role.
    RoleId
);
id_type!(
    /// The store's key of a user.
    UserId
);
id_type!(
    /// The store's key of a registered API application (not its public application id).
    ApplicationKeyId
);

/// A tenant: everything else belongs to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The store's key.
    pub id: AccountId,
    /// A unique, human-chosen name (`acme`).
    pub name: String,
    /// A disabled account answers no API call.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: UnixTime,
}

/// A named set of permissions within one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// The store's key.
    pub id: RoleId,
    /// The account the role belongs to.
    pub account_id: AccountId,
    /// Unique within the account.
    pub name: String,
    /// Permission names, such as `Archive | View Logs | Read`.
    pub permissions: Vec<String>,
    /// Built-in roles are created with the account.
    pub builtin: bool,
}

/// What it takes to create a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    /// The account the role belongs to.
    pub account_id: AccountId,
    /// Unique within the account.
    pub name: String,
    /// Permission names.
    pub permissions: Vec<String>,
    /// Whether this is one of the built-in roles.
    pub builtin: bool,
}

/// A person (an administrator) who may hold key bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The store's key.
    pub id: UserId,
    /// The account the user belongs to.
    pub account_id: AccountId,
    /// The sign-in address, stored lower-cased; unique across all accounts.
    pub email: String,
    /// The user's administrative role, if any.
    pub role_id: Option<RoleId>,
    /// An argon2 PHC string; `None` for a user who cannot sign in with a password.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    /// A disabled user's bindings are refused.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: UnixTime,
}

/// What it takes to create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The account the user belongs to.
    pub account_id: AccountId,
    /// The sign-in address (the store lower-cases it).
    pub email: String,
    /// The user's role.
    pub role_id: Option<RoleId>,
    /// An argon2 PHC string, or `None`.
    pub password_hash: Option<String>,
}

/// A registered API application: its public id and its (sealed) application key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The store's key.
    pub id: ApplicationKeyId,
    /// The account the application belongs to.
    pub account_id: AccountId,
    /// The public application id sent as `x-mc-app-id`; unique across all accounts.
    pub app_id: String,
    /// A display name.
    pub name: String,
    /// The application key, sealed under the server's master key.
    #[serde(skip_serializing)]
    pub app_key_sealed: Vec<u8>,
    /// A disabled application's requests get `err_developer_key`.
    pub disabled: bool,
    /// When the application was registered.
    pub created_at: UnixTime,
}

/// What it takes to register an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    /// The account the application belongs to.
    pub account_id: AccountId,
    /// The public application id.
    pub app_id: String,
    /// A display name.
    pub name: String,
    /// The application key, sealed under the server's master key.
    pub app_key_sealed: Vec<u8>,
}

/// A key binding: an access key and a secret key tying one user to one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// The access key sent in `Authorization: MC {accessKey}:…`; unique across all accounts.
    pub access_key: String,
    /// The account of the user and application.
    pub account_id: AccountId,
    /// The user the binding acts for.
    pub user_id: UserId,
    /// The application the binding was issued to.
    pub application_id: ApplicationKeyId,
    /// The secret key, sealed under the server's master key.
    #[serde(skip_serializing)]
    pub secret_key_sealed: Vec<u8>,
    /// When the binding was created or last refreshed.
    pub created_at: UnixTime,
    /// When the binding lapses (418); `None` never.
    pub expires_at: Option<UnixTime>,
    /// A revoked binding verifies no request.
    pub revoked: bool,
}

/// What it takes to create a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBinding {
    /// The access key.
    pub access_key: String,
    /// The account of the user and application.
    pub account_id: AccountId,
    /// The user the binding acts for.
    pub user_id: UserId,
    /// The application the binding is issued to.
    pub application_id: ApplicationKeyId,
    /// The secret key, sealed under the server's master key.
    pub secret_key_sealed: Vec<u8>,
    /// When the binding is created.
    pub created_at: UnixTime,
    /// When the binding lapses; `None` never.
    pub expires_at: Option<UnixTime>,
}

impl NewBinding {
    /// The binding as stored (not revoked).
    pub fn into_binding(self) -> Binding {
        Binding {
            access_key: self.access_key,
            account_id: self.account_id,
            user_id: self.user_id,
            application_id: self.application_id,
            secret_key_sealed: self.secret_key_sealed,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked: false,
        }
    }
}

/// Everything the signature check needs about one access key, read in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The binding the access key names.
    pub binding: Binding,
    /// The user the binding acts for.
    pub user: User,
    /// The account of the binding.
    pub account: Account,
    /// The application the binding was issued to.
    pub application: Application,
    /// The permissions of the user's role (empty without a role).
    pub permissions: Vec<String>,
}

/// One view of an archived message, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewEvent {
    /// The idempotency key: the same id in the same account is stored once.
    pub event_id: String,
    /// The sender of the viewed message.
    pub from: String,
    /// The recipient of the viewed message.
    pub to: String,
    /// Who viewed it.
    pub viewer: String,
    /// Where it was viewed from (`Message Tracking`, …).
    pub source: String,
    /// Whether the content was viewed.
    pub content_viewed: bool,
    /// Whether the message belongs to a discovery case.
    pub discovery_case: bool,
    /// When the message was received.
    pub message_date: UnixTime,
    /// When it was viewed.
    pub viewed: UnixTime,
    /// The message's subject.
    pub subject: String,
    /// The viewer's address, where the archive records it.
    pub viewer_ip: Option<String>,
    /// The message's Message-ID, where known.
    pub message_id: Option<String>,
    /// `view`, `download`, `export` or `print`, where known.
    pub action: Option<String>,
    /// The discovery case, where known.
    pub case_id: Option<String>,
}

/// A view event as read back: its place in the store's order comes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// The ingest sequence number: unique, increasing in commit order, the tie-breaker of the
    /// newest-first order and the bound of a paging snapshot.
    pub seq: i64,
    /// The event.
    pub event: ViewEvent,
}

/// The `view_events` columns the PostgreSQL backend reads a [`StoredEvent`] from, in the order
/// [`stored_event_from_row!`](crate::stored_event_from_row) reads them (a literal, usable in `concat!`). (The SQLite
/// backend keeps the message's strings only in each event's record and reads them from there.)
#[macro_export]
macro_rules! event_columns {
    () => {
        "seq, event_id, sender, recipient, viewer, source, subject, content_viewed, discovery_case, \
         message_date, viewed, viewer_ip, message_id, action, case_id"
    };
}

/// A [`StoredEvent`] from a row of [`event_columns!`](crate::event_columns), read with the driver's fallible getter
/// by column index (`get` for rusqlite, `try_get` for tokio-postgres); each read error returns
/// from the calling function with `?`.
#[macro_export]
macro_rules! stored_event_from_row {
    ($row:expr, $get:ident) => {
        $crate::StoredEvent {
            seq: $row.$get(0)?,
            event: $crate::ViewEvent {
                event_id: $row.$get(1)?,
                from: $row.$get(2)?,
                to: $row.$get(3)?,
                viewer: $row.$get(4)?,
                source: $row.$get(5)?,
                subject: $row.$get(6)?,
                content_viewed: $row.$get(7)?,
                discovery_case: $row.$get(8)?,
                message_date: $row.$get(9)?,
                viewed: $row.$get(10)?,
                viewer_ip: $row.$get(11)?,
                message_id: $row.$get(12)?,
                action: $row.$get(13)?,
                case_id: $row.$get(14)?,
            },
        }
    };
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertOutcome {
    /// Events newly stored.
    pub inserted: u64,
    /// Events whose id the account already held (left as they were).
    pub duplicates: u64,
}

/// How [`crate::Store::import_events`] may store an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Commit after at least this many events (a backend may commit less often).
    pub per_commit: usize,
    /// The caller promises that no event id repeats within the import.
    pub unique_ids: bool,
}

/// Which events a query selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFilter {
    /// Inclusive lower bound on `viewed`.
    pub start: UnixTime,
    /// Inclusive upper bound on `viewed`.
    pub end: UnixTime,
    /// Case-insensitive substring of `viewer`, `from`, `to` or `subject`; `None` for all.
    pub text: Option<String>,
    /// Only events with `seq <= snapshot` (the paging snapshot).
    pub snapshot: i64,
}

/// A position in the newest-first order: the `(viewed, seq)` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    /// The record's `viewed`.
    pub viewed: UnixTime,
    /// The record's `seq`.
    pub seq: i64,
}

/// Which way a page reads from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Older records: those after the cursor in newest-first order.
    Older,
    /// Newer records: those before the cursor in newest-first order.
    Newer,
}

/// One page's worth of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The records to select.
    pub filter: EventFilter,
    /// Exclusive starting position; `None` starts at the newest (or, reading `Newer`, the oldest).
    pub cursor: Option<Cursor>,
    /// Which way to read.
    pub direction: Direction,
    /// How many records at the most.
    pub limit: u32,
}

/// The start of a query, read at one moment: the snapshot it is fixed to, how many events match
/// in that snapshot, and the newest of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstPage {
    /// The account's latest snapshot (see [`crate::Store::snapshot`]).
    pub snapshot: i64,
    /// How many events match the filter in that snapshot.
    pub total: u64,
    /// The newest matching events, newest first, at most the requested limit.
    pub events: Vec<StoredEvent>,
}

/// A key for the rate limiter: whom a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A verified user.
    User(UserId),
    /// A client address, for requests refused before a user is known.
    Address(String),
    /// An API 2.0 client.
    ApiClient(String),
}

/// The answer of the rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may run.
    pub allowed: bool,
    /// The bucket's capacity.
    pub limit: u64,
    /// Whole tokens left after this request.
    pub remaining: u64,
    /// Milliseconds until the next token is added back.
    pub reset_ms: u64,
}

/// The shape of a token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePolicy {
    /// The most tokens the bucket holds.
    pub capacity: u64,
    /// Tokens added back per second.
    pub refill_per_sec: f64,
}

/// Whole tokens closer than this to an integer count as that integer (floating-point refills).
pub const RATE_EPSILON: f64 = 1e-6;

impl RatePolicy {
    /// The refill per second to use: a policy that refills nothing (or nonsense) refills nothing.
    pub fn effective_refill(&self) -> f64 {
        if self.refill_per_sec.is_finite() && self.refill_per_sec > 0.0 {
            self.refill_per_sec
        } else {
            0.0
        }
    }

    /// The answer for a bucket left holding `tokens` after a take: what every backend reports.
    /// `reset_ms` is the time until the next whole token comes back (0 when full, `u64::MAX`
    /// when nothing is ever added back).
    pub fn decision(&self, tokens: f64, allowed: bool) -> RateDecision {
        let capacity = self.capacity as f64;
        let refill_per_sec = self.effective_refill();
        let tokens = tokens.max(0.0);
        let reset_ms = if tokens >= capacity {
            0
        } else if refill_per_sec == 0.0 {
            u64::MAX
        } else {
            let missing = tokens.floor() + 1.0 - tokens;
            ((missing * 1000.0 / refill_per_sec) - RATE_EPSILON).ceil().max(1.0) as u64
        };
        RateDecision { allowed, limit: self.capacity, remaining: tokens.floor() as u64, reset_ms }
    }
}

/// An account's sign-in settings (Mimecast's "authentication profile").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthProfile {
    /// How long a binding created by sign-in lives, in seconds; `None`: it never lapses.
    pub binding_ttl: Option<i64>,
    /// How many bindings one user may hold; signing in at the cap removes the user's oldest.
    pub max_bindings_per_user: u32,
}

impl Default for AuthProfile {
    fn default() -> Self {
        AuthProfile { binding_ttl: Some(3 * 86_400), max_bindings_per_user: 10 }
    }
}

/// Failed sign-ins recorded against one key (a user's address or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailures {
    /// Failures since the record was last cleared.
    pub count: u32,
    /// When the first of them happened.
    pub first_at: UnixTime,
    /// When the last of them happened.
    pub last_at: UnixTime,
}

/// An API 2.0 client: an OAuth client id and the hash of its secret, acting with one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiClient {
    /// The public client id; unique across all accounts.
    pub client_id: String,
    /// The account the client belongs to.
    pub account_id: AccountId,
    /// The role whose permissions the client's tokens carry.
    pub role_id: RoleId,
    /// A display name.
    pub name: String,
    /// SHA-256 of the client secret, hex (the secret is random, so a fast hash suffices).
    #[serde(skip_serializing)]
    pub secret_hash: String,
    /// A revoked client gets no tokens, and its tokens stop working.
    pub revoked: bool,
    /// When the client was registered.
    pub created_at: UnixTime,
}

/// What it takes to register an API 2.0 client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiClient {
    /// The public client id.
    pub client_id: String,
    /// The account.
    pub account_id: AccountId,
    /// The role its tokens act with.
    pub role_id: RoleId,
    /// A display name.
    pub name: String,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
}

impl NewApiClient {
    /// The client as stored at `now` (not revoked).
    pub fn into_api_client(self, now: UnixTime) -> ApiClient {
        ApiClient {
            client_id: self.client_id,
            account_id: self.account_id,
            role_id: self.role_id,
            name: self.name,
            secret_hash: self.secret_hash,
            revoked: false,
            created_at: now,
        }
    }
}

/// An API 2.0 bearer token, kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// A revoked token stops working at once.
    pub revoked: bool,
}

/// Everything a bearer-token check needs, read in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrincipal {
    /// The token.
    pub token: AccessToken,
    /// The client it was issued to.
    pub client: ApiClient,
    /// The client's account.
    pub account: Account,
    /// The permissions of the client's role.
    pub permissions: Vec<String>,
}
