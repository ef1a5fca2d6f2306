//! `viewlog logs`: a one-off query, as a table for people or NDJSON, CSV or JSON for programs.

use crate::client_args::ClientArgs;
use crate::timearg::parse_time;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use viewlog_client::ViewLogFilter;
use viewlog_protocol::dates::Bound;
use viewlog_protocol::records::ViewLogRecord;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns sized to the terminal.
    Table,
    /// One JSON record per line.
    Ndjson,
    /// A header row, then one record per row.
    Csv,
    /// One JSON array.
    Json,
}

/// `viewlog logs` flags.
#[derive(Debug, Args)]
pub struct LogsCmd {
    /// Earliest `viewed` time (inclusive): 2016-12-01, 2016-12-01T00:00:00+0000, now, 24h, 7d…
    /// [default: the server's, the start of today UTC]
    #[arg(long)]
    start: Option<String>,
    /// Latest `viewed` time (inclusive). [default: the server's, the end of today UTC]
    #[arg(long)]
    end: Option<String>,
    /// Case-insensitive text matched against viewer, from, to and subject.
    #[arg(long)]
    query: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Records per request (the server allows up to 500).
    #[arg(long, default_value_t = 500)]
    page_size: u32,
    /// Output format. [default: table on a terminal, else ndjson]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

/// The most rows a table shows without `--limit`.
const TABLE_LIMIT: u64 = 1000;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 9] =
    ["viewed", "viewer", "from", "to", "subject", "source", "contentViewed", "discoveryCase", "messageDate"];

fn csv_row(r: &ViewLogRecord) -> [String; 9] {
    [
        r.viewed.clone(),
        r.viewer.clone(),
        r.from.clone(),
        r.to.clone(),
        r.subject.clone(),
        r.source.clone(),
        r.content_viewed.to_string(),
        r.discovery_case.to_string(),
        r.message_date.clone(),
    ]
}

/// Runs the query.
pub async fn run(cmd: LogsCmd) -> Result<()> {
    let client = cmd.client.client()?;
    let now = client.server_now();
    let filter = ViewLogFilter {
        start: cmd
            .start
            .as_deref()
            .map(|s| parse_time(s, Bound::Start, now))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        end: cmd.end.as_deref().map(|s| parse_time(s, Bound::End, now)).transpose().map_err(anyhow::Error::msg)?,
        query: cmd.query.clone(),
        page_size: Some(cmd.page_size),
    };
    let to_terminal = cmd.output.is_none() && std::io::stdout().is_terminal();
    let format = cmd.format.unwrap_or(if to_terminal { Format::Table } else { Format::Ndjson });
    let sink: Box<dyn Write> = match &cmd.output {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BufWriter::with_capacity(1 << 16, sink);
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} records ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut emitter = match format {
        Format::Ndjson => Emitter::Ndjson(out),
        Format::Json => Emitter::Json(out, 0),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_COLUMNS)?;
            Emitter::Csv(Box::new(w))
        }
        Format::Table => Emitter::Table(out, Table::default()),
    };
    // A table is laid out once all its rows are known: keep it to a screenful unless told.
    let limit = cmd.limit.or((format == Format::Table).then_some(TABLE_LIMIT));
    let mut count = 0u64;
    let mut pages = std::pin::pin!(client.view_logs_pages(filter));
    'pages: while let Some(page) = pages.try_next().await? {
        for record in &page.records {
            if limit.is_some_and(|l| count >= l) {
                break 'pages;
            }
            emitter.push(record)?;
            count += 1;
        }
        bar.set_position(count);
    }
    bar.finish_and_clear();
    emitter.finish(to_terminal)?;
    if format == Format::Table {
        eprintln!("{count} records");
    }
    Ok(())
}

/// Writes records in one format.
enum Emitter<W: Write> {
    Ndjson(W),
    Json(W, u64),
    Csv(Box<csv::Writer<W>>),
    Table(W, Table),
}

impl<W: Write> Emitter<W> {
    fn push(&mut self, record: &ViewLogRecord) -> Result<()> {
        match self {
            Emitter::Ndjson(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            Emitter::Json(out, n) => {
                out.write_all(if *n == 0 { b"[" } else { b"," })?;
                serde_json::to_writer(&mut *out, record)?;
                *n += 1;
            }
            Emitter::Csv(w) => w.write_record(csv_row(record))?,
            Emitter::Table(_, table) => table.push(record),
        }
        Ok(())
    }

    fn finish(self, terminal: bool) -> Result<()> {
        match self {
            Emitter::Ndjson(mut out) => out.flush()?,
            Emitter::Json(mut out, n) => {
                out.write_all(if n == 0 { b"[]\n" } else { b"]\n" })?;
                out.flush()?;
            }
            Emitter::Csv(mut w) => w.flush()?,
            Emitter::Table(mut out, table) => {
                table.write(&mut out, terminal)?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// A table sized to the terminal: fixed columns, then the subject gets what is left.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn push(&mut self, r: &ViewLogRecord) {
        // One line a record: a newline or tab in a subject would break the row or its alignment.
        let cell = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        self.rows.push([cell(&r.viewed), cell(&r.viewer), cell(&r.from), cell(&r.to), cell(&r.subject)]);
    }

    fn write(&self, out: &mut impl Write, terminal: bool) -> std::io::Result<()> {
        let width = terminal_size::terminal_size().map(|(w, _)| w.0 as usize).filter(|_| terminal).unwrap_or(160);
        let header = ["VIEWED", "VIEWER", "FROM", "TO", "SUBJECT"];
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        // Addresses get at most 32 columns each; the subject takes the rest.
        for w in widths.iter_mut().take(4).skip(1) {
            *w = (*w).min(32);
        }
        let fixed: usize = widths.iter().take(4).sum::<usize>() + 4 * 2;
        widths[4] = width.saturating_sub(fixed).max(10);
        let fit = |s: &str, w: usize| -> String {
            let n = s.chars().count();
            if n <= w {
                format!("{s:<w$}")
            } else {
                let cut: String = s.chars().take(w.saturating_sub(1)).collect();
                format!("{cut}…")
            }
        };
        let line = |cells: [&str; 5], out: &mut dyn Write| -> std::io::Result<()> {
            let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| fit(c, widths[i])).collect();
            writeln!(out, "{}", parts.join("  ").trim_end())
        };
        line(header, out)?;
        for r in &self.rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]], out)?;
        }
        Ok(())
    }
}
