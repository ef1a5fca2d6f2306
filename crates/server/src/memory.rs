//! Giving memory back to the system after a large request.
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
