//! `viewlog`: the one binary — server, demo, import and administration.

mod client_args;
mod commands;
mod db;
mod logging;
mod output;
mod settings;
mod timearg;

use clap::{Parser, Subcommand};
use commands::admin::{
    AccountCmd, AdminArgs, AdminCmd, ApiClientCmd, AppCmd, AuthProfileCmd, KeyCmd, RoleCmd, UserCmd,
};

/// A Mimecast-compatible archive view-log server, client and collector.
#[derive(Debug, Parser)]
#[command(name = "viewlog", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Mimecast-compatible API on a store (SQLite by default).
    Serve(commands::serve::ServeCmd),
    /// Serve a throwaway store with 100,000 realistic events and print ready-to-use credentials.
    Demo(commands::demo::DemoCmd),
    /// Import view events from an NDJSON or CSV file into an account (checked whole first, then
    /// stored in order of viewed time; idempotent).
    Import(commands::import::ImportCmd),
    /// Copy a whole store into another (e.g. SQLite into PostgreSQL), resumably, and verify it.
    Migrate(commands::migrate::MigrateCmd),
    /// Query view logs once (from viewlog or a Mimecast tenant) as a table, NDJSON, CSV or JSON.
    Logs(commands::logs::LogsCmd),
    /// Collect view logs continuously into NDJSON or syslog, resuming from a checkpoint.
    Sync(commands::sync::SyncCmd),
    /// Sign in with a password (API 1.0 login) and keep the key binding in a profile.
    Login(commands::login::LoginCmd),
    /// End a profile's key binding (API 1.0 logout).
    Logout(commands::login::LogoutCmd),
    /// Save, list and delete named servers and credentials for `logs` and `sync`.
    Profile {
        #[command(subcommand)]
        cmd: commands::profile::ProfileCmd,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        cmd: AccountCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Manage roles and their permissions.
    Role {
        #[command(subcommand)]
        cmd: RoleCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Manage API applications.
    App {
        #[command(subcommand)]
        cmd: AppCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Manage key bindings (access key + secret key).
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Manage API 2.0 clients (client id + secret, for bearer tokens).
    ApiClient {
        #[command(subcommand)]
        cmd: ApiClientCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Show or change an account's sign-in settings (binding time to live, bindings per user).
    AuthProfile {
        #[command(subcommand)]
        cmd: AuthProfileCmd,
        #[command(flatten)]
        args: AdminArgs,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The long-running servers bound what the allocator keeps (before the runtime's threads
    // start); short commands such as `import` keep glibc's defaults, which they run faster with.
    if matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        viewlog_server::memory::tune_allocator();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(cmd) => commands::serve::run(cmd).await,
        Command::Demo(cmd) => commands::demo::run(cmd).await,
        Command::Import(cmd) => commands::import::run(cmd).await,
        Command::Migrate(cmd) => {
            logging::init("text");
            commands::migrate::run(cmd).await
        }
        Command::Logs(cmd) => {
            logging::init("text");
            commands::logs::run(cmd).await
        }
        Command::Sync(cmd) => {
            logging::init("text");
            commands::sync::run(cmd).await
        }
        Command::Profile { cmd } => commands::profile::run(cmd),
        Command::Login(cmd) => {
            logging::init("text");
            commands::login::login(cmd).await
        }
        Command::Logout(cmd) => {
            logging::init("text");
            commands::login::logout(cmd).await
        }
        Command::Account { cmd, args } => commands::admin::run(AdminCmd::Account(cmd), args).await,
        Command::Role { cmd, args } => commands::admin::run(AdminCmd::Role(cmd), args).await,
        Command::User { cmd, args } => commands::admin::run(AdminCmd::User(cmd), args).await,
        Command::App { cmd, args } => commands::admin::run(AdminCmd::App(cmd), args).await,
        Command::Key { cmd, args } => commands::admin::run(AdminCmd::Key(cmd), args).await,
        Command::ApiClient { cmd, args } => commands::admin::run(AdminCmd::ApiClient(cmd), args).await,
        Command::AuthProfile { cmd, args } => commands::admin::run(AdminCmd::AuthProfile(cmd), args).await,
    }
}
