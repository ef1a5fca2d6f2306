//! `viewlog migrate --from DB --to DB`: copies a whole store — accounts, sign-in settings,
//! roles, users, applications, key bindings, API 2.0 clients and every view event — into
//! another (typically SQLite into PostgreSQL).
//!
//! Sealed secrets are copied as they are, so the target must be served with the same master
//! key. Records are matched by their natural keys (account name, role name, address,
//! application id, access key, client id, event id), so an interrupted migration is resumed by
//! running it again: what is there already is left alone. Events are copied in their stored
//! order, so pages come out the same from both stores. At the end the counts are compared.

use crate::settings::{StoreSettings, DEFAULT_DB};
use crate::with_store;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use viewlog_store::{
    Account, EventFilter, NewApiClient, NewApplication, NewBinding, NewRole, NewUser, RoleId, Store, StoreError,
};

/// `viewlog migrate` flags.
#[derive(Debug, Args)]
pub struct MigrateCmd {
    /// The store to copy from: a SQLite path (`sqlite:PATH`) or a `postgres://` URL.
    #[arg(long, default_value = DEFAULT_DB)]
    from: String,
    /// The store to copy into.
    #[arg(long)]
    to: String,
    /// Events per transaction.
    #[arg(long, default_value_t = 10_000)]
    batch_size: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// What was copied and what the stores hold afterwards.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    accounts: u64,
    roles: u64,
    users: u64,
    applications: u64,
    bindings: u64,
    api_clients: u64,
    events_copied: u64,
    events_already_there: u64,
    events_in_source: u64,
    events_in_target: u64,
}

fn ignore_conflict<T>(r: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn everything(snapshot: i64) -> EventFilter {
    EventFilter { start: i64::MIN / 4, end: i64::MAX / 4, text: None, snapshot }
}

/// Runs the migration.
pub async fn run(cmd: MigrateCmd) -> Result<()> {
    if cmd.from.trim() == cmd.to.trim() {
        bail!("--from and --to name the same database");
    }
    let from = StoreSettings {
        db: cmd.from.clone(),
        master_key_file: Default::default(),
        sqlite_readers: 4,
        sqlite_cache_kib: None,
        serving: false,
    };
    // The copy writes in batches: a cache that holds what one changes.
    let to = StoreSettings {
        db: cmd.to.clone(),
        master_key_file: Default::default(),
        sqlite_readers: 4,
        sqlite_cache_kib: Some(256 * 1024),
        serving: false,
    };
    let summary = with_store!(from, |source| {
        with_store!(to, |target| copy(&*source, &*target, cmd.batch_size.max(1)).await?)
    });
    if cmd.json {
        crate::output::json(&summary)?;
    } else {
        println!(
            "copied {} accounts, {} roles, {} users, {} applications, {} key bindings, {} API clients",
            summary.accounts, summary.roles, summary.users, summary.applications, summary.bindings, summary.api_clients
        );
        println!(
            "events: {} copied, {} already there; source holds {}, target holds {}",
            summary.events_copied, summary.events_already_there, summary.events_in_source, summary.events_in_target
        );
    }
    Ok(())
}

async fn copy<A: Store, B: Store>(src: &A, dst: &B, batch: u32) -> Result<Summary> {
    let mut s = Summary::default();
    let accounts = src.list_accounts().await?;
    let mut pairs: Vec<(Account, Account)> = Vec::new();
    for a in &accounts {
        let b = match dst.account_by_name(&a.name).await? {
            Some(b) => b,
            None => {
                s.accounts += 1;
                dst.create_account(&a.name, a.created_at).await?
            }
        };
        if b.disabled != a.disabled {
            dst.set_account_disabled(b.id, a.disabled).await?;
        }
        dst.set_auth_profile(b.id, src.auth_profile(a.id).await?).await?;
        pairs.push((a.clone(), b));
    }
    for (a, b) in &pairs {
        copy_principals(src, dst, a, b, &mut s).await.with_context(|| format!("account {}", a.name))?;
    }
    // Events, account by account, in stored order.
    let total: u64 = {
        let mut t = 0;
        for (a, _) in &pairs {
            t += src.count(a.id, &everything(i64::MAX)).await?;
        }
        t
    };
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("copying events {bar:40} {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for (a, b) in &pairs {
        let mut after = 0;
        loop {
            let events = src.events_after(a.id, after, batch).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            let batch: Vec<_> = events.into_iter().map(|e| e.event).collect();
            let outcome = dst.insert_events(b.id, &batch).await?;
            s.events_copied += outcome.inserted;
            s.events_already_there += outcome.duplicates;
            bar.inc(batch.len() as u64);
        }
    }
    bar.finish_and_clear();
    // Verify.
    let mut mismatches = Vec::new();
    for (a, b) in &pairs {
        let n_src = src.count(a.id, &everything(i64::MAX)).await?;
        let n_dst = dst.count(b.id, &everything(i64::MAX)).await?;
        s.events_in_source += n_src;
        s.events_in_target += n_dst;
        if n_dst < n_src {
            mismatches.push(format!("account {}: source holds {n_src} events, target {n_dst}", a.name));
        }
        let checks = [
            ("users", src.list_users(a.id).await?.len(), dst.list_users(b.id).await?.len()),
            ("applications", src.list_applications(a.id).await?.len(), dst.list_applications(b.id).await?.len()),
            ("key bindings", src.list_bindings(a.id).await?.len(), dst.list_bindings(b.id).await?.len()),
            ("roles", src.list_roles(a.id).await?.len(), dst.list_roles(b.id).await?.len()),
            ("API clients", src.list_api_clients(a.id).await?.len(), dst.list_api_clients(b.id).await?.len()),
        ];
        for (what, x, y) in checks {
            if y < x {
                mismatches.push(format!("account {}: source holds {x} {what}, target {y}", a.name));
            }
        }
    }
    if !mismatches.is_empty() {
        bail!("the copy is incomplete:\n  {}", mismatches.join("\n  "));
    }
    Ok(s)
}

async fn copy_principals<A: Store, B: Store>(
    src: &A,
    dst: &B,
    a: &Account,
    b: &Account,
    s: &mut Summary,
) -> Result<()> {
    // Roles, by name.
    let mut role_map: HashMap<RoleId, RoleId> = HashMap::new();
    for role in src.list_roles(a.id).await? {
        let new = NewRole {
            account_id: b.id,
            name: role.name.clone(),
            permissions: role.permissions.clone(),
            builtin: role.builtin,
        };
        let target = match ignore_conflict(dst.create_role(new).await)? {
            Some(r) => {
                s.roles += 1;
                r
            }
            None => dst.role_by_name(b.id, &role.name).await?.context("role vanished")?,
        };
        role_map.insert(role.id, target.id);
    }
    // Users, by address.
    let mut user_map = HashMap::new();
    for user in src.list_users(a.id).await? {
        let new = NewUser {
            account_id: b.id,
            email: user.email.clone(),
            role_id: user.role_id.and_then(|r| role_map.get(&r).copied()),
            password_hash: user.password_hash.clone(),
        };
        let target = match ignore_conflict(dst.create_user(new, user.created_at).await)? {
            Some(u) => {
                s.users += 1;
                u
            }
            None => dst.user_by_email(&user.email).await?.context("user vanished")?,
        };
        if target.account_id != b.id {
            bail!("{} belongs to another account in the target", user.email);
        }
        if target.disabled != user.disabled {
            dst.set_user_disabled(target.id, user.disabled).await?;
        }
        user_map.insert(user.id, target.id);
    }
    // Applications, by application id.
    let mut app_map = HashMap::new();
    for app in src.list_applications(a.id).await? {
        let new = NewApplication {
            account_id: b.id,
            app_id: app.app_id.clone(),
            name: app.name.clone(),
            app_key_sealed: app.app_key_sealed.clone(),
        };
        let target = match ignore_conflict(dst.create_application(new, app.created_at).await)? {
            Some(t) => {
                s.applications += 1;
                t
            }
            None => dst.application_by_app_id(&app.app_id).await?.context("application vanished")?,
        };
        if target.disabled != app.disabled {
            dst.set_application_disabled(&app.app_id, app.disabled).await?;
        }
        app_map.insert(app.id, target.id);
    }
    // Key bindings, by access key.
    for binding in src.list_bindings(a.id).await? {
        let (Some(&user_id), Some(&application_id)) =
            (user_map.get(&binding.user_id), app_map.get(&binding.application_id))
        else {
            bail!("binding {} refers to a user or application that was not copied", binding.access_key);
        };
        let new = NewBinding {
            access_key: binding.access_key.clone(),
            account_id: b.id,
            user_id,
            application_id,
            secret_key_sealed: binding.secret_key_sealed.clone(),
            created_at: binding.created_at,
            expires_at: binding.expires_at,
        };
        if ignore_conflict(dst.create_binding(new).await)?.is_some() {
            s.bindings += 1;
        }
        if binding.revoked {
            dst.revoke_binding(&binding.access_key).await?;
        }
    }
    // API 2.0 clients, by client id (their tokens are short-lived and not copied).
    for client in src.list_api_clients(a.id).await? {
        let Some(&role_id) = role_map.get(&client.role_id) else {
            bail!("API client {} refers to a role that was not copied", client.client_id);
        };
        let new = NewApiClient {
            client_id: client.client_id.clone(),
            account_id: b.id,
            role_id,
            name: client.name.clone(),
            secret_hash: client.secret_hash.clone(),
        };
        if ignore_conflict(dst.create_api_client(new, client.created_at).await)?.is_some() {
            s.api_clients += 1;
        }
        if client.revoked {
            dst.revoke_api_client(&client.client_id).await?;
        }
    }
    Ok(())
}
