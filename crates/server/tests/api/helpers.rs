//! A real server on an ephemeral port over a real SQLite file, and a signing test client.

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use viewlog_core::admin::Admin;
use viewlog_core::vault::{MasterKey, Vault};
use viewlog_core::{permissions, CoreConfig, Service};
use viewlog_protocol::{dates, signing};
use viewlog_server::{AppState, BoundServer, ServerConfig};
use viewlog_store::{AccountId, Store, ViewEvent};
use viewlog_store_sqlite::{SqliteOptions, SqliteStore};

/// The credentials of one key binding.
#[derive(Debug, Clone)]
pub struct Creds {
    pub app_id: String,
    pub app_key: String,
    pub access_key: String,
    pub secret_key: String,
    pub email: String,
    pub account: AccountId,
}

/// A running server and direct access to its store.
pub struct TestApp {
    pub base_url: String,
    pub store: Arc<SqliteStore>,
    pub admin: Admin<SqliteStore>,
    pub http: reqwest::Client,
    pub creds: Creds,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The settings a test server starts with.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(1),
        core: CoreConfig::default(),
        ..ServerConfig::default()
    }
}

impl TestApp {
    /// A server with default settings and one account ("acme") holding an administrator.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(test_config()).await
    }

    /// A server with the given settings.
    pub async fn spawn_with(config: ServerConfig) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("test.db"), SqliteOptions::default()).await.unwrap());
        let vault = Vault::new(&MasterKey::generate());
        let admin = Admin::new(store.clone(), vault.clone());
        let service = Service::new(store.clone(), vault, config.core.clone());
        let server = BoundServer::bind(AppState { service, config }).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        let mut app = TestApp {
            base_url: format!("http://{addr}"),
            store,
            admin,
            http: reqwest::Client::new(),
            creds: Creds {
                app_id: String::new(),
                app_key: String::new(),
                access_key: String::new(),
                secret_key: String::new(),
                email: String::new(),
                account: AccountId(0),
            },
            dir,
            shutdown: Some(tx),
        };
        app.creds = app.tenant("acme", permissions::FULL_ADMINISTRATOR, None).await;
        app
    }

    /// Creates an account with a user of the given role, an application and a binding.
    pub async fn tenant(&self, account: &str, role: &str, ttl: Option<Duration>) -> Creds {
        let acct = match self.admin.account(account).await {
            Ok(a) => a,
            Err(_) => self.admin.create_account(account).await.unwrap(),
        };
        let email = format!("{}@{account}.example", uuid::Uuid::new_v4().simple());
        self.admin.create_user(account, &email, Some(role), None).await.unwrap();
        let app = self.admin.create_application(account, "tests").await.unwrap();
        let binding = self.admin.create_binding(&email, &app.application.app_id, ttl).await.unwrap();
        Creds {
            app_id: app.application.app_id.clone(),
            app_key: app.app_key.expose().to_owned(),
            access_key: binding.binding.access_key.clone(),
            secret_key: binding.secret_key.expose().to_owned(),
            email,
            account: acct.id,
        }
    }

    /// The signed headers of one request, as the seed's Python sample builds them.
    pub fn headers(creds: &Creds, uri: &str) -> Vec<(String, String)> {
        let date = dates::format_header_date(viewlog_core::now());
        let req_id = uuid::Uuid::new_v4().to_string();
        Self::headers_at(creds, uri, &date, &req_id)
    }

    /// Signed headers with a given date and request id.
    pub fn headers_at(creds: &Creds, uri: &str, date: &str, req_id: &str) -> Vec<(String, String)> {
        let sig = signing::sign(&creds.secret_key, date, req_id, uri, &creds.app_key).unwrap();
        vec![
            ("Authorization".into(), format!("MC {}:{sig}", creds.access_key)),
            ("x-mc-app-id".into(), creds.app_id.clone()),
            ("x-mc-date".into(), date.to_owned()),
            ("x-mc-req-id".into(), req_id.to_owned()),
            ("Content-Type".into(), "application/json".into()),
        ]
    }

    /// Sends a raw request with the given headers and body; returns status, headers, JSON body.
    pub async fn send(&self, path: &str, headers: &[(String, String)], body: impl Into<reqwest::Body>) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base_url)).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// A signed POST with the app's own credentials and a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_as(&self.creds, path, body).await
    }

    /// A signed POST with other credentials.
    pub async fn post_as(&self, creds: &Creds, path: &str, body: &Value) -> Reply {
        self.send(path, &Self::headers(creds, path), body.to_string()).await
    }

    /// get-view-logs with a JSON body.
    pub async fn view_logs(&self, body: &Value) -> Reply {
        self.post("/api/archive/get-view-logs", body).await
    }

    /// Stores events straight into the store, for the account of `creds`.
    pub async fn insert(&self, account: AccountId, events: &[ViewEvent]) {
        self.store.insert_events(account, events).await.unwrap();
    }

    /// Counts the account's stored events.
    pub async fn stored(&self, account: AccountId) -> u64 {
        let filter =
            viewlog_store::EventFilter { start: i64::MIN / 2, end: i64::MAX / 2, text: None, snapshot: i64::MAX };
        self.store.count(account, &filter).await.unwrap()
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Reply { status, headers, body }
    }

    /// The codes of every error in `fail`.
    pub fn codes(&self) -> Vec<String> {
        self.body["fail"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .flat_map(|f| f["errors"].as_array().cloned().unwrap_or_default())
            .map(|e| e["code"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The first error object.
    pub fn error(&self) -> &Value {
        &self.body["fail"][0]["errors"][0]
    }

    /// The `data` array.
    pub fn data(&self) -> &Vec<Value> {
        self.body["data"].as_array().expect("data is an array")
    }

    /// `meta.pagination.next`.
    pub fn next(&self) -> Option<String> {
        self.body["meta"]["pagination"]["next"].as_str().map(str::to_owned)
    }

    /// `meta.pagination.previous`.
    pub fn previous(&self) -> Option<String> {
        self.body["meta"]["pagination"]["previous"].as_str().map(str::to_owned)
    }

    /// Asserts a successful envelope and returns self.
    pub fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.body["fail"], serde_json::json!([]), "{}", self.body);
        self
    }
}

/// An event viewed at `viewed` (Unix seconds) with distinct, searchable fields.
pub fn event(n: u64, viewed: i64) -> ViewEvent {
    ViewEvent {
        event_id: format!("evt-{n}"),
        from: format!("sender{n}@outside.example"),
        to: format!("staff{n}@acme.example"),
        viewer: format!("viewer{}@acme.example", n % 5),
        source: "Message Tracking".into(),
        content_viewed: n % 2 == 0,
        discovery_case: n % 3 == 0,
        message_date: viewed - 3600,
        viewed,
        subject: format!("Subject number {n}"),
        viewer_ip: None,
        message_id: None,
        action: None,
        case_id: None,
    }
}

/// A date in the past as `yyyy-MM-ddTHH:mm:ss+0000`.
pub fn wire(t: i64) -> String {
    dates::format_date(t)
}
