//! The storage trait of viewlog.
//!
//! This crate holds what is stored ([`model`]), what can go wrong ([`StoreError`]) and the one
//! trait every backend implements ([`Store`]); it has no driver code. Backends live in their own
//! crates (`viewlog-store-sqlite`, …), each with its own migrations, and each runs the shared
//! `conformance` suite (the module of the feature `conformance`).
//!
//! Callers hold a `Store` only after their permission check: the HTTP server's handlers never
//! see one before the request's signature and permission were verified.

#![warn(missing_docs)]

mod error;
pub mod hours;
pub mod model;
pub mod wire;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{StoreError, StoreResult};
pub use model::*;
pub use wire::{FirstWirePage, WireError, WireRecords};

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

/// Durable storage of tenants, principals, view events and the state several servers share.
///
/// Every method is a single atomic operation. An operation that returns `Ok` has committed:
/// a crash after it loses nothing. A future dropped before completion stops its work where the
/// backend can (SQLite interrupts the statement); the caller uses that for deadlines and for
/// clients that went away.
pub trait Store: Send + Sync + 'static {
    // ----- accounts -----

    /// Creates an account; `Conflict` if the name is taken.
    fn create_account(&self, name: &str, now: UnixTime) -> impl Future<Output = StoreResult<Account>> + Send;
    /// The account with this name.
    fn account_by_name(&self, name: &str) -> impl Future<Output = StoreResult<Option<Account>>> + Send;
    /// The account with this key.
    fn account(&self, id: AccountId) -> impl Future<Output = StoreResult<Option<Account>>> + Send;
    /// All accounts, by name.
    fn list_accounts(&self) -> impl Future<Output = StoreResult<Vec<Account>>> + Send;
    /// Enables or disables an account; `NotFound` if there is none.
    fn set_account_disabled(&self, id: AccountId, disabled: bool) -> impl Future<Output = StoreResult<()>> + Send;

    // ----- roles -----

    /// Creates a role; `Conflict` if the account has a role of that name.
    fn create_role(&self, role: NewRole) -> impl Future<Output = StoreResult<Role>> + Send;
    /// The account's role of this name.
    fn role_by_name(&self, account: AccountId, name: &str) -> impl Future<Output = StoreResult<Option<Role>>> + Send;
    /// The account's roles, by name.
    fn list_roles(&self, account: AccountId) -> impl Future<Output = StoreResult<Vec<Role>>> + Send;

    // ----- users -----

    /// Creates a user; `Conflict` if the address is taken in any account.
    fn create_user(&self, user: NewUser, now: UnixTime) -> impl Future<Output = StoreResult<User>> + Send;
    /// The user with this address (compared case-insensitively).
    fn user_by_email(&self, email: &str) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// The account's users, by address.
    fn list_users(&self, account: AccountId) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    /// Enables or disables a user; `NotFound` if there is none.
    fn set_user_disabled(&self, id: UserId, disabled: bool) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets or clears a user's password hash; `NotFound` if there is none.
    fn set_user_password(
        &self,
        id: UserId,
        password_hash: Option<String>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets or clears a user's role; `NotFound` if there is no such user.
    fn set_user_role(&self, id: UserId, role: Option<RoleId>) -> impl Future<Output = StoreResult<()>> + Send;

    // ----- applications -----

    /// Registers an application; `Conflict` if the application id is taken.
    fn create_application(
        &self,
        app: NewApplication,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<Application>> + Send;
    /// The application with this public id.
    fn application_by_app_id(&self, app_id: &str) -> impl Future<Output = StoreResult<Option<Application>>> + Send;
    /// The account's applications, by name.
    fn list_applications(&self, account: AccountId) -> impl Future<Output = StoreResult<Vec<Application>>> + Send;
    /// Enables or disables an application; `NotFound` if there is none.
    fn set_application_disabled(&self, app_id: &str, disabled: bool) -> impl Future<Output = StoreResult<()>> + Send;

    // ----- key bindings -----

    /// Stores a binding; `Conflict` if the access key is taken.
    fn create_binding(&self, binding: NewBinding) -> impl Future<Output = StoreResult<Binding>> + Send;
    /// The binding of this access key with its user, account, application and permissions.
    fn principal(&self, access_key: &str) -> impl Future<Output = StoreResult<Option<Principal>>> + Send;
    /// What a signed request's check reads: the application by its public id
    /// ([`Store::application_by_app_id`]) and the principal of the access key
    /// ([`Store::principal`]). Backends that can answer both in one round trip should; this
    /// default asks one after the other.
    fn signed_lookup(
        &self,
        app_id: &str,
        access_key: &str,
    ) -> impl Future<Output = StoreResult<(Option<Application>, Option<Principal>)>> + Send {
        async move { Ok((self.application_by_app_id(app_id).await?, self.principal(access_key).await?)) }
    }
    /// The account's bindings, newest first.
    fn list_bindings(&self, account: AccountId) -> impl Future<Output = StoreResult<Vec<Binding>>> + Send;
    /// Revokes a binding; `NotFound` if there is none.
    fn revoke_binding(&self, access_key: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores a binding created by sign-in. If the user then holds more than `max_per_user`
    /// bindings, the oldest (by `created_at`) are deleted in the same transaction; their access
    /// keys are returned.
    fn create_binding_capped(
        &self,
        binding: NewBinding,
        max_per_user: u32,
    ) -> impl Future<Output = StoreResult<(Binding, Vec<String>)>> + Send;
    /// Refreshes a binding: new `created_at` and `expires_at`; `NotFound` if there is none.
    fn refresh_binding(
        &self,
        access_key: &str,
        created_at: UnixTime,
        expires_at: Option<UnixTime>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a binding (sign-out); `NotFound` if there is none.
    fn delete_binding(&self, access_key: &str) -> impl Future<Output = StoreResult<()>> + Send;

    // ----- sign-in settings and throttling -----

    /// The account's authentication profile (the default if none was set).
    fn auth_profile(&self, account: AccountId) -> impl Future<Output = StoreResult<AuthProfile>> + Send;
    /// Sets the account's authentication profile; `NotFound` if there is no such account.
    fn set_auth_profile(
        &self,
        account: AccountId,
        profile: AuthProfile,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records one failed sign-in against `key` at `now` and returns the updated record.
    fn record_login_failure(&self, key: &str, now: UnixTime)
        -> impl Future<Output = StoreResult<LoginFailures>> + Send;
    /// The failures recorded against `key`, if any.
    fn login_failures(&self, key: &str) -> impl Future<Output = StoreResult<Option<LoginFailures>>> + Send;
    /// Forgets the failures recorded against `key`.
    fn clear_login_failures(&self, key: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Forgets failure records whose last failure is before `before`; returns how many.
    fn purge_login_failures(&self, before: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;

    // ----- API 2.0 clients and tokens -----

    /// Registers an API 2.0 client; `Conflict` if the client id is taken, `NotFound` if the role
    /// is not the account's.
    fn create_api_client(
        &self,
        client: NewApiClient,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<ApiClient>> + Send;
    /// The client with this id, with its account and its role's permissions.
    fn api_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = StoreResult<Option<(ApiClient, Account, Vec<String>)>>> + Send;
    /// The account's API 2.0 clients.
    fn list_api_clients(&self, account: AccountId) -> impl Future<Output = StoreResult<Vec<ApiClient>>> + Send;
    /// Revokes a client and every token issued to it; `NotFound` if there is none.
    fn revoke_api_client(&self, client_id: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores an issued token (its hash).
    fn store_token(&self, token: AccessToken) -> impl Future<Output = StoreResult<()>> + Send;
    /// The token with this hash, with its client, account and permissions.
    fn token_principal(&self, token_hash: &str) -> impl Future<Output = StoreResult<Option<TokenPrincipal>>> + Send;
    /// Revokes one token; `NotFound` if there is none.
    fn revoke_token(&self, token_hash: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes tokens that expired before `before`; returns how many.
    fn purge_tokens(&self, before: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;

    // ----- view events -----

    /// Stores a batch of events in one transaction. An event whose id the account holds already
    /// is left as it was and counted as a duplicate (also within the batch). Each new event gets
    /// the next sequence number.
    fn insert_events(
        &self,
        account: AccountId,
        events: &[ViewEvent],
    ) -> impl Future<Output = StoreResult<InsertOutcome>> + Send;
    /// Stores an import: the batches `batches` yields, in order, each event as
    /// [`Store::insert_events`] would (duplicates counted, the next sequence numbers), committed
    /// every [`ImportOptions::per_commit`] events or more and at the end. Batches committed stay
    /// committed if a later one fails; importing again stores the rest. With
    /// [`ImportOptions::unique_ids`] the caller promises that no event id repeats within the
    /// import: a backend may then load a store that holds no events at all in one transaction,
    /// and fails the import with [`StoreError::Conflict`], storing none of it, if the promise
    /// was broken. This default inserts the batches as they come, `per_commit` events at a time.
    fn import_events<B>(
        &self,
        account: AccountId,
        batches: B,
        options: ImportOptions,
    ) -> impl Future<Output = StoreResult<InsertOutcome>> + Send
    where
        B: Stream<Item = Vec<ViewEvent>> + Send + Unpin + 'static,
    {
        async move {
            let mut batches = batches;
            let mut total = InsertOutcome::default();
            let mut pending: Vec<ViewEvent> = Vec::new();
            loop {
                let next = std::future::poll_fn(|cx| Pin::new(&mut batches).poll_next(cx)).await;
                let done = next.is_none();
                pending.extend(next.unwrap_or_default());
                if pending.len() >= options.per_commit.max(1) || (done && !pending.is_empty()) {
                    let outcome = self.insert_events(account, &pending).await?;
                    total.inserted += outcome.inserted;
                    total.duplicates += outcome.duplicates;
                    pending.clear();
                }
                if done {
                    return Ok(total);
                }
            }
        }
    }
    /// The highest sequence number the account's committed events hold (0 for none). Every event
    /// of the account committed later gets a higher one, so it bounds a paging snapshot.
    fn snapshot(&self, account: AccountId) -> impl Future<Output = StoreResult<i64>> + Send;
    /// One page of the account's events: those matching the filter, read from the cursor in the
    /// request's direction, newest-first order (`viewed` descending, then `seq` descending),
    /// at most `limit` of them. Reading `Newer`, the records come back in newest-first order too.
    fn page(
        &self,
        account: AccountId,
        request: &PageRequest,
    ) -> impl Future<Output = StoreResult<Vec<StoredEvent>>> + Send;
    /// The account's events with `seq > after_seq`, in `seq` order, at most `limit` (for
    /// copying a store: `viewlog migrate`).
    fn events_after(
        &self,
        account: AccountId,
        after_seq: i64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<StoredEvent>>> + Send;
    /// How many of the account's events match the filter.
    fn count(&self, account: AccountId, filter: &EventFilter) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Starts a query at the account's latest snapshot: the snapshot, how many events match the
    /// filter in it, and the first page of at most `limit` of them (the filter's own `snapshot`
    /// is ignored). Backends that can should read all three in one transaction, so that they
    /// agree even while events are inserted; this default asks [`Store::snapshot`],
    /// [`Store::count`] and [`Store::page`] in turn, which agree because both of the latter
    /// are bounded by the snapshot read first.
    fn first_page(
        &self,
        account: AccountId,
        filter: &EventFilter,
        limit: u32,
    ) -> impl Future<Output = StoreResult<FirstPage>> + Send {
        async move {
            let snapshot = self.snapshot(account).await?;
            let filter = EventFilter { snapshot, ..filter.clone() };
            let total = self.count(account, &filter).await?;
            let request = PageRequest { filter, cursor: None, direction: Direction::Older, limit };
            let events = self.page(account, &request).await?;
            Ok(FirstPage { snapshot, total, events })
        }
    }

    /// [`Store::page`] with each record as get-view-logs writes it (see [`WireRecords`]). This
    /// default writes the records of [`Store::page`]; a backend that keeps each record's JSON
    /// copies it instead.
    fn wire_page(
        &self,
        account: AccountId,
        request: &PageRequest,
    ) -> impl Future<Output = StoreResult<WireRecords>> + Send {
        async move { Ok(WireRecords::from_events(&self.page(account, request).await?)) }
    }
    /// [`Store::first_page`] with each record as get-view-logs writes it: the same snapshot,
    /// total and records. This default writes the records of [`Store::first_page`].
    fn first_wire_page(
        &self,
        account: AccountId,
        filter: &EventFilter,
        limit: u32,
    ) -> impl Future<Output = StoreResult<FirstWirePage>> + Send {
        async move {
            let first = self.first_page(account, filter, limit).await?;
            Ok(FirstWirePage {
                snapshot: first.snapshot,
                total: first.total,
                records: WireRecords::from_events(&first.events),
            })
        }
    }

    // ----- state shared by server instances -----

    /// Records that `request_id` was used with `access_key`, to be kept until `expires_at`.
    /// Returns `false` if the pair is recorded already and has not expired (a replay).
    fn remember_request(
        &self,
        access_key: &str,
        request_id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Forgets request ids that expired before `now`; returns how many.
    fn purge_requests(&self, now: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Tidies what ingest left fragmented and has not touched since `settled_before`, so that
    /// reads of it get cheaper; returns how many units it tidied. The SQLite store merges the
    /// segments of each such day of its text index that is over into one, in time order, when
    /// they are worth it (and folds late events); a backend that keeps nothing fragmented tidies nothing. Never changes what any read
    /// returns.
    fn compact(&self, settled_before: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Takes one token from the key's bucket, creating it full. One bucket per key across every
    /// server sharing this store.
    fn take_rate_token(
        &self,
        key: &RateKey,
        policy: RatePolicy,
        now_ms: i64,
    ) -> impl Future<Output = StoreResult<RateDecision>> + Send;

    /// Checks that the database answers.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}
