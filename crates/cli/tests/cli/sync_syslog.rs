//! `viewlog sync --syslog` into a real syslog daemon: rsyslogd, started as a child with its own
//! configuration (imtcp and imudp on free ports of 127.0.0.1, each writing what it parsed to a
//! file). Every record arrives once, as RFC 5424 that rsyslog parses: PRI 134 (local0.info),
//! version 1, app name `viewlog`, message id `view-log`, the record's `viewed` as timestamp and
//! the record's JSON as message.

use crate::support::*;
use crate::sync_support::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};
use viewlog_protocol::records::ViewLogRecord;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const EVENTS: u64 = 150;

/// The daemon is required: a missing one fails the test (CI's .ci/run installs it).
fn require_rsyslogd() {
    if !Path::new(RSYSLOGD).exists() {
        panic!(
            "{RSYSLOGD} is required by the syslog output tests and is missing: install it with \
             `apt-get install -y rsyslog` (CI's .ci/run does)"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// rsyslogd with a configuration of its own in a temporary directory, stopped when dropped.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    tcp_port: u16,
    udp_port: u16,
    stderr: Lines,
}

/// What rsyslog parsed, one field per tab-separated column, the message last.
const TEMPLATE: &str = "%pri%\\t%protocol-version%\\t%app-name%\\t%procid%\\t%msgid%\\t\
                        %timereported:::date-rfc3339%\\t%msg%\\n";

impl Rsyslog {
    fn start() -> Rsyslog {
        require_rsyslogd();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let tcp_port = free_port();
        let udp_port = free_udp_port();
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
template(name="parsed" type="string" string="{TEMPLATE}")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="tcp") {{
  action(type="omfile" file="{d}/tcp.log" template="parsed")
  action(type="omfile" file="{d}/tcp.raw" template="raw")
}}
ruleset(name="udp") {{
  action(type="omfile" file="{d}/udp.log" template="parsed")
  action(type="omfile" file="{d}/udp.raw" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{udp_port}" ruleset="udp")
"#
        );
        let conf_path = dir.path().join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = run(clean_command(RSYSLOGD, dir.path()).arg("-N1").arg("-f").arg(&conf_path), None);
        check.ok();
        let mut cmd = clean_command(RSYSLOGD, dir.path());
        cmd.arg("-f").arg(&conf_path).arg("-i").arg(dir.path().join("rsyslogd.pid")).arg("-n");
        let (child, _stdout, stderr) = Server::spawn(&mut cmd);
        let mut daemon = Rsyslog { child, dir, tcp_port, udp_port, stderr };
        daemon.wait_ready();
        daemon
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Lines of a file written by rsyslog so far.
    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.file(name)).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Ready once a probe sent over each transport has come out in its file.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut tcp_done = false;
        let mut udp_done = false;
        let probe = |n: u32, proto: &str| format!("<14>1 - - probe - - - ready {proto} {n}");
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        for n in 0.. {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rsyslogd exited ({status}):\n{}", self.stderr.text());
            }
            assert!(Instant::now() < deadline, "rsyslogd did not get ready:\n{}", self.stderr.text());
            if !tcp_done {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.tcp_port)) {
                    let m = probe(n, "tcp");
                    let _ = s.write_all(format!("{} {m}", m.len()).as_bytes());
                }
            }
            if !udp_done {
                let _ = udp.send_to(probe(n, "udp").as_bytes(), ("127.0.0.1", self.udp_port));
            }
            std::thread::sleep(Duration::from_millis(200));
            tcp_done = tcp_done || self.lines("tcp.log").iter().any(|l| l.contains("ready tcp"));
            udp_done = udp_done || self.lines("udp.log").iter().any(|l| l.contains("ready udp"));
            if tcp_done && udp_done {
                return;
            }
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of the parsed file that came from viewlog.
struct Message {
    pri: String,
    version: String,
    procid: String,
    msgid: String,
    timestamp: String,
    record: ViewLogRecord,
}

/// The viewlog lines of a parsed file (probes left out), each checked.
fn messages(lines: &[String]) -> Vec<Message> {
    lines
        .iter()
        .filter(|l| !l.contains("\tprobe\t"))
        .map(|l| {
            let cols: Vec<&str> = l.splitn(7, '\t').collect();
            assert_eq!(cols.len(), 7, "a line rsyslog wrote has too few columns: {l:?}");
            assert_eq!(cols[2], "viewlog", "app name: {l}");
            let (record, _) = parse_line(cols[6].trim_start());
            Message {
                pri: cols[0].into(),
                version: cols[1].into(),
                procid: cols[3].into(),
                msgid: cols[4].into(),
                timestamp: cols[5].into(),
                record,
            }
        })
        .collect()
}

/// Polls until `count` lines came from viewlog (bounded), then a little longer for repeats.
fn wait_for_messages(daemon: &Rsyslog, file: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = daemon.lines(file).into_iter().filter(|l| !l.contains("\tprobe\t")).collect();
        if lines.len() >= count {
            std::thread::sleep(Duration::from_millis(500));
            return daemon.lines(file);
        }
        assert!(
            Instant::now() < deadline,
            "{file}: {} of {count} messages arrived in time; rsyslogd said:\n{}",
            lines.len(),
            daemon.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn seeded(run_id: &str) -> (Db, Server, Creds, BTreeMap<String, ViewLogRecord>) {
    let db = Db::new();
    let writer = db.tenant("acme", "View Log Recorder");
    let reader = db.tenant("acme", "View Log Reader");
    let server = db.serve(&[]).await;
    let now = now();
    let records: Vec<ViewLogRecord> =
        (0..EVENTS).map(|n| tokened_record(run_id, n, now - 3000 + n as i64 * 17)).collect();
    ingest(&library_client(&server.base_url, &writer), &records).await;
    let expected = records.into_iter().map(|r| (token_of(&r.subject).to_owned(), r)).collect();
    (db, server, reader, expected)
}

fn sync_to_syslog(db: &Db, server: &Server, reader: &Creds, url: &str, name: &str) {
    let dir = db.dir.path();
    let creds = credentials_file(dir, "reader.json", &server.base_url, reader);
    let mut cmd = viewlog(dir);
    cmd.args(["sync", "--once", "--since", "2h", "--grace", "0", "--page-size", "40", "--syslog", url])
        .arg("--credentials")
        .arg(&creds)
        .arg("--checkpoint")
        .arg(dir.join(format!("{name}.checkpoint")));
    let out = run(&mut cmd, None);
    out.ok();
    assert_no_secret(&out, reader);
}

#[track_caller]
fn check(daemon: &Rsyslog, proto: &str, expected: &BTreeMap<String, ViewLogRecord>) {
    let parsed = messages(&wait_for_messages(daemon, &format!("{proto}.log"), expected.len()));
    for m in &parsed {
        assert_eq!(m.pri, "134", "PRI is local0.info");
        assert_eq!(m.version, "1", "RFC 5424 version");
        assert_eq!(m.msgid, "view-log");
        assert!(!m.procid.is_empty() && m.procid.chars().all(|c| c.is_ascii_digit()), "procid {:?}", m.procid);
        let viewed = m.record.viewed.replace("+0000", "");
        assert!(
            m.timestamp == format!("{viewed}Z") || m.timestamp == format!("{viewed}+00:00"),
            "the timestamp {} is not the record's viewed {}",
            m.timestamp,
            m.record.viewed
        );
    }
    let records: Vec<ViewLogRecord> = parsed.into_iter().map(|m| m.record).collect();
    assert_exactly_once(&records, expected);
    // The raw messages as sent: RFC 5424 header, no structured data, the JSON as message.
    let raw: Vec<String> =
        daemon.lines(&format!("{proto}.raw")).into_iter().filter(|l| !l.contains(" probe ")).collect();
    assert_eq!(raw.len(), expected.len());
    for line in &raw {
        assert!(line.starts_with("<134>1 "), "{line}");
        let fields: Vec<&str> = line.splitn(8, ' ').collect();
        assert_eq!(fields.len(), 8, "{line}");
        assert_eq!((fields[3], fields[5], fields[6]), ("viewlog", "view-log", "-"), "{line}");
        assert!(fields[7].starts_with('{') && fields[7].ends_with('}'), "{line}");
    }
}

#[tokio::test]
async fn sync_over_tcp_delivers_each_record_once_as_rfc5424() {
    let daemon = Rsyslog::start();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (db, server, reader, expected) = seeded(&run_id).await;
    sync_to_syslog(&db, &server, &reader, &format!("tcp://127.0.0.1:{}", daemon.tcp_port), "tcp");
    check(&daemon, "tcp", &expected);
    // Caught up: another run sends nothing.
    sync_to_syslog(&db, &server, &reader, &format!("tcp://127.0.0.1:{}", daemon.tcp_port), "tcp");
    std::thread::sleep(Duration::from_millis(500));
    check(&daemon, "tcp", &expected);
}

#[tokio::test]
async fn sync_over_udp_delivers_each_record_once_as_rfc5424() {
    let daemon = Rsyslog::start();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (db, server, reader, expected) = seeded(&run_id).await;
    sync_to_syslog(&db, &server, &reader, &format!("udp://127.0.0.1:{}", daemon.udp_port), "udp");
    check(&daemon, "udp", &expected);
}
