//! Running the real `viewlog` binary: one-shot commands with a timeout, long-running servers
//! whose readiness is polled, temporary databases, and a signing HTTP client.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use viewlog_protocol::{dates, signing};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_viewlog");

/// The longest a one-shot command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A command with an environment that cannot leak the developer's settings into the test:
/// no `VIEWLOG_*`, no `RUST_LOG`, no colours, and a working directory of `dir`.
pub fn clean_command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIEWLOG_") {
            cmd.env_remove(&key);
        }
    }
    // Talk to 127.0.0.1 directly even where a proxy is configured (Python's requests honours it).
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1").env("NO_PROXY", "127.0.0.1,localhost").current_dir(dir);
    cmd.env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// `viewlog` run in `dir`.
pub fn viewlog(dir: &Path) -> Command {
    clean_command(BIN, dir)
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the command failed; returns its standard error.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert!(
            !self.status.success(),
            "{} should have failed:\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.trim().is_empty(), "{} failed without saying why", self.what);
        &self.stderr
    }

    /// Standard output, parsed as JSON (the whole of it).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{}", self.what, self.stdout))
    }
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a command to completion (killed after a minute), feeding it `stdin`.
#[track_caller]
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Out {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {COMMAND_TIMEOUT:?}: {}", stderr.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), what }
}

/// The credentials of one key binding.
#[derive(Debug, Clone)]
pub struct Creds {
    pub app_id: String,
    pub app_key: String,
    pub access_key: String,
    pub secret_key: String,
}

/// A database in a temporary directory, administered with the real binary.
pub struct Db {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("viewlog.db");
        Db { dir, path }
    }

    /// `viewlog COMMAND --db PATH REST…` (`--db` is global), in the database's directory, so
    /// that the caller may append more arguments.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = viewlog(self.dir.path());
        cmd.args(&args[..1]).arg("--db").arg(&self.path).args(&args[1..]);
        cmd
    }

    /// Runs an admin command with `--json`; it must succeed and print JSON.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> Value {
        run(self.cmd(args).arg("--json"), None).ok().json()
    }

    /// Creates the account if needed, then a user with `role`, an application and a binding.
    #[track_caller]
    pub fn tenant(&self, account: &str, role: &str) -> Creds {
        let accounts = self.admin(&["account", "list"]);
        if !accounts.as_array().unwrap().iter().any(|a| a["name"] == account) {
            self.admin(&["account", "create", account]);
        }
        let email = format!("{}@{account}.example", uuid::Uuid::new_v4().simple());
        self.admin(&["user", "create", "--account", account, &email, "--role", role]);
        let app = self.admin(&["app", "create", "--account", account, "collector"]);
        let app_id = app["appId"].as_str().unwrap().to_owned();
        let key = self.admin(&["key", "create", "--user", &email, "--app-id", &app_id]);
        Creds {
            app_id,
            app_key: app["appKey"].as_str().unwrap().to_owned(),
            access_key: key["accessKey"].as_str().unwrap().to_owned(),
            secret_key: key["secretKey"].as_str().unwrap().to_owned(),
        }
    }

    /// `viewlog serve --db PATH --listen 127.0.0.1:0 ARGS`.
    pub async fn serve(&self, args: &[&str]) -> Server {
        let mut cmd = self.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.args(args);
        Server::serve(cmd).await
    }
}

/// Lines a child printed so far, collected by a reader thread.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(from: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                match line {
                    Ok(line) => sink.0.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
        });
        lines
    }

    /// Everything so far, one line each.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// The first line for which `f` answers something.
    pub fn find<T>(&self, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        self.0.lock().unwrap().iter().find_map(|l| f(l))
    }
}

/// Removes ANSI escape sequences (colours), in case a log line carries them.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of a "viewlog listening" log line, text or JSON.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    if !line.contains("viewlog listening") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(&line) {
        return v["fields"]["addr"].as_str()?.parse().ok();
    }
    let at = line.find("addr=")?;
    line[at + 5..].split_whitespace().next()?.trim_matches('"').parse().ok()
}

/// A running `viewlog serve` or `viewlog demo`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub addr: SocketAddr,
    pub stdout: Lines,
    pub stderr: Lines,
    pub http: reqwest::Client,
}

impl Server {
    /// Spawns a long-running command, draining its output into line buffers.
    pub fn spawn(cmd: &mut Command) -> (Child, Lines, Lines) {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        (child, stdout, stderr)
    }

    /// Starts `viewlog serve …`; ready once it logged its address and `/healthz` answers 200.
    pub async fn serve(mut cmd: Command) -> Server {
        let (mut child, stdout, stderr) = Self::spawn(&mut cmd);
        let addr = wait_for(&mut child, &stderr, START_TIMEOUT, "the \"viewlog listening\" log line", || {
            stderr.find(listening_addr)
        });
        Self::ready(child, addr, stdout, stderr).await
    }

    /// Waits for `/healthz` to answer 200.
    pub async fn ready(mut child: Child, addr: SocketAddr, stdout: Lines, stderr: Lines) -> Server {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let base_url = format!("http://{addr}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{base_url}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the server exited ({status}) before it was ready:\n{}", stderr.text());
            }
            assert!(Instant::now() < deadline, "/healthz did not answer 200 in time:\n{}", stderr.text());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Server { child, base_url, addr, stdout, stderr, http }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, at once: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A signed POST.
    pub async fn post(&self, creds: &Creds, path: &str, body: &Value) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base_url)).body(body.to_string());
        for (k, v) in signed_headers(creds, path) {
            req = req.header(k, v);
        }
        Reply::read(req.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"))).await
    }

    /// A signed get-view-logs.
    pub async fn view_logs(&self, creds: &Creds, body: &Value) -> Reply {
        self.post(creds, "/api/archive/get-view-logs", body).await
    }

    /// Every record of a query, following `next` to the end (at most 500 a page).
    pub async fn all_records(&self, creds: &Creds, query: &str, start: &str, end: &str) -> Vec<Value> {
        let mut records = Vec::new();
        let mut body = json!({"meta": {"pagination": {"pageSize": 500}},
                              "data": [{"query": query, "start": start, "end": end}]});
        loop {
            let reply = self.view_logs(creds, &body).await;
            reply.assert_ok();
            records.extend(reply.body["data"].as_array().unwrap().iter().cloned());
            match reply.body["meta"]["pagination"]["next"].as_str() {
                Some(token) => body = json!({"meta": {"pagination": {"pageSize": 500, "pageToken": token}}}),
                None => return records,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM first, so that a demo deletes its throwaway database.
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it answers, the child exits, or `timeout` passes.
#[track_caller]
pub fn wait_for<T>(child: &mut Child, log: &Lines, timeout: Duration, what: &str, f: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if let Some(status) = child.try_wait().unwrap() {
            // The reader threads may still hold the last lines.
            std::thread::sleep(Duration::from_millis(100));
            if let Some(v) = f() {
                return v;
            }
            panic!("the process exited ({status}) before {what}:\n{}", log.text());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no {what} within {timeout:?}:\n{}", log.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The four signed headers of PROTOCOL §3 (and a JSON content type), as the seed's sample
/// builds them: the date as `Tue, 24 Nov 2015 12:50:11 UTC`, a fresh GUID, the path signed.
pub fn signed_headers(creds: &Creds, path: &str) -> Vec<(String, String)> {
    let date = dates::format_header_date(now());
    let req_id = uuid::Uuid::new_v4().to_string();
    let sig = signing::sign(&creds.secret_key, &date, &req_id, path, &creds.app_key).unwrap();
    vec![
        ("Authorization".into(), format!("MC {}:{sig}", creds.access_key)),
        ("x-mc-app-id".into(), creds.app_id.clone()),
        ("x-mc-date".into(), date),
        ("x-mc-req-id".into(), req_id),
        ("Content-Type".into(), "application/json".into()),
    ]
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn read(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Reply { status, headers, body }
    }

    /// Panics unless HTTP 200 with `meta.status` 200 and an empty `fail`.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.status, 200, "{:#}", self.body);
        assert_eq!(self.body["meta"]["status"], 200, "{:#}", self.body);
        assert_eq!(self.body["fail"], json!([]), "{:#}", self.body);
    }

    /// The first error's code.
    pub fn code(&self) -> &str {
        self.body["fail"][0]["errors"][0]["code"].as_str().unwrap_or_default()
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Whether `s` is written `yyyy-MM-ddTHH:mm:ss+0000`.
pub fn is_mimecast_date(s: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd+0000";
    s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE).all(|(b, &want)| if want == b'd' { b.is_ascii_digit() } else { b == want })
        && dates::parse_body_date(s, dates::Bound::Start).is_ok()
}

/// Checks one get-view-logs record: exactly the nine documented fields, with their types.
#[track_caller]
pub fn assert_record(record: &Value) {
    let obj = record.as_object().unwrap_or_else(|| panic!("a record is not an object: {record}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["contentViewed", "discoveryCase", "from", "messageDate", "source", "subject", "to", "viewed", "viewer"],
        "{record}"
    );
    for field in ["from", "to", "viewer", "source", "subject"] {
        assert!(obj[field].is_string(), "{field} is not a string: {record}");
    }
    for field in ["contentViewed", "discoveryCase"] {
        assert!(obj[field].is_boolean(), "{field} is not a boolean: {record}");
    }
    for field in ["messageDate", "viewed"] {
        let date = obj[field].as_str().unwrap_or_else(|| panic!("{field} is not a string: {record}"));
        assert!(is_mimecast_date(date), "{field} {date:?} is not yyyy-MM-ddTHH:mm:ss+0000");
    }
}

/// `python3` with `requests`; a missing one fails the test (CI installs both).
#[track_caller]
pub fn require_python() {
    let probe = Command::new("python3").args(["-c", "import requests"]).output();
    match probe {
        Err(e) => panic!("python3 is required to run the seed's Python sample (CI's .ci/run installs it): {e}"),
        Ok(out) if !out.status.success() => panic!(
            "python3 lacks the `requests` module needed by the seed's Python sample \
             (install it with `python3 -m pip install requests`, as .ci/run does): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
}

/// Runs a Python script with `python3`; it must succeed.
#[track_caller]
pub fn run_python(dir: &Path, script: &str) -> Out {
    let path = dir.join(format!("sample-{}.py", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, script).unwrap();
    let out = run(clean_command("python3", dir).arg(&path), None);
    out.ok();
    out
}
