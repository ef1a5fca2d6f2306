//! `viewlog import FILE`: bulk NDJSON or CSV into an account, idempotently.
//!
//! The file is mapped into memory and read twice. Pass 1 checks every event (a bad one stops the
//! import with its line number before anything is stored) and notes when each was viewed, where
//! it starts and a hash of its id: 24 bytes per event are all the import holds. Pass 2 reads the
//! events again in order of their viewed time, on a thread of its own, and hands them to the
//! store in chunks ([`Store::import_events`]), which commits every `--batch-size` events: a
//! transaction then covers a short stretch of time, so it changes few pages of a store kept in
//! time order, however the file is ordered. Events viewed at the same second keep the file's
//! order. Events carry ids (given, or derived from their content), so importing the same file
//! again stores nothing new; an id that appears twice in the file is stored once, as the earlier
//! viewed of the two. When no id repeats in the file (the hashes tell), the store is told so: a
//! SQLite store that holds no events yet then takes the whole import as one transaction and
//! fills its table of event ids once, at the end; with the file to itself, it writes that
//! transaction with a rollback journal rather than through its write-ahead log.

use crate::settings::{load_file, StoreArgs};
use crate::with_store;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use memmap2::Mmap;
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use viewlog_core::event_fields::{Field, Fields, FIELD_NAMES};
use viewlog_core::ingest::{read_fields, read_json_event, JsonEventError};
use viewlog_store::{ImportOptions, InsertOutcome, Store, ViewEvent};

/// Events per chunk handed from the reading thread to the store.
const CHUNK: usize = 10_000;

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
    /// pages its events land on). Into a SQLite store without any events, a file whose ids do
    /// not repeat is imported as one transaction whatever this says; if no other process has
    /// the database open, that transaction skips the write-ahead log and holds the file
    /// exclusively: another process opening the database meanwhile waits up to its lock
    /// timeout, then fails with "database is locked".
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

/// A CSV row: its cells under the header's names; an empty cell is absent.
struct CsvRow<'a> {
    headers: &'a [String],
    record: &'a csv::StringRecord,
}

impl Fields for CsvRow<'_> {
    fn field(&self, name: &str) -> Field<'_> {
        match self.headers.iter().position(|h| h == name).and_then(|i| self.record.get(i)) {
            Some(cell) if !cell.is_empty() => Field::Str(cell),
            _ => Field::Absent,
        }
    }
}

/// Where an event starts in the file, when it was viewed and a hash of its id: what pass 1 keeps
/// of each. Ordered by viewed time, then place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    viewed: i64,
    offset: u64,
    id_hash: u64,
}

impl Key {
    fn new(event: &ViewEvent, offset: u64) -> Key {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let id_hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(&event.event_id);
        Key { viewed: event.viewed, offset, id_hash }
    }
}

/// Whether no id hash repeats (so no id does; a repeated hash may be two ids that share it).
fn ids_unique(keys: &[Key]) -> bool {
    let mut hashes: Vec<u64> = keys.iter().map(|k| k.id_hash).collect();
    hashes.sort_unstable();
    hashes.windows(2).all(|w| w[0] != w[1])
}

/// The file to import, mapped, and how to read an event in it.
struct Input {
    map: Mmap,
    /// The CSV header's names; `None` for NDJSON.
    csv_headers: Option<Vec<String>>,
}

impl Input {
    fn open(path: &Path, format: Format) -> Result<Input> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = file.metadata().with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file (import reads its file twice)", path.display());
        }
        // SAFETY: the map is only read. Like any mapped file, it must not be truncated while the
        // import runs (the process would get SIGBUS); changed contents are caught as a line
        // that no longer reads in pass 2.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
        let csv = match format {
            Format::Csv => true,
            Format::Ndjson => false,
            Format::Auto => path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
        };
        let csv_headers = if csv {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(&map[..]);
            let headers: Vec<String> =
                reader.headers().map_err(|e| anyhow!("CSV header: {e}"))?.iter().map(|h| h.trim().to_owned()).collect();
            if let Some(unknown) = headers.iter().find(|h| !FIELD_NAMES.contains(&h.as_str())) {
                bail!("CSV header: unknown column {unknown:?}; columns are {}", FIELD_NAMES.join(", "));
            }
            Some(headers)
        } else {
            None
        };
        Ok(Input { map, csv_headers })
    }

    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Pass 1: reads every event, failing on the first bad one with its line number. Returns
    /// each event's key, sorted by viewed time (then by place in the file). An NDJSON file is
    /// read by two threads, one half each.
    fn index(&self, bar: &ProgressBar) -> Result<Vec<Key>> {
        let mut keys = match &self.csv_headers {
            None => {
                let len = self.map.len();
                let half = len / 2;
                let mid = memchr::memchr(b'\n', &self.map[half..]).map_or(len, |i| half + i + 1);
                let (first, second) = std::thread::scope(|s| {
                    let second = s.spawn(|| self.ndjson_keys(mid, len, bar));
                    (self.ndjson_keys(0, mid, bar), second.join())
                });
                let second = second.map_err(|_| anyhow!("the thread reading the file's second half failed"))?;
                let (mut keys, rest) = match (first, second) {
                    (Err((offset, e)), _) | (Ok(_), Err((offset, e))) => {
                        let line = 1 + memchr::memchr_iter(b'\n', &self.map[..offset]).count();
                        return Err(e.context(format!("line {line}")));
                    }
                    (Ok(a), Ok(b)) => (a, b),
                };
                keys.extend(rest);
                keys
            }
            Some(headers) => self.csv_keys(headers, bar)?,
        };
        keys.sort_unstable();
        Ok(keys)
    }

    /// The keys of the NDJSON lines in `from..to` (both at line starts), or the first bad
    /// line's offset and error.
    fn ndjson_keys(&self, from: usize, to: usize, bar: &ProgressBar) -> Result<Vec<Key>, (usize, anyhow::Error)> {
        let mut keys = Vec::new();
        let mut start = from;
        let mut shown = from;
        while start < to {
            let end = memchr::memchr(b'\n', &self.map[start..to]).map_or(to, |i| start + i);
            match self.ndjson_at(start, end) {
                Ok(Some(event)) => keys.push(Key::new(&event, start as u64)),
                Ok(None) => {}
                Err(e) => return Err((start, e)),
            }
            if (keys.len() & 4095) == 4095 {
                bar.inc((start - shown) as u64);
                shown = start;
            }
            start = end + 1;
        }
        Ok(keys)
    }

    /// The keys of every CSV row, in file order.
    fn csv_keys(&self, headers: &[String], bar: &ProgressBar) -> Result<Vec<Key>> {
        let mut keys = Vec::new();
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(&self.map[..]);
        let mut record = csv::StringRecord::new();
        // The header row first, so that positions are those of events.
        reader.headers().map_err(|e| anyhow!("CSV header: {e}"))?;
        loop {
            let offset = reader.position().byte();
            if !reader.read_record(&mut record).map_err(|e| anyhow!("CSV: {e}"))? {
                return Ok(keys);
            }
            let line = record.position().map_or(0, |p| p.line());
            let event = read_fields(&CsvRow { headers, record: &record })
                .map_err(|errors| anyhow!("line {line}: {}", describe(&errors)))?;
            keys.push(Key::new(&event, offset));
            if (keys.len() & 4095) == 0 {
                bar.set_position(offset);
            }
        }
    }

    /// The NDJSON line between `start` and `end` (its newline): `None` if blank.
    fn ndjson_at(&self, start: usize, end: usize) -> Result<Option<ViewEvent>> {
        let text = std::str::from_utf8(&self.map[start..end]).map_err(|_| anyhow!("not UTF-8"))?.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match read_json_event(text.as_bytes()) {
            Ok(event) => Ok(Some(event)),
            Err(JsonEventError::Syntax(e)) => bail!("not a JSON object: {e}"),
            Err(JsonEventError::Invalid(errors)) => bail!("{}", describe(&errors)),
        }
    }

    /// Pass 2: the event pass 1 found at `key`.
    fn read(&self, key: Key) -> Result<ViewEvent> {
        let start = usize::try_from(key.offset)?;
        let changed = || format!("byte {start}: the file changed after it was checked");
        let event = match &self.csv_headers {
            None => {
                let rest = self.map.get(start..).with_context(changed)?;
                let end = memchr::memchr(b'\n', rest).map_or(self.map.len(), |i| start + i);
                self.ndjson_at(start, end).with_context(changed)?
            }
            Some(headers) => {
                let rest = self.map.get(start..).with_context(changed)?;
                let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(rest);
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(true) => read_fields(&CsvRow { headers, record: &record }).ok(),
                    _ => None,
                }
            }
        };
        event.filter(|e| e.viewed == key.viewed).with_context(changed)
    }
}

fn progress(total: u64, template: &str, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_message(message);
    bar
}

/// Runs the import.
pub async fn run(cmd: ImportCmd) -> Result<()> {
    let file = load_file(cmd.store.config.as_deref())?;
    let mut settings = cmd.store.resolve(&file);
    settings.sqlite_cache_kib = Some(cmd.cache_mib.saturating_mul(1024));
    let input = Arc::new(Input::open(&cmd.file, cmd.format)?);
    with_store!(settings, |store| {
        // The account first, so that a mistyped name does not wait for a pass over a big file.
        let account =
            store.account_by_name(&cmd.account).await?.ok_or_else(|| anyhow!("no account named {:?}", cmd.account))?;
        let bar = progress(input.len(), "{msg} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})", "checking");
        let keys = input.index(&bar)?;
        bar.finish_and_clear();
        let count = keys.len() as u64;
        let outcome = store_all(&*store, account.id, input.clone(), keys, cmd.batch_size as usize).await?;
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

/// The events at `keys`, in their order.
fn read_batch(input: &Input, keys: &[Key]) -> Result<Vec<ViewEvent>> {
    let mut events = Vec::with_capacity(keys.len());
    for &key in keys {
        events.push(input.read(key)?);
    }
    Ok(events)
}

/// Pass 2: stores the events in `keys`' order through [`Store::import_events`], committed every
/// `batch_size`, reading them on another thread a chunk ahead of the store.
async fn store_all<S: Store>(
    store: &S,
    account: viewlog_store::AccountId,
    input: Arc<Input>,
    keys: Vec<Key>,
    batch_size: usize,
) -> Result<InsertOutcome> {
    use futures::SinkExt;
    let bar = progress(keys.len() as u64, "{msg} {bar:40} {pos}/{len} events ({per_sec}, {eta})", "importing");
    let options = ImportOptions { per_commit: batch_size, unique_ids: ids_unique(&keys) };
    // Two chunks read ahead: the reader waits while they are not taken.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Vec<ViewEvent>>(1);
    let shown = bar.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        for chunk in keys.chunks(CHUNK) {
            let batch = read_batch(&input, chunk)?;
            if futures::executor::block_on(tx.send(batch)).is_err() {
                // The store stopped taking batches: its error is the one to report.
                return Ok(());
            }
            shown.inc(chunk.len() as u64);
        }
        Ok(())
    });
    let stored = store.import_events(account, rx, options).await;
    let read = reader.await.context("the reading thread failed")?;
    bar.finish_and_clear();
    let outcome = stored.context("storing the events")?;
    read.context("reading the file again (what was stored before this stays stored)")?;
    Ok(outcome)
}
