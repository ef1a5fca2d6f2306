//! `viewlog import`: NDJSON and CSV in, idempotent, all-or-nothing on a bad line.

use crate::support::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn event(n: usize, tag: &str) -> Value {
    json!({
        "from": format!("sender{n}@example.org"),
        "to": "legal@acme.example",
        "viewer": format!("officer{n}@acme.example"),
        "source": "Archive Search",
        "contentViewed": (n & 1) == 0,
        "discoveryCase": n % 3 == 1,
        "messageDate": format!("2023-02-{:02}T09:30:00+0000", n + 1),
        "viewed": format!("2023-03-{:02}T10:{:02}:00Z", n + 1, n),
        "subject": format!("{tag} ndjson #{n}"),
    })
}

fn ndjson(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn good_ndjson(tag: &str) -> Vec<String> {
    (0..5).map(|n| event(n, tag).to_string()).collect()
}

const CSV_HEADER: &str = "from,to,viewer,source,contentViewed,discoveryCase,messageDate,viewed,subject,action,caseId";

fn csv_row(n: usize, tag: &str, action: &str) -> String {
    format!(
        "sender{n}@example.org,legal@acme.example,clerk{n}@acme.example,Discovery Case,true,false,\
         2023-04-{d:02}T09:30:00+0000,2023-05-{d:02}T11:00:00+0000,\"{tag} csv, #{n}\",{action},CASE-{n}",
        d = n + 1
    )
}

fn good_csv(tag: &str) -> Vec<String> {
    std::iter::once(CSV_HEADER.to_owned()).chain((0..5).map(|n| csv_row(n, tag, "export"))).collect()
}

struct Fixture {
    db: Db,
}

impl Fixture {
    fn new() -> Fixture {
        let db = Db::new();
        db.admin(&["account", "create", "acme"]);
        Fixture { db }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.db.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn import(&self, file: &std::path::Path, extra: &[&str]) -> Out {
        let mut cmd = self.db.cmd(&["import"]);
        cmd.arg(file).args(["--account", "acme", "--json"]).args(extra);
        run(&mut cmd, None)
    }

    /// Imports a file that must read; returns (events, inserted, duplicates).
    #[track_caller]
    fn import_ok(&self, file: &std::path::Path) -> (u64, u64, u64) {
        let summary = self.import(file, &[]).ok().json();
        let n = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("no {k} in {summary}"));
        (n("events"), n("inserted"), n("duplicates"))
    }
}

#[tokio::test]
async fn ndjson_and_csv_are_imported_once_and_served() {
    let f = Fixture::new();
    let ndjson_file = f.write("views.ndjson", &ndjson(&good_ndjson("imported")));
    let csv_file = f.write("views.csv", &(good_csv("imported").join("\r\n") + "\r\n"));

    assert_eq!(f.import_ok(&ndjson_file), (5, 5, 0));
    assert_eq!(f.import_ok(&csv_file), (5, 5, 0));
    // Again: nothing new.
    assert_eq!(f.import_ok(&ndjson_file), (5, 0, 5));
    assert_eq!(f.import_ok(&csv_file), (5, 0, 5));
    // The text summary says the same.
    let mut cmd = f.db.cmd(&["import"]);
    cmd.arg(&csv_file).args(["--account", "acme"]);
    let out = run(&mut cmd, None);
    assert!(out.ok().stdout.contains("0 stored, 5 already present"), "{}", out.stdout);

    let creds = f.db.tenant("acme", "View Log Reader");
    let server = f.db.serve(&[]).await;
    let records = server.all_records(&creds, "imported", "2023-01-01", "2023-12-31").await;
    assert_eq!(records.len(), 10, "{records:#?}");
    for r in &records {
        assert_record(r);
    }
    let csv0 = records.iter().find(|r| r["subject"] == "imported csv, #0").expect("the CSV row with a quoted comma");
    assert_eq!(
        *csv0,
        json!({"from": "sender0@example.org", "to": "legal@acme.example", "viewer": "clerk0@acme.example",
               "source": "Discovery Case", "contentViewed": true, "discoveryCase": false,
               "messageDate": "2023-04-01T09:30:00+0000", "viewed": "2023-05-01T11:00:00+0000",
               "subject": "imported csv, #0"})
    );
    let nd4 = records.iter().find(|r| r["subject"] == "imported ndjson #4").unwrap();
    assert_eq!(nd4["viewed"], "2023-03-05T10:04:00+0000", "a Z date is stored as UTC");
    assert_eq!(nd4["contentViewed"], true);
    assert_eq!(nd4["discoveryCase"], true);
    let nd3 = records.iter().find(|r| r["subject"] == "imported ndjson #3").unwrap();
    assert_eq!((nd3["contentViewed"].as_bool(), nd3["discoveryCase"].as_bool()), (Some(false), Some(false)));
}

#[test]
fn a_bad_line_stops_the_import_with_its_number_and_field_and_stores_nothing() {
    let f = Fixture::new();

    // Bad date on line 3 of 5.
    let mut lines = good_ndjson("bad-date");
    let mut bad = event(2, "bad-date");
    bad["viewed"] = json!("2023-13-45 noon");
    lines[2] = bad.to_string();
    let file = f.write("bad-date.ndjson", &ndjson(&lines));
    let err = f.import(&file, &["--batch-size", "1"]).failed().to_owned();
    assert!(err.contains("line 3") && err.contains("viewed"), "{err}");
    assert!(!err.contains("line 1") && !err.contains("line 2"), "{err}");
    // Nothing was stored: the same file, fixed, stores all five.
    let mut fixed = lines.clone();
    fixed[2] = event(2, "bad-date").to_string();
    assert_eq!(f.import_ok(&f.write("fixed-date.ndjson", &ndjson(&fixed))), (5, 5, 0));

    // A line that is not JSON.
    let mut lines = good_ndjson("not-json");
    lines[3] = "{\"from\": \"a@x.com\", oops".to_owned();
    let file = f.write("not-json.ndjson", &ndjson(&lines));
    let err = f.import(&file, &["--batch-size", "1"]).failed().to_owned();
    assert!(err.contains("line 4") && err.contains("JSON"), "{err}");
    assert_eq!(f.import_ok(&f.write("fixed-json.ndjson", &ndjson(&good_ndjson("not-json")))), (5, 5, 0));

    // A CSV row (line 3 of the file) with an unknown action.
    let mut rows = good_csv("bad-action");
    rows[2] = csv_row(1, "bad-action", "shred");
    let file = f.write("bad-action.csv", &(rows.join("\n") + "\n"));
    let err = f.import(&file, &["--batch-size", "1"]).failed().to_owned();
    assert!(err.contains("line 3") && err.contains("action"), "{err}");
    assert_eq!(f.import_ok(&f.write("fixed-action.csv", &(good_csv("bad-action").join("\n") + "\n"))), (5, 5, 0));

    // A required field missing in NDJSON names that field.
    let mut lines = good_ndjson("no-viewer");
    let mut bad = event(4, "no-viewer");
    bad.as_object_mut().unwrap().remove("viewer");
    lines[4] = bad.to_string();
    let err = f.import(&f.write("no-viewer.ndjson", &ndjson(&lines)), &[]).failed().to_owned();
    assert!(err.contains("line 5") && err.contains("viewer"), "{err}");
}

#[test]
fn an_unknown_account_or_csv_column_is_a_clear_error() {
    let f = Fixture::new();
    let file = f.write("views.ndjson", &ndjson(&good_ndjson("acct")));
    let mut cmd = f.db.cmd(&["import"]);
    cmd.arg(&file).args(["--account", "nobody"]);
    let out = run(&mut cmd, None);
    let err = out.failed();
    assert!(err.contains("no account named \"nobody\""), "{err}");
    // The account is checked before the file is read through: a bad file is not what is reported.
    let mut lines = good_ndjson("acct");
    lines[1] = "not json".into();
    let bad = f.write("bad.ndjson", &ndjson(&lines));
    let mut cmd = f.db.cmd(&["import"]);
    cmd.arg(&bad).args(["--account", "nobody"]);
    let out = run(&mut cmd, None);
    let err = out.failed();
    assert!(err.contains("no account named \"nobody\""), "{err}");

    let mut rows = good_csv("column");
    rows[0] = rows[0].replace("caseId", "colour");
    let out = f.import(&f.write("columns.csv", &rows.join("\n")), &[]);
    let err = out.failed();
    assert!(err.contains("unknown column") && err.contains("colour"), "{err}");
    // Neither stored anything.
    assert_eq!(f.import_ok(&file), (5, 5, 0));
}

/// An event viewed at `day` 10:`minute`:`second` in March 2023, with a subject naming `n`.
fn at(n: usize, day: u32, minute: u32, second: u32) -> Value {
    let mut e = event(n, "order");
    e["viewed"] = json!(format!("2023-03-{day:02}T10:{minute:02}:{second:02}+0000"));
    e["subject"] = json!(format!("order #{n}"));
    e["messageDate"] = json!("2023-02-01T09:30:00+0000");
    e
}

#[tokio::test]
async fn a_file_out_of_time_order_is_served_as_if_stored_in_file_order() {
    let f = Fixture::new();
    // 40 events in no time order; four of them (7, 15, 22, 33) viewed in the same second.
    let mut events: Vec<Value> =
        (0..40).map(|n| at(n, 1 + (n * 17 % 28) as u32, (n * 7 % 60) as u32, (n * 13 % 60) as u32)).collect();
    for n in [7, 15, 22, 33] {
        events[n] = at(n, 9, 9, 9);
    }
    // Lines the fast reader leaves to the lenient one: a numeric id, a flag written as a word.
    events[5]["id"] = json!(5005);
    events[6]["contentViewed"] = json!("yes");
    let mut lines: Vec<String> = events.iter().map(Value::to_string).collect();
    lines.insert(20, "   ".into());
    lines.insert(10, String::new());
    let file = f.write("order.ndjson", &ndjson(&lines));
    assert_eq!(f.import(&file, &["--batch-size", "3"]).ok().json()["inserted"], 40);

    // Newest first; views of the same second newest-stored first, i.e. the file's last first.
    let mut expected: Vec<(String, usize)> =
        events.iter().enumerate().map(|(n, e)| (e["viewed"].as_str().unwrap().to_owned(), n)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.iter().map(|(_, n)| format!("order #{n}")).collect();
    let creds = f.db.tenant("acme", "View Log Reader");
    let server = f.db.serve(&[]).await;
    let records = server.all_records(&creds, "order", "2023-03-01", "2023-03-31").await;
    let subjects: Vec<&str> = records.iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, expected);
    let six = records.iter().find(|r| r["subject"] == "order #6").unwrap();
    assert_eq!(six["contentViewed"], true);
}

#[tokio::test]
async fn an_id_twice_in_a_file_is_stored_once_as_the_earlier_viewed() {
    let f = Fixture::new();
    let mut later = at(1, 20, 0, 0);
    later["id"] = json!("same-id");
    let mut earlier = at(2, 10, 0, 0);
    earlier["id"] = json!("same-id");
    let file = f.write("twice.ndjson", &ndjson(&[later.to_string(), earlier.to_string(), at(3, 5, 0, 0).to_string()]));
    assert_eq!(f.import_ok(&file), (3, 2, 1));
    let creds = f.db.tenant("acme", "View Log Reader");
    let server = f.db.serve(&[]).await;
    let records = server.all_records(&creds, "order", "2023-03-01", "2023-03-31").await;
    let subjects: Vec<&str> = records.iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["order #2", "order #3"]);
}

#[test]
fn an_empty_file_imports_nothing_and_a_directory_is_refused() {
    let f = Fixture::new();
    assert_eq!(f.import_ok(&f.write("empty.ndjson", "")), (0, 0, 0));
    assert_eq!(f.import_ok(&f.write("blank.ndjson", "\n  \n\n")), (0, 0, 0));
    assert_eq!(f.import_ok(&f.write("header-only.csv", &format!("{CSV_HEADER}\n"))), (0, 0, 0));
    let dir = f.db.dir.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let err = f.import(&dir, &[]).failed().to_owned();
    assert!(err.contains("not a regular file"), "{err}");
    // A CSV file read through in pass 2 at the offsets pass 1 noted (quoted commas, CRLF).
    let csv = f.write("crlf.csv", &(good_csv("crlf").join("\r\n") + "\r\n"));
    assert_eq!(f.import(&csv, &["--batch-size", "2"]).ok().json()["inserted"], 5);
}

/// The SQLite file header's read and write versions: 2 in WAL mode, 1 with a rollback journal.
fn header_versions(path: &std::path::Path) -> (u8, u8) {
    let header = std::fs::read(path).unwrap();
    (header[18], header[19])
}

/// A bulk import into an empty store runs out of WAL mode, writing pages straight into the
/// database file before it commits. Killed then (SIGKILL, after some of those pages reached the
/// file), the next use of the store rolls the whole import back: importing the file again
/// stores every event anew, and the store is in WAL mode again.
#[test]
fn a_bulk_import_killed_halfway_leaves_the_store_as_it_was() {
    const EVENTS: usize = 60_000;
    let f = Fixture::new();
    let lines: Vec<String> = (0..EVENTS)
        .map(|n| {
            let mut e = event(n % 28, "killed");
            e["subject"] = json!(format!("killed import #{n}"));
            e["viewed"] = json!(format!("2023-03-{:02}T{:02}:{:02}:{:02}Z", 1 + n % 28, n % 24, n % 60, (n / 60) % 60));
            e.to_string()
        })
        .collect();
    let file = f.write("big.ndjson", &ndjson(&lines));
    let journal = f.db.dir.path().join("viewlog.db-journal");
    let before = std::fs::metadata(&f.db.path).unwrap().len();
    assert_eq!(header_versions(&f.db.path), (2, 2));
    // A small page cache spills pages into the file long before the commit.
    let mut cmd = f.db.cmd(&["import"]);
    cmd.arg(&file).args(["--account", "acme", "--json", "--cache-mib", "2"]);
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let grown = std::fs::metadata(&f.db.path).map(|m| m.len() > before + (4 << 20)).unwrap_or(false);
        if grown && journal.exists() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before it could be killed inside its transaction");
        }
        assert!(Instant::now() < deadline, "the import never wrote into the file");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(header_versions(&f.db.path), (1, 1), "killed while out of WAL mode");
    assert!(journal.exists(), "the rollback journal is left for the next opener");
    assert_eq!(f.import_ok(&file), (EVENTS as u64, EVENTS as u64, 0));
    assert!(!journal.exists());
    assert_eq!(header_versions(&f.db.path), (2, 2));
    assert_eq!(f.import_ok(&file), (EVENTS as u64, 0, EVENTS as u64));
}
