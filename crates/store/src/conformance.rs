//! The conformance suite: what every [`Store`] backend must do, written against the trait only.
//!
//! Each case is a public async function that takes a freshly made, empty store and panics when
//! the store misbehaves. A backend runs them all, one named test per case, with
//! [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! async fn fresh_store() -> (MyStore, tempfile::TempDir) {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path().join("db")).await.unwrap();
//!     (store, dir)
//! }
//!
//! viewlog_store::conformance_tests!(fresh_store);
//! ```
//!
//! The factory returns the store and a guard kept alive until the case has finished (a
//! temporary directory, a scratch schema, or `()`). The calling crate needs `tokio` with the
//! `macros` and `rt` features for `#[tokio::test]`.
//!
//! Where the trait's documentation leaves a point open, the suite fixes it (and so is part of
//! the contract):
//! - creating a record that refers to a missing record (an account, a role, a user or an
//!   application, or one of another account) fails with [`StoreError::NotFound`];
//! - `limit: 0` reads no records;
//! - a batch of duplicates only takes no sequence numbers (the snapshot does not move);
//! - `remember_request` judges "expired" against the `now` it is given, never a clock of its
//!   own: a record whose `expires_at` is before `now` counts as absent;
//! - every binding of a user counts towards `create_binding_capped`'s cap, revoked and lapsed
//!   ones too; the binding being created is never one of those removed (a cap of 0 acts as 1);
//! - `auth_profile` of an account nothing was set for, even a missing one, is the default;
//! - login-failure keys and client ids are compared exactly (callers normalise them);
//! - storing a token whose hash is stored already is a `Conflict`, for a missing client
//!   `NotFound`; `purge_tokens` goes by expiry alone;
//! - the order of `list_api_clients` is not part of the contract.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::*;

/// A fixed "now" for the records the suite creates (2023-11-14T22:13:20Z).
pub const T0: UnixTime = 1_700_000_000;

/// Ten years: the suite's "everything" range reaches this far either side of [`T0`].
const FAR: i64 = 10 * 365 * 86_400;

/// The permission the API's read endpoint needs.
pub const READ: &str = "Archive | View Logs | Read";
/// The permission the ingest endpoint needs.
pub const EDIT: &str = "Archive | View Logs | Edit";

/// A plain view event with the given id and view time; the other fields are bland, so that
/// tests can make one of them distinctive.
pub fn event(id: &str, viewed: UnixTime) -> ViewEvent {
    ViewEvent {
        event_id: id.to_owned(),
        from: "sender@example.com".to_owned(),
        to: "recipient@example.org".to_owned(),
        viewer: "viewer@example.com".to_owned(),
        source: "Message Tracking".to_owned(),
        content_viewed: true,
        discovery_case: false,
        message_date: viewed - 3_600,
        viewed,
        subject: format!("Subject {id}"),
        viewer_ip: None,
        message_id: None,
        action: None,
        case_id: None,
    }
}

/// Every event of the account, whenever viewed, whatever its seq.
pub fn everything() -> EventFilter {
    EventFilter { start: T0 - FAR, end: T0 + FAR, text: None, snapshot: i64::MAX }
}

/// The same filter with a text.
fn with_text(filter: &EventFilter, text: &str) -> EventFilter {
    EventFilter { text: Some(text.to_owned()), ..filter.clone() }
}

fn request(filter: &EventFilter, cursor: Option<Cursor>, direction: Direction, limit: u32) -> PageRequest {
    PageRequest { filter: filter.clone(), cursor, direction, limit }
}

fn cursor_of(e: &StoredEvent) -> Cursor {
    Cursor { viewed: e.event.viewed, seq: e.seq }
}

fn ids(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.event.event_id.clone()).collect()
}

fn id_set(events: &[StoredEvent]) -> BTreeSet<String> {
    events.iter().map(|e| e.event.event_id.clone()).collect()
}

/// Asserts strictly newest-first order: `viewed` descending, then `seq` descending.
fn assert_newest_first(events: &[StoredEvent]) {
    for pair in events.windows(2) {
        assert!(
            (pair[0].event.viewed, pair[0].seq) > (pair[1].event.viewed, pair[1].seq),
            "not newest first: {:?} before {:?}",
            (pair[0].event.viewed, pair[0].seq),
            (pair[1].event.viewed, pair[1].seq)
        );
    }
}

async fn new_account<S: Store>(store: &S, name: &str) -> AccountId {
    store.create_account(name, T0).await.expect("create account").id
}

async fn insert<S: Store>(store: &S, account: AccountId, events: &[ViewEvent]) -> InsertOutcome {
    store.insert_events(account, events).await.expect("insert events")
}

async fn page<S: Store>(store: &S, account: AccountId, request: &PageRequest) -> Vec<StoredEvent> {
    store.page(account, request).await.expect("page")
}

async fn count<S: Store>(store: &S, account: AccountId, filter: &EventFilter) -> u64 {
    store.count(account, filter).await.expect("count")
}

/// Everything the filter selects, in one read.
async fn all<S: Store>(store: &S, account: AccountId, filter: &EventFilter) -> Vec<StoredEvent> {
    let events = page(store, account, &request(filter, None, Direction::Older, 100_000)).await;
    assert_newest_first(&events);
    events
}

/// Pages through the filter from the newest record to the end, reading `Older`.
async fn walk_older<S: Store>(
    store: &S,
    account: AccountId,
    filter: &EventFilter,
    limit: u32,
) -> Vec<Vec<StoredEvent>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let events = page(store, account, &request(filter, cursor, Direction::Older, limit)).await;
        assert!(events.len() <= limit as usize, "a page longer than its limit");
        assert_newest_first(&events);
        let Some(last) = events.last() else { return pages };
        cursor = Some(cursor_of(last));
        let full = events.len() == limit as usize;
        pages.push(events);
        if !full {
            return pages;
        }
    }
    panic!("paging did not end");
}

macro_rules! assert_err {
    ($result:expr, $variant:ident) => {
        match $result {
            Err(StoreError::$variant(_)) => {}
            other => panic!("expected {}, got {:?}", stringify!($variant), other),
        }
    };
}

/// A role, a user holding it, an application and a binding of that user to it.
struct Fixture {
    account: Account,
    role: Role,
    user: User,
    application: Application,
    binding: Binding,
}

async fn fixture<S: Store>(store: &S, name: &str) -> Fixture {
    let account = store.create_account(name, T0).await.expect("account");
    let role = store
        .create_role(NewRole {
            account_id: account.id,
            name: "Administrator".into(),
            permissions: vec![READ.into(), EDIT.into()],
            builtin: true,
        })
        .await
        .expect("role");
    let user = store
        .create_user(
            NewUser {
                account_id: account.id,
                email: format!("Admin@{name}.example"),
                role_id: Some(role.id),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            },
            T0 + 1,
        )
        .await
        .expect("user");
    let application = store
        .create_application(
            NewApplication {
                account_id: account.id,
                app_id: format!("app-{name}"),
                name: "Collector".into(),
                app_key_sealed: vec![1, 2, 3, 0, 255],
            },
            T0 + 2,
        )
        .await
        .expect("application");
    let binding = store
        .create_binding(NewBinding {
            access_key: format!("AK-{name}"),
            account_id: account.id,
            user_id: user.id,
            application_id: application.id,
            secret_key_sealed: vec![9, 8, 7],
            created_at: T0 + 3,
            expires_at: Some(T0 + 86_400),
        })
        .await
        .expect("binding");
    Fixture { account, role, user, application, binding }
}

// ----- accounts -----

/// Accounts are created and found by name and by key; the list is by name.
pub async fn accounts_create_and_lookup<S: Store>(store: S) {
    assert!(store.list_accounts().await.expect("list").is_empty());
    let beta = store.create_account("beta", T0).await.expect("create beta");
    let acme = store.create_account("acme", T0 + 5).await.expect("create acme");
    assert_eq!(acme.name, "acme");
    assert!(!acme.disabled);
    assert_eq!(acme.created_at, T0 + 5);
    assert_ne!(acme.id, beta.id);
    assert_eq!(store.account_by_name("acme").await.expect("by name"), Some(acme.clone()));
    assert_eq!(store.account(beta.id).await.expect("by id"), Some(beta.clone()));
    assert_eq!(store.account_by_name("ACME").await.expect("by name"), None, "account names are exact");
    assert_eq!(store.account_by_name("nobody").await.expect("by name"), None);
    assert_eq!(store.account(AccountId(acme.id.0 + beta.id.0 + 1000)).await.expect("by id"), None);
    assert_eq!(store.list_accounts().await.expect("list"), vec![acme, beta]);
}

/// A taken name is a conflict; disabling works both ways; a missing account is not found.
pub async fn accounts_conflict_and_not_found<S: Store>(store: S) {
    let acme = store.create_account("acme", T0).await.expect("create");
    assert_err!(store.create_account("acme", T0).await, Conflict);
    store.set_account_disabled(acme.id, true).await.expect("disable");
    assert!(store.account(acme.id).await.expect("read").expect("exists").disabled);
    store.set_account_disabled(acme.id, true).await.expect("disable again");
    store.set_account_disabled(acme.id, false).await.expect("enable");
    assert!(!store.account(acme.id).await.expect("read").expect("exists").disabled);
    assert_err!(store.set_account_disabled(AccountId(acme.id.0 + 1000), true).await, NotFound);
    assert_eq!(store.list_accounts().await.expect("list").len(), 1);
}

// ----- roles -----

/// Roles keep their permissions in order and their built-in flag; lists are by name and per
/// account.
pub async fn roles_create_and_list<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let zeta = store
        .create_role(NewRole {
            account_id: a,
            name: "Zeta".into(),
            permissions: vec![EDIT.into(), READ.into()],
            builtin: false,
        })
        .await
        .expect("zeta");
    assert_eq!(zeta.permissions, vec![EDIT.to_owned(), READ.to_owned()]);
    assert_eq!(zeta.account_id, a);
    let alpha = store
        .create_role(NewRole { account_id: a, name: "Alpha".into(), permissions: vec![], builtin: true })
        .await
        .expect("alpha");
    assert!(alpha.builtin && alpha.permissions.is_empty());
    let other = store
        .create_role(NewRole { account_id: b, name: "Alpha".into(), permissions: vec![READ.into()], builtin: false })
        .await
        .expect("the same name in another account");
    assert_ne!(other.id, alpha.id);

    assert_eq!(store.role_by_name(a, "Zeta").await.expect("by name"), Some(zeta.clone()));
    assert_eq!(store.role_by_name(a, "Alpha").await.expect("by name"), Some(alpha.clone()));
    assert_eq!(store.role_by_name(b, "Alpha").await.expect("by name"), Some(other.clone()));
    assert_eq!(store.role_by_name(b, "Zeta").await.expect("by name"), None);
    assert_eq!(store.list_roles(a).await.expect("list"), vec![alpha, zeta]);
    assert_eq!(store.list_roles(b).await.expect("list"), vec![other]);
}

/// A role name taken in the account is a conflict; a role needs an existing account.
pub async fn roles_conflict_and_not_found<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let role = NewRole { account_id: a, name: "Auditor".into(), permissions: vec![READ.into()], builtin: false };
    store.create_role(role.clone()).await.expect("create");
    assert_err!(store.create_role(role.clone()).await, Conflict);
    assert_err!(store.create_role(NewRole { account_id: AccountId(a.0 + 1000), ..role }).await, NotFound);
    assert_eq!(store.list_roles(a).await.expect("list").len(), 1);
}

// ----- users -----

/// Users are created with a lower-cased address and listed by address, per account.
pub async fn users_create_and_lookup<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let role = store
        .create_role(NewRole { account_id: a, name: "Admin".into(), permissions: vec![READ.into()], builtin: false })
        .await
        .expect("role");
    let zoe = store
        .create_user(
            NewUser {
                account_id: a,
                email: "Zoe@Example.COM".into(),
                role_id: Some(role.id),
                password_hash: Some("hash".into()),
            },
            T0 + 7,
        )
        .await
        .expect("zoe");
    assert_eq!(zoe.email, "zoe@example.com");
    assert_eq!(zoe.account_id, a);
    assert_eq!(zoe.role_id, Some(role.id));
    assert_eq!(zoe.password_hash.as_deref(), Some("hash"));
    assert!(!zoe.disabled);
    assert_eq!(zoe.created_at, T0 + 7);
    let adam = store
        .create_user(
            NewUser { account_id: a, email: "adam@example.com".into(), role_id: None, password_hash: None },
            T0,
        )
        .await
        .expect("adam");
    let bea = store
        .create_user(NewUser { account_id: b, email: "bea@example.com".into(), role_id: None, password_hash: None }, T0)
        .await
        .expect("bea");
    assert_eq!(store.user_by_email("zoe@example.com").await.expect("by email"), Some(zoe.clone()));
    assert_eq!(store.user_by_email("nobody@example.com").await.expect("by email"), None);
    assert_eq!(store.list_users(a).await.expect("list"), vec![adam, zoe]);
    assert_eq!(store.list_users(b).await.expect("list"), vec![bea]);
}

/// Addresses compare case-insensitively (also beyond ASCII) and are unique across accounts.
pub async fn users_email_is_case_insensitive_and_unique<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let user = store
        .create_user(
            NewUser { account_id: a, email: "Åsa.Öberg@Example.SE".into(), role_id: None, password_hash: None },
            T0,
        )
        .await
        .expect("create");
    assert_eq!(user.email, "åsa.öberg@example.se");
    for spelling in ["åsa.öberg@example.se", "ÅSA.ÖBERG@EXAMPLE.SE", "åSA.öBERG@eXAMPLE.sE"] {
        assert_eq!(store.user_by_email(spelling).await.expect("by email"), Some(user.clone()), "{spelling}");
    }
    let again = NewUser { account_id: a, email: "ÅSA.öberg@example.se".into(), role_id: None, password_hash: None };
    assert_err!(store.create_user(again.clone(), T0).await, Conflict);
    assert_err!(store.create_user(NewUser { account_id: b, ..again }, T0).await, Conflict);
    assert_eq!(store.list_users(b).await.expect("list"), vec![]);
}

/// Disabling, passwords and roles can be changed; missing users, accounts and roles (also those
/// of another account) are not found.
pub async fn users_updates_and_not_found<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let role_a = store
        .create_role(NewRole { account_id: a, name: "Admin".into(), permissions: vec![READ.into()], builtin: false })
        .await
        .expect("role a");
    let role_b = store
        .create_role(NewRole { account_id: b, name: "Admin".into(), permissions: vec![READ.into()], builtin: false })
        .await
        .expect("role b");
    let user = store
        .create_user(NewUser { account_id: a, email: "u@a.example".into(), role_id: None, password_hash: None }, T0)
        .await
        .expect("user");
    let read = || async { store.user_by_email("u@a.example").await.expect("read").expect("exists") };

    store.set_user_disabled(user.id, true).await.expect("disable");
    assert!(read().await.disabled);
    store.set_user_disabled(user.id, false).await.expect("enable");
    assert!(!read().await.disabled);
    store.set_user_password(user.id, Some("phc".into())).await.expect("set password");
    assert_eq!(read().await.password_hash.as_deref(), Some("phc"));
    store.set_user_password(user.id, None).await.expect("clear password");
    assert_eq!(read().await.password_hash, None);
    store.set_user_role(user.id, Some(role_a.id)).await.expect("set role");
    assert_eq!(read().await.role_id, Some(role_a.id));
    assert_err!(store.set_user_role(user.id, Some(role_b.id)).await, NotFound);
    assert_err!(store.set_user_role(user.id, Some(RoleId(role_a.id.0 + role_b.id.0 + 1000))).await, NotFound);
    assert_eq!(read().await.role_id, Some(role_a.id), "a refused change changes nothing");
    store.set_user_role(user.id, None).await.expect("clear role");
    assert_eq!(read().await.role_id, None);

    let missing = UserId(user.id.0 + 1000);
    assert_err!(store.set_user_disabled(missing, true).await, NotFound);
    assert_err!(store.set_user_password(missing, None).await, NotFound);
    assert_err!(store.set_user_role(missing, None).await, NotFound);
    let new = |account, role| NewUser {
        account_id: account,
        email: "new@a.example".into(),
        role_id: role,
        password_hash: None,
    };
    assert_err!(store.create_user(new(AccountId(a.0 + b.0 + 1000), None), T0).await, NotFound);
    assert_err!(store.create_user(new(a, Some(role_b.id)), T0).await, NotFound);
    assert_eq!(store.user_by_email("new@a.example").await.expect("read"), None);
}

// ----- applications -----

/// Applications are registered, found by their public id, listed by name, and disabled;
/// the public id is unique across accounts.
pub async fn applications_create_lookup_and_disable<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let new = |account, app_id: &str, name: &str| NewApplication {
        account_id: account,
        app_id: app_id.into(),
        name: name.into(),
        app_key_sealed: vec![0, 1, 2, 254, 255],
    };
    let zapp = store.create_application(new(a, "app-z", "Zulu"), T0 + 1).await.expect("create");
    assert_eq!((zapp.app_id.as_str(), zapp.name.as_str(), zapp.account_id), ("app-z", "Zulu", a));
    assert_eq!(zapp.app_key_sealed, vec![0, 1, 2, 254, 255]);
    assert_eq!(zapp.created_at, T0 + 1);
    assert!(!zapp.disabled);
    let aapp = store.create_application(new(a, "app-a", "Alpha"), T0).await.expect("create");
    assert_err!(store.create_application(new(b, "app-z", "Other"), T0).await, Conflict);
    assert_err!(store.create_application(new(AccountId(a.0 + b.0 + 1000), "app-x", "X"), T0).await, NotFound);

    assert_eq!(store.application_by_app_id("app-z").await.expect("by id"), Some(zapp.clone()));
    assert_eq!(store.application_by_app_id("APP-Z").await.expect("by id"), None, "app ids are exact");
    assert_eq!(store.list_applications(a).await.expect("list"), vec![aapp, zapp.clone()]);
    assert_eq!(store.list_applications(b).await.expect("list"), vec![]);

    store.set_application_disabled("app-z", true).await.expect("disable");
    assert!(store.application_by_app_id("app-z").await.expect("read").expect("exists").disabled);
    store.set_application_disabled("app-z", false).await.expect("enable");
    assert!(!store.application_by_app_id("app-z").await.expect("read").expect("exists").disabled);
    assert_err!(store.set_application_disabled("app-missing", true).await, NotFound);
}

// ----- bindings -----

/// Bindings are stored, listed newest first per account and revoked; access keys are unique
/// across accounts; a binding's user and application belong to its account.
pub async fn bindings_create_list_and_revoke<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let g = fixture(&store, "globex").await;
    assert_eq!(f.binding.access_key, "AK-acme");
    assert_eq!(f.binding.secret_key_sealed, vec![9, 8, 7]);
    assert_eq!(f.binding.expires_at, Some(T0 + 86_400));
    assert!(!f.binding.revoked);
    let new = |key: &str, created_at, expires_at| NewBinding {
        access_key: key.into(),
        account_id: f.account.id,
        user_id: f.user.id,
        application_id: f.application.id,
        secret_key_sealed: vec![1],
        created_at,
        expires_at,
    };
    let newest = store.create_binding(new("AK-newest", T0 + 100, None)).await.expect("create");
    let middle = store.create_binding(new("AK-middle", T0 + 50, Some(T0 + 60))).await.expect("create");
    assert_eq!(newest.expires_at, None);
    assert_eq!(store.list_bindings(f.account.id).await.expect("list"), vec![newest, middle, f.binding.clone()]);
    assert_eq!(store.list_bindings(g.account.id).await.expect("list"), vec![g.binding.clone()]);

    assert_err!(store.create_binding(new("AK-globex", T0, None)).await, Conflict);
    assert_err!(store.create_binding(NewBinding { user_id: g.user.id, ..new("AK-x", T0, None) }).await, NotFound);
    assert_err!(
        store.create_binding(NewBinding { application_id: g.application.id, ..new("AK-y", T0, None) }).await,
        NotFound
    );
    assert!(store.principal("AK-x").await.expect("principal").is_none());

    store.revoke_binding("AK-acme").await.expect("revoke");
    let listed = store.list_bindings(f.account.id).await.expect("list");
    assert!(listed.iter().find(|b| b.access_key == "AK-acme").expect("still listed").revoked);
    store.revoke_binding("AK-acme").await.expect("revoking twice is fine");
    assert_err!(store.revoke_binding("AK-missing").await, NotFound);
}

/// The principal of an access key is its binding, user, account and application, with the
/// permissions of the user's role in order; unknown keys have none.
pub async fn principal_joins_binding_user_account_application_and_permissions<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let _other = fixture(&store, "globex").await;
    let p = store.principal("AK-acme").await.expect("principal").expect("known key");
    assert_eq!(p.binding, f.binding);
    assert_eq!(p.user, f.user);
    assert_eq!(p.account, f.account);
    assert_eq!(p.application, f.application);
    assert_eq!(p.permissions, f.role.permissions);
    assert_eq!(p.permissions, vec![READ.to_owned(), EDIT.to_owned()]);
    assert!(store.principal("AK-unknown").await.expect("principal").is_none());
    assert!(store.principal("ak-acme").await.expect("principal").is_none(), "access keys are exact");

    // A user without a role, and one whose role has no permissions, hold none.
    let plain = store
        .create_user(
            NewUser {
                account_id: f.account.id,
                email: "plain@acme.example".into(),
                role_id: None,
                password_hash: None,
            },
            T0,
        )
        .await
        .expect("user");
    let empty = store
        .create_role(NewRole { account_id: f.account.id, name: "Nothing".into(), permissions: vec![], builtin: false })
        .await
        .expect("role");
    store
        .create_binding(NewBinding {
            access_key: "AK-plain".into(),
            account_id: f.account.id,
            user_id: plain.id,
            application_id: f.application.id,
            secret_key_sealed: vec![],
            created_at: T0,
            expires_at: None,
        })
        .await
        .expect("binding");
    let p = store.principal("AK-plain").await.expect("principal").expect("known");
    assert_eq!(p.user, plain);
    assert!(p.permissions.is_empty());
    store.set_user_role(plain.id, Some(empty.id)).await.expect("set role");
    let p = store.principal("AK-plain").await.expect("principal").expect("known");
    assert!(p.permissions.is_empty());
    assert_eq!(p.user.role_id, Some(empty.id));
}

/// The principal reflects later changes: disabled user, account and application, a revoked
/// binding, another role; `signed_lookup` answers what `application_by_app_id` and `principal`
/// answer after each of them.
pub async fn principal_reflects_changes<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let app_id = f.application.app_id.clone();
    // Also through `signed_lookup`, looked up again and again (a backend that keeps lookups
    // must drop them when anything changes).
    let read = || async {
        let principal = store.principal("AK-acme").await.expect("principal").expect("known");
        let application = store.application_by_app_id(&app_id).await.expect("application");
        for _ in 0..3 {
            let (app, found) = store.signed_lookup(&app_id, "AK-acme").await.expect("lookup");
            assert_eq!((&app, found.as_ref()), (&application, Some(&principal)));
        }
        let unknown = store.signed_lookup("no-such-app", "no-such-key").await.expect("lookup");
        assert_eq!(unknown, (None, None));
        principal
    };
    store.set_user_disabled(f.user.id, true).await.expect("disable user");
    assert!(read().await.user.disabled);
    store.set_account_disabled(f.account.id, true).await.expect("disable account");
    assert!(read().await.account.disabled);
    store.set_application_disabled(&f.application.app_id, true).await.expect("disable app");
    assert!(read().await.application.disabled);
    let reader = store
        .create_role(NewRole {
            account_id: f.account.id,
            name: "Reader".into(),
            permissions: vec![READ.into()],
            builtin: false,
        })
        .await
        .expect("role");
    store.set_user_role(f.user.id, Some(reader.id)).await.expect("set role");
    assert_eq!(read().await.permissions, vec![READ.to_owned()]);
    store.set_user_role(f.user.id, None).await.expect("clear role");
    assert!(read().await.permissions.is_empty());
    store.revoke_binding("AK-acme").await.expect("revoke");
    let p = read().await;
    assert!(p.binding.revoked);
    assert!(p.user.disabled && p.account.disabled && p.application.disabled);
}

// ----- view events: ingest -----

/// The same batch twice is stored once; duplicates inside one batch count as duplicates; a
/// duplicate leaves the stored event as it was and takes no sequence number.
pub async fn insert_is_idempotent<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let batch: Vec<ViewEvent> = (0..5).map(|i| event(&format!("e{i}"), T0 + i)).collect();
    assert_eq!(insert(&store, a, &batch).await, InsertOutcome { inserted: 5, duplicates: 0 });
    let snapshot = store.snapshot(a).await.expect("snapshot");
    assert_eq!(insert(&store, a, &batch).await, InsertOutcome { inserted: 0, duplicates: 5 });
    assert_eq!(store.snapshot(a).await.expect("snapshot"), snapshot, "duplicates take no seq");

    let mut changed = event("e0", T0 + 999);
    changed.subject = "Changed".into();
    let within = vec![event("n1", T0), event("n1", T0 + 1), changed, event("n2", T0), event("n1", T0 + 2)];
    assert_eq!(insert(&store, a, &within).await, InsertOutcome { inserted: 2, duplicates: 3 });
    assert_eq!(count(&store, a, &everything()).await, 7);

    let stored = all(&store, a, &everything()).await;
    assert_eq!(id_set(&stored).len(), 7, "every id once: {:?}", ids(&stored));
    let e0 = stored.iter().find(|e| e.event.event_id == "e0").expect("e0");
    assert_eq!(e0.event, batch[0], "a duplicate leaves the stored event as it was");
    let n1 = stored.iter().find(|e| e.event.event_id == "n1").expect("n1");
    assert_eq!(n1.event.viewed, T0, "the first of a batch's duplicates is the one stored");
    assert_eq!(insert(&store, a, &[]).await, InsertOutcome::default());
}

/// Batches for [`Store::import_events`], yielded in order.
pub struct Batches(std::collections::VecDeque<Vec<ViewEvent>>);

impl Batches {
    /// A stream of these batches.
    pub fn of(batches: Vec<Vec<ViewEvent>>) -> Batches {
        Batches(batches.into())
    }
}

impl futures_core::Stream for Batches {
    type Item = Vec<ViewEvent>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Vec<ViewEvent>>> {
        std::task::Poll::Ready(self.0.pop_front())
    }
}

/// An import stores its batches as inserts would: into a store without events with unique ids
/// promised (where a backend may load it in one transaction), then the same again (every id a
/// duplicate), then batches repeating ids within and across them and ids stored before; the
/// imported events are found by text, counted and deduplicated afterwards like any others.
pub async fn import_stores_batches_like_inserts<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let batches: Vec<Vec<ViewEvent>> = (0..4i64)
        .map(|c| (0..25i64).map(|i| c * 25 + i).map(|n| event(&format!("e{n}"), T0 + n * 7 % 300)).collect())
        .collect();
    let options = |per_commit, unique_ids| ImportOptions { per_commit, unique_ids };
    let import = |account, batches: Vec<Vec<ViewEvent>>, options| {
        let store = &store;
        async move { store.import_events(account, Batches::of(batches), options).await.expect("import") }
    };
    assert_eq!(import(a, batches.clone(), options(30, true)).await, InsertOutcome { inserted: 100, duplicates: 0 });
    let stored = all(&store, a, &everything()).await;
    let expected: BTreeSet<String> = batches.iter().flatten().map(|e| e.event_id.clone()).collect();
    assert_eq!(id_set(&stored), expected);
    let mut seqs: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 100, "every event its own seq");
    assert_eq!(store.snapshot(a).await.expect("snapshot"), *seqs.last().expect("seqs"));
    let e42 = EventFilter { text: Some("E42".into()), ..everything() };
    assert_eq!(ids(&all(&store, a, &e42).await), ["e42"]);
    assert_eq!(count(&store, a, &e42).await, 1);

    assert_eq!(import(a, batches.clone(), options(1, true)).await, InsertOutcome { inserted: 0, duplicates: 100 });
    let mixed = vec![
        vec![event("n1", T0), event("e5", T0), event("n1", T0 + 1)],
        vec![],
        vec![event("n2", T0), event("n1", T0 + 2)],
    ];
    assert_eq!(import(a, mixed, options(2, false)).await, InsertOutcome { inserted: 2, duplicates: 3 });
    assert_eq!(import(a, Vec::new(), options(2, true)).await, InsertOutcome::default());
    // Ids are per account.
    assert_eq!(import(b, batches, options(1000, true)).await, InsertOutcome { inserted: 100, duplicates: 0 });
    assert_eq!(count(&store, a, &everything()).await, 102);
    assert_eq!(count(&store, b, &everything()).await, 100);
    assert_eq!(
        insert(&store, a, &[event("e0", T0), event("n3", T0)]).await,
        InsertOutcome { inserted: 1, duplicates: 1 }
    );
}

/// New events get increasing sequence numbers, in batch order and in commit order; the
/// snapshot is the highest (0 without events); ingest needs an existing account.
pub async fn insert_assigns_increasing_seqs_and_snapshot<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    assert_eq!(store.snapshot(a).await.expect("snapshot"), 0);
    // The second batch is viewed earlier: seq follows commit order, not view time.
    let first: Vec<ViewEvent> = (0..4).map(|i| event(&format!("first{i}"), T0 + 100 - i)).collect();
    let second: Vec<ViewEvent> = (0..3).map(|i| event(&format!("second{i}"), T0 + i)).collect();
    insert(&store, a, &first).await;
    let after_first = store.snapshot(a).await.expect("snapshot");
    insert(&store, a, &second).await;
    let after_second = store.snapshot(a).await.expect("snapshot");
    assert!(after_second > after_first && after_first > 0);

    let stored = all(&store, a, &everything()).await;
    let seq = |id: &str| stored.iter().find(|e| e.event.event_id == id).expect("stored").seq;
    let firsts: Vec<i64> = (0..4).map(|i| seq(&format!("first{i}"))).collect();
    let seconds: Vec<i64> = (0..3).map(|i| seq(&format!("second{i}"))).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "in batch order: {firsts:?}");
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "in batch order: {seconds:?}");
    assert!(firsts.iter().all(|&s| s > 0 && s <= after_first), "{firsts:?} <= {after_first}");
    assert!(seconds.iter().all(|&s| s > after_first && s <= after_second), "{seconds:?}");
    assert_eq!(stored.iter().map(|e| e.seq).max(), Some(after_second));
    assert_eq!(stored.iter().map(|e| e.seq).collect::<HashSet<_>>().len(), 7, "seqs are unique");

    let missing = AccountId(a.0 + 1000);
    match store.insert_events(missing, &[event("x", T0)]).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("insert into a missing account: {other:?}"),
    }
    assert_eq!(store.snapshot(missing).await.expect("snapshot of a missing account"), 0);
}

/// Every field comes back as it was stored, optional and non-ASCII ones included.
pub async fn insert_round_trips_every_field<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let full = ViewEvent {
        event_id: "9f1c2d3e-0000-4000-8000-000000000001".into(),
        from: "Jörg Müller <joerg@example.de>".into(),
        to: "chloé@example.fr, 李@example.cn".into(),
        viewer: "auditor@example.com".into(),
        source: "Discovery Case".into(),
        content_viewed: false,
        discovery_case: true,
        message_date: T0 - 86_400 * 400,
        viewed: T0,
        subject: "Re: «Quarterly» results – 'draft' \"v2\" 🙂".into(),
        viewer_ip: Some("2001:db8::1".into()),
        message_id: Some("<abc@mail.example>".into()),
        action: Some("download".into()),
        case_id: Some("CASE-42".into()),
    };
    let bare = event("bare", T0 - 1);
    insert(&store, a, &[full.clone(), bare.clone()]).await;
    let stored = all(&store, a, &everything()).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].event, full);
    assert_eq!(stored[1].event, bare);
}

/// Batches inserted at the same time get distinct sequence numbers and are all stored.
pub async fn insert_concurrent_batches_get_distinct_seqs<S: Store>(store: S) {
    let store = Arc::new(store);
    let a = new_account(&*store, "a").await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let batch: Vec<ViewEvent> = (0..20).map(|i| event(&format!("t{t}b{b}i{i}"), T0 + i)).collect();
                assert_eq!(insert(&*store, a, &batch).await.inserted, 20);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stored = all(&*store, a, &everything()).await;
    assert_eq!(stored.len(), 400);
    assert_eq!(stored.iter().map(|e| e.seq).collect::<HashSet<_>>().len(), 400);
    assert_eq!(stored.iter().map(|e| e.seq).max(), Some(store.snapshot(a).await.expect("snapshot")));
    assert_eq!(count(&*store, a, &everything()).await, 400);
}

// ----- view events: paging -----

/// Pages are newest first by `viewed`, ties broken by `seq` (the later ingested first), and
/// hold at most `limit` records.
pub async fn page_orders_newest_first_with_ties_by_seq<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    insert(&store, a, &[event("mid1", T0 + 10), event("old", T0), event("mid2", T0 + 10), event("new", T0 + 20)]).await;
    insert(&store, a, &[event("mid3", T0 + 10), event("oldest", T0 - 5)]).await;
    let stored = all(&store, a, &everything()).await;
    assert_eq!(ids(&stored), vec!["new", "mid3", "mid2", "mid1", "old", "oldest"]);
    let first = page(&store, a, &request(&everything(), None, Direction::Older, 2)).await;
    assert_eq!(ids(&first), vec!["new", "mid3"]);
    let oldest = page(&store, a, &request(&everything(), None, Direction::Newer, 2)).await;
    assert_eq!(ids(&oldest), vec!["old", "oldest"], "reading Newer from no cursor starts at the oldest");
    assert!(page(&store, a, &request(&everything(), None, Direction::Older, 0)).await.is_empty());
    assert!(page(&store, a, &request(&everything(), None, Direction::Newer, 0)).await.is_empty());
}

/// 103 events in several batches, many sharing a `viewed`: the pages of a query, read Older
/// from the start, hold every matching record exactly once, in order.
async fn paging_fixture<S: Store>(store: &S) -> AccountId {
    let a = new_account(store, "a").await;
    for batch in 0..4 {
        let events: Vec<ViewEvent> = (0..26)
            .filter(|i| batch * 26 + i < 103)
            .map(|i| {
                let n = batch * 26 + i;
                let mut e = event(&format!("p{n:03}"), T0 + (n * 7 % 17) * 60);
                if n % 3 == 0 {
                    e.subject = format!("Invoice {n}");
                }
                e
            })
            .collect();
        insert(store, a, &events).await;
    }
    a
}

/// Reading Older from no cursor to the end yields every matching record exactly once.
pub async fn page_older_walks_every_record_once<S: Store>(store: S) {
    let a = paging_fixture(&store).await;
    for (filter, expected) in [(everything(), 103usize), (with_text(&everything(), "invoice"), 35)] {
        let reference = all(&store, a, &filter).await;
        assert_eq!(reference.len(), expected);
        for limit in [1u32, 10, 25, 103, 500] {
            let pages = walk_older(&store, a, &filter, limit).await;
            let walked: Vec<StoredEvent> = pages.concat();
            assert_eq!(walked, reference, "limit {limit}");
            assert!(pages.iter().all(|p| !p.is_empty()));
        }
        let last = reference.last().expect("records");
        assert!(page(&store, a, &request(&filter, Some(cursor_of(last)), Direction::Older, 10)).await.is_empty());
    }
}

/// Reading Newer from the first record of a page gives back the page before it, exactly.
pub async fn page_newer_walks_back_over_the_same_pages<S: Store>(store: S) {
    let a = paging_fixture(&store).await;
    for filter in [everything(), with_text(&everything(), "INVOICE")] {
        for limit in [1u32, 10, 25] {
            let pages = walk_older(&store, a, &filter, limit).await;
            assert!(pages.len() >= 2);
            for k in (1..pages.len()).rev() {
                let back =
                    page(&store, a, &request(&filter, Some(cursor_of(&pages[k][0])), Direction::Newer, limit)).await;
                assert_eq!(back, pages[k - 1], "limit {limit}, page {k} back");
            }
            let first = &pages[0][0];
            assert!(page(&store, a, &request(&filter, Some(cursor_of(first)), Direction::Newer, limit))
                .await
                .is_empty());
        }
        // From no cursor, Newer reads the oldest records (newest first within the page).
        let reference = all(&store, a, &filter).await;
        let oldest = page(&store, a, &request(&filter, None, Direction::Newer, 3)).await;
        assert_eq!(oldest, reference[reference.len() - 3..].to_vec());
    }
}

/// Events committed after a snapshot was taken never appear in pages or counts bounded by it,
/// even when viewed inside the range, between or beside the records of the snapshot.
pub async fn page_snapshot_hides_later_events<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let early: Vec<ViewEvent> = (0..20).map(|i| event(&format!("early{i:02}"), T0 + i * 60)).collect();
    insert(&store, a, &early).await;
    let snap = store.snapshot(a).await.expect("snapshot");
    let range = EventFilter { start: T0, end: T0 + 19 * 60, text: None, snapshot: snap };
    let first = page(&store, a, &request(&range, None, Direction::Older, 5)).await;
    assert_eq!(count(&store, a, &range).await, 20);

    // Later events: the same viewed as existing ones, in between, the newest and oldest second.
    let late: Vec<ViewEvent> = [T0, T0 + 30, T0 + 60, T0 + 19 * 60, T0 + 10 * 60 + 1, T0 + 5 * 60]
        .iter()
        .enumerate()
        .map(|(i, &viewed)| event(&format!("late{i}"), viewed))
        .collect();
    insert(&store, a, &late).await;

    assert_eq!(page(&store, a, &request(&range, None, Direction::Older, 5)).await, first, "page 1 unchanged");
    assert_eq!(count(&store, a, &range).await, 20);
    assert_eq!(count(&store, a, &with_text(&range, "late")).await, 0);
    let walked: Vec<StoredEvent> = walk_older(&store, a, &range, 5).await.concat();
    assert_eq!(id_set(&walked), early.iter().map(|e| e.event_id.clone()).collect());
    assert!(walked.iter().all(|e| e.seq <= snap));
    // Walking back from the end over the snapshot also never meets a later event.
    let mut cursor = walked.last().map(cursor_of);
    let mut back = Vec::new();
    while let Some(c) = cursor {
        let p = page(&store, a, &request(&range, Some(c), Direction::Newer, 3)).await;
        cursor = p.first().map(cursor_of);
        back.extend(p);
    }
    assert_eq!(back.len(), 19);
    assert!(back.iter().all(|e| e.event.event_id.starts_with("early")));

    let newer = store.snapshot(a).await.expect("snapshot");
    assert!(newer > snap);
    let now = EventFilter { snapshot: newer, ..range.clone() };
    assert_eq!(count(&store, a, &now).await, 26);
    let all_now = all(&store, a, &now).await;
    assert!(all_now.iter().filter(|e| e.event.event_id.starts_with("late")).all(|e| e.seq > snap));
}

/// Both ends of the `viewed` range are inclusive.
pub async fn page_range_is_inclusive<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let (start, end) = (T0, T0 + 86_399);
    let events: Vec<ViewEvent> = [
        ("before", start - 1),
        ("start", start),
        ("inside", start + 1),
        ("almost", end - 1),
        ("end", end),
        ("after", end + 1),
    ]
    .iter()
    .map(|(id, viewed)| event(id, *viewed))
    .collect();
    insert(&store, a, &events).await;
    let day = EventFilter { start, end, text: None, snapshot: i64::MAX };
    assert_eq!(ids(&all(&store, a, &day).await), vec!["end", "almost", "inside", "start"]);
    assert_eq!(count(&store, a, &day).await, 4);
    let second = EventFilter { start: end, end, ..day.clone() };
    assert_eq!(ids(&all(&store, a, &second).await), vec!["end"]);
    let inverted = EventFilter { start: end, end: start, ..day.clone() };
    assert!(all(&store, a, &inverted).await.is_empty());
    assert_eq!(count(&store, a, &inverted).await, 0);
    let cursor = Cursor { viewed: end, seq: i64::MAX };
    assert_eq!(
        ids(&page(&store, a, &request(&day, Some(cursor), Direction::Older, 10)).await),
        vec!["end", "almost", "inside", "start"]
    );
}

/// The text filter matches a substring of the viewer, the sender, the recipient or the
/// subject, ignoring case; never the source; an empty text matches everything.
pub async fn page_text_filter_matches_four_fields<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let mut viewer = event("viewer", T0);
    viewer.viewer = "Zed.Viewer@Corp.example".into();
    let mut from = event("from", T0 + 1);
    from.from = "alpha.Sender@x.example".into();
    let mut to = event("to", T0 + 2);
    to.to = "beta.RECIPIENT@y.example".into();
    let mut subject = event("subject", T0 + 3);
    subject.subject = "Quarterly Results".into();
    let mut source = event("source", T0 + 4);
    source.source = "Needle Source".into();
    insert(&store, a, &[viewer, from, to, subject, source]).await;
    let cases: [(&str, &[&str]); 9] = [
        ("zed.viewer@corp", &["viewer"]),
        ("ALPHA.SENDER", &["from"]),
        ("Recipient@Y", &["to"]),
        ("quarterly res", &["subject"]),
        ("LY RESULTS", &["subject"]),
        ("needle", &[]),
        ("Message Tracking", &[]),
        ("example", &["source", "subject", "to", "from", "viewer"]),
        ("", &["source", "subject", "to", "from", "viewer"]),
    ];
    for (text, expected) in cases {
        let filter = with_text(&everything(), text);
        assert_eq!(ids(&all(&store, a, &filter).await), expected.to_vec(), "text {text:?}");
        assert_eq!(count(&store, a, &filter).await, expected.len() as u64, "count for {text:?}");
    }
    assert_eq!(count(&store, a, &everything()).await, 5, "no text matches everything");
}

/// Case-insensitivity holds beyond ASCII.
pub async fn page_text_filter_is_case_insensitive_unicode<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let mut asa = event("asa", T0);
    asa.subject = "Möte med Åsa".into();
    let mut upper = event("upper", T0 + 1);
    upper.viewer = "ÅSA.ÖBERG@EXEMPEL.SE".into();
    let mut greek = event("greek", T0 + 2);
    greek.from = "ΣΩΚΡΑΤΗΣ <sokrates@example.gr>".into();
    let mut german = event("german", T0 + 3);
    german.to = "grüsse@example.de".into();
    insert(&store, a, &[asa, upper, greek, german]).await;
    let cases: [(&str, &[&str]); 8] = [
        ("åsa", &["upper", "asa"]),
        ("ÅSA", &["upper", "asa"]),
        ("åSa", &["upper", "asa"]),
        ("MÖTE", &["asa"]),
        ("asa", &[]),
        ("σωκρ", &["greek"]),
        ("GRÜSSE", &["german"]),
        ("ÖBERG@", &["upper"]),
    ];
    for (text, expected) in cases {
        let filter = with_text(&everything(), text);
        assert_eq!(ids(&all(&store, a, &filter).await), expected.to_vec(), "text {text:?}");
        assert_eq!(count(&store, a, &filter).await, expected.len() as u64, "count for {text:?}");
    }
}

/// `first_page` fixes the latest snapshot (whatever snapshot its filter names) and answers what
/// `snapshot`, `count` and `page` answer for it.
pub async fn first_page_agrees_with_snapshot_count_and_page<S: Store>(store: S) {
    let a = paging_fixture(&store).await;
    let filters = [
        everything(),
        with_text(&everything(), "INVOICE"),
        EventFilter { start: T0 + 60, end: T0 + 8 * 60, text: None, snapshot: 0 },
    ];
    for filter in filters {
        let first = store.first_page(a, &filter, 4).await.expect("first page");
        let snapshot = store.snapshot(a).await.expect("snapshot");
        assert_eq!(first.snapshot, snapshot);
        let fixed = EventFilter { snapshot, ..filter.clone() };
        assert_eq!(first.total, count(&store, a, &fixed).await, "{filter:?}");
        assert_eq!(first.events, page(&store, a, &request(&fixed, None, Direction::Older, 4)).await, "{filter:?}");
        assert!(first.events.len() <= 4);
    }
}

/// `wire_page` and `first_wire_page` answer the records of what `page` and `first_page` answer,
/// in the same order, written as get-view-logs writes them (also for fields that need escaping,
/// both directions, cursors, text filters and empty pages).
pub async fn wire_pages_are_the_records_of_pages<S: Store>(store: S) {
    let a = paging_fixture(&store).await;
    let mut odd = event("odd", T0 + 5 * 60);
    odd.subject = "Re: \"Q4\" \\ plan\n\tÅsa \u{1F600} \u{1}".to_owned();
    odd.from = "O'Brien <ob@example.com>".to_owned();
    odd.content_viewed = false;
    odd.discovery_case = true;
    insert(&store, a, &[odd]).await;
    let filters = [
        everything(),
        with_text(&everything(), "INVOICE"),
        with_text(&everything(), "q4"),
        with_text(&everything(), "no such text"),
        EventFilter { start: T0 + 60, end: T0 + 8 * 60, text: None, snapshot: i64::MAX },
    ];
    for filter in filters {
        for limit in [0u32, 1, 7, 500] {
            let first = store.first_page(a, &filter, limit).await.expect("first page");
            let wire = store.first_wire_page(a, &filter, limit).await.expect("first wire page");
            assert_eq!((wire.snapshot, wire.total), (first.snapshot, first.total), "{filter:?} {limit}");
            assert_eq!(wire.records, WireRecords::from_events(&first.events), "{filter:?} {limit}");
            let fixed = EventFilter { snapshot: first.snapshot, ..filter.clone() };
            let middle = first.events.get(first.events.len() / 2).map(cursor_of);
            for direction in [Direction::Older, Direction::Newer] {
                for cursor in [None, middle] {
                    let request = request(&fixed, cursor, direction, limit);
                    let events = page(&store, a, &request).await;
                    let records = store.wire_page(a, &request).await.expect("wire page");
                    assert_eq!(records, WireRecords::from_events(&events), "{request:?}");
                }
            }
        }
    }
    let odd = store.first_wire_page(a, &with_text(&everything(), "q4"), 10).await.expect("odd");
    let (_, json) = odd.records.iter().next().expect("the odd event");
    let record: viewlog_protocol::records::ViewLogRecord = serde_json::from_slice(json).expect("a wire record");
    assert_eq!(record.subject, "Re: \"Q4\" \\ plan\n\tÅsa \u{1F600} \u{1}");
    assert_eq!(record.from, "O'Brien <ob@example.com>");
    assert!(!record.content_viewed && record.discovery_case);
}

/// `count` counts exactly what paging yields, for ranges, texts and snapshots.
pub async fn count_agrees_with_paging<S: Store>(store: S) {
    let a = paging_fixture(&store).await;
    let snap = store.snapshot(a).await.expect("snapshot");
    insert(&store, a, &[event("later-invoice", T0 + 60)]).await;
    let filters = [
        everything(),
        EventFilter { snapshot: snap, ..everything() },
        EventFilter { start: T0 + 60, end: T0 + 8 * 60, text: None, snapshot: i64::MAX },
        EventFilter { start: T0 + 60, end: T0 + 8 * 60, text: Some("invoice".into()), snapshot: snap },
        with_text(&everything(), "INVOICE"),
        with_text(&everything(), "p00"),
        with_text(&everything(), "no such text"),
        EventFilter { start: T0 + FAR - 1, end: T0 + FAR, text: None, snapshot: i64::MAX },
    ];
    for filter in filters {
        let walked: Vec<StoredEvent> = walk_older(&store, a, &filter, 9).await.concat();
        assert_eq!(count(&store, a, &filter).await, walked.len() as u64, "{filter:?}");
        assert_eq!(id_set(&walked).len(), walked.len());
    }
}

/// Pages and counts, with and without text, agree with a plain reference filter over many
/// events spread over many days and hours, ingested out of time order in batches of many sizes
/// (so that stores keeping per-day or per-hour structures build and merge them), for ranges
/// aligned to hours and not, and for the latest and an earlier snapshot; before and after
/// [`Store::compact`].
pub async fn search_and_count_agree_with_a_reference<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let noise = new_account(&store, "noise").await;
    // A small linear congruential generator: the same events on every run and every store.
    let mut state: u64 = 0x5eed;
    let mut next = move |n: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let names = ["Åsa.Öberg", "bob", "CAROL", "dave.smith", "ΣΩΚΡΑΤΗΣ", "erin"];
    let domains = ["acme.example", "Globex.example", "initech.EXAMPLE"];
    let words = ["Quarterly", "results", "invoice", "Möte", "1729", "budget", "Straße", "re:"];
    let base = T0 - 10 * 86_400;
    let mut events = Vec::new();
    for i in 0..2_500u64 {
        let mut e = event(&format!("e{i}"), base + next(20 * 86_400) as i64);
        let addr = |n: u64, d: u64| format!("{}@{}", names[n as usize], domains[d as usize]);
        e.viewer = addr(next(6), next(3));
        e.from = addr(next(6), next(3));
        e.to = addr(next(6), next(3));
        e.subject = format!("{} {} {i}", words[next(8) as usize], words[next(8) as usize]);
        events.push(e);
    }
    // Insert in batches of 1 to 150, with the other account's events in between.
    let mut inserted: Vec<ViewEvent> = Vec::new();
    let mut snapshot_mid = None;
    let mut rest = events.as_slice();
    while !rest.is_empty() {
        let n = (1 + next(150) as usize).min(rest.len());
        let (batch, tail) = rest.split_at(n);
        assert_eq!(insert(&store, a, batch).await.inserted, n as u64);
        insert(&store, noise, &batch[..1.min(n)]).await;
        inserted.extend_from_slice(batch);
        rest = tail;
        if snapshot_mid.is_none() && inserted.len() >= events.len() / 2 {
            snapshot_mid = Some((store.snapshot(a).await.expect("snapshot"), inserted.len()));
        }
    }
    let (mid, mid_len) = snapshot_mid.expect("a snapshot halfway");
    let hour = 3_600;
    let ranges = [
        (base - FAR, base + FAR),
        (base + 3 * 86_400, base + 4 * 86_400 - 1),
        (base + 3 * 86_400 + 1_234, base + 9 * 86_400 + 77),
        (base + 5 * hour, base + 7 * hour - 1),
        (base + 5 * hour + 1, base + 7 * hour - 2),
        (base + 17 * hour + 59, base + 17 * hour + 1_800),
        (base + 19 * 86_400 + 1, base + 25 * 86_400),
    ];
    let texts =
        [None, Some("åsa"), Some("ÖBERG@GLOBEX"), Some("1729"), Some("σωκ"), Some("e1"), Some("zzz"), Some(".")];
    // Searched as ingest left the store, then after compacting everything (which must change
    // no answer).
    for compacted in [false, true] {
        if compacted {
            store.compact(i64::MAX).await.expect("compact");
        }
        for (start, end) in ranges {
            for text in texts {
                for (snapshot, visible) in [(i64::MAX, inserted.len()), (mid, mid_len)] {
                    let filter = EventFilter { start, end, text: text.map(str::to_owned), snapshot };
                    let needle = text.map(str::to_lowercase).unwrap_or_default();
                    let mut expected: Vec<(i64, usize)> = inserted[..visible]
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.viewed >= start && e.viewed <= end)
                        .filter(|(_, e)| {
                            [&e.viewer, &e.from, &e.to, &e.subject].iter().any(|f| f.to_lowercase().contains(&needle))
                        })
                        .map(|(i, e)| (e.viewed, i))
                        .collect();
                    expected.sort_unstable_by(|x, y| y.cmp(x));
                    let expected: Vec<String> = expected.iter().map(|(_, i)| inserted[*i].event_id.clone()).collect();
                    let walked = walk_older(&store, a, &filter, 37).await.concat();
                    assert_eq!(ids(&walked), expected, "{filter:?}, compacted {compacted}");
                    assert_eq!(
                        count(&store, a, &filter).await,
                        expected.len() as u64,
                        "count of {filter:?}, compacted {compacted}"
                    );
                    if snapshot == i64::MAX {
                        // A query's start, in one read: the same count and the same first page.
                        let first = store.first_page(a, &filter, 37).await.expect("first page");
                        assert_eq!(
                            first.total,
                            expected.len() as u64,
                            "first page total of {filter:?}, compacted {compacted}"
                        );
                        let n = expected.len().min(37);
                        assert_eq!(
                            ids(&first.events),
                            expected[..n].to_vec(),
                            "first page of {filter:?}, compacted {compacted}"
                        );
                    }
                    // Back from the oldest record, reading Newer, gives the same records.
                    if let Some(oldest) = walked.last() {
                        let newer =
                            page(&store, a, &request(&filter, Some(cursor_of(oldest)), Direction::Newer, 37)).await;
                        let n = newer.len();
                        assert_eq!(
                            ids(&newer),
                            expected[expected.len() - 1 - n..expected.len() - 1].to_vec(),
                            "{filter:?}, compacted {compacted}"
                        );
                    }
                }
            }
        }
    }
}

/// One account's events never show in another's pages, counts or snapshot; event ids are
/// per account.
pub async fn tenants_are_isolated<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    let a_events: Vec<ViewEvent> = (0..10).map(|i| event(&format!("shared{i}"), T0 + i)).collect();
    insert(&store, a, &a_events).await;
    let snap_a = store.snapshot(a).await.expect("snapshot");
    let b_events: Vec<ViewEvent> = (0..15)
        .map(|i| {
            let mut e = event(&format!("shared{i}"), T0 + i);
            e.subject = "tenant-b-marker".into();
            e
        })
        .collect();
    assert_eq!(
        insert(&store, b, &b_events).await,
        InsertOutcome { inserted: 15, duplicates: 0 },
        "ids are per account"
    );
    assert_eq!(store.snapshot(a).await.expect("snapshot"), snap_a, "B's ingest does not move A's snapshot");

    let a_all = all(&store, a, &everything()).await;
    assert_eq!(a_all.len(), 10);
    assert!(a_all.iter().all(|e| e.event.subject != "tenant-b-marker"));
    assert_eq!(count(&store, a, &everything()).await, 10);
    assert_eq!(count(&store, a, &with_text(&everything(), "tenant-b")).await, 0);
    assert!(all(&store, a, &with_text(&everything(), "tenant-b")).await.is_empty());
    let walked: Vec<StoredEvent> = walk_older(&store, a, &everything(), 4).await.concat();
    assert_eq!(walked, a_all);
    // A cursor taken from B's records reads nothing of B's in A.
    let b_all = all(&store, b, &everything()).await;
    assert_eq!(b_all.len(), 15);
    assert!(b_all.iter().all(|e| e.event.subject == "tenant-b-marker"));
    for direction in [Direction::Older, Direction::Newer] {
        let p = page(&store, a, &request(&everything(), Some(cursor_of(&b_all[7])), direction, 100)).await;
        assert!(p.iter().all(|e| e.event.subject != "tenant-b-marker"));
    }
    let c = new_account(&store, "c").await;
    assert_eq!(store.snapshot(c).await.expect("snapshot"), 0);
    assert!(all(&store, c, &everything()).await.is_empty());
    assert_eq!(count(&store, c, &everything()).await, 0);
}

// ----- sign-in bindings -----

/// A user's bindings are listed newest first; their access keys, sorted.
async fn user_binding_keys<S: Store>(store: &S, account: AccountId, user: UserId) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list_bindings(account)
        .await
        .expect("list")
        .into_iter()
        .filter(|b| b.user_id == user)
        .map(|b| b.access_key)
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort();
    keys
}

/// Capped creation stores the binding, then removes exactly the user's oldest bindings beyond
/// the cap and returns their keys; other users' bindings are never touched.
pub async fn bindings_capped_creation_removes_the_oldest<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let g = fixture(&store, "globex").await;
    let other = store
        .create_user(
            NewUser {
                account_id: f.account.id,
                email: "other@acme.example".into(),
                role_id: None,
                password_hash: None,
            },
            T0,
        )
        .await
        .expect("user");
    let new = |key: &str, user: UserId, created_at| NewBinding {
        access_key: key.into(),
        account_id: f.account.id,
        user_id: user,
        application_id: f.application.id,
        secret_key_sealed: vec![4, 2],
        created_at,
        expires_at: Some(created_at + 3_600),
    };
    // The other user's binding is older than all of the first user's.
    store.create_binding(new("AK-other", other.id, T0 - 100)).await.expect("create");
    let capped = |binding: NewBinding, max| {
        let store = &store;
        async move {
            let (created, mut removed) = store.create_binding_capped(binding, max).await.expect("create capped");
            removed.sort();
            (created, removed)
        }
    };

    let (b1, removed) = capped(new("AK-1", f.user.id, T0 + 10), 3).await;
    assert_eq!(b1.access_key, "AK-1");
    assert_eq!((b1.account_id, b1.user_id, b1.application_id), (f.account.id, f.user.id, f.application.id));
    assert_eq!((b1.created_at, b1.expires_at, b1.revoked), (T0 + 10, Some(T0 + 3_610), false));
    assert_eq!(b1.secret_key_sealed, vec![4, 2]);
    assert!(removed.is_empty());
    let (_, removed) = capped(new("AK-2", f.user.id, T0 + 20), 3).await;
    assert!(removed.is_empty(), "three bindings at a cap of three: {removed:?}");
    let (_, removed) = capped(new("AK-3", f.user.id, T0 + 30), 3).await;
    assert_eq!(removed, vec!["AK-acme".to_owned()], "the oldest goes");
    assert_eq!(user_binding_keys(&store, f.account.id, f.user.id).await, sorted(&["AK-1", "AK-2", "AK-3"]));
    assert!(store.principal("AK-acme").await.expect("principal").is_none(), "removed, not revoked");
    let p = store.principal("AK-3").await.expect("principal").expect("stored");
    assert_eq!(p.binding.created_at, T0 + 30);

    // A lower cap removes several at once.
    let (_, removed) = capped(new("AK-4", f.user.id, T0 + 40), 2).await;
    assert_eq!(removed, sorted(&["AK-1", "AK-2"]));
    assert_eq!(user_binding_keys(&store, f.account.id, f.user.id).await, sorted(&["AK-3", "AK-4"]));

    // The cap is per user: neither the other user's nor another account's bindings count or go.
    assert_eq!(user_binding_keys(&store, f.account.id, other.id).await, sorted(&["AK-other"]));
    assert_eq!(store.list_bindings(g.account.id).await.expect("list"), vec![g.binding.clone()]);
    let (_, removed) = capped(new("AK-other-2", other.id, T0 + 50), 2).await;
    assert!(removed.is_empty());
    assert_eq!(user_binding_keys(&store, f.account.id, f.user.id).await, sorted(&["AK-3", "AK-4"]));

    // Revoked bindings count, and go first when they are the oldest.
    store.revoke_binding("AK-3").await.expect("revoke");
    let (_, removed) = capped(new("AK-5", f.user.id, T0 + 60), 2).await;
    assert_eq!(removed, vec!["AK-3".to_owned()]);

    // The new binding is never removed, even when it is the oldest; a cap of 0 acts as 1.
    let (_, removed) = capped(new("AK-6", f.user.id, T0 + 5), 3).await;
    assert!(removed.is_empty());
    let (kept, removed) = capped(new("AK-7", f.user.id, T0), 1).await;
    assert_eq!(removed, sorted(&["AK-4", "AK-5", "AK-6"]));
    assert_eq!(kept.access_key, "AK-7");
    let (_, removed) = capped(new("AK-8", f.user.id, T0 + 70), 0).await;
    assert_eq!(removed, vec!["AK-7".to_owned()]);
    assert_eq!(user_binding_keys(&store, f.account.id, f.user.id).await, sorted(&["AK-8"]));

    // A refused creation removes nothing.
    assert_err!(store.create_binding_capped(new("AK-globex", f.user.id, T0 + 80), 1).await, Conflict);
    assert_err!(store.create_binding_capped(new("AK-x", g.user.id, T0 + 80), 1).await, NotFound);
    assert_err!(
        store
            .create_binding_capped(
                NewBinding { application_id: g.application.id, ..new("AK-y", f.user.id, T0 + 80) },
                1
            )
            .await,
        NotFound
    );
    assert_eq!(user_binding_keys(&store, f.account.id, f.user.id).await, sorted(&["AK-8"]));
    assert_eq!(store.list_bindings(g.account.id).await.expect("list"), vec![g.binding]);
}

/// Refreshing sets a binding's `created_at` and `expires_at` (and so its age for the cap);
/// deleting removes it; both are `NotFound` for a missing key.
pub async fn bindings_refresh_and_delete<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let _g = fixture(&store, "globex").await;
    store.refresh_binding("AK-acme", T0 + 500, Some(T0 + 1_000)).await.expect("refresh");
    let p = store.principal("AK-acme").await.expect("principal").expect("known");
    assert_eq!((p.binding.created_at, p.binding.expires_at), (T0 + 500, Some(T0 + 1_000)));
    assert_eq!(p.binding.secret_key_sealed, f.binding.secret_key_sealed, "only the times change");
    assert!(!p.binding.revoked);
    store.refresh_binding("AK-acme", T0 + 600, None).await.expect("refresh");
    let p = store.principal("AK-acme").await.expect("principal").expect("known");
    assert_eq!((p.binding.created_at, p.binding.expires_at), (T0 + 600, None));
    assert_err!(store.refresh_binding("AK-missing", T0, None).await, NotFound);
    assert_err!(store.refresh_binding("ak-acme", T0, None).await, NotFound);

    // A refreshed binding counts as new for the cap.
    let new = |key: &str, created_at| NewBinding {
        access_key: key.into(),
        account_id: f.account.id,
        user_id: f.user.id,
        application_id: f.application.id,
        secret_key_sealed: vec![1],
        created_at,
        expires_at: None,
    };
    store.create_binding(new("AK-1", T0 + 700)).await.expect("create");
    store.refresh_binding("AK-acme", T0 + 800, Some(T0 + 2_000)).await.expect("refresh");
    let (_, removed) = store.create_binding_capped(new("AK-2", T0 + 900), 2).await.expect("capped");
    assert_eq!(removed, vec!["AK-1".to_owned()]);

    store.delete_binding("AK-acme").await.expect("delete");
    assert!(store.principal("AK-acme").await.expect("principal").is_none());
    assert_eq!(
        store.list_bindings(f.account.id).await.expect("list").into_iter().map(|b| b.access_key).collect::<Vec<_>>(),
        vec!["AK-2".to_owned()]
    );
    assert_err!(store.delete_binding("AK-acme").await, NotFound);
    assert_err!(store.refresh_binding("AK-acme", T0, None).await, NotFound);
    assert_err!(store.delete_binding("AK-missing").await, NotFound);
    // A revoked binding can be deleted too; other accounts' bindings stay.
    store.revoke_binding("AK-2").await.expect("revoke");
    store.delete_binding("AK-2").await.expect("delete revoked");
    assert!(store.list_bindings(f.account.id).await.expect("list").is_empty());
    assert!(store.principal("AK-globex").await.expect("principal").is_some());
}

// ----- sign-in settings and throttling -----

/// An account's profile is the default until set; setting it again replaces it; it is per
/// account; setting it for a missing account is `NotFound`.
pub async fn auth_profile_default_set_and_not_found<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    assert_eq!(store.auth_profile(a).await.expect("profile"), AuthProfile::default());
    let never = AuthProfile { binding_ttl: None, max_bindings_per_user: 3 };
    store.set_auth_profile(a, never).await.expect("set");
    assert_eq!(store.auth_profile(a).await.expect("profile"), never);
    assert_eq!(store.auth_profile(b).await.expect("profile"), AuthProfile::default(), "per account");
    let short = AuthProfile { binding_ttl: Some(600), max_bindings_per_user: 1 };
    store.set_auth_profile(a, short).await.expect("set again");
    assert_eq!(store.auth_profile(a).await.expect("profile"), short);
    let big = AuthProfile { binding_ttl: Some(10 * 365 * 86_400), max_bindings_per_user: u32::MAX };
    store.set_auth_profile(b, big).await.expect("set");
    assert_eq!(store.auth_profile(b).await.expect("profile"), big);
    assert_eq!(store.auth_profile(a).await.expect("profile"), short);

    let missing = AccountId(a.0 + b.0 + 1000);
    assert_err!(store.set_auth_profile(missing, short).await, NotFound);
    assert_eq!(store.auth_profile(missing).await.expect("profile"), AuthProfile::default());
}

/// Failures count up per key with the first and last time; clearing forgets one key; keys are
/// separate and exact.
pub async fn login_failures_count_and_clear<S: Store>(store: S) {
    let record = |key: &'static str, now: UnixTime| {
        let store = &store;
        async move { store.record_login_failure(key, now).await.expect("record") }
    };
    let read = |key: &'static str| {
        let store = &store;
        async move { store.login_failures(key).await.expect("read") }
    };
    assert_eq!(read("zoe@example.com").await, None);
    assert_eq!(record("zoe@example.com", T0).await, LoginFailures { count: 1, first_at: T0, last_at: T0 });
    assert_eq!(record("zoe@example.com", T0 + 5).await, LoginFailures { count: 2, first_at: T0, last_at: T0 + 5 });
    let third = record("zoe@example.com", T0 + 9).await;
    assert_eq!(third, LoginFailures { count: 3, first_at: T0, last_at: T0 + 9 });
    assert_eq!(read("zoe@example.com").await, Some(third));

    assert_eq!(record("192.0.2.1", T0 + 1).await, LoginFailures { count: 1, first_at: T0 + 1, last_at: T0 + 1 });
    assert_eq!(record("ZOE@example.com", T0 + 2).await.count, 1, "keys are exact");
    assert_eq!(read("zoe@example.com").await, Some(third), "other keys leave it alone");

    store.clear_login_failures("zoe@example.com").await.expect("clear");
    assert_eq!(read("zoe@example.com").await, None);
    assert_eq!(read("192.0.2.1").await.map(|f| f.count), Some(1), "clearing is per key");
    assert_eq!(read("ZOE@example.com").await.map(|f| f.count), Some(1));
    store.clear_login_failures("zoe@example.com").await.expect("clearing nothing is fine");
    store.clear_login_failures("nobody").await.expect("clearing nothing is fine");
    assert_eq!(
        record("zoe@example.com", T0 + 20).await,
        LoginFailures { count: 1, first_at: T0 + 20, last_at: T0 + 20 },
        "counting starts again after a clear"
    );
}

/// Purging forgets the records whose last failure is before the given time, and only those.
pub async fn login_failures_purge_by_last_failure<S: Store>(store: S) {
    for (key, times) in [("old", &[T0, T0 + 10][..]), ("edge", &[T0 + 50, T0 + 100]), ("new", &[T0 + 10, T0 + 200])] {
        for &t in times {
            store.record_login_failure(key, t).await.expect("record");
        }
    }
    assert_eq!(store.purge_login_failures(T0 + 100).await.expect("purge"), 1, "last failure before T0 + 100");
    assert_eq!(store.login_failures("old").await.expect("read"), None);
    assert_eq!(store.login_failures("edge").await.expect("read").map(|f| f.count), Some(2));
    assert_eq!(
        store.login_failures("new").await.expect("read"),
        Some(LoginFailures { count: 2, first_at: T0 + 10, last_at: T0 + 200 }),
        "a record is judged by its last failure, not its first"
    );
    assert_eq!(store.purge_login_failures(T0 + 100).await.expect("purge"), 0);
    assert_eq!(store.purge_login_failures(T0 + 201).await.expect("purge"), 2);
    assert_eq!(store.login_failures("new").await.expect("read"), None);
    assert_eq!(store.record_login_failure("new", T0 + 300).await.expect("record").count, 1);
}

// ----- API 2.0 clients and tokens -----

fn new_client(client_id: &str, account: AccountId, role: RoleId) -> NewApiClient {
    NewApiClient {
        client_id: client_id.into(),
        account_id: account,
        role_id: role,
        name: format!("Client {client_id}"),
        secret_hash: format!("{:0>64}", client_id.len()),
    }
}

fn token(hash: &str, client_id: &str, issued_at: UnixTime, expires_at: UnixTime) -> AccessToken {
    AccessToken { token_hash: hash.into(), client_id: client_id.into(), issued_at, expires_at, revoked: false }
}

fn sorted_clients(mut clients: Vec<ApiClient>) -> Vec<ApiClient> {
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    clients
}

/// Clients are registered with a role of their account, found by id with their account and
/// their role's permissions, listed per account, and revoked; ids are unique across accounts.
pub async fn api_clients_create_lookup_list_and_revoke<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let g = fixture(&store, "globex").await;
    let reader = store
        .create_role(NewRole {
            account_id: f.account.id,
            name: "Reader".into(),
            permissions: vec![READ.into()],
            builtin: false,
        })
        .await
        .expect("role");
    let empty = store
        .create_role(NewRole { account_id: f.account.id, name: "Nothing".into(), permissions: vec![], builtin: false })
        .await
        .expect("role");

    let siem = store.create_api_client(new_client("cid-siem", f.account.id, f.role.id), T0 + 7).await.expect("create");
    assert_eq!(siem.client_id, "cid-siem");
    assert_eq!((siem.account_id, siem.role_id), (f.account.id, f.role.id));
    assert_eq!(siem.name, "Client cid-siem");
    assert_eq!(siem.secret_hash, new_client("cid-siem", f.account.id, f.role.id).secret_hash);
    assert_eq!((siem.revoked, siem.created_at), (false, T0 + 7));
    let read_only =
        store.create_api_client(new_client("cid-reader", f.account.id, reader.id), T0).await.expect("create");
    let none = store.create_api_client(new_client("cid-none", f.account.id, empty.id), T0).await.expect("create");
    let theirs = store.create_api_client(new_client("cid-globex", g.account.id, g.role.id), T0).await.expect("create");

    let (client, account, permissions) = store.api_client("cid-siem").await.expect("lookup").expect("known");
    assert_eq!((client, account), (siem.clone(), f.account.clone()));
    assert_eq!(permissions, vec![READ.to_owned(), EDIT.to_owned()], "the role's permissions, in order");
    let (client, _, permissions) = store.api_client("cid-reader").await.expect("lookup").expect("known");
    assert_eq!((client, permissions), (read_only.clone(), vec![READ.to_owned()]));
    let (_, _, permissions) = store.api_client("cid-none").await.expect("lookup").expect("known");
    assert!(permissions.is_empty());
    let (client, account, _) = store.api_client("cid-globex").await.expect("lookup").expect("known");
    assert_eq!((client, account), (theirs.clone(), g.account.clone()));
    assert_eq!(store.api_client("cid-missing").await.expect("lookup"), None);
    assert_eq!(store.api_client("CID-SIEM").await.expect("lookup"), None, "client ids are exact");

    assert_eq!(
        sorted_clients(store.list_api_clients(f.account.id).await.expect("list")),
        sorted_clients(vec![siem.clone(), read_only.clone(), none.clone()])
    );
    assert_eq!(store.list_api_clients(g.account.id).await.expect("list"), vec![theirs.clone()]);

    assert_err!(store.create_api_client(new_client("cid-siem", f.account.id, f.role.id), T0).await, Conflict);
    assert_err!(store.create_api_client(new_client("cid-globex", f.account.id, f.role.id), T0).await, Conflict);
    assert_err!(store.create_api_client(new_client("cid-x", f.account.id, g.role.id), T0).await, NotFound);
    let missing_role = RoleId(f.role.id.0 + g.role.id.0 + reader.id.0 + empty.id.0 + 1000);
    assert_err!(store.create_api_client(new_client("cid-y", f.account.id, missing_role), T0).await, NotFound);
    let missing_account = AccountId(f.account.id.0 + g.account.id.0 + 1000);
    assert_err!(store.create_api_client(new_client("cid-z", missing_account, f.role.id), T0).await, NotFound);
    for refused in ["cid-x", "cid-y", "cid-z"] {
        assert_eq!(store.api_client(refused).await.expect("lookup"), None);
    }
    assert_eq!(store.list_api_clients(f.account.id).await.expect("list").len(), 3);

    store.revoke_api_client("cid-siem").await.expect("revoke");
    let (client, _, _) = store.api_client("cid-siem").await.expect("lookup").expect("still known");
    assert!(client.revoked);
    assert_eq!(client, ApiClient { revoked: true, ..siem });
    let listed = store.list_api_clients(f.account.id).await.expect("list");
    assert!(listed.iter().find(|c| c.client_id == "cid-siem").expect("still listed").revoked);
    assert!(!listed.iter().find(|c| c.client_id == "cid-reader").expect("listed").revoked);
    store.revoke_api_client("cid-siem").await.expect("revoking twice is fine");
    assert_err!(store.revoke_api_client("cid-missing").await, NotFound);
    assert!(!store.api_client("cid-globex").await.expect("lookup").expect("known").0.revoked);
}

/// A token's principal is the token, its client, the client's account and its role's
/// permissions; it reflects revoking the token, revoking the client and disabling the account.
pub async fn tokens_principal_and_revoke<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    let g = fixture(&store, "globex").await;
    let empty = store
        .create_role(NewRole { account_id: f.account.id, name: "Nothing".into(), permissions: vec![], builtin: false })
        .await
        .expect("role");
    let client = store.create_api_client(new_client("cid-1", f.account.id, f.role.id), T0).await.expect("client");
    let other = store.create_api_client(new_client("cid-2", f.account.id, empty.id), T0).await.expect("client");
    let theirs = store.create_api_client(new_client("cid-g", g.account.id, g.role.id), T0).await.expect("client");
    let t1 = token("hash-1", "cid-1", T0 + 10, T0 + 3_610);
    store.store_token(t1.clone()).await.expect("store");
    store.store_token(token("hash-2", "cid-1", T0 + 20, T0 + 3_620)).await.expect("store");
    store.store_token(token("hash-3", "cid-2", T0 + 30, T0 + 3_630)).await.expect("store");
    store.store_token(token("hash-g", "cid-g", T0 + 40, T0 + 3_640)).await.expect("store");

    let p = store.token_principal("hash-1").await.expect("principal").expect("known");
    assert_eq!(p.token, t1);
    assert_eq!(p.client, client);
    assert_eq!(p.account, f.account);
    assert_eq!(p.permissions, vec![READ.to_owned(), EDIT.to_owned()]);
    let p = store.token_principal("hash-3").await.expect("principal").expect("known");
    assert_eq!(p.client, other);
    assert!(p.permissions.is_empty());
    let p = store.token_principal("hash-g").await.expect("principal").expect("known");
    assert_eq!((p.client, p.account), (theirs, g.account.clone()));
    assert_eq!(store.token_principal("hash-missing").await.expect("principal"), None);
    assert_eq!(store.token_principal("HASH-1").await.expect("principal"), None, "hashes are exact");

    assert_err!(store.store_token(token("hash-1", "cid-2", T0, T0 + 60)).await, Conflict);
    assert_err!(store.store_token(token("hash-x", "cid-missing", T0, T0 + 60)).await, NotFound);
    assert_eq!(store.token_principal("hash-x").await.expect("principal"), None);
    assert_eq!(store.token_principal("hash-1").await.expect("principal").expect("known").client.client_id, "cid-1");

    // Revoking one token.
    store.revoke_token("hash-1").await.expect("revoke");
    let p = store.token_principal("hash-1").await.expect("principal").expect("still known");
    assert!(p.token.revoked);
    assert!(!p.client.revoked, "the client stays");
    assert!(!store.token_principal("hash-2").await.expect("principal").expect("known").token.revoked);
    store.revoke_token("hash-1").await.expect("revoking twice is fine");
    assert_err!(store.revoke_token("hash-missing").await, NotFound);

    // Revoking the client revokes every token issued to it, and only those.
    store.revoke_api_client("cid-1").await.expect("revoke client");
    let p = store.token_principal("hash-2").await.expect("principal").expect("known");
    assert!(p.token.revoked && p.client.revoked);
    assert!(store.token_principal("hash-1").await.expect("principal").expect("known").client.revoked);
    let p = store.token_principal("hash-3").await.expect("principal").expect("known");
    assert!(!p.token.revoked && !p.client.revoked);
    assert!(!store.token_principal("hash-g").await.expect("principal").expect("known").token.revoked);

    // The account's state is read with the token.
    store.set_account_disabled(f.account.id, true).await.expect("disable");
    assert!(store.token_principal("hash-3").await.expect("principal").expect("known").account.disabled);
    assert!(!store.token_principal("hash-g").await.expect("principal").expect("known").account.disabled);
}

/// Purging deletes the tokens that expired before the given time, revoked or not, and no
/// others.
pub async fn tokens_purge_by_expiry<S: Store>(store: S) {
    let f = fixture(&store, "acme").await;
    store.create_api_client(new_client("cid", f.account.id, f.role.id), T0).await.expect("client");
    for (hash, expires) in [("t10", T0 + 10), ("t20", T0 + 20), ("t30", T0 + 30), ("t40", T0 + 40)] {
        store.store_token(token(hash, "cid", T0, expires)).await.expect("store");
    }
    store.revoke_token("t40").await.expect("revoke");
    assert_eq!(store.purge_tokens(T0 + 20).await.expect("purge"), 1);
    assert_eq!(store.token_principal("t10").await.expect("principal"), None);
    assert!(store.token_principal("t20").await.expect("principal").is_some(), "expiring at the bound: kept");
    assert_eq!(store.purge_tokens(T0 + 20).await.expect("purge"), 0);
    assert!(store.token_principal("t40").await.expect("principal").is_some(), "revoked but not expired: kept");
    assert_eq!(store.purge_tokens(T0 + 1_000).await.expect("purge"), 3);
    for hash in ["t20", "t30", "t40"] {
        assert_eq!(store.token_principal(hash).await.expect("principal"), None);
    }
    assert!(store.api_client("cid").await.expect("lookup").is_some(), "the client stays");
    store.store_token(token("t10", "cid", T0 + 100, T0 + 200)).await.expect("a purged hash is free again");
}

// ----- view events: copying -----

/// Reads the account's events with `events_after` from the start in pages of `limit`.
async fn walk_after<S: Store>(store: &S, account: AccountId, limit: u32) -> Vec<StoredEvent> {
    let mut out: Vec<StoredEvent> = Vec::new();
    let mut after = 0;
    for _ in 0..100_000 {
        let events = store.events_after(account, after, limit).await.expect("events after");
        assert!(events.len() <= limit as usize, "a page longer than its limit");
        let Some(last) = events.last() else { return out };
        assert!(events.iter().all(|e| e.seq > after), "every record after the bound");
        after = last.seq;
        let full = events.len() == limit as usize;
        out.extend(events);
        if !full {
            return out;
        }
    }
    panic!("events_after did not end");
}

/// `events_after` pages through all of an account's events exactly once, in seq order, and
/// sees only that account's.
pub async fn events_after_pages_in_seq_order<S: Store>(store: S) {
    let a = new_account(&store, "a").await;
    let b = new_account(&store, "b").await;
    // Interleaved ingest into two accounts, view times out of seq order, duplicates among them.
    for round in 0..5i64 {
        let a_events: Vec<ViewEvent> =
            (0..13).map(|i| event(&format!("a{}", round * 13 + i), T0 + (i * 7919 + round * 31) % 500)).collect();
        insert(&store, a, &a_events).await;
        let mut b_events: Vec<ViewEvent> = (0..7)
            .map(|i| {
                let mut e = event(&format!("b{}", round * 7 + i), T0 - i);
                e.subject = "tenant-b-marker".into();
                e
            })
            .collect();
        b_events.push(event("a0", T0));
        insert(&store, b, &b_events).await;
        insert(&store, a, &[event("a0", T0 + 999), event(&format!("late{round}"), T0 - 1_000 * round)]).await;
    }
    let mut reference = all(&store, a, &everything()).await;
    reference.sort_by_key(|e| e.seq);
    assert_eq!(reference.len(), 70);

    for limit in [1u32, 7, 69, 70, 1_000] {
        let walked = walk_after(&store, a, limit).await;
        assert_eq!(walked, reference, "limit {limit}: every event once, in seq order, as stored");
        assert!(walked.windows(2).all(|w| w[0].seq < w[1].seq));
    }
    let seqs: Vec<i64> = reference.iter().map(|e| e.seq).collect();
    let middle = seqs[30];
    assert_eq!(store.events_after(a, middle, 5).await.expect("after"), reference[31..36].to_vec());
    assert_eq!(store.events_after(a, middle, 1_000).await.expect("after"), reference[31..].to_vec());
    assert_eq!(store.events_after(a, i64::MIN, 1_000).await.expect("after"), reference);
    let snapshot = store.snapshot(a).await.expect("snapshot");
    assert!(store.events_after(a, snapshot, 10).await.expect("after").is_empty());
    assert!(store.events_after(a, 0, 0).await.expect("after").is_empty(), "limit 0 reads nothing");

    let b_walked = walk_after(&store, b, 4).await;
    assert_eq!(b_walked.len(), 36);
    assert!(b_walked.iter().all(|e| e.event.subject == "tenant-b-marker" || e.event.event_id == "a0"));
    assert_eq!(id_set(&b_walked), id_set(&all(&store, b, &everything()).await));
    assert!(walk_after(&store, a, 10).await.iter().all(|e| e.event.subject != "tenant-b-marker"));
    let c = new_account(&store, "c").await;
    assert!(store.events_after(c, 0, 10).await.expect("after").is_empty());
    assert!(store.events_after(AccountId(a.0 + b.0 + c.0 + 1000), 0, 10).await.expect("after").is_empty());

    // Events ingested later come after everything read so far.
    insert(&store, a, &[event("newest", T0 - 5_000)]).await;
    let more = store.events_after(a, *seqs.last().expect("seqs"), 10).await.expect("after");
    assert_eq!(ids(&more), vec!["newest"]);
}

// ----- shared state -----

/// A request id is fresh once per access key until it expires; purging forgets expired ones.
pub async fn requests_replay_and_purge<S: Store>(store: S) {
    // Long ago by any real clock: the store judges by the `now` it is given.
    let now = T0;
    let remember = |key: &'static str, id: &'static str, expires_at: UnixTime, now: UnixTime| {
        let store = &store;
        async move { store.remember_request(key, id, expires_at, now).await.expect("remember") }
    };
    assert!(remember("AK1", "req-1", now + 300, now).await, "fresh");
    assert!(!remember("AK1", "req-1", now + 300, now).await, "replay");
    assert!(!remember("AK1", "req-1", now + 900, now + 1).await, "replay");
    assert!(remember("AK2", "req-1", now + 300, now).await, "other key");
    assert!(remember("AK1", "req-2", now + 300, now).await, "other id");

    // A record past its expiry counts as absent.
    assert!(remember("AK1", "req-3", now - 10, now).await, "fresh");
    assert!(remember("AK1", "req-3", now + 300, now).await, "re-use after expiry");
    assert!(!remember("AK1", "req-3", now + 300, now).await, "replay again");

    assert!(remember("AK1", "req-4", now - 100, now).await, "fresh");
    assert!(remember("AK1", "req-5", now - 50, now).await, "fresh");
    assert_eq!(store.purge_requests(now).await.expect("purge"), 2);
    assert_eq!(store.purge_requests(now).await.expect("purge"), 0);
    assert!(!remember("AK1", "req-1", now + 300, now).await, "kept by the purge");
    assert!(remember("AK1", "req-4", now + 300, now).await, "purged");
    assert_eq!(store.purge_requests(now + 1_000).await.expect("purge all"), 5);
    assert!(remember("AK1", "req-1", now + 300, now).await, "purged");
}

/// "Expired" is judged by the `now` passed in: a record is a replay until its `expires_at`
/// (inclusive) and fresh after it, whatever the real time.
pub async fn requests_expiry_follows_the_given_now<S: Store>(store: S) {
    let remember = |id: &'static str, expires_at: UnixTime, now: UnixTime| {
        let store = &store;
        async move { store.remember_request("AK", id, expires_at, now).await.expect("remember") }
    };
    assert!(remember("r", T0 + 300, T0).await, "fresh");
    assert!(!remember("r", T0 + 300, T0 + 100).await, "replay before expiry");
    assert!(!remember("r", T0 + 300, T0 + 300).await, "replay at the expiry second");
    assert!(remember("r", T0 + 601, T0 + 301).await, "fresh after expiry");
    assert!(!remember("r", T0 + 601, T0 + 302).await, "the new record holds");
    assert!(!remember("r", T0 + 900, T0 + 601).await, "until its own expiry");
    assert!(remember("r", T0 + 900, T0 + 602).await, "and no longer");
    // Far in the future by any real clock, a record is still judged by the given now.
    let future = T0 + 100 * 365 * 86_400;
    assert!(remember("future", future + 10, future).await, "fresh");
    assert!(!remember("future", future + 10, future + 5).await, "replay");
}

/// A bucket allows its capacity, then refuses with the time until the next token, and refills
/// continuously up to its capacity.
pub async fn rate_limit_exhausts_and_refills<S: Store>(store: S) {
    let key = RateKey::User(UserId(1));
    let policy = RatePolicy { capacity: 3, refill_per_sec: 1.0 };
    let t = 1_000_000_000i64;
    let take = |now_ms| {
        let (store, key) = (&store, &key);
        async move { store.take_rate_token(key, policy, now_ms).await.expect("take") }
    };
    for remaining in [2u64, 1, 0] {
        let d = take(t).await;
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (3, remaining));
        assert!(d.reset_ms > 0 && d.reset_ms <= 1_000, "{d:?}");
    }
    let d = take(t).await;
    assert!(!d.allowed, "capacity exhausted");
    assert_eq!((d.limit, d.remaining), (3, 0));
    assert!(d.reset_ms > 0 && d.reset_ms <= 1_000, "{d:?}");
    let d = take(t + 400).await;
    assert!(!d.allowed);
    assert!((590..=610).contains(&d.reset_ms), "about 600 ms to the next token: {d:?}");
    let d = take(t + 1_000).await;
    assert!(d.allowed, "one token added back after a second: {d:?}");
    assert_eq!(d.remaining, 0);
    assert!(!take(t + 1_000).await.allowed, "and only one");
    let d = take(t + 100_000).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 2, "refill stops at the capacity");

    // Fractional refill.
    let fast = RatePolicy { capacity: 2, refill_per_sec: 4.0 };
    let key = RateKey::Address("192.0.2.7".into());
    let t = t + 500_000;
    assert!(store.take_rate_token(&key, fast, t).await.expect("take").allowed);
    assert!(store.take_rate_token(&key, fast, t).await.expect("take").allowed);
    let d = store.take_rate_token(&key, fast, t + 100).await.expect("take");
    assert!(!d.allowed);
    assert!((140..=160).contains(&d.reset_ms), "0.4 of a token, 0.6 missing at 4/s: {d:?}");
    assert!(store.take_rate_token(&key, fast, t + 250).await.expect("take").allowed);
}

/// Each key has a bucket of its own.
pub async fn rate_limit_keys_are_separate<S: Store>(store: S) {
    let policy = RatePolicy { capacity: 1, refill_per_sec: 0.5 };
    let t = 2_000_000_000i64;
    let keys = [
        RateKey::User(UserId(1)),
        RateKey::User(UserId(2)),
        RateKey::Address("1".into()),
        RateKey::Address("192.0.2.1".into()),
    ];
    for key in &keys {
        let d = store.take_rate_token(key, policy, t).await.expect("take");
        assert!(d.allowed, "{key:?} starts full");
        assert_eq!(d.remaining, 0);
        assert!(d.reset_ms > 0 && d.reset_ms <= 2_000, "{d:?}");
    }
    for key in &keys {
        assert!(!store.take_rate_token(key, policy, t + 10).await.expect("take").allowed, "{key:?}");
    }
    assert!(store.take_rate_token(&RateKey::User(UserId(3)), policy, t + 10).await.expect("take").allowed);
}

/// A store that opened answers a ping.
pub async fn ping_answers<S: Store>(store: S) {
    store.ping().await.expect("ping");
    new_account(&store, "a").await;
    store.ping().await.expect("ping");
}

/// Expands to one `#[tokio::test]` per conformance case, each running the case on a store made
/// by `$factory`: an expression callable with no arguments that returns a future of
/// `(store, guard)`; the guard (a temporary directory, a scratch schema, `()`) lives until the
/// case has finished. See the [`conformance`](crate::conformance) module.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            accounts_create_and_lookup,
            accounts_conflict_and_not_found,
            roles_create_and_list,
            roles_conflict_and_not_found,
            users_create_and_lookup,
            users_email_is_case_insensitive_and_unique,
            users_updates_and_not_found,
            applications_create_lookup_and_disable,
            bindings_create_list_and_revoke,
            principal_joins_binding_user_account_application_and_permissions,
            principal_reflects_changes,
            bindings_capped_creation_removes_the_oldest,
            bindings_refresh_and_delete,
            auth_profile_default_set_and_not_found,
            login_failures_count_and_clear,
            login_failures_purge_by_last_failure,
            api_clients_create_lookup_list_and_revoke,
            tokens_principal_and_revoke,
            tokens_purge_by_expiry,
            insert_is_idempotent,
            insert_assigns_increasing_seqs_and_snapshot,
            insert_round_trips_every_field,
            insert_concurrent_batches_get_distinct_seqs,
            import_stores_batches_like_inserts,
            page_orders_newest_first_with_ties_by_seq,
            page_older_walks_every_record_once,
            page_newer_walks_back_over_the_same_pages,
            page_snapshot_hides_later_events,
            page_range_is_inclusive,
            page_text_filter_matches_four_fields,
            page_text_filter_is_case_insensitive_unicode,
            count_agrees_with_paging,
            first_page_agrees_with_snapshot_count_and_page,
            wire_pages_are_the_records_of_pages,
            search_and_count_agree_with_a_reference,
            tenants_are_isolated,
            events_after_pages_in_seq_order,
            requests_replay_and_purge,
            requests_expiry_follows_the_given_now,
            rate_limit_exhausts_and_refills,
            rate_limit_keys_are_separate,
            ping_answers,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let (store, guard) = ($factory)().await;
                $crate::conformance::$case(store).await;
                drop(guard);
            }
        )*
    };
}
