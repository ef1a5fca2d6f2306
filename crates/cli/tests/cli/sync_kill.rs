//! `viewlog sync` to an NDJSON file, SIGKILLed at random points and restarted many times while
//! events keep arriving (some of them late): once caught up, the file holds every event exactly
//! once. Also against a server that injects 429s, 500s, slow answers and dropped connections.

use crate::support::*;
use crate::sync_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use viewlog_protocol::records::ViewLogRecord;

/// Kill-and-restart cycles.
const CYCLES: usize = 25;
/// Events already there when the collector first starts, spread over the last two hours: enough
/// that catching up takes the first runs some 150 pages, so that kills land inside windows also
/// when the server answers a page in a millisecond (600 were too few once it did).
const BACKLOG: u64 = 3000;

struct Scenario {
    faults: Option<&'static str>,
    /// `--page-size`: small, so that a window takes many pages and kills land inside it.
    page_size: &'static str,
    /// `--max-bytes`: rotation is exercised too.
    rotate: bool,
}

/// The collector's flags, the same for every run (the first run starts at `--since`, later ones
/// resume from the checkpoint).
fn sync_args(creds: &Path, output: &Path, scenario: &Scenario, once: bool) -> Vec<String> {
    let mut args: Vec<String> = ["sync", "--credentials"].iter().map(|s| s.to_string()).collect();
    args.push(creds.display().to_string());
    args.push("--output".into());
    args.push(output.display().to_string());
    for a in [
        "--since",
        "2h",
        "--page-size",
        scenario.page_size,
        "--grace",
        "0",
        "--overlap",
        "15m",
        "--window",
        "20m",
        "--interval",
        "1s",
        "--max-attempts",
        "30",
    ] {
        args.push(a.into());
    }
    if scenario.rotate {
        args.extend(["--max-bytes".into(), "65536".into()]);
    }
    if once {
        args.push("--once".into());
    }
    args
}

/// What the checkpoint said right after a kill.
#[derive(Default, Debug)]
struct KillStats {
    /// Killed with a window open and a page token saved: pages of the window were left.
    mid_window: usize,
    /// Killed with more in the file than the checkpoint accounts for: a page was cut off.
    torn: usize,
    /// Runs that ended by themselves (`--once` caught up) before the kill.
    finished: usize,
}

fn note_kill(stats: &mut KillStats, checkpoint: &Path, output: &Path) {
    let Ok(text) = std::fs::read_to_string(checkpoint) else { return };
    let cp: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("a torn checkpoint ({e}): {text}"));
    if cp["window"].is_object() && cp["pageToken"].is_string() {
        stats.mid_window += 1;
    }
    let saved = cp["output"]["len"].as_u64().unwrap_or(0);
    if std::fs::metadata(output).map(|m| m.len()).unwrap_or(0) > saved {
        stats.torn += 1;
    }
}

/// Ingests batches of events viewed now, and some viewed minutes ago (late), until told to stop.
async fn keep_ingesting(
    base_url: String,
    creds: Creds,
    run_id: String,
    first: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, ViewLogRecord> {
    let client = library_client(&base_url, &creds);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ingested = BTreeMap::new();
    let mut n = first;
    while !stop.load(Ordering::SeqCst) {
        let now = now();
        let batch: Vec<ViewLogRecord> = (0..rng.gen_range(1..=15))
            .map(|_| {
                n += 1;
                let viewed = if rng.gen_bool(0.2) { now - rng.gen_range(30..300) } else { now };
                tokened_record(&run_id, n, viewed)
            })
            .collect();
        ingest(&client, &batch).await;
        for r in batch {
            ingested.insert(token_of(&r.subject).to_owned(), r);
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..150))).await;
    }
    ingested
}

async fn kill_and_restart(scenario: Scenario) {
    let started = Instant::now();
    let seed: u64 = rand::random();
    eprintln!("sync kill test: seed {seed}, faults {:?}", scenario.faults);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let mut serve_args = vec!["--rate-capacity", "100000", "--rate-refill-per-sec", "10000"];
    if let Some(f) = scenario.faults {
        serve_args.extend(["--faults", f]);
    }
    let server = db.serve(&serve_args).await;
    let dir = db.dir.path();
    let creds = credentials_file(dir, "reader.json", &server.base_url, &reader);
    let output = dir.join("views.ndjson");
    let checkpoint = PathBuf::from(format!("{}.checkpoint", output.display()));
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();

    // A backlog over the last two hours, so that the first runs catch up through several windows.
    let now = now();
    let backlog: Vec<ViewLogRecord> =
        (0..BACKLOG).map(|n| tokened_record(&run_id, n, now - 7000 + (n as i64 * 6990) / BACKLOG as i64)).collect();
    ingest(&library_client(&server.base_url, &writer), &backlog).await;
    let mut expected: BTreeMap<String, ViewLogRecord> =
        backlog.into_iter().map(|r| (token_of(&r.subject).to_owned(), r)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let ingester = tokio::spawn(keep_ingesting(
        server.base_url.clone(),
        writer.clone(),
        run_id.clone(),
        BACKLOG,
        seed ^ 0x5eed,
        stop.clone(),
    ));

    let mut stats = KillStats::default();
    for cycle in 0..CYCLES {
        let once = rng.gen_bool(0.3);
        let mut cmd = viewlog(dir);
        cmd.args(sync_args(&creds, &output, &scenario, once));
        let (mut child, _stdout, stderr) = Server::spawn(&mut cmd);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..300))).await;
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "cycle {cycle}: sync failed ({status}):\n{}", stderr.text());
                stats.finished += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                note_kill(&mut stats, &checkpoint, &output);
            }
        }
        assert!(!ingester.is_finished(), "the ingester stopped early");
    }

    stop.store(true, Ordering::SeqCst);
    expected.extend(ingester.await.unwrap());
    eprintln!("{} events ingested; kills: {stats:?}; {:?} so far", expected.len(), started.elapsed());
    assert!(stats.mid_window > 0, "no kill landed in the middle of a window: {stats:?}");
    let written: u64 = output_files(&output).iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    assert!(written > 0, "the killed runs wrote nothing");

    // Events viewed in the last second are collected by a window ending after it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = run(viewlog(dir).args(sync_args(&creds, &output, &scenario, true)), None);
    out.ok();
    assert_no_secret(&out, &reader);
    let files = output_files(&output);
    if scenario.rotate {
        assert!(files.len() > 2, "the output was never rotated: {files:?}");
    }
    let records = read_records(&files);
    assert_exactly_once(&records, &expected);

    // Another catch-up run finds nothing new and leaves the output as it was.
    let before: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    run(viewlog(dir).args(sync_args(&creds, &output, &scenario, true)), None).ok();
    let after: Vec<u64> = output_files(&output).iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    assert_eq!(before, after, "a run with nothing new changed the output");
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(cp["written"], records.len() as u64, "the checkpoint's count: {cp}");
    eprintln!("sync kill test passed in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_sync_resumes_with_every_event_exactly_once() {
    kill_and_restart(Scenario { faults: None, page_size: "20", rotate: true }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_sync_against_a_faulty_server_collects_every_event_exactly_once() {
    kill_and_restart(Scenario {
        faults: Some("429=0.1,500=0.1,slow=0.05,slow-ms=300,drop=0.1"),
        page_size: "50",
        rotate: false,
    })
    .await;
}

/// Ingests `count` events viewed from `ago` seconds ago on, `step` seconds apart, into a server
/// started with `serve_args`; then `viewlog sync --once --grace 0` with `flags` must stop, its
/// file holding each of them exactly once.
async fn once_collects_everything(serve_args: &[&str], count: u64, ago: i64, step: i64, flags: &[&str]) {
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let server = db.serve(serve_args).await;
    let dir = db.dir.path();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let now = now();
    let records: Vec<ViewLogRecord> =
        (0..count).map(|n| tokened_record(&run_id, n, now - ago + n as i64 * step)).collect();
    ingest(&library_client(&server.base_url, &writer), &records).await;
    let expected = records.iter().map(|r| (token_of(&r.subject).to_owned(), r.clone())).collect();
    let creds = credentials_file(dir, "reader.json", &server.base_url, &reader);
    let output = dir.join("once.ndjson");
    let mut cmd = viewlog(dir);
    cmd.args(["sync", "--once", "--grace", "0"])
        .args(flags)
        .arg("--credentials")
        .arg(&creds)
        .arg("--output")
        .arg(&output);
    // A run that does not stop fails here, at the command's timeout.
    run(&mut cmd, None).ok();
    assert_exactly_once(&read_records(&[output]), &expected);
}

/// A first run whose `--since` is more recent than `--overlap` collects (it used to start its
/// first window at `since + overlap`, in the future, and report itself caught up).
#[tokio::test]
async fn a_first_run_since_less_than_the_overlap_ago_collects() {
    once_collects_everything(&[], 30, 300, 5, &["--since", "10m", "--overlap", "1h"]).await;
}

/// `--once` catches up with the server's clock as it was when the run opened its first window.
/// Against a server that answers every request in over a second, a run whose windows followed
/// the clock found it a second further on after every window, opened another (re-reading the
/// overlap) and never stopped; with a fast server it stopped only when a window happened to end
/// within the clock's second, which made the test against the faulty server above time out now
/// and then.
#[tokio::test]
async fn a_once_run_stops_when_every_window_takes_longer_than_a_second() {
    let flags = ["--since", "30m", "--overlap", "15m", "--window", "1h", "--page-size", "50"];
    once_collects_everything(&["--faults", "slow=1,slow-ms=1100"], 20, 600, 30, &flags).await;
}

/// Catching up with windows shorter than the overlap moves on by whole windows (it used to move
/// one second per window: two days would take 172,800 requests).
#[tokio::test]
async fn windows_shorter_than_the_overlap_still_catch_up() {
    let flags = ["--since", "3d", "--overlap", "2h", "--window", "1h", "--page-size", "7"];
    once_collects_everything(&[], 200, 2 * 86_400, 860, &flags).await;
}

/// SIGKILL the moment the output grows — a page written, its checkpoint not yet saved — at the
/// first page of a fresh collector and at later ones: the restart cuts the page off and fetches
/// it again, so nothing is repeated (the first page used to be kept and written again).
#[tokio::test]
async fn a_kill_between_a_page_and_its_checkpoint_repeats_nothing() {
    const ATTEMPTS: usize = 6;
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let server = db.serve(&["--rate-capacity", "100000", "--rate-refill-per-sec", "10000"]).await;
    let dir = db.dir.path();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let now = now();
    let records: Vec<ViewLogRecord> =
        (0..300).map(|n| tokened_record(&run_id, n, now - 3600 + n as i64 * 11)).collect();
    ingest(&library_client(&server.base_url, &writer), &records).await;
    let expected: BTreeMap<String, ViewLogRecord> =
        records.iter().map(|r| (token_of(&r.subject).to_owned(), r.clone())).collect();
    let creds = credentials_file(dir, "reader.json", &server.base_url, &reader);

    let mut torn = 0;
    for attempt in 0..ATTEMPTS {
        let output = dir.join(format!("out-{attempt}.ndjson"));
        let sync = || {
            let mut cmd = viewlog(dir);
            cmd.args(["sync", "--once", "--since", "2h", "--grace", "0", "--page-size", "40", "--credentials"])
                .arg(&creds)
                .arg("--output")
                .arg(&output);
            cmd
        };
        // Killed at the first, second or third page.
        let pages = attempt % 3 + 1;
        let (mut child, _stdout, stderr) = Server::spawn(&mut sync());
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut len, mut grown) = (0, 0);
        loop {
            let now_len = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            if now_len != len {
                len = now_len;
                grown += 1;
                if grown == pages {
                    child.kill().unwrap();
                    break;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("sync ended ({status}) before it was killed:\n{}", stderr.text());
            }
            assert!(Instant::now() < deadline, "the output did not grow:\n{}", stderr.text());
        }
        child.wait().unwrap();
        let checkpoint = dir.join(format!("out-{attempt}.ndjson.checkpoint"));
        let saved = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|cp| cp["output"]["len"].as_u64())
            .unwrap_or(0);
        if std::fs::metadata(&output).unwrap().len() > saved {
            torn += 1;
        }
        run(&mut sync(), None).ok();
        assert_exactly_once(&read_records(std::slice::from_ref(&output)), &expected);
    }
    eprintln!("{torn} of {ATTEMPTS} kills landed between a page and its checkpoint");
    assert!(torn > 0, "no kill landed between a page and its checkpoint");
}

/// Starts `viewlog sync` and SIGKILLs it the moment `ready` says so (polled without pause);
/// panics if it ends first.
fn kill_when(cmd: &mut std::process::Command, ready: impl Fn() -> bool) {
    let (mut child, _stdout, stderr) = Server::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sync ended ({status}) before it was killed:\n{}", stderr.text());
        }
        assert!(Instant::now() < deadline, "sync never got there:\n{}", stderr.text());
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn checkpoint_output(checkpoint: &Path) -> Value {
    let text = std::fs::read_to_string(checkpoint).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["output"].clone()
}

/// Killed in the middle of a rotation (the file renamed to `FILE.1`, the checkpoint still
/// saying "rotating"), then killed again right after the next page is written to the new file:
/// the third run cuts that page off (it used to keep it and write it again).
#[tokio::test]
async fn kills_during_a_rotation_and_right_after_it_repeat_nothing() {
    const ATTEMPTS: usize = 6;
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let server = db.serve(&["--rate-capacity", "100000", "--rate-refill-per-sec", "10000"]).await;
    let dir = db.dir.path();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let now = now();
    let records: Vec<ViewLogRecord> =
        (0..200).map(|n| tokened_record(&run_id, n, now - 3600 + n as i64 * 17)).collect();
    ingest(&library_client(&server.base_url, &writer), &records).await;
    let expected: BTreeMap<String, ViewLogRecord> =
        records.iter().map(|r| (token_of(&r.subject).to_owned(), r.clone())).collect();
    let creds = credentials_file(dir, "reader.json", &server.base_url, &reader);

    let mut mid_rotation = 0;
    for attempt in 0..ATTEMPTS {
        let output = dir.join(format!("rot-{attempt}.ndjson"));
        let checkpoint = dir.join(format!("rot-{attempt}.ndjson.checkpoint"));
        let rotated = dir.join(format!("rot-{attempt}.ndjson.1"));
        // Every page (about 15 kB) passes --max-bytes: a rotation after each.
        let sync = || {
            let mut cmd = viewlog(dir);
            cmd.args(["sync", "--once", "--since", "2h", "--grace", "0", "--page-size", "40"])
                .args(["--max-bytes", "4096", "--credentials"])
                .arg(&creds)
                .arg("--output")
                .arg(&output);
            cmd
        };
        kill_when(&mut sync(), || rotated.exists());
        if checkpoint_output(&checkpoint)["rotating"] == true {
            mid_rotation += 1;
            kill_when(&mut sync(), || std::fs::metadata(&output).map(|m| m.len() > 0).unwrap_or(false));
        }
        run(&mut sync(), None).ok();
        assert_exactly_once(&read_records(&output_files(&output)), &expected);
    }
    eprintln!("{mid_rotation} of {ATTEMPTS} first kills landed in the middle of a rotation");
    assert!(mid_rotation > 0, "no kill landed in the middle of a rotation");
}
