//! `viewlog serve`: the server, on the store the configuration names.

use crate::settings::{load_file, server_config, ServeArgs, StoreArgs};
use crate::with_store;
use anyhow::{Context, Result};
use clap::Args;
use viewlog_core::vault::Vault;
use viewlog_core::Service;
use viewlog_server::{AppState, BoundServer};

/// `viewlog serve` flags.
#[derive(Debug, Args)]
pub struct ServeCmd {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(cmd: ServeCmd) -> Result<()> {
    let file = load_file(cmd.store.config.as_deref())?;
    let (config, log_format) = server_config(&cmd.serve, &file)?;
    crate::logging::init(&log_format);
    let mut settings = cmd.store.resolve(&file);
    if let Some(n) = cmd.serve.sqlite_readers {
        settings.sqlite_readers = n;
    }
    settings.serving = true;
    let vault = Vault::new(&settings.master_key()?);
    with_store!(settings, |store| {
        let service = Service::new(store, vault, config.core.clone());
        let server = BoundServer::bind(AppState { service, config: config.clone() })
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, db = %crate::db::redacted(&settings.db), "viewlog listening");
        server.serve(viewlog_server::shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
