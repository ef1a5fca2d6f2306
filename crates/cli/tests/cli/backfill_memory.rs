//! A backfill of a million events runs in bounded memory: `viewlog sync --once` through 30 days
//! of a million events (pages of 500, 30-day windows) peaks under 100 MB of resident memory and
//! writes each event exactly once.
//!
//! The slowest test: in a debug build, seeding (`viewlog import` of a generated file) and the
//! sync take a few minutes.

use crate::support::*;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use viewlog_protocol::dates::format_date;

const EVENTS: usize = 1_000_000;
const DAYS: i64 = 30;
/// The bound on the collector's peak resident memory.
const MAX_RSS_BYTES: u64 = 100 * 1024 * 1024;
/// The longest a seeding or syncing step may take (a slow debug build on a busy machine).
const STEP_TIMEOUT: Duration = Duration::from_secs(900);

/// A million events over 30 days up to an hour ago (well before the sync's `--grace`), subjects
/// `backfill #N`, as NDJSON for `viewlog import`.
fn write_events(path: &Path, now: i64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let first = now - 3600 - DAYS * 86_400;
    for n in 0..EVENTS {
        let viewed = format_date(first + (n as i64 * DAYS * 86_400) / EVENTS as i64);
        writeln!(
            out,
            r#"{{"id":"b{n}","from":"s{}@globex.com","to":"legal@acme.example","viewer":"v{}@acme.example","messageDate":"{viewed}","viewed":"{viewed}","subject":"backfill #{n}"}}"#,
            n % 997,
            n % 31
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Runs a command to its end (up to `STEP_TIMEOUT`): its status, its peak resident memory in
/// bytes (wait4's `ru_maxrss`, and `VmHWM` sampled from /proc while it runs), its log and how
/// long it took.
fn run_measured(cmd: &mut Command) -> (std::process::ExitStatus, u64, Lines, Duration) {
    let started = Instant::now();
    let (child, _stdout, stderr) = Server::spawn(cmd);
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut peak_seen_kb = 0u64;
    loop {
        // SAFETY: wait4 on our own child, with valid pointers; WNOHANG returns at once.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        // The peak so far, from /proc.
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_seen_kb = peak_seen_kb.max(kb);
        }
        if started.elapsed() > STEP_TIMEOUT {
            // SAFETY: kill(2) on our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {STEP_TIMEOUT:?}:\n{}", stderr.text());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Reaped here: the Child is dropped without being waited for.
    drop(child);
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(status);
    // The two figures are accounted slightly differently: the larger is the peak.
    let peak_kb = (usage.ru_maxrss as u64).max(peak_seen_kb);
    (status, peak_kb * 1024, stderr, started.elapsed())
}

fn vm_hwm_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The number in `"subject":"backfill #N"`.
fn subject_number(line: &str) -> usize {
    const KEY: &str = "\"subject\":\"backfill #";
    let at = line.find(KEY).unwrap_or_else(|| panic!("no backfill subject: {line}")) + KEY.len();
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number in the subject: {line}"))
}

#[tokio::test]
async fn a_million_event_backfill_runs_in_bounded_memory_and_writes_each_event_once() {
    let total = Instant::now();
    let db = Db::new();
    db.admin(&["account", "create", "acme"]);
    let dir = db.dir.path();
    let now = now();

    let file = dir.join("million.ndjson");
    write_events(&file, now);
    let mut cmd = db.cmd(&["import"]);
    cmd.arg(&file).args(["--account", "acme", "--json"]);
    let (status, _, stderr, took) = run_measured(&mut cmd);
    assert!(status.success(), "the import failed ({status}):\n{}", stderr.text());
    std::fs::remove_file(&file).unwrap();
    eprintln!("seeded {EVENTS} events with viewlog import in {took:?}");

    let reader = db.tenant("acme", "View Log Reader");
    let server = db.serve(&["--rate-capacity", "100000", "--rate-refill-per-sec", "10000"]).await;
    let creds = crate::sync_support::credentials_file(dir, "reader.json", &server.base_url, &reader);
    let output = dir.join("backfill.ndjson");
    let mut cmd = viewlog(dir);
    cmd.args(["sync", "--once", "--since", "31d", "--page-size", "500", "--window", "30d", "--credentials"])
        .arg(&creds)
        .arg("--output")
        .arg(&output);
    let (status, peak, stderr, took) = run_measured(&mut cmd);
    assert!(status.success(), "the sync failed ({status}):\n{}", stderr.text());
    eprintln!("synced {EVENTS} events in {took:?}, peak RSS {} MiB", peak / (1024 * 1024));
    assert!(peak < MAX_RSS_BYTES, "the backfill peaked at {} MiB of resident memory", peak / (1024 * 1024));

    // Exactly a million lines, each event once; every 10,000th line checked in full.
    let mut seen = vec![false; EVENTS];
    let mut lines = 0usize;
    for line in BufReader::new(std::fs::File::open(&output).unwrap()).lines() {
        let line = line.unwrap();
        let n = subject_number(&line);
        assert!(n < EVENTS && !std::mem::replace(&mut seen[n], true), "event {n} written twice (or unknown)");
        if lines.is_multiple_of(10_000) {
            let (record, _) = crate::sync_support::parse_line(&line);
            assert_eq!(record.subject, format!("backfill #{n}"));
        }
        lines += 1;
    }
    assert_eq!(lines, EVENTS, "lines in the output");
    assert!(seen.iter().all(|s| *s), "an event is missing");
    eprintln!("the backfill test took {:?}", total.elapsed());
}
