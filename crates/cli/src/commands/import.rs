//! `viewlog import FILE`: bulk NDJSON or CSV into an account, idempotently.
//!
//! The file is read twice, streaming, in constant memory: first every line is checked (a bad
//! line stops the import with its line number before anything is stored), then the events are
//! stored in batches, each one transaction. Events carry ids (given, or derived from their
//! content), so importing the same file again stores nothing new.

use crate::settings::{load_file, StoreArgs};
use crate::with_store;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use viewlog_core::ingest::read_event;
use viewlog_store::{InsertOutcome, Store, ViewEvent};

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// From the file's extension (`.csv` is CSV, anything else NDJSON).
    Auto,
    /// One JSON object per line, with record-views' field names.
    Ndjson,
    /// A header row naming the fields (record-views' names), then one event per row.
    Csv,
}

/// `viewlog import` flags.
#[derive(Debug, Args)]
pub struct ImportCmd {
    /// The file to import.
    file: PathBuf,
    /// The account that receives the events.
    #[arg(long)]
    account: String,
    /// The file's format.
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// Events per transaction. Larger batches import faster (each transaction rewrites the
    /// pages its events land on, and events spread over a long time land on many) and hold more
    /// events in memory.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_size: u32,
    /// The SQLite page cache while importing, in MiB: enough to hold what a batch changes
    /// (ignored for PostgreSQL).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(2..=65_536))]
    cache_mib: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Reads events one at a time with their line numbers.
trait EventSource {
    /// The next event and its line, `None` at the end.
    fn next_event(&mut self) -> Result<Option<(u64, ViewEvent)>>;
    /// Bytes read so far.
    fn position(&self) -> u64;
}

fn describe(errors: &[viewlog_protocol::envelope::ErrorDetail]) -> String {
    errors
        .iter()
        .map(|e| match &e.field {
            Some(f) => format!("{f}: {}", e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

struct Ndjson<R> {
    reader: R,
    line: u64,
    pos: u64,
    buf: String,
}

impl<R: BufRead> EventSource for Ndjson<R> {
    fn next_event(&mut self) -> Result<Option<(u64, ViewEvent)>> {
        loop {
            self.buf.clear();
            let n = self.reader.read_line(&mut self.buf).with_context(|| format!("line {}", self.line + 1))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.pos += n as u64;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(text).map_err(|e| anyhow!("line {}: not a JSON object: {e}", self.line))?;
            let event = read_event(&value).map_err(|errors| anyhow!("line {}: {}", self.line, describe(&errors)))?;
            return Ok(Some((self.line, event)));
        }
    }

    fn position(&self) -> u64 {
        self.pos
    }
}

struct Csv<R: Read> {
    reader: csv::Reader<R>,
    headers: Vec<String>,
    record: csv::StringRecord,
}

impl<R: Read> EventSource for Csv<R> {
    fn next_event(&mut self) -> Result<Option<(u64, ViewEvent)>> {
        let more = self.reader.read_record(&mut self.record).map_err(|e| anyhow!("CSV: {e}"))?;
        if !more {
            return Ok(None);
        }
        let line = self.record.position().map(|p| p.line()).unwrap_or(0);
        let mut obj = Map::new();
        for (name, cell) in self.headers.iter().zip(self.record.iter()) {
            if !cell.is_empty() {
                obj.insert(name.clone(), Value::String(cell.to_owned()));
            }
        }
        let event = read_event(&Value::Object(obj)).map_err(|errors| anyhow!("line {line}: {}", describe(&errors)))?;
        Ok(Some((line, event)))
    }

    fn position(&self) -> u64 {
        self.reader.position().byte()
    }
}

fn open_source(path: &Path, format: Format) -> Result<Box<dyn EventSource>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let csv = match format {
        Format::Csv => true,
        Format::Ndjson => false,
        Format::Auto => path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if csv {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers: Vec<String> =
            reader.headers().map_err(|e| anyhow!("CSV header: {e}"))?.iter().map(|h| h.trim().to_owned()).collect();
        const KNOWN: [&str; 14] = [
            "id",
            "from",
            "to",
            "viewer",
            "source",
            "contentViewed",
            "discoveryCase",
            "messageDate",
            "viewed",
            "subject",
            "viewerIp",
            "messageId",
            "action",
            "caseId",
        ];
        if let Some(unknown) = headers.iter().find(|h| !KNOWN.contains(&h.as_str())) {
            bail!("CSV header: unknown column {unknown:?}; columns are {}", KNOWN.join(", "));
        }
        Ok(Box::new(Csv { reader, headers, record: csv::StringRecord::new() }))
    } else {
        Ok(Box::new(Ndjson { reader, line: 0, pos: 0, buf: String::new() }))
    }
}

fn progress(total: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar
}

/// Runs the import.
pub async fn run(cmd: ImportCmd) -> Result<()> {
    let size = std::fs::metadata(&cmd.file).with_context(|| format!("reading {}", cmd.file.display()))?.len();
    let file = load_file(cmd.store.config.as_deref())?;
    let mut settings = cmd.store.resolve(&file);
    settings.sqlite_cache_kib = Some(cmd.cache_mib.saturating_mul(1024));
    with_store!(settings, |store| {
        // The account first, so that a mistyped name does not wait for a pass over a big file.
        let account =
            store.account_by_name(&cmd.account).await?.ok_or_else(|| anyhow!("no account named {:?}", cmd.account))?;
        let count = check_all(&cmd, size)?;
        let outcome = store_all(&*store, account.id, &cmd, size).await?;
        if cmd.json {
            crate::output::json(
                &serde_json::json!({"events": count, "inserted": outcome.inserted, "duplicates": outcome.duplicates}),
            )?;
        } else {
            println!("{count} events read, {} stored, {} already present", outcome.inserted, outcome.duplicates);
        }
        Ok(())
    })
}

/// Pass 1: every line must read, before anything is stored. Returns the number of events.
fn check_all(cmd: &ImportCmd, size: u64) -> Result<u64> {
    let bar = progress(size, "checking");
    let mut source = open_source(&cmd.file, cmd.format)?;
    let mut count = 0u64;
    while source.next_event()?.is_some() {
        count += 1;
        if (count & 4095) == 0 {
            bar.set_position(source.position());
        }
    }
    bar.finish_and_clear();
    Ok(count)
}

async fn store_all<S: Store>(
    store: &S,
    account: viewlog_store::AccountId,
    cmd: &ImportCmd,
    size: u64,
) -> Result<InsertOutcome> {
    let bar = progress(size, "importing");
    let mut source = open_source(&cmd.file, cmd.format)?;
    let mut batch = Vec::with_capacity(cmd.batch_size as usize);
    let mut total = InsertOutcome::default();
    loop {
        let next = source.next_event()?;
        let done = next.is_none();
        if let Some((_, event)) = next {
            batch.push(event);
        }
        if batch.len() >= cmd.batch_size as usize || (done && !batch.is_empty()) {
            let outcome = store.insert_events(account, &batch).await.context("storing a batch")?;
            total.inserted += outcome.inserted;
            total.duplicates += outcome.duplicates;
            batch.clear();
            bar.set_position(source.position());
        }
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(total)
}
