//! The HTTP server's settings.

use std::net::SocketAddr;
use std::time::Duration;
use viewlog_core::CoreConfig;

/// How the HTTP server listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// The base URL clients use (`https://viewlog.example.com`), when it differs from what the
    /// `Host` header says; signatures over the absolute URL are checked against it too.
    pub public_base_url: Option<String>,
    /// Whether to believe `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` (only
    /// behind a proxy that sets them).
    pub trust_forwarded: bool,
    /// The largest query body (default 1 MiB).
    pub query_body_limit: usize,
    /// The largest ingest body (default 16 MiB).
    pub ingest_body_limit: usize,
    /// How long shutdown waits for in-flight requests (default 30 s).
    pub shutdown_grace: Duration,
    /// The domain's settings.
    pub core: CoreConfig,
    /// The web console's origin (`https://console.example.com`): the only origin browsers may
    /// call the API from (CORS). None: no cross-origin calls.
    pub console_origin: Option<String>,
    /// Injected faults (`--faults`); none by default.
    pub faults: crate::faults::Faults,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: None,
            trust_forwarded: false,
            query_body_limit: 1 << 20,
            ingest_body_limit: 16 << 20,
            shutdown_grace: Duration::from_secs(30),
            core: CoreConfig::default(),
            faults: crate::faults::Faults::default(),
            console_origin: None,
        }
    }
}
