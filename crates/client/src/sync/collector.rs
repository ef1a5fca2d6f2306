//! The collector: windows over `viewed`, paging within each, de-duplication across their
//! overlaps, and a checkpoint after every page.
//!
//! Windows are `[high_water + 1 - overlap, server_now - grace]`, reaching at most `max_window`
//! past the high-water mark while catching up; the first window is `[since, …]`. Within a
//! window the pages are followed by their tokens; a page token is never carried into another
//! window. If a token is refused (a real Mimecast token expired),
//! the window is asked again up to the oldest record already handled, and the records at that
//! second are told apart by fingerprint. Records whose fingerprint was written in the previous
//! window's overlap are dropped as repeats.
//!
//! An event is collected if it is recorded by the server within `grace + overlap` of the time it
//! was viewed; one recorded later than that (a very late event) falls behind the window and is
//! not collected. Two records identical in every field are one record to the collector.

use super::checkpoint::{Checkpoint, Cursor, Seen, Window, VERSION};
use super::output::{self, OutputConfig, Sink};
use crate::client::Client;
use crate::error::ClientError;
use crate::fingerprint::fingerprint;
use crate::viewlogs::{Page, ViewLogFilter};
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use viewlog_protocol::dates::{self, Bound};
use viewlog_protocol::records::ViewLogRecord;

/// What the collector is told.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Where the first run starts (`viewed` seconds).
    pub since: i64,
    /// The text filter, if any.
    pub query: Option<String>,
    /// Records per page.
    pub page_size: u32,
    /// Seconds each window reaches back into the previous one, for late events.
    pub overlap: i64,
    /// Seconds behind the server's clock each window ends, so recent events can settle.
    pub grace: i64,
    /// How far, in seconds, a window reaches past the high-water mark while catching up (a
    /// window also reaches `overlap` back before it).
    pub max_window: i64,
    /// The wait between polls once caught up.
    pub interval: Duration,
    /// Collect until caught up with the server's clock as it was at the first window this run
    /// opens (less the grace), then stop: a run that followed the clock would never stop while
    /// each window, re-reading its overlap, takes longer than the clock's next second.
    pub once: bool,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// The output.
    pub output: OutputConfig,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            since: 0,
            query: None,
            page_size: 500,
            overlap: 3600,
            grace: 120,
            max_window: 86_400,
            interval: Duration::from_secs(60),
            once: false,
            checkpoint: PathBuf::from("viewlog-sync.checkpoint"),
            output: OutputConfig::Stdout,
        }
    }
}

/// Why the collector stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A request failed for good.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The output or the checkpoint could not be written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint belongs to another source or query.
    #[error("the checkpoint {path} belongs to {found:?}, not {expected:?}; use another --checkpoint")]
    Mismatch {
        /// The checkpoint file.
        path: String,
        /// Its source.
        found: String,
        /// This run's source.
        expected: String,
    },
    /// The server sent a record whose `viewed` date does not read.
    #[error("a record's viewed date {0:?} does not read")]
    BadRecord(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SyncError {
    let context = context.into();
    move |source| SyncError::Io { context, source }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A page was handled.
    Page {
        /// Records written.
        written: usize,
        /// Records dropped as repeats.
        repeats: usize,
    },
    /// Nothing is left to collect now.
    CaughtUp,
}

/// An NDJSON line: the record and its fingerprint.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a ViewLogRecord,
    fingerprint: &'a str,
}

/// The collector over one client, output and checkpoint.
pub struct Collector<'a> {
    client: &'a Client,
    options: SyncOptions,
    sink: Box<dyn Sink>,
    checkpoint: Checkpoint,
    /// With [`SyncOptions::once`]: where this run's windows end at the latest, fixed when it
    /// opens its first window.
    once_until: Option<i64>,
}

impl std::fmt::Debug for Collector<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("options", &self.options).field("checkpoint", &self.checkpoint).finish()
    }
}

impl<'a> Collector<'a> {
    /// Loads the checkpoint (or starts a new one at `since`) and opens the output, cutting off
    /// any page that was written but not checkpointed.
    pub fn open(client: &'a Client, options: SyncOptions) -> Result<Collector<'a>, SyncError> {
        let source = format!("{} query={:?}", client.base_url(), options.query.as_deref().unwrap_or(""));
        let path = options.checkpoint.display().to_string();
        let mut checkpoint = match Checkpoint::load(&options.checkpoint).map_err(io(format!("reading {path}")))? {
            Some(cp) if cp.source != source => {
                return Err(SyncError::Mismatch { path, found: cp.source, expected: source });
            }
            Some(cp) => {
                tracing::info!(high_water = ?cp.high_water, written = cp.written, "resuming from the checkpoint");
                cp
            }
            None => Checkpoint { version: VERSION, source, high_water: None, ..Default::default() },
        };
        let sink = output::open(&options.output, checkpoint.output.as_ref()).map_err(io("opening the output"))?;
        // A new checkpoint records where the file stands now (saved with the first window), so
        // that a first page written but not checkpointed is cut off on restart too.
        if checkpoint.output.is_none() {
            checkpoint.output = sink.position();
        }
        Ok(Collector { client, options, sink, checkpoint, once_until: None })
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    fn save(&self) -> Result<(), SyncError> {
        self.checkpoint
            .save(&self.options.checkpoint)
            .map_err(io(format!("saving {}", self.options.checkpoint.display())))
    }

    /// Runs until caught up (`once`) or until `stop` completes, polling every `interval`.
    pub async fn run(&mut self, stop: impl std::future::Future<Output = ()>) -> Result<(), SyncError> {
        tokio::pin!(stop);
        loop {
            match self.step().await? {
                Step::Page { .. } => {}
                Step::CaughtUp if self.options.once => return Ok(()),
                Step::CaughtUp => {
                    tokio::select! {
                        _ = &mut stop => return Ok(()),
                        _ = tokio::time::sleep(self.options.interval) => {}
                    }
                }
            }
        }
    }

    /// Handles one page (opening a window first if none is in progress).
    pub async fn step(&mut self) -> Result<Step, SyncError> {
        let window = match self.checkpoint.window {
            Some(w) => w,
            None => match self.open_window()? {
                Some(w) => w,
                None => return Ok(Step::CaughtUp),
            },
        };
        let page = self.fetch(window).await?;
        self.handle(window, page)
    }

    fn open_window(&mut self) -> Result<Option<Window>, SyncError> {
        // Before the first window completes nothing was collected: it starts at `since`.
        let (start, high_water) = match self.checkpoint.high_water {
            Some(hw) => (hw + 1 - self.options.overlap, hw),
            None => (self.options.since, self.options.since - 1),
        };
        let mut limit = self.client.server_now() - self.options.grace;
        if self.options.once {
            limit = *self.once_until.get_or_insert(limit);
        }
        // A window must reach past the high-water mark, or it would only repeat the overlap.
        if limit <= high_water {
            return Ok(None);
        }
        let end = limit.min(high_water.saturating_add(self.options.max_window.max(1)));
        let window = Window { start, end };
        self.checkpoint.window = Some(window);
        self.checkpoint.page_token = None;
        self.checkpoint.cursor = None;
        self.save()?;
        tracing::debug!(start = window.start, end = window.end, "window opened");
        Ok(Some(window))
    }

    fn filter(&self, start: i64, end: i64) -> ViewLogFilter {
        ViewLogFilter {
            start: Some(start),
            end: Some(end),
            query: self.options.query.clone(),
            page_size: Some(self.options.page_size),
        }
    }

    async fn fetch(&mut self, window: Window) -> Result<Page, SyncError> {
        if let Some(token) = self.checkpoint.page_token.clone() {
            match self.client.view_logs_page(&self.filter(window.start, window.end), Some(&token)).await {
                Ok(page) => return Ok(page),
                Err(e) if e.is_invalid_page_token() => {
                    tracing::warn!("the page token was refused; asking the window again from the last record handled");
                    self.checkpoint.page_token = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let end = self.checkpoint.cursor.as_ref().map(|c| c.viewed).unwrap_or(window.end);
        Ok(self.client.view_logs_page(&self.filter(window.start, end), None).await?)
    }

    fn handle(&mut self, window: Window, page: Page) -> Result<Step, SyncError> {
        let overlap_from = window.end + 1 - self.options.overlap;
        let recent: HashSet<String> = self.checkpoint.recent.iter().map(|s| s.fingerprint.clone()).collect();
        let mut cursor = self.checkpoint.cursor.take();
        let mut lines = Vec::with_capacity(page.records.len());
        let mut repeats = 0;
        for record in &page.records {
            let viewed = dates::parse_body_date(&record.viewed, Bound::Start)
                .map_err(|_| SyncError::BadRecord(record.viewed.clone()))?;
            let fp = fingerprint(record);
            let at_cursor = cursor.as_ref().is_some_and(|c| c.viewed == viewed && c.fingerprints.contains(&fp));
            let repeat = at_cursor || recent.contains(&fp);
            match cursor.as_mut() {
                Some(c) if c.viewed == viewed => {
                    if !c.fingerprints.contains(&fp) {
                        c.fingerprints.push(fp.clone());
                    }
                }
                Some(c) if c.viewed < viewed => {}
                _ => cursor = Some(Cursor { viewed, fingerprints: vec![fp.clone()] }),
            }
            if repeat {
                repeats += 1;
                continue;
            }
            let line = serde_json::to_string(&Line { record, fingerprint: &fp })
                .map_err(|e| SyncError::Io { context: "writing a record".into(), source: std::io::Error::other(e) })?;
            lines.push((line, viewed));
            if viewed >= overlap_from {
                self.checkpoint.recent.push(Seen { viewed, fingerprint: fp });
            }
        }
        self.sink.write_lines(&lines).map_err(io("writing the output"))?;
        let cp = &mut self.checkpoint;
        cp.output = self.sink.position();
        cp.written += lines.len() as u64;
        cp.repeats += repeats as u64;
        let done = page.records.is_empty() || page.next.is_none();
        if done {
            cp.high_water = Some(window.end);
            cp.window = None;
            cp.page_token = None;
            cp.cursor = None;
            cp.recent.retain(|s| s.viewed >= overlap_from);
        } else {
            cp.page_token = page.next;
            cp.cursor = cursor;
        }
        self.save()?;
        if self.sink.wants_rotation() {
            self.checkpoint.output = self.sink.rotation_intent();
            self.save()?;
            self.sink.rotate().map_err(io("rotating the output"))?;
            self.checkpoint.output = self.sink.position();
            self.save()?;
        }
        Ok(Step::Page { written: lines.len(), repeats })
    }
}
