//! `viewlog account|role|user|app|key`: administration on the store directly.

use crate::output;
use crate::settings::{load_file, StoreArgs};
use crate::with_store;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::BufRead;
use std::time::Duration;
use viewlog_core::admin::Admin;
use viewlog_core::vault::Vault;
use viewlog_core::Secret;
use viewlog_store::Store;

/// Flags every admin command takes.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `viewlog account …`
#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Create an account, with the built-in roles (Full Administrator, View Log Reader, View Log Recorder).
    Create {
        /// The account's unique name.
        name: String,
    },
    /// List accounts.
    List,
    /// Disable an account: none of its keys verifies a request.
    Disable {
        /// The account's name.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The account's name.
        name: String,
    },
}

/// `viewlog role …`
#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create a role with permissions, e.g. --permission "Archive | View Logs | Read".
    Create {
        /// The account.
        #[arg(long)]
        account: String,
        /// The role's name, unique in the account.
        name: String,
        /// A permission (repeatable).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// List an account's roles and their permissions.
    List {
        /// The account.
        #[arg(long)]
        account: String,
    },
}

/// `viewlog user …`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user. With --password-stdin the first line of standard input is the password.
    Create {
        /// The account.
        #[arg(long)]
        account: String,
        /// The sign-in address (unique across accounts).
        email: String,
        /// The user's role. [default: Full Administrator]
        #[arg(long, default_value = viewlog_core::permissions::FULL_ADMINISTRATOR)]
        role: String,
        /// Read a password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List an account's users.
    List {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Disable a user: their keys stop verifying.
    Disable {
        /// The user's address.
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's address.
        email: String,
    },
    /// Set the password from the first line of standard input (empty line: remove it).
    SetPassword {
        /// The user's address.
        email: String,
    },
    /// Give the user another role.
    SetRole {
        /// The user's address.
        email: String,
        /// The role's name.
        role: String,
    },
}

/// `viewlog app …`
#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Register an API application; prints its application id and key (the key only this once).
    Create {
        /// The account.
        #[arg(long)]
        account: String,
        /// A display name.
        name: String,
    },
    /// List an account's applications.
    List {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Disable an application: its requests get err_developer_key.
    Disable {
        /// The application id.
        app_id: String,
    },
    /// Enable a disabled application.
    Enable {
        /// The application id.
        app_id: String,
    },
}

/// `viewlog key …`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Issue a key binding for a user and an application; prints the access key and secret key
    /// (the secret only this once).
    Create {
        /// The user's address.
        #[arg(long)]
        user: String,
        /// The application id.
        #[arg(long)]
        app_id: String,
        /// Time to live, e.g. 3600, 90m, 12h, 3d; none: the binding never lapses.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
    },
    /// List an account's key bindings (never their secrets).
    List {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Revoke a key binding.
    Revoke {
        /// The access key (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        access_key: String,
    },
}

/// `viewlog api-client …`
#[derive(Debug, Subcommand)]
pub enum ApiClientCmd {
    /// Register an API 2.0 client acting with a role; prints its client id and secret (the secret
    /// only this once).
    Create {
        /// The account.
        #[arg(long)]
        account: String,
        /// The role its tokens act with. [default: View Log Reader]
        #[arg(long, default_value = viewlog_core::permissions::VIEW_LOG_READER)]
        role: String,
        /// A display name.
        name: String,
    },
    /// List an account's API 2.0 clients (never their secrets).
    List {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Revoke a client and every token issued to it.
    Revoke {
        /// The client id (it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// `viewlog auth-profile …`
#[derive(Debug, Subcommand)]
pub enum AuthProfileCmd {
    /// Show an account's sign-in settings.
    Show {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Change an account's sign-in settings.
    Set {
        /// The account.
        #[arg(long)]
        account: String,
        /// How long a binding made by sign-in lives: `never`, or e.g. 3600, 90m, 12h, 3d.
        #[arg(long)]
        binding_ttl: Option<String>,
        /// How many bindings one user may hold; signing in at the cap removes their oldest.
        #[arg(long)]
        max_bindings: Option<u32>,
    },
}

/// Reads `90`, `90s`, `15m`, `12h` or `3d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration such as 3600, 90m, 12h or 3d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    if n == 0 {
        return Err("a time to live must be positive".into());
    }
    n.checked_mul(mult).map(Duration::from_secs).ok_or_else(|| "duration too large".into())
}

fn read_password_line() -> Result<Secret> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// What an admin command does.
#[derive(Debug)]
pub enum AdminCmd {
    /// `account …`
    Account(AccountCmd),
    /// `role …`
    Role(RoleCmd),
    /// `user …`
    User(UserCmd),
    /// `app …`
    App(AppCmd),
    /// `key …`
    Key(KeyCmd),
    /// `api-client …`
    ApiClient(ApiClientCmd),
    /// `auth-profile …`
    AuthProfile(AuthProfileCmd),
}

/// Runs an admin command.
pub async fn run(cmd: AdminCmd, args: AdminArgs) -> Result<()> {
    let file = load_file(args.store.config.as_deref())?;
    let settings = args.store.resolve(&file);
    let vault = Vault::new(&settings.master_key()?);
    with_store!(settings, |store| {
        let admin = Admin::new(store, vault);
        dispatch(&admin, cmd, args.json).await
    })
}

async fn dispatch<S: Store>(admin: &Admin<S>, cmd: AdminCmd, as_json: bool) -> Result<()> {
    match cmd {
        AdminCmd::Account(c) => account(admin, c, as_json).await,
        AdminCmd::Role(c) => role(admin, c, as_json).await,
        AdminCmd::User(c) => user(admin, c, as_json).await,
        AdminCmd::App(c) => app(admin, c, as_json).await,
        AdminCmd::Key(c) => key(admin, c, as_json).await,
        AdminCmd::ApiClient(c) => api_client(admin, c, as_json).await,
        AdminCmd::AuthProfile(c) => auth_profile(admin, c, as_json).await,
    }
}

async fn api_client<S: Store>(admin: &Admin<S>, cmd: ApiClientCmd, as_json: bool) -> Result<()> {
    let clients = match cmd {
        ApiClientCmd::Create { account, role, name } => {
            let issued = admin.create_api_client(&account, &name, &role).await?;
            if as_json {
                return output::json(&json!({"clientId": issued.client.client_id,
                                            "clientSecret": issued.client_secret.expose(), "name": issued.client.name}));
            }
            println!("client id:     {}", issued.client.client_id);
            println!("client secret: {}", issued.client_secret.expose());
            println!("(the client secret is shown only now; keep it safe)");
            return Ok(());
        }
        ApiClientCmd::List { account } => admin.list_api_clients(&account).await?,
        ApiClientCmd::Revoke { client_id } => {
            admin.revoke_api_client(&client_id).await?;
            if as_json {
                return output::json(&json!({"revoked": client_id}));
            }
            println!("revoked {client_id} and its tokens");
            return Ok(());
        }
    };
    if as_json {
        return output::json(&clients);
    }
    let rows = clients
        .iter()
        .map(|c| vec![c.client_id.clone(), c.name.clone(), c.role_id.to_string(), yes_no(c.revoked)])
        .collect::<Vec<_>>();
    output::table(&["CLIENT ID", "NAME", "ROLE ID", "REVOKED"], &rows);
    Ok(())
}

async fn auth_profile<S: Store>(admin: &Admin<S>, cmd: AuthProfileCmd, as_json: bool) -> Result<()> {
    let profile = match cmd {
        AuthProfileCmd::Show { account } => admin.auth_profile(&account).await?,
        AuthProfileCmd::Set { account, binding_ttl, max_bindings } => {
            let mut profile = admin.auth_profile(&account).await?;
            if let Some(ttl) = binding_ttl {
                profile.binding_ttl = if ttl.trim().eq_ignore_ascii_case("never") {
                    None
                } else {
                    Some(parse_duration(&ttl).map_err(anyhow::Error::msg)?.as_secs() as i64)
                };
            }
            if let Some(n) = max_bindings {
                profile.max_bindings_per_user = n;
            }
            admin.set_auth_profile(&account, profile).await?
        }
    };
    if as_json {
        return output::json(&profile);
    }
    let ttl = profile.binding_ttl.map(|t| format!("{t} s")).unwrap_or_else(|| "never".into());
    println!("binding time to live:   {ttl}");
    println!("max bindings per user:  {}", profile.max_bindings_per_user);
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

async fn account<S: Store>(admin: &Admin<S>, cmd: AccountCmd, as_json: bool) -> Result<()> {
    let accounts = match cmd {
        AccountCmd::Create { name } => vec![admin.create_account(&name).await?],
        AccountCmd::List => admin.list_accounts().await?,
        AccountCmd::Disable { name } => vec![admin.set_account_disabled(&name, true).await?],
        AccountCmd::Enable { name } => vec![admin.set_account_disabled(&name, false).await?],
    };
    if as_json {
        return output::json(&accounts);
    }
    let rows = accounts
        .iter()
        .map(|a| vec![a.name.clone(), yes_no(a.disabled), output::time(Some(a.created_at))])
        .collect::<Vec<_>>();
    output::table(&["NAME", "DISABLED", "CREATED"], &rows);
    Ok(())
}

async fn role<S: Store>(admin: &Admin<S>, cmd: RoleCmd, as_json: bool) -> Result<()> {
    let roles = match cmd {
        RoleCmd::Create { account, name, permissions } => vec![admin.create_role(&account, &name, &permissions).await?],
        RoleCmd::List { account } => admin.list_roles(&account).await?,
    };
    if as_json {
        return output::json(&roles);
    }
    let rows =
        roles.iter().map(|r| vec![r.name.clone(), yes_no(r.builtin), r.permissions.join("; ")]).collect::<Vec<_>>();
    output::table(&["NAME", "BUILT-IN", "PERMISSIONS"], &rows);
    Ok(())
}

async fn user<S: Store>(admin: &Admin<S>, cmd: UserCmd, as_json: bool) -> Result<()> {
    let users = match cmd {
        UserCmd::Create { account, email, role, password_stdin } => {
            let password = if password_stdin { Some(read_password_line()?) } else { None };
            if password.as_ref().is_some_and(|p| p.expose().is_empty()) {
                bail!("the password read from standard input is empty");
            }
            vec![admin.create_user(&account, &email, Some(&role), password.as_ref()).await?]
        }
        UserCmd::List { account } => admin.list_users(&account).await?,
        UserCmd::Disable { email } => vec![admin.set_user_disabled(&email, true).await?],
        UserCmd::Enable { email } => vec![admin.set_user_disabled(&email, false).await?],
        UserCmd::SetPassword { email } => {
            let password = read_password_line()?;
            let password = (!password.expose().is_empty()).then_some(password);
            vec![admin.set_user_password(&email, password.as_ref()).await?]
        }
        UserCmd::SetRole { email, role } => vec![admin.set_user_role(&email, Some(&role)).await?],
    };
    if as_json {
        let items: Vec<_> = users
            .iter()
            .map(|u| {
                json!({"email": u.email, "accountId": u.account_id, "roleId": u.role_id, "disabled": u.disabled,
                       "hasPassword": u.password_hash.is_some(), "createdAt": u.created_at})
            })
            .collect();
        return output::json(&items);
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.email.clone(),
                u.role_id.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                yes_no(u.password_hash.is_some()),
                yes_no(u.disabled),
            ]
        })
        .collect::<Vec<_>>();
    output::table(&["EMAIL", "ROLE ID", "PASSWORD", "DISABLED"], &rows);
    Ok(())
}

async fn app<S: Store>(admin: &Admin<S>, cmd: AppCmd, as_json: bool) -> Result<()> {
    let apps = match cmd {
        AppCmd::Create { account, name } => {
            let issued = admin.create_application(&account, &name).await?;
            let a = &issued.application;
            if as_json {
                return output::json(&json!({"appId": a.app_id, "appKey": issued.app_key.expose(), "name": a.name}));
            }
            println!("application id:  {}", a.app_id);
            println!("application key: {}", issued.app_key.expose());
            println!("(the application key is shown only now; keep it safe)");
            return Ok(());
        }
        AppCmd::List { account } => admin.list_applications(&account).await?,
        AppCmd::Disable { app_id } => vec![admin.set_application_disabled(&app_id, true).await?],
        AppCmd::Enable { app_id } => vec![admin.set_application_disabled(&app_id, false).await?],
    };
    if as_json {
        return output::json(&apps);
    }
    let rows = apps
        .iter()
        .map(|a| vec![a.app_id.clone(), a.name.clone(), yes_no(a.disabled), output::time(Some(a.created_at))])
        .collect::<Vec<_>>();
    output::table(&["APP ID", "NAME", "DISABLED", "CREATED"], &rows);
    Ok(())
}

async fn key<S: Store>(admin: &Admin<S>, cmd: KeyCmd, as_json: bool) -> Result<()> {
    match cmd {
        KeyCmd::Create { user, app_id, ttl } => {
            let issued = admin.create_binding(&user, &app_id, ttl).await?;
            let b = &issued.binding;
            if as_json {
                return output::json(&json!({"accessKey": b.access_key, "secretKey": issued.secret_key.expose(),
                                            "expiresAt": b.expires_at.map(viewlog_protocol::dates::format_date)}));
            }
            println!("access key: {}", b.access_key);
            println!("secret key: {}", issued.secret_key.expose());
            println!("expires:    {}", output::time(b.expires_at));
            println!("(the secret key is shown only now; keep it safe)");
            Ok(())
        }
        KeyCmd::List { account } => {
            let bindings = admin.list_bindings(&account).await?;
            if as_json {
                return output::json(&bindings);
            }
            let rows = bindings
                .iter()
                .map(|b| {
                    vec![
                        b.access_key.clone(),
                        b.user_id.to_string(),
                        output::time(Some(b.created_at)),
                        output::time(b.expires_at),
                        yes_no(b.revoked),
                    ]
                })
                .collect::<Vec<_>>();
            output::table(&["ACCESS KEY", "USER ID", "CREATED", "EXPIRES", "REVOKED"], &rows);
            Ok(())
        }
        KeyCmd::Revoke { access_key } => {
            admin.revoke_binding(&access_key).await?;
            if as_json {
                return output::json(&json!({"revoked": access_key}));
            }
            println!("revoked {access_key}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, KeyCmd};
    use clap::Parser;
    use std::time::Duration;

    /// Access keys are base64url: one in 64 starts with `-`, and must still be taken as the key.
    #[test]
    fn an_access_key_may_start_with_a_hyphen() {
        #[derive(Parser)]
        struct Key {
            #[command(subcommand)]
            cmd: KeyCmd,
        }
        let parsed = Key::try_parse_from(["key", "revoke", "-IoHTbzb471i2AfXJy3Q"]).expect("parses");
        assert!(matches!(parsed.cmd, KeyCmd::Revoke { access_key } if access_key == "-IoHTbzb471i2AfXJy3Q"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
