//! Administration that works on the store directly (the `viewlog account|role|user|app|key`
//! commands): accounts, roles, users, applications and key bindings.

use crate::credentials;
use crate::error::AdminError;
use crate::permissions;
use crate::secret::Secret;
use crate::vault::Vault;
use std::sync::Arc;
use std::time::Duration;
use viewlog_store::{
    Account, Application, Binding, NewApplication, NewBinding, NewRole, NewUser, Role, Store, UnixTime, User,
};

/// A newly registered application with its key, shown once.
#[derive(Debug)]
pub struct IssuedApplication {
    /// The stored application.
    pub application: Application,
    /// The application key in the clear.
    pub app_key: Secret,
}

/// A newly issued key binding with its secret key, shown once.
#[derive(Debug)]
pub struct IssuedBinding {
    /// The stored binding.
    pub binding: Binding,
    /// The secret key in the clear.
    pub secret_key: Secret,
}

/// A newly registered API 2.0 client with its secret, shown once.
#[derive(Debug)]
pub struct IssuedApiClient {
    /// The stored client.
    pub client: viewlog_store::ApiClient,
    /// The client secret in the clear.
    pub client_secret: Secret,
}

/// Administration over one store.
#[derive(Debug)]
pub struct Admin<S> {
    store: Arc<S>,
    vault: Vault,
}

/// The current time in Unix seconds.
pub fn now() -> UnixTime {
    viewlog_protocol::dates::unix_now()
}

fn not_found(what: &str, name: &str) -> AdminError {
    AdminError::NotFound(format!("no {what} named {name:?}"))
}

impl<S: Store> Admin<S> {
    /// Administration over `store`, sealing secrets with `vault`.
    pub fn new(store: Arc<S>, vault: Vault) -> Self {
        Admin { store, vault }
    }

    /// The account of this name, or `NotFound`.
    pub async fn account(&self, name: &str) -> Result<Account, AdminError> {
        self.store.account_by_name(name).await?.ok_or_else(|| not_found("account", name))
    }

    /// Creates an account with the built-in roles.
    pub async fn create_account(&self, name: &str) -> Result<Account, AdminError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(AdminError::Invalid("an account name must have 1 to 100 characters".into()));
        }
        let account = self.store.create_account(name, now()).await.map_err(conflict_as_invalid)?;
        for (role, perms) in permissions::builtin_roles() {
            self.store
                .create_role(NewRole {
                    account_id: account.id,
                    name: role.to_owned(),
                    permissions: perms.into_iter().map(str::to_owned).collect(),
                    builtin: true,
                })
                .await?;
        }
        Ok(account)
    }

    /// All accounts.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, AdminError> {
        Ok(self.store.list_accounts().await?)
    }

    /// Enables or disables an account.
    pub async fn set_account_disabled(&self, name: &str, disabled: bool) -> Result<Account, AdminError> {
        let account = self.account(name).await?;
        self.store.set_account_disabled(account.id, disabled).await?;
        self.account(name).await
    }

    /// Creates a role with the given permissions (each must be one viewlog knows).
    pub async fn create_role(&self, account: &str, name: &str, perms: &[String]) -> Result<Role, AdminError> {
        let account = self.account(account).await?;
        let mut canonical = Vec::new();
        for p in perms {
            let c = permissions::canonical(p).ok_or_else(|| {
                AdminError::Invalid(format!("unknown permission {p:?}; known: {}", permissions::ALL.join(", ")))
            })?;
            if !canonical.contains(&c) {
                canonical.push(c);
            }
        }
        let role = NewRole {
            account_id: account.id,
            name: name.trim().to_owned(),
            permissions: canonical.into_iter().map(str::to_owned).collect(),
            builtin: false,
        };
        self.store.create_role(role).await.map_err(conflict_as_invalid)
    }

    /// The account's roles.
    pub async fn list_roles(&self, account: &str) -> Result<Vec<Role>, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.list_roles(account.id).await?)
    }

    async fn role(&self, account: &Account, name: &str) -> Result<Role, AdminError> {
        self.store.role_by_name(account.id, name).await?.ok_or_else(|| not_found("role", name))
    }

    /// Creates a user with a role and, optionally, a password (stored as an argon2 hash).
    pub async fn create_user(
        &self,
        account: &str,
        email: &str,
        role: Option<&str>,
        password: Option<&Secret>,
    ) -> Result<User, AdminError> {
        let account = self.account(account).await?;
        let email = email.trim();
        if !looks_like_email(email) {
            return Err(AdminError::Invalid(format!("{email:?} is not an email address")));
        }
        let role_id = match role {
            Some(r) => Some(self.role(&account, r).await?.id),
            None => None,
        };
        let password_hash = password.map(hash).transpose()?;
        let user = NewUser { account_id: account.id, email: email.to_owned(), role_id, password_hash };
        self.store.create_user(user, now()).await.map_err(conflict_as_invalid)
    }

    /// The user with this address, or `NotFound`.
    pub async fn user(&self, email: &str) -> Result<User, AdminError> {
        self.store.user_by_email(email).await?.ok_or_else(|| not_found("user", email))
    }

    /// The account's users.
    pub async fn list_users(&self, account: &str) -> Result<Vec<User>, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.list_users(account.id).await?)
    }

    /// Enables or disables a user.
    pub async fn set_user_disabled(&self, email: &str, disabled: bool) -> Result<User, AdminError> {
        let user = self.user(email).await?;
        self.store.set_user_disabled(user.id, disabled).await?;
        self.user(email).await
    }

    /// Sets (or, with `None`, removes) a user's password.
    pub async fn set_user_password(&self, email: &str, password: Option<&Secret>) -> Result<User, AdminError> {
        let user = self.user(email).await?;
        self.store.set_user_password(user.id, password.map(hash).transpose()?).await?;
        self.user(email).await
    }

    /// Sets or clears a user's role.
    pub async fn set_user_role(&self, email: &str, role: Option<&str>) -> Result<User, AdminError> {
        let user = self.user(email).await?;
        let account = self
            .store
            .account(user.account_id)
            .await?
            .ok_or_else(|| AdminError::NotFound("the user's account".into()))?;
        let role_id = match role {
            Some(r) => Some(self.role(&account, r).await?.id),
            None => None,
        };
        self.store.set_user_role(user.id, role_id).await?;
        self.user(email).await
    }

    /// Registers an application; its key is returned once, in the clear.
    pub async fn create_application(&self, account: &str, name: &str) -> Result<IssuedApplication, AdminError> {
        let account = self.account(account).await?;
        let app_id = credentials::new_app_id();
        let app_key = credentials::new_app_key();
        let new = NewApplication {
            account_id: account.id,
            app_key_sealed: self.vault.seal_secret(&app_key, &app_id),
            app_id,
            name: name.trim().to_owned(),
        };
        let application = self.store.create_application(new, now()).await?;
        Ok(IssuedApplication { application, app_key })
    }

    /// The account's applications.
    pub async fn list_applications(&self, account: &str) -> Result<Vec<Application>, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.list_applications(account.id).await?)
    }

    /// Enables or disables an application.
    pub async fn set_application_disabled(&self, app_id: &str, disabled: bool) -> Result<Application, AdminError> {
        self.store.set_application_disabled(app_id, disabled).await?;
        self.store.application_by_app_id(app_id).await?.ok_or_else(|| not_found("application", app_id))
    }

    /// Issues a key binding for a user of the application's account; the secret key is returned
    /// once, in the clear. With a `ttl` the binding lapses after it (418).
    pub async fn create_binding(
        &self,
        email: &str,
        app_id: &str,
        ttl: Option<Duration>,
    ) -> Result<IssuedBinding, AdminError> {
        let user = self.user(email).await?;
        let app = self.store.application_by_app_id(app_id).await?.ok_or_else(|| not_found("application", app_id))?;
        if app.account_id != user.account_id {
            return Err(AdminError::Invalid(format!("{email} and application {app_id} belong to different accounts")));
        }
        let access_key = credentials::new_access_key();
        let secret_key = credentials::new_secret_key();
        let created_at = now();
        let expires_at = ttl.map(|t| created_at.saturating_add(t.as_secs().min(i64::MAX as u64) as i64));
        let new = NewBinding {
            secret_key_sealed: self.vault.seal_secret(&secret_key, &access_key),
            access_key,
            account_id: user.account_id,
            user_id: user.id,
            application_id: app.id,
            created_at,
            expires_at,
        };
        let binding = self.store.create_binding(new).await?;
        Ok(IssuedBinding { binding, secret_key })
    }

    /// The account's bindings.
    pub async fn list_bindings(&self, account: &str) -> Result<Vec<Binding>, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.list_bindings(account.id).await?)
    }

    /// Revokes a binding.
    pub async fn revoke_binding(&self, access_key: &str) -> Result<(), AdminError> {
        self.store.revoke_binding(access_key).await.map_err(|e| match e {
            viewlog_store::StoreError::NotFound(_) => not_found("key binding", access_key),
            other => other.into(),
        })
    }
}

impl<S: Store> Admin<S> {
    /// Registers an API 2.0 client acting with one of the account's roles; its secret is
    /// returned once, in the clear.
    pub async fn create_api_client(
        &self,
        account: &str,
        name: &str,
        role: &str,
    ) -> Result<IssuedApiClient, AdminError> {
        let account = self.account(account).await?;
        let role = self.role(&account, role).await?;
        let secret = crate::oauth::random_secret();
        let new = viewlog_store::NewApiClient {
            client_id: credentials::new_app_id(),
            account_id: account.id,
            role_id: role.id,
            name: name.trim().to_owned(),
            secret_hash: crate::oauth::token_hash(&secret),
        };
        let client = self.store.create_api_client(new, now()).await.map_err(conflict_as_invalid)?;
        Ok(IssuedApiClient { client, client_secret: Secret::new(secret) })
    }

    /// The account's API 2.0 clients.
    pub async fn list_api_clients(&self, account: &str) -> Result<Vec<viewlog_store::ApiClient>, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.list_api_clients(account.id).await?)
    }

    /// Revokes an API 2.0 client and its tokens.
    pub async fn revoke_api_client(&self, client_id: &str) -> Result<(), AdminError> {
        self.store.revoke_api_client(client_id).await.map_err(|e| match e {
            viewlog_store::StoreError::NotFound(_) => not_found("API client", client_id),
            other => other.into(),
        })
    }

    /// The account's authentication profile.
    pub async fn auth_profile(&self, account: &str) -> Result<viewlog_store::AuthProfile, AdminError> {
        let account = self.account(account).await?;
        Ok(self.store.auth_profile(account.id).await?)
    }

    /// Sets the account's authentication profile.
    pub async fn set_auth_profile(
        &self,
        account: &str,
        profile: viewlog_store::AuthProfile,
    ) -> Result<viewlog_store::AuthProfile, AdminError> {
        if profile.max_bindings_per_user == 0 {
            return Err(AdminError::Invalid("a user must be allowed at least one binding".into()));
        }
        if profile.binding_ttl.is_some_and(|t| t <= 0) {
            return Err(AdminError::Invalid("a binding time to live must be positive".into()));
        }
        let acct = self.account(account).await?;
        self.store.set_auth_profile(acct.id, profile).await?;
        self.auth_profile(account).await
    }
}

fn hash(password: &Secret) -> Result<String, AdminError> {
    if password.expose().is_empty() {
        return Err(AdminError::Invalid("a password must not be empty".into()));
    }
    credentials::hash_password(password).map_err(AdminError::Password)
}

fn conflict_as_invalid(e: viewlog_store::StoreError) -> AdminError {
    match e {
        viewlog_store::StoreError::Conflict(what) => AdminError::Invalid(format!("{what} already exists")),
        other => other.into(),
    }
}

/// A light check: one `@` with something on both sides and no whitespace.
pub fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None)
        if !l.is_empty() && !d.is_empty() && !s.chars().any(char::is_whitespace) && s.len() <= 254)
}
