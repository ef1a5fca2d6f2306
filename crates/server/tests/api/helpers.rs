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
    /// The directory of the database, removed when the app is dropped.
    #[allow(dead_code)]
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
        post_signed(&self.http, &self.base_url, creds, path, body).await
    }

    /// Sends a request with any method, the given headers and, optionally, a body.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base_url));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// get-view-logs with other credentials.
    pub async fn view_logs_as(&self, creds: &Creds, body: &Value) -> Reply {
        self.post_as(creds, VIEW_LOGS, body).await
    }

    /// record-views with the app's own credentials.
    pub async fn record(&self, events: &[Value]) -> Reply {
        self.record_as(&self.creds, events).await
    }

    /// record-views with other credentials.
    pub async fn record_as(&self, creds: &Creds, events: &[Value]) -> Reply {
        self.post_as(creds, RECORD, &serde_json::json!({ "data": events })).await
    }

    /// Sends, with headers made for each path by `headers`, a valid one-event batch to
    /// record-views and a valid query to get-view-logs; asserts both are refused alike
    /// ([`Reply::refused`]) and that the account named by `account` stored nothing. Returns
    /// both replies (record-views first).
    pub async fn refused_everywhere(
        &self,
        account: AccountId,
        headers: impl Fn(&str) -> Vec<(String, String)>,
        status: u16,
        code: &str,
        retryable: bool,
    ) -> [Reply; 2] {
        let before = self.stored(account).await;
        let batch = serde_json::json!({ "data": [event_json(900_000 + before, now())] });
        let record = self.send(RECORD, &headers(RECORD), batch.to_string()).await;
        record.refused(status, code, retryable);
        let query = self.send(VIEW_LOGS, &headers(VIEW_LOGS), "{\"data\":[{}]}").await;
        query.refused(status, code, retryable);
        assert_eq!(record.body, query.body, "both endpoints answer alike");
        assert_eq!(self.stored(account).await, before, "a refused request stored nothing");
        [record, query]
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.base_url.rsplit(':').next().unwrap().parse().unwrap()
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

/// The get-view-logs path.
pub const VIEW_LOGS: &str = "/api/archive/get-view-logs";
/// The record-views path.
pub const RECORD: &str = "/api/viewlog/record-views";

/// A signed POST of a JSON body, from anywhere (a spawned task, say).
pub async fn post_signed(http: &reqwest::Client, base_url: &str, creds: &Creds, path: &str, body: &Value) -> Reply {
    let mut req = http.post(format!("{base_url}{path}")).body(body.to_string());
    for (k, v) in TestApp::headers(creds, path) {
        req = req.header(k.as_str(), v.as_str());
    }
    Reply::from(req.send().await.unwrap()).await
}

/// Sends a POST over a bare TCP connection with a chunked body (no `Content-Length`), and
/// reads the answer until the server closes the connection. Returns the status and the JSON
/// body.
pub async fn post_chunked(base_url: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before the whole body is sent: stop writing then.
    for chunk in body.chunks(64 << 10) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status: u16 =
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {text}"));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // One or more chunks: join their payloads.
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        rest.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

/// Replaces (or, with `None`, removes) one header of a list, by name in any case.
pub fn with_header(headers: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case(name)).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_owned(), v.to_owned()));
    }
    out
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

    /// The subjects of the records in `data`, in order.
    pub fn subjects(&self) -> Vec<String> {
        self.data().iter().map(|r| r["subject"].as_str().expect("subject is a string").to_owned()).collect()
    }

    /// `meta.pagination.totalCount`.
    pub fn total(&self) -> u64 {
        self.body["meta"]["pagination"]["totalCount"].as_u64().expect("totalCount")
    }

    /// `meta.pagination.pageSize`.
    pub fn page_size(&self) -> u64 {
        self.body["meta"]["pagination"]["pageSize"].as_u64().expect("pageSize")
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    /// The three rate-limit headers as numbers: limit, remaining, reset (ms). Panics when one
    /// is missing or not a whole number.
    pub fn rate(&self) -> (u64, u64, u64) {
        let get = |name: &str| -> u64 {
            self.header(name)
                .unwrap_or_else(|| panic!("{name} missing: {:?} {}", self.headers, self.body))
                .parse()
                .unwrap_or_else(|e| panic!("{name} not a whole number: {e}"))
        };
        (get("x-ratelimit-limit"), get("x-ratelimit-remaining"), get("x-ratelimit-reset"))
    }

    /// Asserts the error envelope of a request refused before its body mattered (auth, rate
    /// limit, routing, size, malformed body): HTTP `status`, `meta.status` the same, `data: []`,
    /// one `fail` entry without `key` holding one error with this code and `retryable`, and the
    /// rate-limit headers. Returns the error object.
    pub fn refused(&self, status: u16, code: &str, retryable: bool) -> &Value {
        assert_eq!(self.status, status, "HTTP status; body {}", self.body);
        assert_eq!(self.body["meta"]["status"], serde_json::json!(status), "meta.status; body {}", self.body);
        assert_eq!(self.body["data"], serde_json::json!([]), "data; body {}", self.body);
        assert!(self.body["meta"].get("pagination").is_none(), "no pagination on an error: {}", self.body);
        let fail = self.body["fail"].as_array().expect("fail is an array");
        assert_eq!(fail.len(), 1, "one fail entry: {}", self.body);
        assert!(fail[0].get("key").is_none(), "no key on this error: {}", self.body);
        let errors = fail[0]["errors"].as_array().expect("errors is an array");
        assert_eq!(errors.len(), 1, "one error: {}", self.body);
        let e = &errors[0];
        assert_eq!(e["code"], serde_json::json!(code), "code; body {}", self.body);
        assert_eq!(e["retryable"], serde_json::json!(retryable), "retryable; body {}", self.body);
        assert!(e["message"].is_string(), "message: {}", self.body);
        assert!(e.get("field").is_none(), "no field on this error: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.rate();
        e
    }

    /// Asserts a validation failure answered with HTTP 200 and no records: one `fail` entry
    /// whose `key` is `key` (absent for `None`) and whose first error has `code` and `field`.
    /// Returns the fail entry.
    pub fn invalid(&self, key: Option<&Value>, code: &str, field: Option<&str>) -> &Value {
        assert_eq!(self.status, 200, "HTTP status; body {}", self.body);
        assert_eq!(self.body["meta"]["status"], serde_json::json!(200), "meta.status; body {}", self.body);
        assert_eq!(self.body["data"], serde_json::json!([]), "data; body {}", self.body);
        assert!(self.body["meta"].get("pagination").is_none(), "no pagination on an error: {}", self.body);
        let fail = self.body["fail"].as_array().expect("fail is an array");
        assert_eq!(fail.len(), 1, "one fail entry: {}", self.body);
        assert_eq!(fail[0].get("key"), key, "key; body {}", self.body);
        let e = &fail[0]["errors"][0];
        assert_eq!(e["code"], serde_json::json!(code), "code; body {}", self.body);
        assert_eq!(e["retryable"], serde_json::json!(false), "retryable; body {}", self.body);
        assert_eq!(e.get("field").and_then(Value::as_str), field, "field; body {}", self.body);
        assert!(e["message"].is_string(), "message: {}", self.body);
        self.rate();
        &fail[0]
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
        content_viewed: n.is_multiple_of(2),
        discovery_case: n.is_multiple_of(3),
        message_date: viewed - 3600,
        viewed,
        subject: format!("Subject number {n}"),
        viewer_ip: None,
        message_id: None,
        action: None,
        case_id: None,
    }
}

/// A view event as record-views takes it, with the same fields as [`event`].
pub fn event_json(n: u64, viewed: i64) -> Value {
    let e = event(n, viewed);
    serde_json::json!({
        "id": e.event_id,
        "from": e.from,
        "to": e.to,
        "viewer": e.viewer,
        "source": e.source,
        "contentViewed": e.content_viewed,
        "discoveryCase": e.discovery_case,
        "messageDate": wire(e.message_date),
        "viewed": wire(e.viewed),
        "subject": e.subject,
    })
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    viewlog_core::now()
}

/// The current time, at least a minute before the end of the UTC day: tests that rely on the
/// default range (today) wait out the last minute of a day rather than straddle midnight.
pub async fn today_now() -> i64 {
    let t = now();
    let left = 86_400 - t.rem_euclid(86_400);
    if left <= 60 {
        tokio::time::sleep(Duration::from_secs(left as u64 + 1)).await;
        return now();
    }
    t
}

/// A request body asking for one time range (both bounds inclusive) with a page size.
pub fn range(start: i64, end: i64, page_size: u32) -> Value {
    serde_json::json!({
        "meta": {"pagination": {"pageSize": page_size}},
        "data": [{"start": wire(start), "end": wire(end)}],
    })
}

/// A date in the past as `yyyy-MM-ddTHH:mm:ss+0000`.
pub fn wire(t: i64) -> String {
    dates::format_date(t)
}
