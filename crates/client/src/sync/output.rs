//! Where collected records go: an NDJSON file (with size rotation), standard output, or RFC 5424
//! syslog over TCP or UDP.
//!
//! Only the file output can promise exactly-once across a kill: its length is saved in the
//! checkpoint after every page, and on restart anything beyond it (a page written but not
//! checkpointed) is cut off before that page is fetched again. Standard output and syslog
//! cannot take back what they sent: a kill between a page's write and its checkpoint may
//! repeat that one page.

use super::checkpoint::{sync_dir, OutputPosition};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogProto {
    /// TCP with octet-counting framing (RFC 6587).
    Tcp,
    /// One datagram per record (RFC 5426).
    Udp,
}

/// Which output to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputConfig {
    /// Standard output.
    Stdout,
    /// An NDJSON file, rotated to `FILE.1`, `FILE.2`, … when it passes `max_bytes`.
    File {
        /// The file.
        path: PathBuf,
        /// Rotate past this size; never when `None`.
        max_bytes: Option<u64>,
    },
    /// RFC 5424 syslog.
    Syslog {
        /// `host:port`.
        addr: String,
        /// TCP or UDP.
        proto: SyslogProto,
    },
}

/// A place records are written to.
pub trait Sink: Send {
    /// Writes the lines (each one JSON record, no newline) and makes them as durable as the
    /// output can before returning.
    fn write_lines(&mut self, records: &[(String, i64)]) -> std::io::Result<()>;
    /// The position to save in the checkpoint (file outputs only).
    fn position(&self) -> Option<OutputPosition>;
    /// Whether the output wants rotating now.
    fn wants_rotation(&self) -> bool {
        false
    }
    /// The position to save before rotating (marked `rotating`).
    fn rotation_intent(&self) -> Option<OutputPosition> {
        None
    }
    /// Rotates (after the intent was saved).
    fn rotate(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the configured output, recovering a file output to the checkpoint's position.
pub fn open(config: &OutputConfig, saved: Option<&OutputPosition>) -> std::io::Result<Box<dyn Sink>> {
    match config {
        OutputConfig::Stdout => Ok(Box::new(StdoutSink)),
        OutputConfig::File { path, max_bytes } => Ok(Box::new(FileSink::open(path, *max_bytes, saved)?)),
        OutputConfig::Syslog { addr, proto } => Ok(Box::new(SyslogSink::new(addr.clone(), *proto)?)),
    }
}

struct StdoutSink;

impl Sink for StdoutSink {
    fn write_lines(&mut self, records: &[(String, i64)]) -> std::io::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for (line, _) in records {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    fn position(&self) -> Option<OutputPosition> {
        None
    }
}

/// An NDJSON file with size rotation and crash recovery.
pub struct FileSink {
    path: PathBuf,
    max_bytes: Option<u64>,
    file: File,
    len: u64,
    rotation: u64,
}

fn rotated_name(path: &Path, n: u64) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

impl FileSink {
    /// Opens the file for appending. With a saved position: finishes an interrupted rotation,
    /// and cuts off anything written after the saved length (a page that was not checkpointed).
    pub fn open(path: &Path, max_bytes: Option<u64>, saved: Option<&OutputPosition>) -> std::io::Result<FileSink> {
        let mut rotation = 0;
        if let Some(saved) = saved {
            if saved.file != path {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the checkpoint belongs to output {}, not {}; use another --checkpoint",
                        saved.file.display(),
                        path.display()
                    ),
                ));
            }
            rotation = saved.rotation;
            if saved.rotating {
                let target = rotated_name(path, saved.rotation);
                if path.exists() && !target.exists() {
                    std::fs::rename(path, &target)?;
                    sync_dir(path)?;
                }
            }
        }
        let file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let mut len = file.metadata()?.len();
        if let Some(saved) = saved.filter(|s| !s.rotating) {
            if len > saved.len {
                tracing::info!(file = %path.display(), from = len, to = saved.len, "cutting off a page that was written but not checkpointed");
                file.set_len(saved.len)?;
                file.sync_all()?;
                len = saved.len;
            } else if len < saved.len {
                tracing::warn!(file = %path.display(), len, expected = saved.len, "the output is shorter than the checkpoint says; was it truncated or moved?");
            }
        }
        if saved.is_some_and(|s| s.rotating) {
            // Nothing in the new file was checkpointed (that checkpoint would have ended the
            // rotation): a page written to it before a kill is cut off.
            if len > 0 {
                tracing::info!(file = %path.display(), from = len, "cutting off a page written after a rotation but not checkpointed");
                file.set_len(0)?;
                file.sync_all()?;
            }
            len = 0;
        }
        Ok(FileSink { path: path.to_path_buf(), max_bytes, file, len, rotation })
    }
}

impl Sink for FileSink {
    fn write_lines(&mut self, records: &[(String, i64)]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = BufWriter::with_capacity(1 << 16, &mut self.file);
        let mut n = 0u64;
        for (line, _) in records {
            buf.write_all(line.as_bytes())?;
            buf.write_all(b"\n")?;
            n += line.len() as u64 + 1;
        }
        buf.flush()?;
        drop(buf);
        self.file.sync_data()?;
        self.len += n;
        Ok(())
    }

    fn position(&self) -> Option<OutputPosition> {
        Some(OutputPosition { file: self.path.clone(), len: self.len, rotation: self.rotation, rotating: false })
    }

    fn wants_rotation(&self) -> bool {
        self.max_bytes.is_some_and(|m| self.len >= m)
    }

    fn rotation_intent(&self) -> Option<OutputPosition> {
        Some(OutputPosition { file: self.path.clone(), len: self.len, rotation: self.rotation + 1, rotating: true })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let target = rotated_name(&self.path, self.rotation + 1);
        std::fs::rename(&self.path, &target)?;
        self.file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        sync_dir(&self.path)?;
        self.rotation += 1;
        self.len = 0;
        tracing::info!(rotated = %target.display(), "output rotated");
        Ok(())
    }
}

/// RFC 5424 syslog.
pub struct SyslogSink {
    addr: String,
    proto: SyslogProto,
    hostname: String,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

/// `local0.info`.
const PRI: u8 = 16 * 8 + 6;

impl SyslogSink {
    /// A sink sending to `addr`; connects lazily.
    pub fn new(addr: String, proto: SyslogProto) -> std::io::Result<SyslogSink> {
        addr.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other(format!("{addr} resolves to nothing")))?;
        Ok(SyslogSink { addr, proto, hostname: hostname(), tcp: None, udp: None })
    }

    /// One RFC 5424 message: the record's `viewed` time as the timestamp, the JSON as the message.
    pub fn format(hostname: &str, viewed: i64, json: &str) -> String {
        let ts = viewlog_protocol::dates::format_date(viewed).replace("+0000", "Z");
        format!("<{PRI}>1 {ts} {hostname} viewlog {} view-log - {json}", std::process::id())
    }

    fn send(&mut self, message: &str) -> std::io::Result<()> {
        match self.proto {
            SyslogProto::Tcp => {
                if self.tcp.is_none() {
                    let addr =
                        self.addr.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                    s.set_write_timeout(Some(Duration::from_secs(30)))?;
                    self.tcp = Some(s);
                }
                let framed = format!("{} {message}", message.len());
                let result = self.tcp.as_mut().map(|s| s.write_all(framed.as_bytes())).unwrap_or(Ok(()));
                if result.is_err() {
                    self.tcp = None;
                }
                result
            }
            SyslogProto::Udp => {
                if self.udp.is_none() {
                    let s = UdpSocket::bind(("0.0.0.0", 0))?;
                    s.connect(&self.addr)?;
                    self.udp = Some(s);
                }
                self.udp.as_ref().map(|s| s.send(message.as_bytes()).map(|_| ())).unwrap_or(Ok(()))
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

impl Sink for SyslogSink {
    fn write_lines(&mut self, records: &[(String, i64)]) -> std::io::Result<()> {
        for (line, viewed) in records {
            let message = Self::format(&self.hostname, *viewed, line);
            // One reconnect per message: a syslog daemon restart should not stop the collector.
            if self.send(&message).is_err() {
                self.send(&message)?;
            }
        }
        if let Some(s) = self.tcp.as_mut() {
            s.flush()?;
        }
        Ok(())
    }

    fn position(&self) -> Option<OutputPosition> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("viewlog-out-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn file_recovery_cuts_off_an_uncheckpointed_page() {
        let d = dir();
        let path = d.join("out.ndjson");
        let mut sink = FileSink::open(&path, None, None).unwrap();
        sink.write_lines(&[("{\"a\":1}".into(), 0)]).unwrap();
        let saved = sink.position().unwrap();
        sink.write_lines(&[("{\"a\":2}".into(), 0)]).unwrap();
        drop(sink);
        let sink = FileSink::open(&path, None, Some(&saved)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        assert_eq!(sink.position().unwrap().len, saved.len);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotation_is_resumed_after_a_crash() {
        let d = dir();
        let path = d.join("out.ndjson");
        let mut sink = FileSink::open(&path, Some(5), None).unwrap();
        sink.write_lines(&[("{\"a\":1}".into(), 0)]).unwrap();
        assert!(sink.wants_rotation());
        let intent = sink.rotation_intent().unwrap();
        drop(sink);
        // Crash after saving the intent, before renaming.
        let sink = FileSink::open(&path, Some(5), Some(&intent)).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("out.ndjson.1")).unwrap(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert_eq!(sink.position().unwrap().rotation, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn syslog_format_is_rfc5424() {
        let m = SyslogSink::format("host1", 0, "{\"x\":1}");
        assert!(m.starts_with("<134>1 1970-01-01T00:00:00Z host1 viewlog "), "{m}");
        assert!(m.ends_with(" view-log - {\"x\":1}"));
    }
}
