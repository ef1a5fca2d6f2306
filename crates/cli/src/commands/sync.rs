//! `viewlog sync`: the long-running collector.

use crate::client_args::ClientArgs;
use crate::commands::admin::parse_duration;
use crate::timearg::parse_time;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use viewlog_client::sync::{Collector, OutputConfig, SyncOptions, SyslogProto};
use viewlog_protocol::dates::Bound;

/// `viewlog sync` flags.
#[derive(Debug, Args)]
pub struct SyncCmd {
    /// Where the first run starts (later runs resume from the checkpoint): a date, or 7d, 24h…
    #[arg(long, default_value = "1d")]
    since: String,
    /// The checkpoint file. [default: the output file + `.checkpoint`; required for stdout and syslog]
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Append NDJSON to this file (`-` for standard output). Exactly once across kills only for a file.
    #[arg(long, short, default_value = "-")]
    output: String,
    /// Rotate the output file when it passes this many bytes (to FILE.1, FILE.2, …).
    #[arg(long)]
    max_bytes: Option<u64>,
    /// Send RFC 5424 syslog instead: tcp://HOST:PORT or udp://HOST:PORT.
    #[arg(long, conflicts_with = "output")]
    syslog: Option<String>,
    /// Case-insensitive text filter.
    #[arg(long)]
    query: Option<String>,
    /// Records per request.
    #[arg(long, default_value_t = 500)]
    page_size: u32,
    /// How far each window reaches back into the last, for late events (e.g. 1h).
    #[arg(long, default_value = "1h", value_parser = parse_secs_or_zero)]
    overlap: Duration,
    /// How far behind the server's clock each window ends (e.g. 2m).
    #[arg(long, default_value = "2m", value_parser = parse_secs_or_zero)]
    grace: Duration,
    /// How far each window reaches past the last one while catching up (e.g. 1d).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    window: Duration,
    /// Wait between polls once caught up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Collect up to the server's time at the start (less --grace), then exit (for cron and
    /// tests).
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    client: ClientArgs,
}

fn parse_secs_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// Runs the collector until caught up (`--once`) or until SIGINT/SIGTERM.
pub async fn run(cmd: SyncCmd) -> Result<()> {
    let client = cmd.client.client()?;
    let output = match &cmd.syslog {
        Some(url) => {
            let (proto, addr) = if let Some(a) = url.strip_prefix("tcp://") {
                (SyslogProto::Tcp, a)
            } else if let Some(a) = url.strip_prefix("udp://") {
                (SyslogProto::Udp, a)
            } else {
                bail!("--syslog takes tcp://HOST:PORT or udp://HOST:PORT, not {url:?}");
            };
            OutputConfig::Syslog { addr: addr.to_owned(), proto }
        }
        None if cmd.output == "-" => OutputConfig::Stdout,
        None => OutputConfig::File { path: PathBuf::from(&cmd.output), max_bytes: cmd.max_bytes },
    };
    let checkpoint = match (&cmd.checkpoint, &output) {
        (Some(p), _) => p.clone(),
        (None, OutputConfig::File { path, .. }) => {
            let mut p = path.clone().into_os_string();
            p.push(".checkpoint");
            PathBuf::from(p)
        }
        (None, _) => bail!("--checkpoint FILE is required when writing to standard output or syslog"),
    };
    let now = viewlog_client::client::unix_now();
    let since = parse_time(&cmd.since, Bound::Start, now).map_err(|e| anyhow!(e))?;
    let options = SyncOptions {
        since,
        query: cmd.query.clone(),
        page_size: cmd.page_size,
        overlap: cmd.overlap.as_secs() as i64,
        grace: cmd.grace.as_secs() as i64,
        max_window: cmd.window.as_secs() as i64,
        interval: cmd.interval,
        once: cmd.once,
        checkpoint,
        output,
    };
    let mut collector = Collector::open(&client, options)?;
    collector.run(viewlog_server::shutdown_signal()).await?;
    let cp = collector.checkpoint();
    tracing::info!(written = cp.written, repeats = cp.repeats, "sync stopped");
    Ok(())
}
