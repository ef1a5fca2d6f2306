//! Running the server: bind, serve until a shutdown signal, let in-flight requests finish.

use crate::app::{router, AppState};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use viewlog_store::Store;

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct BoundServer<S> {
    listener: TcpListener,
    state: Arc<AppState<S>>,
}

impl<S: Store> BoundServer<S> {
    /// Binds the configured address (port 0 picks a free one).
    pub async fn bind(state: AppState<S>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(state.config.listen).await?;
        Ok(BoundServer { listener, state: Arc::new(state) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to the
    /// configured grace period). Meanwhile, every minute, expired replay records are purged and
    /// settled storage is compacted ([`viewlog_core::Service::compact_settled`]).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.state.config.shutdown_grace;
        let state = self.state.clone();
        let purge = every_minute("purging expired records", move || {
            let state = state.clone();
            async move { state.service.purge_expired(viewlog_core::now()).await }
        });
        // Apart from the purge, which a long first pass (after an upgrade, say) must not hold up.
        let state = self.state.clone();
        let compact = every_minute("compacting settled storage", move || {
            let state = state.clone();
            async move { state.service.compact_settled(viewlog_core::now()).await }
        });
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        });
        let server = tokio::spawn(async move { server.await });
        // Once shutdown starts, in-flight requests get `grace` to finish.
        let result = tokio::select! {
            r = server => r.map_err(std::io::Error::other).and_then(|r| r),
            _ = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("shutdown grace period over; dropping remaining connections");
                Ok(())
            }
        };
        purge.abort();
        compact.abort();
        result
    }
}

/// Runs `job` (`what` it does, for the log) every minute, the first time at once, until the
/// task is aborted, logging how much it did or why it failed.
fn every_minute<F, Fut>(what: &'static str, mut job: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, viewlog_core::ApiError>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match job().await {
                Ok(n) if n > 0 => tracing::debug!(done = n, "{what}"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "{what} failed"),
            }
        }
    })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
