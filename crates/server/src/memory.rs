//! Giving memory back to the system after a large request, and keeping the allocator from
//! holding on to large blocks.
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

/// Allocations at least this large are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD: usize = 256 * 1024;
/// Free memory at the top of an arena beyond this is returned to the system when freed.
pub const TRIM_THRESHOLD: usize = 1024 * 1024;

/// Fixes glibc's mmap and trim thresholds at [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`], unless
/// the environment sets allocator tunables already. Call it first thing in `main`.
///
/// Why: glibc starts with a 128 KiB mmap threshold and raises it (up to 32 MiB, and the trim
/// threshold to twice that) each time a mapped block is freed. After one 4 MiB record-views
/// body, bodies and batches of that size were carved from the arenas instead, and an arena
/// other than the main one keeps the top of its heap up to the raised trim threshold,
/// whatever `malloc_trim` says. The server's private memory grew with every bulk load: 27 → 55
/// → 90 MiB after three rounds of 400,000 record-views events (`viewlog-bench --only ingest
/// --runs 3`), against 21–23 MiB with fixed thresholds; the loads were no slower.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"];
        if tuned.iter().any(|k| std::env::var_os(k).is_some()) {
            return;
        }
        for (param, value) in [(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD), (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)] {
            let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
            // SAFETY: `mallopt` changes a setting of the allocator under its own lock.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
