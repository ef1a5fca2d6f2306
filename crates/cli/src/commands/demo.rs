//! `viewlog demo`: a throwaway server with realistic data and credentials ready to paste.

use crate::settings::{load_file, server_config, ServeArgs};
use crate::with_store;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use viewlog_core::admin::Admin;
use viewlog_core::synth::Generator;
use viewlog_core::vault::{MasterKey, Vault};
use viewlog_core::{permissions, Secret, Service};
use viewlog_server::{AppState, BoundServer};
use viewlog_store::Store;

/// `viewlog demo` flags.
#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Also write the credentials as JSON to this file (mode 0600).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// How many view events to generate, spread over the last 90 days.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// The random seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The database to seed [default: a fresh throwaway file, deleted on exit].
    #[arg(long)]
    db: Option<String>,
}

/// What `--credentials` writes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The server's base URL.
    pub base_url: String,
    /// The application id.
    pub app_id: String,
    /// The application key.
    pub app_key: String,
    /// The access key.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// The administrator's address.
    pub email: String,
    /// The administrator's password.
    pub password: String,
    /// An API 2.0 client id (for `POST /oauth/token`).
    pub client_id: String,
    /// The API 2.0 client secret.
    pub client_secret: String,
}

const DEMO_ACCOUNT: &str = "demo";
const DEMO_DOMAIN: &str = "acme.example";

/// Seeds a store and serves it until SIGINT or SIGTERM.
pub async fn run(cmd: DemoCmd) -> Result<()> {
    let (config, log_format) =
        server_config(&ServeArgs { listen: Some(cmd.listen), ..Default::default() }, &load_file(None)?)?;
    crate::logging::init(&log_format);
    let tempdir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = cmd.db.clone().unwrap_or_else(|| tempdir.path().join("demo.db").display().to_string());
    let settings = crate::settings::StoreSettings {
        master_key_file: tempdir.path().join("demo.key"),
        db,
        sqlite_readers: 4,
        sqlite_cache_kib: None,
        serving: true,
    };
    let master = MasterKey::generate();
    let vault = Vault::new(&master);
    with_store!(settings, |store| {
        let creds = seed(store.clone(), vault.clone(), cmd.events, cmd.seed).await?;
        let service = Service::new(store, vault, config.core.clone());
        let server = BoundServer::bind(AppState { service, config: config.clone() })
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = server.local_addr()?;
        let creds = Credentials { base_url: format!("http://{addr}"), ..creds };
        if let Some(path) = &cmd.credentials {
            write_credentials(path, &creds)?;
        }
        print_banner(&creds);
        server.serve(viewlog_server::shutdown_signal()).await?;
        Ok(())
    })
}

async fn seed<S: Store>(store: Arc<S>, vault: Vault, events: usize, seed: u64) -> Result<Credentials> {
    let admin = Admin::new(store.clone(), vault);
    let account = admin.create_account(DEMO_ACCOUNT).await?;
    let email = format!("admin@{DEMO_DOMAIN}");
    let password = viewlog_core::credentials::new_app_key();
    admin.create_user(DEMO_ACCOUNT, &email, Some(permissions::FULL_ADMINISTRATOR), Some(&password)).await?;
    let app = admin.create_application(DEMO_ACCOUNT, "viewlog demo").await?;
    let binding = admin.create_binding(&email, &app.application.app_id, None).await?;
    let api_client = admin.create_api_client(DEMO_ACCOUNT, "viewlog demo", permissions::FULL_ADMINISTRATOR).await?;

    let now = viewlog_core::now();
    let mut generator = Generator::new(seed, DEMO_DOMAIN, now - 90 * 86_400, now);
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(events as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("generating {bar:40} {pos}/{len} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut left = events;
    while left > 0 {
        let n = left.min(10_000);
        let batch = generator.batch(n);
        store.insert_events(account.id, &batch).await?;
        bar.inc(n as u64);
        left -= n;
    }
    bar.finish_and_clear();
    Ok(Credentials {
        base_url: String::new(),
        app_id: app.application.app_id.clone(),
        app_key: app.app_key.expose().to_owned(),
        access_key: binding.binding.access_key.clone(),
        secret_key: binding.secret_key.expose().to_owned(),
        email,
        password: Secret::expose(&password).to_owned(),
        client_id: api_client.client.client_id.clone(),
        client_secret: api_client.client_secret.expose().to_owned(),
    })
}

fn write_credentials(path: &std::path::Path, creds: &Credentials) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // Written to a temporary name and renamed, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(serde_json::to_string_pretty(creds)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The seed's Python sample, unmodified but for its variables and the request body's values.
pub fn python_sample(creds: &Credentials, start: &str, end: &str) -> String {
    format!(
        r#"import base64
import hashlib
import hmac
import uuid
import datetime
import requests
# Setup required variables
base_url = "{base_url}"
uri = "/api/archive/get-view-logs"
url = base_url + uri
access_key = "{access_key}"
secret_key = "{secret_key}"
app_id = "{app_id}"
app_key = "{app_key}"
# Generate request header values
request_id = str(uuid.uuid4())
hdr_date = datetime.datetime.utcnow().strftime("%a, %d %b %Y %H:%M:%S") + " UTC"
# DataToSign is used in hmac_sha1
dataToSign = ':'.join([hdr_date, request_id, uri, app_key])
# Create the HMAC SHA1 of the Base64 decoded secret key for the Authorization header
hmac_sha1 = hmac.new(base64.b64decode(secret_key), dataToSign.encode(), digestmod=hashlib.sha1).digest()
# Use the HMAC SHA1 value to sign the hdrDate + ":" requestId + ":" + URI + ":" + appkey
sig = base64.b64encode(hmac_sha1).rstrip()
# Create request headers
headers = {{
'Authorization': 'MC ' + access_key + ':' + sig.decode(),
'x-mc-app-id': app_id,
'x-mc-date': hdr_date,
'x-mc-req-id': request_id,
'Content-Type': 'application/json'
}}
payload = {{
'data': [
{{
'query': '{query}',
'start': '{start}',
'end': '{end}'
}}
]
}}
r = requests.post(url=url, headers=headers, data=str(payload))
print(r.text)
"#,
        base_url = creds.base_url,
        access_key = creds.access_key,
        secret_key = creds.secret_key,
        app_id = creds.app_id,
        app_key = creds.app_key,
        query = DEMO_DOMAIN,
        start = start,
        end = end,
    )
}

fn print_banner(creds: &Credentials) {
    let now = viewlog_core::now();
    let start = viewlog_protocol::dates::format_date(now - 7 * 86_400);
    let end = viewlog_protocol::dates::format_date(now);
    println!("viewlog demo is serving at {}", creds.base_url);
    println!();
    println!("  account       {DEMO_ACCOUNT}");
    println!("  email         {}", creds.email);
    println!("  password      {}", creds.password);
    println!("  app id        {}", creds.app_id);
    println!("  app key       {}", creds.app_key);
    println!("  access key    {}", creds.access_key);
    println!("  secret key    {}", creds.secret_key);
    println!("  client id     {}  (API 2.0: POST /oauth/token)", creds.client_id);
    println!("  client secret {}", creds.client_secret);
    println!();
    println!("The seed's Python sample with these values (save it as sample.py and run python3 sample.py):");
    println!();
    println!("{}", python_sample(creds, &start, &end));
    println!("Press Ctrl-C to stop; the demo database is deleted on exit.");
}
