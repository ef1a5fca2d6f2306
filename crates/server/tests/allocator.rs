//! `memory::tune_allocator` keeps glibc from holding on to large blocks once they are freed. A
//! test binary of its own: the allocator's settings belong to the process.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_large_block_freed_twice_is_given_back_both_times() {
    for k in ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"] {
        assert!(std::env::var_os(k).is_none(), "{k} is set, so tune_allocator leaves it be: unset it to run this test");
    }
    viewlog_server::memory::tune_allocator();
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let free_bytes = || unsafe { libc::mallinfo2() }.fordblks;
    let before = free_bytes();
    // The shape of a large request body: allocated, filled, freed; then again. Left to itself,
    // glibc maps the first block, raises its mmap threshold when it is freed, and carves the
    // second from an arena, which keeps it once freed.
    for _ in 0..2 {
        let block = std::hint::black_box(vec![7u8; 4 * 1024 * 1024]);
        assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 * 4 * 1024 * 1024);
        drop(block);
    }
    let kept = free_bytes().saturating_sub(before);
    assert!(kept < 1024 * 1024, "the allocator kept {kept} bytes of two freed 4 MiB blocks");
}
