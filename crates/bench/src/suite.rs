//! The measurements and the table they make.

use crate::load::{self, Conn, LoadResult, Signer, Work, RECORD_VIEWS, VIEW_LOGS};
use crate::seed::{self, SeedInfo, YEAR_END, YEAR_START};
use crate::server::{clean_env, Server, CLIENT_CPU, SERVER_CPU};
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use viewlog_bench::procfs::{self, Machine};
use viewlog_bench::pysample::{self, PagerValues};
use viewlog_bench::report::{fmt_count, fmt_mib, fmt_ms, fmt_ratio, Analysis, Met, PerRun, Report, Row};
use viewlog_bench::stats::median;
use viewlog_bench::workload;
use viewlog_protocol::dates;

/// What a benchmark run is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Events in the main store.
    pub events: u64,
    /// Whether to measure a 10,000,000-event store too.
    pub ten_million: bool,
    /// Runs of every measurement.
    pub runs: usize,
    /// The measured length of each load.
    pub duration: Duration,
    /// The warm-up before each load.
    pub warmup: Duration,
    /// Connections of the throughput loads.
    pub connections: usize,
    /// Events `viewlog import` imports.
    pub import_events: u64,
    /// Batches of 10,000 events record-views receives per run.
    pub ingest_batches: usize,
    /// The seeded databases' cache.
    pub data_dir: PathBuf,
    /// Working copies and scratch files.
    pub work_dir: PathBuf,
    /// The workspace root.
    pub root: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// The release `viewlog` binary.
    pub viewlog: PathBuf,
    /// The parts measured.
    pub parts: Vec<Part>,
}

/// A part of the benchmark that `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// floor, page, search, deep (and the 10M rows).
    Reads,
    /// `viewlog logs` beside the Python sample.
    Export,
    /// record-views (backfill and live) with the freshness probes.
    Ingest,
    /// `viewlog import`.
    Import,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Part; 4] = [Part::Reads, Part::Export, Part::Ingest, Part::Import];
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => Ok(()),
        }
    }
}

/// When the events a record-views load sends were viewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    /// Spread over the seeded year, in no order: a backfill of history.
    Backfill,
    /// The last minutes before the load, each batch later than the one before: a live feed.
    Live,
}

impl Times {
    fn key(self, what: &str) -> String {
        match self {
            Times::Backfill => what.to_owned(),
            Times::Live => format!("live {what}"),
        }
    }
}

/// Events per record-views batch.
const INGEST_BATCH: usize = 10_000;
/// Concurrent record-views requests.
const INGEST_CONNECTIONS: usize = 2;
/// Events the export row pages through (about).
const EXPORT_EVENTS: u64 = 100_000;
/// The page size of the export row.
const EXPORT_PAGE_SIZE: u32 = 500;
/// The page the deep row reads.
const DEEP_PAGE: usize = 1_000;
/// The search terms tried for "few matches", rarest first: the first with 1 to 99 matches in
/// the month (a page's worth would let the query stop early) is used.
const RARE_TERMS: [&str; 8] = ["4242", "1729", "8675", "3141", "424", "172", "867", "314"];
/// The term that matches many events: one outside correspondent's domain.
const COMMON_TERM: &str = "globex";

fn label(events: u64) -> String {
    match events {
        n if n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// One measured quantity of one run.
#[derive(Debug, Clone)]
struct Sample {
    value: f64,
    shown: String,
    error: Option<String>,
}

/// Every quantity of every run.
#[derive(Debug, Default)]
struct Samples {
    keys: Vec<String>,
    runs: Vec<BTreeMap<String, Sample>>,
}

impl Samples {
    fn put(&mut self, run: usize, key: &str, value: f64, shown: String, error: Option<String>) {
        if !self.keys.iter().any(|k| k == key) {
            self.keys.push(key.to_owned());
        }
        while self.runs.len() <= run {
            self.runs.push(BTreeMap::new());
        }
        let shown = match &error {
            Some(e) => format!("ERRORS: {}", truncate(e, 160)),
            None => shown,
        };
        eprintln!("  run {} · {key}: {shown}", run + 1);
        self.runs[run].insert(key.to_owned(), Sample { value, shown, error });
    }

    fn fail(&mut self, run: usize, key: &str, error: String) {
        self.put(run, key, f64::NAN, String::new(), Some(error));
    }

    /// Records a load: requests/s, and with `latency` its p50 and p99.
    fn load(&mut self, run: usize, name: &str, r: &LoadResult, conns: usize, latency: bool) {
        let err = r.error();
        self.put(run, &format!("{name} req/s"), r.rps(), format!("{} ({conns} conn)", fmt_count(r.rps())), err.clone());
        if latency {
            self.put(run, &format!("{name} p50"), r.pct(0.50), fmt_ms(r.pct(0.50)), err.clone());
            self.put(run, &format!("{name} p99"), r.pct(0.99), fmt_ms(r.pct(0.99)), err);
        }
    }

    fn values(&self, key: &str) -> Result<Vec<f64>, String> {
        let mut out = Vec::new();
        for run in &self.runs {
            match run.get(key) {
                Some(Sample { error: Some(e), .. }) => return Err(e.clone()),
                Some(s) => out.push(s.value),
                None => {}
            }
        }
        if out.is_empty() {
            return Err(format!("{key} was not measured"));
        }
        Ok(out)
    }

    fn med(&self, key: &str) -> Result<f64, String> {
        median(&self.values(key)?).ok_or_else(|| format!("{key} was not measured"))
    }

    fn max(&self, key: &str) -> Result<f64, String> {
        self.values(key).map(|v| v.into_iter().fold(f64::NAN, f64::max))
    }

    /// The median over runs of `f(a, b)`, each pair taken from the same run.
    fn med_ratio(&self, a: &str, b: &str, f: impl Fn(f64, f64) -> f64) -> Result<f64, String> {
        self.values(a)?;
        self.values(b)?;
        let ratios: Vec<f64> = self.runs.iter().filter_map(|r| Some(f(r.get(a)?.value, r.get(b)?.value))).collect();
        median(&ratios).ok_or_else(|| format!("{a} and {b} were never measured in the same run"))
    }

    fn per_run(&self) -> PerRun {
        let runs: Vec<String> = (1..=self.runs.len()).map(|i| format!("run {i}")).collect();
        let lines = self
            .keys
            .iter()
            .map(|k| {
                (k.clone(), self.runs.iter().map(|r| r.get(k).map(|s| s.shown.clone()).unwrap_or_default()).collect())
            })
            .collect();
        PerRun { runs, lines }
    }
}

/// A store under test, with its server running and its request bodies ready.
struct Dataset {
    label: String,
    events: u64,
    server: Server,
    signer: Signer,
    page: Bytes,
    common: Bytes,
    rare: Bytes,
    rare_term: String,
    deep_first: Bytes,
    deep_second: Bytes,
    deep_far: Bytes,
    deep_page: usize,
    rss_start: Option<u64>,
    month_total: u64,
    common_count: u64,
    rare_count: u64,
    year_total: u64,
}

fn query_body(start: i64, end: i64, page_size: u32, query: Option<&str>) -> Value {
    let mut item = json!({"start": dates::format_date(start), "end": dates::format_date(end)});
    if let Some(q) = query {
        item["query"] = Value::String(q.to_owned());
    }
    json!({"meta": {"pagination": {"pageSize": page_size}}, "data": [item]})
}

fn token_body(token: &str) -> Value {
    json!({"meta": {"pagination": {"pageToken": token}}})
}

fn bytes(v: &Value) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(v)?))
}

fn total(v: &Value) -> u64 {
    v["meta"]["pagination"]["totalCount"].as_u64().unwrap_or(0)
}

fn records(v: &Value) -> usize {
    v["data"].as_array().map(Vec::len).unwrap_or(0)
}

fn next(v: &Value) -> Option<String> {
    v["meta"]["pagination"]["next"].as_str().map(str::to_owned)
}

impl Dataset {
    async fn start(cfg: &Config, db: &Path, info: &SeedInfo, terms: Option<(&str, &str)>) -> Result<(Dataset, String)> {
        let label = label(info.events);
        eprintln!("preparing the {label} store: a working copy, then the server");
        let copy = seed::working_copy(db, &cfg.work_dir)?;
        let log = cfg.work_dir.join(format!("server-{label}.log"));
        let server = Server::start(&cfg.viewlog, &copy, log).await?;
        let rss_start = procfs::rss_anon(server.pid()).ok().flatten();
        let signer = Signer::new(&info.app_id, &info.app_key, &info.access_key, &info.secret_key)?;
        let target = server.target.clone();
        let mut c = Conn::connect(target.addr).await?;
        let (m_start, m_end) = workload::month()?;

        let page = c.call(&target, &signer, VIEW_LOGS, &query_body(m_start, m_end, 100, None)).await?;
        let month_total = total(&page);
        if records(&page) != 100.min(month_total as usize) {
            bail!("a page of the month held {} records of {month_total}", records(&page));
        }
        let count = |q: String| query_body(m_start, m_end, 1, Some(&q));
        let rare = match terms {
            Some((_, rare)) => rare.to_owned(),
            None => {
                let mut chosen = None;
                for t in RARE_TERMS {
                    let n = total(&c.call(&target, &signer, VIEW_LOGS, &count(t.to_owned())).await?);
                    if (1..100).contains(&n) {
                        chosen = Some(t);
                        break;
                    }
                }
                chosen.unwrap_or(RARE_TERMS[RARE_TERMS.len() - 1]).to_owned()
            }
        };
        let common_count = total(&c.call(&target, &signer, VIEW_LOGS, &count(COMMON_TERM.to_owned())).await?);
        let rare_count = total(&c.call(&target, &signer, VIEW_LOGS, &count(rare.clone())).await?);

        // Deep: follow `next` from page 1 of the year to page 1,000 (once; tokens are reusable).
        let walk = Instant::now();
        let first = query_body(YEAR_START, YEAR_END, 100, None);
        let mut answer = c.call(&target, &signer, VIEW_LOGS, &first).await?;
        let year_total = total(&answer);
        let mut second = None;
        let mut far = None;
        let mut page_no = 1;
        while page_no < DEEP_PAGE {
            let Some(token) = next(&answer) else { break };
            page_no += 1;
            if page_no == 2 {
                second = Some(token.clone());
            }
            far = Some(token.clone());
            if page_no == DEEP_PAGE {
                break;
            }
            answer = c.call(&target, &signer, VIEW_LOGS, &token_body(&token)).await?;
        }
        let (Some(second), Some(far)) = (second, far) else {
            bail!("the year's range of the {label} store has a single page");
        };
        let check = c.call(&target, &signer, VIEW_LOGS, &token_body(&far)).await?;
        if records(&check) == 0 {
            bail!("page {page_no} of the year came back empty");
        }
        eprintln!("  walked to page {page_no} of the year in {:.1} s", walk.elapsed().as_secs_f64());

        let ds = Dataset {
            label,
            events: info.events,
            signer,
            page: bytes(&query_body(m_start, m_end, 100, None))?,
            common: bytes(&query_body(m_start, m_end, 100, Some(COMMON_TERM)))?,
            rare: bytes(&query_body(m_start, m_end, 100, Some(&rare)))?,
            rare_term: rare.clone(),
            deep_first: bytes(&first)?,
            deep_second: bytes(&token_body(&second))?,
            deep_far: bytes(&token_body(&far))?,
            deep_page: page_no,
            rss_start,
            month_total,
            common_count,
            rare_count,
            year_total,
            server,
        };
        Ok((ds, rare))
    }

    fn key(&self, what: &str) -> String {
        format!("{} {what}", self.label)
    }

    fn signed<'a>(&'a self, bodies: &'a [Bytes]) -> Work<'a> {
        Work::Signed { signer: &self.signer, path: VIEW_LOGS, bodies }
    }
}

/// Samples the server's RssAnon every 50 ms on a thread of its own until stopped; the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max: Option<u64> = None;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(Some(v)) = procfs::rss_anon(pid) {
                    max = Some(max.map_or(v, |m| m.max(v)));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            max
        });
        RssSampler { stop, thread }
    }

    fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// Waits (up to 10 s) until the server is idle: work a load left queued when its connections
/// closed must not be counted against the next load.
async fn settle(pid: u32) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let Some(a) = procfs::cpu_seconds(Some(pid)) else { return };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(b) = procfs::cpu_seconds(Some(pid)) else { return };
        if b - a < 0.005 {
            return;
        }
    }
}

/// One load on a settled server, with the CPU time both sides used during it.
async fn measure(cfg: &Config, ds: &Dataset, work: &Work<'_>, conns: usize) -> (LoadResult, CpuMark) {
    settle(ds.server.pid()).await;
    let before = CpuMark::now(ds.server.pid());
    let r = load::run(&ds.server.target, work, conns, cfg.warmup, cfg.duration).await;
    (r, before)
}

/// The read rows of one run on one store.
async fn reads(cfg: &Config, ds: &Dataset, run: usize, s: &mut Samples, floor: bool) {
    let c = cfg.connections;
    let one = |b: &Bytes| std::slice::from_ref(b).to_vec();
    match procfs::rss_anon(ds.server.pid()) {
        Ok(Some(v)) => s.put(run, &ds.key("RssAnon before the run"), v as f64, fmt_mib(v as f64), None),
        other => s.fail(run, &ds.key("RssAnon before the run"), format!("reading /proc: {other:?}")),
    }
    if floor {
        let (r, before) = measure(cfg, ds, &Work::Health, c).await;
        s.load(run, &ds.key("floor"), &r, c, false);
        cpu_shares(s, run, &ds.key("floor CPU used"), &before);
    }
    let page = one(&ds.page);
    let sampler = RssSampler::start(ds.server.pid());
    let (r, before) = measure(cfg, ds, &ds.signed(&page), c).await;
    let rss = sampler.finish();
    s.load(run, &ds.key("page"), &r, c, false);
    cpu_shares(s, run, &ds.key("page CPU used"), &before);
    match rss {
        Some(v) => s.put(run, &ds.key("RssAnon under page load"), v as f64, fmt_mib(v as f64), None),
        None => s.fail(run, &ds.key("RssAnon under page load"), "no sample of /proc/PID/status".into()),
    }
    let (r, _) = measure(cfg, ds, &ds.signed(&page), 1).await;
    s.load(run, &ds.key("page 1-conn"), &r, 1, true);
    let (r, _) = measure(cfg, ds, &ds.signed(&one(&ds.common)), 1).await;
    s.load(run, &ds.key("search many"), &r, 1, true);
    let (r, _) = measure(cfg, ds, &ds.signed(&one(&ds.rare)), 1).await;
    s.load(run, &ds.key("search few"), &r, 1, true);
    // Deep paging at 1 connection: the time of one request. (At 32 connections page 1 of a
    // year, which counts the year, can queue past the server's query deadline.)
    let (r, _) = measure(cfg, ds, &ds.signed(&one(&ds.deep_first)), 1).await;
    s.load(run, &ds.key("deep page 1"), &r, 1, true);
    let (r, _) = measure(cfg, ds, &ds.signed(&one(&ds.deep_second)), 1).await;
    s.load(run, &ds.key("deep page 2"), &r, 1, true);
    let (r, _) = measure(cfg, ds, &ds.signed(&one(&ds.deep_far)), 1).await;
    s.load(run, &ds.key(&format!("deep page {}", ds.deep_page)), &r, 1, true);
}

/// The CPU time the server and this process had used at one moment.
struct CpuMark {
    at: Instant,
    server_pid: u32,
    server: Option<f64>,
    client: Option<f64>,
}

impl CpuMark {
    fn now(server_pid: u32) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server_pid,
            server: procfs::cpu_seconds(Some(server_pid)),
            client: procfs::cpu_seconds(None),
        }
    }
}

/// Records the share of one CPU the server and the load generator used since `before`
/// (warm-up included). A server well under 100% with the load generator near it would mean
/// the load generator set the pace; both under 100% means other processes took the CPUs.
fn cpu_shares(s: &mut Samples, run: usize, key: &str, before: &CpuMark) {
    let after = CpuMark::now(before.server_pid);
    let wall = before.at.elapsed().as_secs_f64();
    let share = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall).filter(|_| wall > 0.0);
    if let (Some(a), Some(b)) = (share(before.server, after.server), share(before.client, after.client)) {
        s.put(run, &format!("{key} (server)"), a, format!("{:.0}%", a * 100.0), None);
        s.put(run, &format!("{key} (client)"), b, format!("{:.0}%", b * 100.0), None);
    }
}

/// Runs a client process (on the client CPU, inherited), counting the lines it writes.
fn timed_lines(cmd: &mut Command) -> Result<(u64, f64)> {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn()?;
    let mut stdout = child.stdout.take().context("the child's stdout")?;
    let mut stderr = child.stderr.take().context("the child's stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child.wait()?;
    let secs = started.elapsed().as_secs_f64();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{status}: {}", err.trim().chars().take(500).collect::<String>());
    }
    Ok((lines, secs))
}

/// The export row of one run: `viewlog logs` and the Python sample over the same range.
async fn export(
    cfg: &Config,
    ds: &Dataset,
    info: &SeedInfo,
    run: usize,
    s: &mut Samples,
    python: Option<&str>,
) -> Result<()> {
    let t = &ds.server.target;
    // A range ending with the year that holds about EXPORT_EVENTS events.
    let days = ((366.0 * EXPORT_EVENTS as f64 / ds.year_total.max(1) as f64).ceil() as i64).clamp(1, 366);
    let start = (YEAR_END + 1 - days * 86_400).max(YEAR_START);
    let (start_s, end_s) = (dates::format_date(start), dates::format_date(YEAR_END));
    let mut c = Conn::connect(t.addr).await?;
    let expected = total(&c.call(t, &ds.signer, VIEW_LOGS, &query_body(start, YEAR_END, 1, None)).await?);
    let base_url = format!("http://{}", t.addr);

    let mut cmd = Command::new(&cfg.viewlog);
    clean_env(&mut cmd)
        .args(["logs", "--format", "ndjson", "--page-size", &EXPORT_PAGE_SIZE.to_string()])
        .args(["--start", &start_s, "--end", &end_s])
        .env("VIEWLOG_BASE_URL", &base_url)
        .env("VIEWLOG_APP_ID", &info.app_id)
        .env("VIEWLOG_APP_KEY", &info.app_key)
        .env("VIEWLOG_ACCESS_KEY", &info.access_key)
        .env("VIEWLOG_SECRET_KEY", &info.secret_key)
        .env("VIEWLOG_PROFILES", cfg.work_dir.join("no-profiles.toml"));
    let key = ds.key("export viewlog logs rows/s");
    match timed_lines(&mut cmd) {
        Ok((lines, secs)) if lines == expected => s.put(
            run,
            &key,
            lines as f64 / secs,
            format!("{} ({lines} rows, {secs:.2} s)", fmt_count(lines as f64 / secs)),
            None,
        ),
        Ok((lines, _)) => s.fail(run, &key, format!("wrote {lines} rows of {expected}")),
        Err(e) => s.fail(run, &key, format!("viewlog logs: {e:#}")),
    }

    let key = ds.key("export Python sample rows/s");
    let Some(sample) = python else {
        s.fail(run, &key, "python3 with the requests package is not available".into());
        return Ok(());
    };
    let values = PagerValues {
        base_url: &base_url,
        access_key: &info.access_key,
        secret_key: &info.secret_key,
        app_id: &info.app_id,
        app_key: &info.app_key,
        start: &start_s,
        end: &end_s,
        page_size: EXPORT_PAGE_SIZE,
    };
    let script = pysample::pager(sample, &values).map_err(|e| anyhow!(e))?;
    let path = cfg.work_dir.join("export_sample.py");
    write_private(&path, script.as_bytes())?;
    let mut cmd = Command::new("python3");
    cmd.arg(&path);
    match timed_lines(&mut cmd) {
        Ok((lines, secs)) if lines == expected => s.put(
            run,
            &key,
            lines as f64 / secs,
            format!("{} ({lines} rows, {secs:.2} s)", fmt_count(lines as f64 / secs)),
            None,
        ),
        Ok((lines, _)) => s.fail(run, &key, format!("wrote {lines} rows of {expected}")),
        Err(e) => s.fail(run, &key, format!("python3: {e:#}")),
    }
    let _ = std::fs::remove_file(&path);
    s.put(run, &ds.key("export range days"), days as f64, format!("{days} days, {expected} events"), None);
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

/// The seed's sample (the project's vendored copy, compiled in).
fn seed_sample(_root: &Path) -> String {
    pysample::SEED_SAMPLE.to_owned()
}

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import requests"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One freshness probe: a single event with a unique word in its subject, then queries for
/// that word until it is found. Seconds from the acknowledgement to the finding, and how many
/// queries it took (1: the first query after the acknowledgement found it, so the time is
/// that query's latency, not a delay in indexing).
async fn probe(ds: &Dataset, n: u64) -> Result<(f64, u32)> {
    let t = &ds.server.target;
    let word = format!("freshprobe{:016x}{n}", rand::random::<u64>());
    let viewed = YEAR_START + (rand::random::<u64>() % (YEAR_END - YEAR_START) as u64) as i64;
    let event = json!({
        "id": word, "from": "probe@globex.com", "to": "staff@acme.example", "viewer": "admin@acme.example",
        "source": "Message Tracking", "contentViewed": true, "discoveryCase": false,
        "messageDate": dates::format_date(viewed - 3600), "viewed": dates::format_date(viewed),
        "subject": format!("Freshness check {word}"),
    });
    let mut c = Conn::connect(t.addr).await?;
    let ack = c.call(t, &ds.signer, RECORD_VIEWS, &json!({"data": [event]})).await?;
    let acked = Instant::now();
    if ack["data"][0]["inserted"].as_u64() != Some(1) {
        bail!("the probe was not stored: {ack}");
    }
    let day = viewed.div_euclid(86_400) * 86_400;
    let query = query_body(day, day + 86_399, 1, Some(&word));
    let mut queries = 0;
    loop {
        let answer = c.call(t, &ds.signer, VIEW_LOGS, &query).await?;
        queries += 1;
        if records(&answer) > 0 {
            return Ok((acked.elapsed().as_secs_f64(), queries));
        }
        if acked.elapsed() > Duration::from_secs(30) {
            bail!("not found 30 s after its acknowledgement");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Folds the late events the record-views loads left in the (stopped) server's store into its
/// time-ordered table, as its compaction would minutes later: how many moved, in how many
/// seconds. Run in this process once the servers are stopped.
async fn fold_left(db: &Path) -> Result<(u64, f64)> {
    let store = viewlog_store_sqlite::SqliteStore::open(db, viewlog_store_sqlite::SqliteOptions::default()).await?;
    let account = viewlog_store::Store::account_by_name(&store, seed::ACCOUNT).await?.context("the bench account")?;
    let started = Instant::now();
    let moved = store.fold_late(account.id).await?;
    Ok((moved, started.elapsed().as_secs_f64()))
}

/// Seconds of viewing time each batch of the live record-views load covers.
const LIVE_BATCH_SECS: i64 = 30;

/// A record-views row of one run; with backfill times, freshness probes run during the load.
async fn ingest(cfg: &Config, ds: &Dataset, run: usize, s: &mut Samples, times: Times) -> Result<()> {
    let t = &ds.server.target;
    let seed = 1_000 + run as u64 + if times == Times::Live { 500 } else { 0 };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let live_start = now - LIVE_BATCH_SECS * cfg.ingest_batches as i64;
    let mut backfill = viewlog_core::synth::Generator::new(seed, seed::DOMAIN, YEAR_START, YEAR_END);
    let mut bodies = Vec::with_capacity(cfg.ingest_batches);
    for b in 0..cfg.ingest_batches {
        let batch = match times {
            Times::Backfill => backfill.batch(INGEST_BATCH),
            Times::Live => {
                let from = live_start + LIVE_BATCH_SECS * b as i64;
                viewlog_core::synth::Generator::new(seed + b as u64, seed::DOMAIN, from, from + LIVE_BATCH_SECS)
                    .batch(INGEST_BATCH)
            }
        };
        let prefix = if times == Times::Live { "lv" } else { "rv" };
        let data: Vec<Value> = batch
            .into_iter()
            .map(|mut e| {
                e.event_id = format!("{prefix}{run}-{b}-{}", e.event_id);
                seed::event_json(&e)
            })
            .collect();
        bodies.push(bytes(&json!({ "data": data }))?);
    }
    let next_batch = Cell::new(0usize);
    let finished = Cell::new(false);
    let started = Instant::now();
    let senders = (0..INGEST_CONNECTIONS).map(|_| async {
        let mut c = Conn::connect(t.addr).await?;
        let mut inserted = 0u64;
        loop {
            let i = next_batch.get();
            if i >= bodies.len() {
                return Ok::<u64, anyhow::Error>(inserted);
            }
            next_batch.set(i + 1);
            let req = t.signed(&ds.signer, RECORD_VIEWS, bodies[i].clone())?;
            let (status, body) = c.send(req).await?;
            load::check_envelope(status, &body).map_err(|e| anyhow!(e))?;
            let v: Value = serde_json::from_slice(&body)?;
            inserted += v["data"][0]["inserted"].as_u64().unwrap_or(0);
        }
    });
    let batches = async {
        let results = futures::future::join_all(senders).await;
        let elapsed = started.elapsed().as_secs_f64();
        finished.set(true);
        (results, elapsed)
    };
    let probes = async {
        let mut found = Vec::new();
        let mut n = 0;
        while times == Times::Backfill && !(finished.get() && n >= 3) {
            found.push(probe(ds, n).await);
            n += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        found
    };
    let ((results, elapsed), found) = tokio::join!(batches, probes);
    let mut inserted = 0;
    let mut error = None;
    for r in results {
        match r {
            Ok(n) => inserted += n,
            Err(e) => error = error.or(Some(format!("{e:#}"))),
        }
    }
    let expected = (cfg.ingest_batches * INGEST_BATCH) as u64;
    if error.is_none() && inserted != expected {
        error = Some(format!("{inserted} of {expected} events stored"));
    }
    let eps = inserted as f64 / elapsed;
    s.put(
        run,
        &ds.key(&times.key("record-views events/s")),
        eps,
        format!("{} ({inserted} events in {elapsed:.2} s)", fmt_count(eps)),
        error,
    );
    // What the server keeps once a bulk ingest is over (its large bodies freed).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let key = ds.key(&times.key("RssAnon after the record-views load"));
    match procfs::rss_anon(ds.server.pid()) {
        Ok(Some(v)) => s.put(run, &key, v as f64, fmt_mib(v as f64), None),
        other => s.fail(run, &key, format!("reading /proc: {other:?}")),
    }
    if times == Times::Live {
        return Ok(());
    }
    let mut secs = Vec::new();
    let mut first_query = 0;
    let mut probe_error = None;
    for f in found {
        match f {
            Ok((v, queries)) => {
                secs.push(v);
                first_query += u32::from(queries == 1);
            }
            Err(e) => probe_error = probe_error.or(Some(format!("{e:#}"))),
        }
    }
    let worst = secs.iter().copied().fold(0.0, f64::max);
    let shown = format!("{worst:.3} s worst of {}", secs.len());
    s.put(run, &ds.key("freshness worst s"), worst, shown, probe_error.clone());
    let med = median(&secs).unwrap_or(f64::NAN);
    s.put(run, &ds.key("freshness median s"), med, format!("{med:.3} s"), probe_error);
    s.put(run, &ds.key("freshness probes"), secs.len() as f64, secs.len().to_string(), None);
    s.put(
        run,
        &ds.key("freshness probes found by the first query"),
        f64::from(first_query),
        first_query.to_string(),
        None,
    );
    Ok(())
}

/// The import row of one run: `viewlog import` into a fresh database, on the server's CPU.
async fn import(cfg: &Config, file: &Path, run: usize, s: &mut Samples, key: &str, cpus: &str) -> Result<()> {
    let db = cfg.work_dir.join(format!("import-run{}.db", run + 1));
    seed::empty_db(&db).await?;
    let started = Instant::now();
    let mut cmd = Command::new("taskset");
    let output = clean_env(&mut cmd)
        .arg("-c")
        .arg(cpus)
        .arg(&cfg.viewlog)
        .arg("import")
        .arg(file)
        .args(["--account", seed::ACCOUNT, "--json", "--db"])
        .arg(&db)
        .arg("--master-key-file")
        .arg(seed::with_suffix(&db, ".key"))
        .stdin(Stdio::null())
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    seed::remove_db(&db)?;
    if !output.status.success() {
        s.fail(
            run,
            key,
            format!("viewlog import: {}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()),
        );
        return Ok(());
    }
    let summary: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("viewlog import printed {}", String::from_utf8_lossy(&output.stdout)))?;
    let inserted = summary["inserted"].as_u64().unwrap_or(0);
    let error = (inserted != cfg.import_events).then(|| format!("stored {inserted} of {} events", cfg.import_events));
    let eps = cfg.import_events as f64 / secs;
    s.put(run, key, eps, format!("{} ({} events in {secs:.2} s)", fmt_count(eps), cfg.import_events), error);
    Ok(())
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(root).env("GIT_OPTIONAL_LOCKS", "0").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn commit(root: &Path) -> String {
    match git(root, &["rev-parse", "--short=12", "HEAD"]) {
        Some(head) => {
            // The report this run replaces does not count: it is what the run writes.
            let dirty = git(root, &["status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{head} (with uncommitted changes in the work tree)")
            } else {
                head
            }
        }
        None => "unknown (not a git work tree)".into(),
    }
}

/// Runs every measurement and makes the report.
pub async fn run(cfg: &Config, datasets: &[(PathBuf, SeedInfo)], import_file: &Path) -> Result<Report> {
    std::fs::create_dir_all(&cfg.work_dir)?;
    let started = Instant::now();
    let (main_db, main_info) = datasets.first().context("no dataset")?;
    let (mut main, rare) = Dataset::start(cfg, main_db, main_info, None).await?;
    let mut others = Vec::new();
    for (db, info) in &datasets[1..] {
        others.push(Dataset::start(cfg, db, info, Some((COMMON_TERM, &rare))).await?.0);
    }
    let mut s = Samples::default();
    let measures = |part: Part| cfg.parts.contains(&part);
    for run in (0..cfg.runs).filter(|_| measures(Part::Reads)) {
        eprintln!("run {}/{}: reads", run + 1, cfg.runs);
        reads(cfg, &main, run, &mut s, true).await;
        for ds in &others {
            reads(cfg, ds, run, &mut s, false).await;
        }
    }
    let python = python_available().then(|| seed_sample(&cfg.root));
    for run in (0..cfg.runs).filter(|_| measures(Part::Export)) {
        eprintln!("run {}/{}: export", run + 1, cfg.runs);
        export(cfg, &main, main_info, run, &mut s, python.as_deref()).await?;
    }
    for run in (0..cfg.runs).filter(|_| measures(Part::Ingest)) {
        for times in [Times::Backfill, Times::Live] {
            eprintln!("run {}/{}: ingest ({times:?})", run + 1, cfg.runs);
            if let Err(e) = ingest(cfg, &main, run, &mut s, times).await {
                s.fail(run, &main.key(&times.key("record-views events/s")), format!("{e:#}"));
            }
        }
    }
    // The servers are not used by the import runs; stopped, the compaction each runs in the
    // background (of the days the ingest runs wrote, minutes later) cannot share CPU 0 with an
    // import.
    main.server.stop();
    for ds in &mut others {
        ds.server.stop();
    }
    if measures(Part::Ingest) {
        let copy = cfg.work_dir.join(main_db.file_name().unwrap_or_default());
        match fold_left(&copy).await {
            Ok((moved, secs)) => s.put(
                0,
                &main.key("fold of the late events left s"),
                secs,
                format!("{} events in {secs:.2} s", fmt_count(moved as f64)),
                None,
            ),
            Err(e) => s.fail(0, &main.key("fold of the late events left s"), format!("{e:#}")),
        }
    }
    let import_key = format!("import {} events/s", label(cfg.import_events));
    let import_one_cpu = format!("{import_key} on CPU {SERVER_CPU}");
    for run in (0..cfg.runs).filter(|_| measures(Part::Import)) {
        eprintln!("run {}/{}: import", run + 1, cfg.runs);
        import(cfg, import_file, run, &mut s, &import_key, &format!("{SERVER_CPU},{CLIENT_CPU}")).await?;
        import(cfg, import_file, run, &mut s, &import_one_cpu, &SERVER_CPU.to_string()).await?;
    }
    let logs: Vec<PathBuf> = std::iter::once(&main).chain(&others).map(|d| d.server.log.clone()).collect();
    drop(others);
    let main_label = main.label.clone();
    let rows = rows(cfg, &main, &s, &import_key).into_iter().filter(|r| cfg.parts.contains(&part_of(&r.row))).collect();
    let notes = notes(cfg, &main, &rare, &logs);
    drop(main);
    for (db, _) in datasets {
        let copy = cfg.work_dir.join(db.file_name().unwrap_or_default());
        let _ = seed::remove_db(&copy);
    }
    eprintln!("measured in {:.0} s", started.elapsed().as_secs_f64());
    let settings = vec![
        (
            "Events".to_owned(),
            format!(
                "{} ({main_label}) viewed over 2024, ingested in an order unrelated to time",
                fmt_count(cfg.events as f64)
            ),
        ),
        (
            "10M rows".to_owned(),
            if cfg.ten_million { "measured".into() } else { "not measured (pass --ten-million)".into() },
        ),
        ("Runs".to_owned(), cfg.runs.to_string()),
        (
            "Parts".to_owned(),
            if cfg.parts.len() == Part::ALL.len() {
                "all".to_owned()
            } else {
                let parts: Vec<String> = cfg.parts.iter().map(Part::to_string).collect();
                format!("only {} (`--only`): the other rows are left out", parts.join(", "))
            },
        ),
        (
            "Each load".to_owned(),
            format!(
                "{:?} warm-up, then {:?} measured; closed loop, keep-alive HTTP/1.1, every request signed afresh",
                cfg.warmup, cfg.duration
            ),
        ),
        ("Connections".to_owned(), format!("{} for throughput, 1 for latency", cfg.connections)),
    ];
    Ok(Report {
        machine: Machine::detect(),
        date: dates::format_date(viewlog_core::now()),
        commit: commit(&cfg.root),
        command: cfg.command.clone(),
        settings,
        rows,
        notes,
        per_run: s.per_run(),
        analysis: Analysis::parse(
            &std::fs::read_to_string(cfg.root.join("crates/bench/analysis.md")).unwrap_or_default(),
        ),
    })
}

/// A row's verdict from its figures: errors first, then the target.
fn verdict(results: &[&Result<f64, String>], ok: impl FnOnce() -> bool) -> Met {
    if results.iter().any(|r| r.is_err()) {
        Met::Errors
    } else {
        Met::from_bool(ok())
    }
}

fn show(r: &Result<f64, String>, f: impl Fn(f64) -> String) -> String {
    match r {
        Ok(v) => f(*v),
        Err(e) => format!("errors: {}", truncate(e, 100)),
    }
}

/// A ratio, or a dash where a figure it needs failed (the figure's cell says why).
fn show_ratio(r: &Result<f64, String>, f: impl Fn(f64) -> String) -> String {
    r.as_ref().map(|v| f(*v)).unwrap_or_default()
}

/// At most `n` characters of `text`, with `…` if cut.
fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(n).collect::<String>())
    }
}

/// `; CPU used: server 99%, load generator 40%` from the medians of a load's CPU shares, if measured.
fn cpu_note(s: &Samples, key: &str) -> String {
    match (s.med(&format!("{key} (server)")), s.med(&format!("{key} (client)"))) {
        (Ok(a), Ok(b)) => format!("; CPU used: server {:.0}%, load generator {:.0}%", a * 100.0, b * 100.0),
        _ => String::new(),
    }
}

/// The part that measures the row named `row`.
fn part_of(row: &str) -> Part {
    if row.starts_with("export") {
        Part::Export
    } else if row.starts_with("ingest: viewlog import") {
        Part::Import
    } else if row.starts_with("ingest") {
        Part::Ingest
    } else {
        Part::Reads
    }
}

fn rows(cfg: &Config, m: &Dataset, s: &Samples, import_key: &str) -> Vec<Row> {
    let k = |what: &str| m.key(what);
    let rate = |v: f64| format!("{} req/s", fmt_count(v));
    let mut rows = Vec::new();
    let conns = cfg.connections;

    let floor = s.med(&k("floor req/s"));
    rows.push(Row {
        row: "floor".into(),
        figure: format!(
            "{}{}",
            show(&floor, |v| format!("{} (GET /healthz, {conns} conn)", rate(v))),
            cpu_note(s, &k("floor CPU used"))
        ),
        baseline: String::new(),
        ratio: String::new(),
        target: "reference for page".into(),
        met: if floor.is_err() { Met::Errors } else { Met::Info },
    });

    let page = s.med(&k("page req/s"));
    let page_p50 = s.med(&k("page 1-conn p50"));
    let page_p99 = s.med(&k("page 1-conn p99"));
    let page_ratio = s.med_ratio(&k("page req/s"), &k("floor req/s"), |a, b| a / b);
    rows.push(Row {
        row: format!("page ({} events, one month, pageSize 100)", m.label),
        figure: format!(
            "{}; {} p50, {} p99 (1 conn){}",
            show(&page, |v| format!("{} ({conns} conn)", rate(v))),
            show(&page_p50, fmt_ms),
            show(&page_p99, fmt_ms),
            cpu_note(s, &k("page CPU used"))
        ),
        baseline: show(&floor, |v| format!("floor {}", rate(v))),
        ratio: show_ratio(&page_ratio, |r| format!("{:.1}% of floor", r * 100.0)),
        target: "≥ 30% of floor".into(),
        met: verdict(&[&page, &page_p50, &page_p99, &page_ratio], || page_ratio.as_ref().is_ok_and(|r| *r >= 0.30)),
    });

    for (name, term, count) in
        [("many", COMMON_TERM.to_owned(), m.common_count), ("few", m.rare_term.clone(), m.rare_count)]
    {
        let p50 = s.med(&k(&format!("search {name} p50")));
        let p99 = s.med(&k(&format!("search {name} p99")));
        let ratio = s.med_ratio(&k(&format!("search {name} p99")), &k("page 1-conn p99"), |a, b| a / b);
        rows.push(Row {
            row: format!(
                "search, {name} matches (`{term}`: {} of the month's {} events)",
                fmt_count(count as f64),
                fmt_count(m.month_total as f64)
            ),
            figure: format!("{} p50, {} p99 (1 conn)", show(&p50, fmt_ms), show(&p99, fmt_ms)),
            baseline: show(&page_p99, |v| format!("page without query: {} p99", fmt_ms(v))),
            ratio: show_ratio(&ratio, |r| format!("{} of page p99", fmt_ratio(r))),
            target: "p99 ≤ 10 ms".into(),
            met: verdict(&[&p50, &p99], || p99.as_ref().is_ok_and(|v| *v <= 10e6)),
        });
    }

    let far_key = k(&format!("deep page {} p50", m.deep_page));
    let far = s.med(&far_key);
    let far_p99 = s.med(&k(&format!("deep page {} p99", m.deep_page)));
    for (base_name, base_what, note) in [
        ("page 1", "deep page 1", " (page 1 also counts the year's total)"),
        ("page 2", "deep page 2", " (both follow a token)"),
    ] {
        let base_key = k(&format!("{base_what} p50"));
        let base = s.med(&base_key);
        let base_p99 = s.med(&k(&format!("{base_what} p99")));
        let ratio = s.med_ratio(&far_key, &base_key, |a, b| a / b);
        rows.push(Row {
            row: format!("deep: page {} vs {base_name} of the year{note}", fmt_count(m.deep_page as f64)),
            figure: format!(
                "page {}: {} p50, {} p99 (1 conn)",
                fmt_count(m.deep_page as f64),
                show(&far, fmt_ms),
                show(&far_p99, fmt_ms)
            ),
            baseline: format!("{base_name}: {} p50, {} p99", show(&base, fmt_ms), show(&base_p99, fmt_ms)),
            ratio: show_ratio(&ratio, |r| format!("{} the p50 of {base_name}", fmt_ratio(r))),
            target: format!("≤ 1.2× {base_name}"),
            met: verdict(&[&far, &base, &ratio], || ratio.as_ref().is_ok_and(|r| *r <= 1.2)),
        });
    }

    for (times, what) in [
        (Times::Backfill, "backfill: viewed times spread over the year"),
        (Times::Live, "live: viewed in the minutes before"),
    ] {
        let rv = s.med(&k(&times.key("record-views events/s")));
        let fold = s.med(&k("fold of the late events left s"));
        let folded = match (times, fold) {
            (Times::Backfill, Ok(secs)) => format!(
                "; the late events the loads left were folded into the time-ordered table afterwards in {secs:.2} s \
                 (see the raw figures)"
            ),
            _ => String::new(),
        };
        rows.push(Row {
            row: format!("ingest: record-views, {what}"),
            figure: show(&rv, |v| {
                format!(
                    "{} events/s (batches of {}, {INGEST_CONNECTIONS} conn){folded}",
                    fmt_count(v),
                    fmt_count(INGEST_BATCH as f64)
                )
            }),
            baseline: String::new(),
            ratio: String::new(),
            target: "≥ 50,000 events/s".into(),
            met: verdict(&[&rv], || rv.as_ref().is_ok_and(|v| *v >= 50_000.0)),
        });
    }
    for (key, cpus) in [
        (import_key.to_owned(), format!("both CPUs: {SERVER_CPU} and {CLIENT_CPU}")),
        (format!("{import_key} on CPU {SERVER_CPU}"), format!("one CPU: {SERVER_CPU}")),
    ] {
        let imp = s.med(&key);
        rows.push(Row {
            row: format!("ingest: viewlog import, {cpus}"),
            figure: show(&imp, |v| {
                format!("{} events/s ({} events, NDJSON, fresh db)", fmt_count(v), fmt_count(cfg.import_events as f64))
            }),
            baseline: String::new(),
            ratio: String::new(),
            target: "≥ 150,000 events/s".into(),
            met: verdict(&[&imp], || imp.as_ref().is_ok_and(|v| *v >= 150_000.0)),
        });
    }
    let worst = s.max(&k("freshness worst s"));
    let fresh_med = s.med(&k("freshness median s"));
    let probes: f64 = s.values(&k("freshness probes")).map(|v| v.iter().sum()).unwrap_or(0.0);
    let first: f64 = s.values(&k("freshness probes found by the first query")).map(|v| v.iter().sum()).unwrap_or(0.0);
    rows.push(Row {
        row: "ingest: findable by query".into(),
        figure: format!(
            "worst {}, median {} ({probes} probes during the record-views load; {first} found by the first query \
             after the acknowledgement, so their time is that query's latency under the ingest load)",
            show(&worst, |v| format!("{v:.3} s")),
            show(&fresh_med, |v| format!("{v:.3} s"))
        ),
        baseline: String::new(),
        ratio: String::new(),
        target: "every event ≤ 5 s after acknowledgement".into(),
        met: verdict(&[&worst], || worst.as_ref().is_ok_and(|v| *v <= 5.0)),
    });

    let ours = s.med(&k("export viewlog logs rows/s"));
    let py = s.med(&k("export Python sample rows/s"));
    let ratio = s.med_ratio(&k("export viewlog logs rows/s"), &k("export Python sample rows/s"), |a, b| a / b);
    rows.push(Row {
        row: format!("export: viewlog logs --format ndjson, pageSize {EXPORT_PAGE_SIZE}"),
        figure: show(&ours, |v| format!("{} rows/s", fmt_count(v))),
        baseline: show(&py, |v| format!("the seed's Python sample, paging: {} rows/s", fmt_count(v))),
        ratio: show_ratio(&ratio, |r| format!("{} Python", fmt_ratio(r))),
        target: "≥ 3× Python and ≥ 100,000 rows/s".into(),
        met: verdict(&[&ours, &py, &ratio], || {
            ratio.as_ref().is_ok_and(|r| *r >= 3.0) && ours.as_ref().is_ok_and(|v| *v >= 100_000.0)
        }),
    });

    let rss = s.max(&k("RssAnon under page load"));
    let idle = s.med(&k("RssAnon before the run"));
    let after_ingest = s.max(&k("RssAnon after the record-views load"));
    let after_live = s.max(&k(&Times::Live.key("RssAnon after the record-views load")));
    rows.push(Row {
        row: "memory: server RssAnon".into(),
        figure: show(&rss, |v| format!("{} max under the page load ({conns} conn)", fmt_mib(v))),
        baseline: format!(
            "idle: {} just started, {} before each run (median); 1 s after each record-views load (largest of \
             the runs, which follow one another on the same server): {} after the backfill, {} after the live feed",
            m.rss_start.map(|v| fmt_mib(v as f64)).unwrap_or_else(|| "?".into()),
            show(&idle, fmt_mib),
            show(&after_ingest, fmt_mib),
            show(&after_live, fmt_mib)
        ),
        ratio: String::new(),
        target: "≤ 64 MiB under load".into(),
        met: verdict(&[&rss], || rss.as_ref().is_ok_and(|v| *v <= 64.0 * 1024.0 * 1024.0)),
    });

    let big = "10M";
    if !cfg.ten_million {
        for what in ["page", "search, many matches", "search, few matches", "deep"] {
            rows.push(Row {
                row: format!("10M: {what}"),
                figure: "not run (pass --ten-million)".into(),
                baseline: String::new(),
                ratio: String::new(),
                target: format!("within 1.5× of {}", m.label),
                met: Met::NotRun,
            });
        }
        return rows;
    }
    let bk = |what: &str| format!("{big} {what}");
    let rate_of = |v: f64| format!("{} req/s", fmt_count(v));
    let deep_of = |v: f64| format!("page 1,000: p50 {}", fmt_ms(v));
    let p99_of = |v: f64| format!("p99 {}", fmt_ms(v));
    /// One 10M row: its name, the 10M and small-store keys, whether the figure is a rate, its format.
    struct Pair<'a> {
        what: &'static str,
        big: String,
        small: String,
        is_rate: bool,
        fmt: &'a dyn Fn(f64) -> String,
    }
    let pairs = [
        Pair { what: "page", big: bk("page req/s"), small: k("page req/s"), is_rate: true, fmt: &rate_of },
        Pair {
            what: "search, many matches",
            big: bk("search many p99"),
            small: k("search many p99"),
            is_rate: false,
            fmt: &p99_of,
        },
        Pair {
            what: "search, few matches",
            big: bk("search few p99"),
            small: k("search few p99"),
            is_rate: false,
            fmt: &p99_of,
        },
        Pair {
            what: "deep",
            big: bk(&format!("deep page {DEEP_PAGE} p50")),
            small: far_key.clone(),
            is_rate: false,
            fmt: &deep_of,
        },
    ];
    for Pair { what, big: big_key, small: small_key, is_rate, fmt } in pairs {
        let b = s.med(&big_key);
        let small = s.med(&small_key);
        // How many times slower on 10M: a rate falls, a latency rises.
        let ratio = if is_rate {
            s.med_ratio(&small_key, &big_key, |a, b| a / b)
        } else {
            s.med_ratio(&big_key, &small_key, |a, b| a / b)
        };
        rows.push(Row {
            row: format!("10M: {what}"),
            figure: show(&b, fmt),
            baseline: show(&small, |v| format!("{}: {}", m.label, fmt(v))),
            ratio: show_ratio(&ratio, |r| format!("{} the time", fmt_ratio(r))),
            target: format!("≤ 1.5× {}", m.label),
            met: verdict(&[&b, &small, &ratio], || ratio.as_ref().is_ok_and(|r| *r <= 1.5)),
        });
    }
    rows
}

fn notes(cfg: &Config, m: &Dataset, rare: &str, logs: &[PathBuf]) -> Vec<String> {
    vec![
        format!(
            "**Store.** {} events of one account, generated by `viewlog_core::synth::Generator` (a small organisation's \
             archive) with `viewed` uniform over 2024 and inserted in batches of 10,000 in an order unrelated to time \
             (out-of-order ingest), directly through `SqliteStore`, then compacted with `Store::compact` as a server \
             does to the days ingest has left alone for five minutes (each day of the text index merged into one \
             segment; the batches' late events, those viewed over an hour before the newest stored, folded into the \
             time-ordered table: the store folds them as it goes as well, once they reach a quarter of the others). \
             The seeded database is cached under \
             `target/bench-data/`; each benchmark works on a fresh copy of it, synced to disk and then read through once (into the page cache, where a running server's store is) before the measurements start. The server is the release `viewlog serve` \
             with the rate limit raised out of the way (`--rate-capacity 1000000000 --rate-refill-per-sec 1000000000`) \
             and every other setting at its default.",
            fmt_count(m.events as f64)
        ),
        format!(
            "**floor / page.** floor: `GET /healthz`. page: signed `get-view-logs` for June 2024 ({} events), \
             pageSize 100, the same body every time (a fresh date and request id per request); {} connections for \
             requests/s, 1 for the latencies. Every answer is checked (HTTP 200 and an empty `fail`); a load with \
             failures is shown as errors, not as a speed.",
            fmt_count(m.month_total as f64),
            cfg.connections
        ),
        format!(
            "**search.** The page request with `query`: `{COMMON_TERM}` (an outside correspondent's domain, {} matches \
             in the month: the page fills early) and `{rare}` (matching {} in the month: fewer than a page, so the \
             whole month must be searched).",
            fmt_count(m.common_count as f64),
            fmt_count(m.rare_count as f64)
        ),
        format!(
            "**deep.** The year's range ({} events), pageSize 100: the page-{} token was obtained once by following \
             `next` from page 1, then that same token was sent again and again over 1 connection (the figures are \
             the time of one request), against page 1 (no token: it also counts the year's total) and page 2 (a \
             token, like page {}). At {} connections page 1 of a year can queue past the server's query deadline \
             (10 s), so the comparison is made one request at a time.",
            fmt_count(m.year_total as f64),
            fmt_count(m.deep_page as f64),
            fmt_count(m.deep_page as f64),
            cfg.connections
        ),
        format!(
            "**ingest.** record-views: {} batches of {} new events per run, posted over {INGEST_CONNECTIONS} \
             connections into the benchmark's store, twice: *backfill*, viewed times spread over the seeded year \
             (every batch lands all over the store), then *live*, each batch viewed within {LIVE_BATCH_SECS} s, \
             batch after batch, ending at the time of the run (what an archive reporting views as they happen \
             sends); events/s = events stored ÷ time from the first request to the last acknowledgement. During \
             the backfill load a probe every 200 ms posts one event with a unique word in its subject and, from its \
             acknowledgement, queries that word every 2 ms until found. The backfill's events are late (viewed over \
             an hour before the store's newest): the store appends them to a table of their own and folds them into \
             the time-ordered table once they reach a quarter of its events (during a run, when the runs before \
             left enough) or once the account stops taking them; after the last run, with the servers stopped, the \
             late events still left are folded and timed (`SqliteStore::fold_late`). import: `viewlog import` of an NDJSON file \
             of {} generated events (in no time order) into a fresh database, timed as a process (both of its \
             passes), twice per run: free to use both CPUs (it reads with two threads), then pinned to CPU 0 like \
             the server. The servers are stopped before the import runs, which do not use them.",
            cfg.ingest_batches,
            fmt_count(INGEST_BATCH as f64),
            fmt_count(cfg.import_events as f64)
        ),
        format!(
            "**export.** A range ending 2024-12-31 holding about {} events: `viewlog logs --format ndjson \
             --page-size {EXPORT_PAGE_SIZE}` timed as a process, and the seed's Python sample \
             (`crates/cli/tests/fixtures/seed_sample.py`, its variables filled in and its request looped over \
             `next`, writing each record as a JSON line, `requests.post` without a session as the sample does) over \
             the same range in the same run, both on CPU 1; each one's lines are counted and must equal the range's \
             total.",
            fmt_count(EXPORT_EVENTS as f64)
        ),
        "**memory.** `RssAnon` (private resident memory) of the server from `/proc/PID/status` every 50 ms during \
         the page load; the row shows the largest sample of any run. `VmRSS` would count mapped database pages. \
         The baseline also shows what the server keeps 1 s after each run's record-views load (the ingest runs \
         come after all the read runs, so they do not raise the figure)."
            .to_owned(),
        format!(
            "**10M.** With `--ten-million`, a second server on a 10,000,000-event store (same generator, same \
             terms) is measured in the same runs, right after the {} store, and compared run by run.",
            m.label
        ),
        format!(
            "Server logs: {}.",
            logs.iter()
                .map(|l| format!("`{}`", l.strip_prefix(&cfg.root).unwrap_or(l).display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]
}
