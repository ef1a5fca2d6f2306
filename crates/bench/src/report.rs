//! The markdown report (`BENCHMARKS.md`) and the number formats it uses.

use crate::procfs::Machine;
use std::fmt::Write;

/// Whether a row met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Met {
    /// The target was met.
    Yes,
    /// The target was missed.
    No,
    /// The row has no target (a reference figure).
    Info,
    /// Requests failed during the measurement: the figure is not a speed.
    Errors,
    /// The row was not measured in this run (e.g. 10M without `--ten-million`).
    NotRun,
}

impl Met {
    /// `Yes` if `ok`, else `No`.
    pub fn from_bool(ok: bool) -> Met {
        if ok {
            Met::Yes
        } else {
            Met::No
        }
    }

    /// Whether the row needs an explanation (a missed target or failed requests).
    pub fn is_miss(self) -> bool {
        matches!(self, Met::No | Met::Errors)
    }

    fn cell(self) -> &'static str {
        match self {
            Met::Yes => "yes",
            Met::No => "**NO**",
            Met::Info => "—",
            Met::Errors => "**NO (errors)**",
            Met::NotRun => "not run",
        }
    }
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What is measured (`page`, `search, few matches`, …).
    pub row: String,
    /// The figure (the median of the runs).
    pub figure: String,
    /// What it is compared with, measured in the same run.
    pub baseline: String,
    /// The median of the per-run ratios.
    pub ratio: String,
    /// The target.
    pub target: String,
    /// Whether the target was met.
    pub met: Met,
}

/// Raw per-run figures: one line per measured quantity, one column per run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerRun {
    /// The column headings (`run 1`, `run 2`, …).
    pub runs: Vec<String>,
    /// Quantity name and its value in each run.
    pub lines: Vec<(String, Vec<String>)>,
}

/// Everything `BENCHMARKS.md` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The machine it ran on.
    pub machine: Machine,
    /// When it ran (UTC).
    pub date: String,
    /// The git commit of the work tree, with a note if it had uncommitted changes.
    pub commit: String,
    /// The exact command that produced the report.
    pub command: String,
    /// The settings in force (events, runs, duration, …).
    pub settings: Vec<(String, String)>,
    /// The results table.
    pub rows: Vec<Row>,
    /// What each row measured, exactly.
    pub notes: Vec<String>,
    /// The raw figures of each run.
    pub per_run: PerRun,
    /// The written analysis (see [`Analysis`]).
    pub analysis: Analysis,
}

/// What people wrote about the figures, kept in `crates/bench/analysis.md` so that every run of
/// the harness carries it into the report: a `## general` section printed before the missed
/// targets, and a `### <row>` section per row (matched by the start of the row's name) printed
/// under that row if it missed its target. A missed row without a section gets a placeholder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The general section.
    pub general: String,
    /// Row-name prefixes and their text.
    pub rows: Vec<(String, String)>,
}

impl Analysis {
    /// Reads the analysis file's sections; an absent file is an empty analysis.
    pub fn parse(text: &str) -> Analysis {
        let mut analysis = Analysis::default();
        let mut current: Option<(bool, String, String)> = None;
        let flush = |current: Option<(bool, String, String)>, analysis: &mut Analysis| {
            if let Some((general, key, body)) = current {
                let body = body.trim().to_owned();
                if general {
                    analysis.general = body;
                } else {
                    analysis.rows.push((key, body));
                }
            }
        };
        for line in text.lines() {
            if let Some(key) = line.strip_prefix("### ") {
                flush(current.take(), &mut analysis);
                current = Some((false, key.trim().to_owned(), String::new()));
            } else if line.trim() == "## general" {
                flush(current.take(), &mut analysis);
                current = Some((true, String::new(), String::new()));
            } else if let Some((_, _, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        flush(current, &mut analysis);
        analysis
    }

    /// The text written for a row, if any.
    fn for_row(&self, row: &str) -> Option<&str> {
        self.rows
            .iter()
            .filter(|(key, _)| row.starts_with(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, t)| t.as_str())
    }
}

/// A table cell: no line breaks, pipes escaped.
fn cell(text: &str) -> String {
    let t = text.replace(['\n', '\r'], " ").replace('|', "\\|");
    if t.trim().is_empty() {
        "—".to_owned()
    } else {
        t
    }
}

/// `text`, or a dash for nothing.
fn dash(text: &str) -> &str {
    if text.trim().is_empty() {
        "—"
    } else {
        text
    }
}

/// Renders the report as markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `viewlog-bench` (crates/bench): every figure below was measured by the run \
         described here; none is typed in. Run it again to replace this file.\n"
    );
    let _ = writeln!(
        out,
        "- **Machine:** {} CPUs ({}), {} memory, Linux {}",
        m.cpus,
        m.cpu_model,
        fmt_gib(m.mem_total),
        m.kernel
    );
    let _ = writeln!(out, "- **Date:** {}", report.date);
    let _ = writeln!(out, "- **Commit:** {}", report.commit);
    let _ = writeln!(out, "- **Command:** `{}`", report.command);
    for (k, v) in &report.settings {
        let _ = writeln!(out, "- **{k}:** {v}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "The server runs pinned to CPU 0 (`taskset -c 0`); the load generator, `viewlog logs` and the \
         Python sample run pinned to CPU 1. Each figure is the median of the runs; each ratio is taken \
         within one run (figure and baseline measured minutes apart at most) and the median of those \
         ratios is shown, so that the machine's noise cancels. Other processes on this machine (compiles, \
         other sessions' tests) may have disturbed the absolute figures: **the ratios within a run are \
         what count**.\n"
    );
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "| row | figure | baseline in the same run | ratio | target | met? |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for r in &report.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&r.row),
            cell(&r.figure),
            cell(&r.baseline),
            cell(&r.ratio),
            cell(&r.target),
            r.met.cell()
        );
    }
    let _ = writeln!(out);
    if !report.notes.is_empty() {
        let _ = writeln!(out, "## What each row measured\n");
        for n in &report.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out);
    }
    let missed: Vec<&Row> = report.rows.iter().filter(|r| r.met.is_miss()).collect();
    let _ = writeln!(out, "## Missed targets: what was tried, what the profile shows\n");
    if !report.analysis.general.is_empty() {
        let _ = writeln!(out, "{}\n", report.analysis.general);
    }
    if missed.is_empty() {
        let _ = writeln!(out, "Every measured target was met in this run.\n");
    } else {
        let _ = writeln!(
            out,
            "The figures are measured by this run; the explanations come from `crates/bench/analysis.md`, \
             written by people after profiling, and may describe an earlier run.\n"
        );
        for r in missed {
            let why = if r.met == Met::Errors { "requests failed" } else { "target missed" };
            let _ = writeln!(out, "### {} ({why})\n", r.row);
            let _ = writeln!(
                out,
                "- Measured: {}; baseline: {}; ratio: {}; target: {}.",
                dash(&r.figure),
                dash(&r.baseline),
                dash(&r.ratio),
                dash(&r.target)
            );
            match report.analysis.for_row(&r.row) {
                Some(text) => {
                    let _ = writeln!(out, "{text}\n");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "- **PLACEHOLDER:** no analysis of this row in `crates/bench/analysis.md` yet: what \
                         was tried and what the profile shows are still to be written.\n"
                    );
                }
            }
        }
    }
    if !report.per_run.lines.is_empty() {
        let _ = writeln!(out, "## Raw figures of each run\n");
        let _ = write!(out, "| quantity |");
        for r in &report.per_run.runs {
            let _ = write!(out, " {} |", cell(r));
        }
        let _ = writeln!(out);
        let _ = write!(out, "|---|");
        for _ in &report.per_run.runs {
            let _ = write!(out, "---|");
        }
        let _ = writeln!(out);
        for (name, values) in &report.per_run.lines {
            let _ = write!(out, "| {} |", cell(name));
            for i in 0..report.per_run.runs.len() {
                let _ = write!(out, " {} |", cell(values.get(i).map(String::as_str).unwrap_or("")));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
    }
    out
}

/// A count with thousands separators, rounded: `17,812`.
pub fn fmt_count(v: f64) -> String {
    if !v.is_finite() {
        return "?".into();
    }
    let neg = v < 0.0;
    let digits = (v.abs().round() as u64).to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    // The first group takes what is left over from groups of three.
    let first = match digits.len() % 3 {
        0 => 3,
        n => n,
    };
    for (i, c) in digits.chars().enumerate() {
        if i >= first && (i - first) % 3 == 0 {
            s.push(',');
        }
        s.push(c);
    }
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

/// Milliseconds from nanoseconds, with precision that suits the size: `0.84 ms`, `12.3 ms`.
pub fn fmt_ms(nanos: f64) -> String {
    let ms = nanos / 1e6;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", fmt_count(ms))
    }
}

/// Mebibytes: `12.3 MiB`.
pub fn fmt_mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Gibibytes: `23.5 GiB`.
pub fn fmt_gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// A ratio: `0.28×`.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "?".into()
    } else if r < 0.1 {
        format!("{r:.3}×")
    } else if r < 10.0 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rows: Vec<Row>) -> Report {
        Report {
            machine: Machine { cpus: 2, cpu_model: "AMD EPYC".into(), mem_total: 24 << 30, kernel: "6.1.0".into() },
            date: "2025-01-02T03:04:05+0000".into(),
            commit: "abc1234".into(),
            command: "cargo run --release -p viewlog-bench --".into(),
            settings: vec![("Events".into(), "1,000,000".into())],
            rows,
            notes: vec!["page: June".into()],
            per_run: PerRun {
                runs: vec!["run 1".into(), "run 2".into()],
                lines: vec![("floor req/s".into(), vec!["17,000".into(), "18,000".into()])],
            },
            analysis: Analysis::default(),
        }
    }

    fn row(name: &str, met: Met) -> Row {
        Row {
            row: name.into(),
            figure: "1,200 req/s | 32 conn".into(),
            baseline: "floor 17,800 req/s".into(),
            ratio: fmt_ratio(0.0674),
            target: "≥ 0.30× floor".into(),
            met,
        }
    }

    #[test]
    fn renders_the_table_with_escaped_cells_and_verdicts() {
        let md = render(&report(vec![row("page", Met::No), row("floor", Met::Info), row("10M page", Met::NotRun)]));
        assert!(md.contains("| row | figure | baseline in the same run | ratio | target | met? |"), "{md}");
        assert!(
            md.contains("| page | 1,200 req/s \\| 32 conn | floor 17,800 req/s | 0.067× | ≥ 0.30× floor | **NO** |"),
            "{md}"
        );
        assert!(md.contains("| 10M page |") && md.contains("| not run |"), "{md}");
        assert!(md.contains("**Machine:** 2 CPUs (AMD EPYC), 24.0 GiB memory, Linux 6.1.0"), "{md}");
        assert!(md.contains("**Command:** `cargo run --release -p viewlog-bench --`"), "{md}");
        assert!(md.contains("the ratios within a run are what count"), "{md}");
        // A missed row gets a placeholder explanation; the met ones do not.
        assert!(md.contains("PLACEHOLDER") && md.contains("### page (target missed)"), "{md}");
        // A row with an analysis gets it instead.
        let mut with = report(vec![row("page", Met::No)]);
        with.analysis = Analysis::parse("## general\nAll of it.\n### pa\nshort key\n### page\nWhy it missed.\n");
        let md = render(&with);
        assert!(md.contains("All of it.") && md.contains("Why it missed.") && !md.contains("short key"), "{md}");
        assert!(!md.contains("PLACEHOLDER"), "{md}");
        assert!(!md.contains("### floor"), "{md}");
        assert!(md.contains("| floor req/s | 17,000 | 18,000 |"), "{md}");
    }

    #[test]
    fn no_placeholder_when_every_target_is_met() {
        let md = render(&report(vec![row("page", Met::Yes)]));
        assert!(!md.contains("PLACEHOLDER") && md.contains("Every measured target was met"), "{md}");
        let md = render(&report(vec![row("ingest", Met::Errors)]));
        assert!(md.contains("**NO (errors)**") && md.contains("### ingest (requests failed)"), "{md}");
        let mut bare = row("ingest", Met::No);
        bare.baseline = String::new();
        let md = render(&report(vec![bare]));
        assert!(md.contains("baseline: —; ratio:"), "{md}");
    }

    #[test]
    fn number_formats() {
        assert_eq!(fmt_count(17812.4), "17,812");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_count(1_000_000.0), "1,000,000");
        assert_eq!(fmt_count(-1234.0), "-1,234");
        assert_eq!(fmt_ms(840_000.0), "0.84 ms");
        assert_eq!(fmt_ms(12_345_678.0), "12.3 ms");
        assert_eq!(fmt_ms(1_234_000_000.0), "1,234 ms");
        assert_eq!(fmt_mib(12.5 * 1024.0 * 1024.0), "12.5 MiB");
        assert_eq!(fmt_ratio(1.234), "1.23×");
        assert_eq!(fmt_ratio(0.0051), "0.005×");
        assert_eq!(cell(""), "—");
    }
}
