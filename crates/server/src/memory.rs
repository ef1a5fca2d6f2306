//! Giving memory back to the system after a large request, and bounding what the allocator
//! keeps.
//!
//! A record-views batch of 10,000 events is a body of a few MiB that becomes a JSON tree and a
//! batch of events several times its size. glibc's allocator keeps what they free for later
//! allocations, so a server that had taken a bulk ingest stayed at ~100–125 MiB of private
//! memory (measured with `viewlog-bench`, RssAnon after its record-views load). After a large
//! body, the freed memory is handed back.

/// Bodies at least this large are followed by a trim.
pub const TRIM_AFTER_BYTES: usize = 1 << 20;

/// Returns the allocator's free memory to the system, on a blocking thread (it walks every
/// arena): glibc's `malloc_trim`; nothing where the allocator is another.
pub fn trim_soon() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: `malloc_trim` only releases free pages of the allocator's own arenas, under
        // the allocator's locks; it may be called at any time from any thread.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}

/// Arenas glibc may create per CPU this process may run on (glibc's own default: eight per CPU
/// of the machine).
pub const ARENAS_PER_CPU: usize = 2;
/// Allocations at least this large are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD: usize = 32 * 1024 * 1024;
/// Free memory at the top of an arena beyond this is returned to the system when freed.
pub const TRIM_THRESHOLD: usize = 8 * 1024 * 1024;

/// The environment variables that tune glibc's allocator: when one is set, [`tune_allocator`]
/// leaves the allocator to it.
pub const ALLOCATOR_ENV: [&str; 4] =
    ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"];

/// The most arenas [`tune_allocator`] lets glibc create: [`ARENAS_PER_CPU`] per CPU this
/// process may run on, at least two.
pub fn arena_cap() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (ARENAS_PER_CPU * cpus).max(2)
}

/// Bounds what glibc's allocator keeps (unless the environment tunes it, see [`ALLOCATOR_ENV`]):
/// at most [`arena_cap`] arenas, and fixed thresholds ([`MMAP_THRESHOLD`], [`TRIM_THRESHOLD`])
/// instead of the ones glibc raises as it goes. Call it first thing in `main`, before other
/// threads start: the cap only bounds arenas created after it. `viewlog serve` and `demo` call
/// it; shorter commands do not (`viewlog import`, whose reading and storing threads hand
/// events to each other, ran 20% slower with its arenas capped).
///
/// Why: glibc gives threads their own arenas, up to eight per CPU of the machine, and raises
/// its trim threshold (up to 64 MiB) each time a large mapped block is freed; an arena other
/// than the main one keeps the top of its heap up to that threshold, whatever `malloc_trim`
/// says. Tokio's blocking threads come and go, each taking an arena in turn, so the server's
/// private memory grew with every bulk record-views load: 27.5 → 55.9 → 90.4 MiB over three
/// rounds of `viewlog-bench` (`--only ingest`), against 22–28 MiB with these settings. Fixed
/// thresholds alone (256 KiB mmap, 1 MiB trim) bounded it too, but then every search mapped
/// and faulted in its multi-MiB text segments afresh: 10M-store search p99 40 → 75 ms. With
/// a 32 MiB mmap threshold and an 8 MiB trim threshold, segments are read into warm memory.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if ALLOCATOR_ENV.iter().any(|k| std::env::var_os(k).is_some()) {
            return;
        }
        for (param, value) in [
            (libc::M_ARENA_MAX, arena_cap()),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ] {
            let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
            // SAFETY: `mallopt` changes a setting of the allocator under its own lock.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
