//! The server under test: the release `viewlog serve`, pinned to CPU 0 with `taskset`.

use crate::load::{Conn, Target};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The CPU the server runs on.
pub const SERVER_CPU: usize = 0;
/// The CPU the load generator and the clients run on.
pub const CLIENT_CPU: usize = 1;

/// A running `viewlog serve`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub target: Target,
    /// Its log file.
    pub log: PathBuf,
}

/// Removes every `VIEWLOG_*` variable a child would otherwise inherit (a profile, a config
/// file or a key from the caller's shell must not change what is measured).
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VIEWLOG_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("RUST_LOG")
}

/// A free loopback port (bound, then released: the server binds it right after).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `viewlog serve` on `db` under `taskset -c 0`, with a rate limit too large to
    /// matter, and waits until `/healthz` answers.
    pub async fn start(viewlog: &Path, db: &Path, log: PathBuf) -> Result<Server> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new("taskset");
        clean_env(&mut cmd)
            .arg("-c")
            .arg(SERVER_CPU.to_string())
            .arg(viewlog)
            .arg("serve")
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--rate-capacity", "1000000000", "--rate-refill-per-sec", "1000000000"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = cmd.spawn().context("starting taskset -c 0 viewlog serve")?;
        let mut server = Server { child, target: Target::new(addr)?, log };
        server.wait_ready(Duration::from_secs(120)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("viewlog serve exited with {status} before answering; its log ({}):\n{log}", self.log.display());
            }
            if let Ok(mut c) = Conn::connect(self.target.addr).await {
                if let Ok((status, _)) = c.send(self.target.health()?).await {
                    if status.is_success() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("viewlog serve did not answer /healthz within {timeout:?}; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's process id (`taskset` execs it, so it is the child's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s); nothing if it has stopped already.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pins the calling thread (and so the threads and processes it starts from now on) to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty set; the pointer is to a live local.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process may run on `cpu`.
pub fn may_run_on(cpu: usize) -> bool {
    // SAFETY: as in pin_to_cpu; sched_getaffinity fills the local set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return false;
        }
        libc::CPU_ISSET(cpu, &set)
    }
}

/// Fails clearly unless `taskset` (util-linux) is installed and CPUs 0 and 1 are ours.
pub fn check_platform() -> Result<()> {
    let ok = Command::new("taskset").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !matches!(ok, Ok(s) if s.success()) {
        bail!("`taskset` was not found: it comes with util-linux (apt-get install util-linux); the server must run pinned to one CPU");
    }
    if !(may_run_on(SERVER_CPU) && may_run_on(CLIENT_CPU)) {
        bail!("the benchmark needs CPUs {SERVER_CPU} and {CLIENT_CPU} (one for the server, one for the load); this process may not use both");
    }
    Ok(())
}
