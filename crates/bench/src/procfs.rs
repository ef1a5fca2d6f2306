//! What `/proc` says about a process and the machine.

/// The value of a `Name:   1234 kB` line of a `/proc` file, in bytes.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | Some("KB") | Some("kb") => Some(n * 1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// The private resident memory (`RssAnon`) of a `/proc/PID/status` text, in bytes. `VmRSS`
/// would also count the database pages the process has mapped, which are the page cache's.
pub fn parse_rss_anon(status: &str) -> Option<u64> {
    kb_field(status, "RssAnon")
}

/// The `RssAnon` of a running process, in bytes.
pub fn rss_anon(pid: u32) -> std::io::Result<Option<u64>> {
    Ok(parse_rss_anon(&std::fs::read_to_string(format!("/proc/{pid}/status"))?))
}

/// The total memory of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<u64> {
    kb_field(meminfo, "MemTotal")
}

/// The number of processors and the first CPU model a `/proc/cpuinfo` text names.
pub fn parse_cpuinfo(cpuinfo: &str) -> (usize, Option<String>) {
    let mut count = 0;
    let mut model = None;
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key.trim() {
            "processor" => count += 1,
            "model name" if model.is_none() => model = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    (count, model)
}

/// The CPU time (user + system, in clock ticks) of a `/proc/PID/stat` text: fields 14 and 15,
/// counted after the command name's closing parenthesis (the name may hold spaces).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time a process (all its threads) has used so far, in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let ticks = parse_stat_cpu_ticks(&std::fs::read_to_string(path).ok()?)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The machine a benchmark ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Processors the kernel lists.
    pub cpus: usize,
    /// The CPU model, as `/proc/cpuinfo` names it.
    pub cpu_model: String,
    /// Total memory in bytes.
    pub mem_total: u64,
    /// The kernel release.
    pub kernel: String,
}

impl Machine {
    /// This machine, from `/proc` (unknown parts are left empty or 0).
    pub fn detect() -> Machine {
        let (cpus, model) = parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
        Machine {
            cpus,
            cpu_model: model.unwrap_or_else(|| "unknown".into()),
            mem_total: parse_mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()).unwrap_or(0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tviewlog\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t  412344 kB\n\
                          RssAnon:\t    9876 kB\nRssFile:\t  402468 kB\nRssShmem:\t       0 kB\nThreads:\t6\n";

    #[test]
    fn rss_anon_is_read_in_bytes_not_vmrss() {
        assert_eq!(parse_rss_anon(STATUS), Some(9876 * 1024));
        assert_eq!(parse_rss_anon("Name:\tx\nVmRSS:\t 100 kB\n"), None);
        assert_eq!(parse_rss_anon("RssAnon:\tlots kB\n"), None);
        // A longer name that merely starts the same is another field.
        assert_eq!(parse_rss_anon("RssAnonymous:\t5 kB\n"), None);
    }

    #[test]
    fn process_cpu_ticks() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 6 0 100 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn meminfo_and_cpuinfo() {
        assert_eq!(parse_mem_total("MemTotal:       24684216 kB\nMemFree: 1 kB\n"), Some(24_684_216 * 1024));
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(cpuinfo), (2, Some("AMD EPYC 7B13".to_owned())));
        assert_eq!(parse_cpuinfo(""), (0, None));
    }
}
