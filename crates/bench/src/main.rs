//! `viewlog-bench`: seeds a store of realistic events, starts the release `viewlog serve`
//! pinned to CPU 0, drives load over loopback from CPU 1 and writes `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p viewlog-bench --                 # 1,000,000 events, 3 runs of 5 s
//! cargo run --release -p viewlog-bench -- --ten-million   # and the 10M rows
//! cargo run --release -p viewlog-bench -- --quick         # smoke test: 100,000 events, 1 run of 2 s
//! ```

mod load;
mod seed;
mod server;
mod suite;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use viewlog_bench::stats::parse_duration;

/// Benchmarks viewlog and writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "viewlog-bench", version)]
struct Cli {
    /// Events in the main store [default: 1000000; 100000 with --quick].
    #[arg(long)]
    events: Option<u64>,
    /// Also seed 10,000,000 events and measure the page, search and deep rows on them.
    #[arg(long)]
    ten_million: bool,
    /// Runs of every measurement; the table shows the median [default: 3; 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// How long each load is measured, e.g. 5s or 500ms [default: 5s; 2s with --quick].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Warm-up before each measured load [default: 1s; 500ms with --quick].
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Connections of the throughput loads.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Events `viewlog import` imports [default: 500000; 50000 with --quick].
    #[arg(long)]
    import_events: Option<u64>,
    /// Batches of 10,000 events sent to record-views per run [default: 20; 5 with --quick].
    #[arg(long)]
    ingest_batches: Option<usize>,
    /// Where to write the report [default: BENCHMARKS.md at the workspace root].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed the databases again even if the cache has them.
    #[arg(long)]
    fresh: bool,
    /// A smoke test: 100,000 events, 1 run, 2 s loads.
    #[arg(long)]
    quick: bool,
    /// Only seed the databases (and the import file) into the cache, then stop.
    #[arg(long)]
    seed_only: bool,
    /// Use the release `viewlog` binary as it is instead of building it first.
    #[arg(long)]
    no_build: bool,
    /// Where seeded databases are cached [default: target/bench-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Measure only these parts (comma-separated); the other rows say "not measured".
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = suite::Part::ALL)]
    only: Vec<suite::Part>,
}

/// The workspace root: two levels above this crate's manifest, if it is still there.
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    match here.parent().and_then(Path::parent) {
        Some(root) if root.join("Cargo.toml").exists() => root.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root.join(d)
            }
        }
        None => root.join("target"),
    }
}

/// Builds the release `viewlog` (or, with `--no-build`, only checks it is there).
fn viewlog_binary(root: &Path, target: &Path, build: bool) -> Result<PathBuf> {
    let bin = target.join("release").join("viewlog");
    if build {
        eprintln!("building the release viewlog binary (cargo build --release -p viewlog)");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "viewlog"])
            .current_dir(root)
            .status()
            .context("running cargo build --release -p viewlog")?;
        if !status.success() {
            bail!(
                "building the release viewlog binary failed ({status}); fix the build, or build it yourself with \
                 `cargo build --release -p viewlog` and pass --no-build"
            );
        }
    }
    if !bin.exists() {
        bail!("{} does not exist: run `cargo build --release -p viewlog` first", bin.display());
    }
    Ok(bin)
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    let target = target_dir(&root);
    let quick = cli.quick;
    let events = cli.events.unwrap_or(if quick { 100_000 } else { 1_000_000 });
    if events < 1_000 {
        bail!("--events must be at least 1,000");
    }
    let mut command = String::from("cargo run --release -p viewlog-bench --");
    for a in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&shell_quote(&a));
    }
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| target.join("bench-data"));
    let config = suite::Config {
        events,
        ten_million: cli.ten_million && events != 10_000_000,
        runs: cli.runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        duration: cli.duration.unwrap_or(if quick { Duration::from_secs(2) } else { Duration::from_secs(5) }),
        warmup: cli.warmup.unwrap_or(if quick { Duration::from_millis(500) } else { Duration::from_secs(1) }),
        connections: cli.connections.max(1),
        import_events: cli.import_events.unwrap_or(if quick { 50_000 } else { 500_000 }).max(1),
        ingest_batches: cli.ingest_batches.unwrap_or(if quick { 5 } else { 20 }).max(1),
        work_dir: data_dir.join("work"),
        data_dir,
        root: root.clone(),
        command,
        viewlog: PathBuf::new(),
        parts: cli.only.clone(),
    };
    let out = cli.out.clone().unwrap_or_else(|| root.join("BENCHMARKS.md"));

    server::check_platform()?;
    let viewlog = viewlog_binary(&root, &target, !cli.no_build)?;
    let config = suite::Config { viewlog, ..config };

    // Seeding may use both CPUs; the measuring below runs on CPU 1 only.
    let seeding = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut datasets = vec![seeding.block_on(seed::dataset(&config.data_dir, config.events, cli.fresh))?];
    if config.ten_million {
        datasets.push(seeding.block_on(seed::dataset(&config.data_dir, 10_000_000, cli.fresh))?);
    }
    let import_file = seed::import_file(&config.data_dir, config.import_events)?;
    drop(seeding);
    if cli.seed_only {
        eprintln!("seeded; --seed-only: not measuring");
        return Ok(());
    }

    server::pin_to_cpu(server::CLIENT_CPU)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(suite::run(&config, &datasets, &import_file))?;
    let text = viewlog_bench::report::render(&report);
    std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("\n{text}");
    eprintln!("wrote {}", out.display());
    Ok(())
}
