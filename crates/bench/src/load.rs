//! The load generator: a closed loop of keep-alive HTTP/1.1 connections, each request signed
//! afresh, every answer checked, every latency recorded.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use viewlog_bench::stats::percentile;
use viewlog_protocol::{dates, signing};

/// The get-view-logs path.
pub const VIEW_LOGS: &str = "/api/archive/get-view-logs";
/// The ingest path.
pub const RECORD_VIEWS: &str = "/api/viewlog/record-views";
/// The health path.
pub const HEALTH: &str = "/healthz";

/// API 1.0 credentials, ready to sign with.
#[derive(Debug)]
pub struct Signer {
    app_id: String,
    app_key: String,
    access_key: String,
    secret: Vec<u8>,
    /// The `x-mc-date` of the current second, formatted once.
    date: RefCell<(i64, String)>,
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    viewlog_core::now()
}

impl Signer {
    /// A signer for these credentials.
    pub fn new(app_id: &str, app_key: &str, access_key: &str, secret_key: &str) -> Result<Signer> {
        let secret = signing::decode_secret_key(secret_key).map_err(|_| anyhow!("the secret key is not base64"))?;
        Ok(Signer {
            app_id: app_id.to_owned(),
            app_key: app_key.to_owned(),
            access_key: access_key.to_owned(),
            secret,
            date: RefCell::new((0, String::new())),
        })
    }

    /// Adds the four signed headers for a request to `path`: a fresh request id, the current date.
    fn sign(&self, path: &str, req: &mut Request<Full<Bytes>>) -> Result<()> {
        let now = unix_now();
        let date = {
            let mut cached = self.date.borrow_mut();
            if cached.0 != now {
                *cached = (now, dates::format_header_date(now));
            }
            cached.1.clone()
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let sig = signing::signature(&self.secret, &date, &request_id, path, &self.app_key);
        let h = req.headers_mut();
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("MC {}:{sig}", self.access_key))?);
        h.insert("x-mc-app-id", HeaderValue::from_str(&self.app_id)?);
        h.insert("x-mc-date", HeaderValue::from_str(&date)?);
        h.insert("x-mc-req-id", HeaderValue::from_str(&request_id)?);
        Ok(())
    }
}

/// Where the server listens.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    /// The server at `addr`.
    pub fn new(addr: SocketAddr) -> Result<Target> {
        Ok(Target { addr, host: HeaderValue::from_str(&addr.to_string())? })
    }

    /// A signed POST of `body` to `path`.
    pub fn signed(&self, signer: &Signer, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        signer.sign(path, &mut req)?;
        Ok(req)
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<Request<Full<Bytes>>> {
        Ok(Request::builder()
            .method(Method::GET)
            .uri(HEALTH)
            .header(HOST, self.host.clone())
            .body(Full::new(Bytes::new()))?)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A signed POST whose answer must be HTTP 200 with an empty `fail`; its JSON.
    pub async fn call(&mut self, target: &Target, signer: &Signer, path: &str, body: &Value) -> Result<Value> {
        let req = target.signed(signer, path, Bytes::from(serde_json::to_vec(body)?))?;
        let (status, bytes) = self.send(req).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])))?;
        if status != StatusCode::OK || value["fail"].as_array().is_none_or(|f| !f.is_empty()) {
            bail!("{path} answered HTTP {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(500)]));
        }
        Ok(value)
    }
}

/// Whether an answer of a signed call succeeded: HTTP 200 and `"fail":[]`. Strings in the
/// JSON escape their quotes, so the last `"fail":` of the text is the envelope's.
pub fn check_envelope(status: StatusCode, body: &[u8]) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    const KEY: &[u8] = b"\"fail\":";
    let at = body.windows(KEY.len()).rposition(|w| w == KEY).ok_or("no fail in the answer")?;
    let rest = &body[at + KEY.len()..];
    let rest = rest.iter().skip_while(|b| b.is_ascii_whitespace()).copied().take(8).collect::<Vec<u8>>();
    let empty = rest.starts_with(b"[]") || {
        let inner: Vec<u8> = rest.iter().filter(|b| !b.is_ascii_whitespace()).copied().collect();
        inner.starts_with(b"[]")
    };
    if empty {
        Ok(())
    } else {
        Err(format!("fail not empty: {}", String::from_utf8_lossy(&body[at..body.len().min(at + 300)])))
    }
}

/// What one request of a load looks like.
pub enum Work<'a> {
    /// `GET /healthz`; HTTP 200 is success.
    Health,
    /// Signed POSTs to `path` cycling through `bodies`; success is 200 with an empty `fail`.
    Signed {
        /// The credentials.
        signer: &'a Signer,
        /// The path.
        path: &'static str,
        /// The bodies, used in turn.
        bodies: &'a [Bytes],
    },
}

impl Work<'_> {
    fn request(&self, target: &Target, i: usize) -> Result<Request<Full<Bytes>>> {
        match self {
            Work::Health => target.health(),
            Work::Signed { signer, path, bodies } => target.signed(signer, path, bodies[i % bodies.len()].clone()),
        }
    }

    fn check(&self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        match self {
            Work::Health if status == StatusCode::OK => Ok(()),
            Work::Health => Err(format!("HTTP {status}")),
            Work::Signed { .. } => check_envelope(status, body),
        }
    }
}

/// What a load measured, over the measuring window only (after the warm-up).
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Successful requests completed within the window.
    pub ok: u64,
    /// Failed requests (any time, warm-up included).
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// The window's length in seconds.
    pub secs: f64,
    /// Latencies of the window's successful requests, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    /// A latency percentile in nanoseconds.
    pub fn pct(&self, q: f64) -> f64 {
        percentile(&self.latencies, q).map(|n| n as f64).unwrap_or(f64::NAN)
    }

    /// `None` if nothing failed, else a description of the failures.
    pub fn error(&self) -> Option<String> {
        if self.errors == 0 && self.ok > 0 {
            return None;
        }
        if self.errors == 0 {
            return Some("no request completed".into());
        }
        Some(format!(
            "{} of {} requests failed (first: {})",
            self.errors,
            self.errors + self.ok,
            self.first_error.as_deref().unwrap_or("?")
        ))
    }
}

#[derive(Default)]
struct WorkerOut {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<u64>,
}

impl WorkerOut {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

/// Runs `connections` closed loops against `target` for `warmup + duration`; counts what
/// completes in the last `duration`.
pub async fn run(
    target: &Target,
    work: &Work<'_>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> LoadResult {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let workers = (0..connections.max(1)).map(|w| worker(target, work, w, connections.max(1), measure_from, end));
    let outs = futures::future::join_all(workers).await;
    let mut result = LoadResult { secs: duration.as_secs_f64(), ..Default::default() };
    for o in outs {
        result.ok += o.ok;
        result.errors += o.errors;
        if result.first_error.is_none() {
            result.first_error = o.first_error;
        }
        result.latencies.extend(o.latencies);
    }
    result.latencies.sort_unstable();
    result
}

async fn worker(
    target: &Target,
    work: &Work<'_>,
    index: usize,
    stride: usize,
    measure_from: Instant,
    end: Instant,
) -> WorkerOut {
    let mut out = WorkerOut::default();
    let mut conn: Option<Conn> = None;
    let mut i = index;
    while Instant::now() < end {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(target.addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    out.fail(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let req = match work.request(target, i) {
            Ok(r) => r,
            Err(e) => {
                out.fail(format!("building a request: {e:#}"));
                break;
            }
        };
        i += stride;
        let sent = Instant::now();
        let answer = c.send(req).await;
        let done = Instant::now();
        let in_window = done >= measure_from && done <= end;
        match answer {
            Ok((status, body)) => match work.check(status, &body) {
                Ok(()) if in_window => {
                    out.ok += 1;
                    out.latencies.push((done - sent).as_nanos() as u64);
                }
                Ok(()) => {}
                Err(e) => out.fail(e),
            },
            Err(e) => {
                conn = None;
                out.fail(format!("transport: {e:#}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_check() {
        assert!(check_envelope(StatusCode::OK, br#"{"meta":{"status":200},"data":[],"fail":[]}"#).is_ok());
        assert!(check_envelope(StatusCode::OK, br#"{"data":[{"subject":"\"fail\":[]"}],"fail":[ ]}"#).is_ok());
        assert!(check_envelope(StatusCode::OK, br#"{"data":[],"fail":[{"errors":[]}]}"#).is_err());
        assert!(check_envelope(StatusCode::OK, br#"{"data":[{"subject":"\"fail\":[]"}],"fail":[{"x":1}]}"#).is_err());
        assert!(check_envelope(StatusCode::UNAUTHORIZED, br#"{"fail":[]}"#).is_err());
        assert!(check_envelope(StatusCode::OK, b"{}").is_err());
    }
}
