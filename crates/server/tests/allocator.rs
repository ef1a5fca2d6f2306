//! `memory::tune_allocator` bounds what glibc's allocator keeps. A test binary of its own, one
//! test: the allocator's settings and arenas belong to the process, and a thread takes an arena
//! at its first allocation, so nothing else may run in this process meanwhile.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn arenas_are_capped_and_a_large_block_freed_twice_is_given_back() {
    use std::sync::{Arc, Barrier};
    use viewlog_server::memory::{arena_cap, tune_allocator, ALLOCATOR_ENV, TRIM_THRESHOLD};

    for k in ALLOCATOR_ENV {
        assert!(std::env::var_os(k).is_none(), "{k} is set, so tune_allocator leaves it be: unset it to run this test");
    }
    tune_allocator();

    // A block larger than the trim threshold, allocated, filled and freed, twice. Left to
    // itself, glibc maps the first, raises its thresholds when it is freed, carves the second
    // from an arena and keeps it once freed.
    // SAFETY: mallinfo2 only reads the allocator's statistics (summed over its arenas).
    let free_bytes = || unsafe { libc::mallinfo2() }.fordblks;
    let before = free_bytes();
    let size = 2 * TRIM_THRESHOLD;
    for _ in 0..2 {
        let block = std::hint::black_box(vec![7u8; size]);
        assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 * size as u64);
        drop(block);
    }
    let kept = free_bytes().saturating_sub(before);
    assert!(kept < TRIM_THRESHOLD, "the allocator kept {kept} bytes of two freed {size}-byte blocks");

    // More threads than glibc's own default would give arenas to (eight per CPU), all holding
    // an allocation at once, so that none can take over another's arena.
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = 8 * cpus + 8;
    let hold = Arc::new(Barrier::new(threads + 1));
    let release = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (hold, release) = (hold.clone(), release.clone());
            std::thread::spawn(move || {
                let block = vec![i as u8; 64 * 1024];
                hold.wait();
                release.wait();
                block.len()
            })
        })
        .collect();
    hold.wait();
    let arenas = arenas();
    release.wait();
    for h in handles {
        h.join().expect("a thread");
    }
    // The cap counts the main arena; one more may predate the cap (the test harness's thread).
    assert!(arenas <= arena_cap() + 1, "{threads} threads made {arenas} arenas; the cap is {}", arena_cap());
}

/// The allocator's arenas: malloc_info(3) writes one `<heap nr="…">` element per arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arenas() -> usize {
    use std::io::{Read, Seek};
    use std::os::fd::IntoRawFd;

    let mut file = tempfile::tempfile().expect("a temporary file");
    let fd = file.try_clone().expect("a second handle").into_raw_fd();
    // SAFETY: `fd` is an open descriptor this code owns; fdopen takes it over and fclose closes
    // it; malloc_info only writes to the stream.
    unsafe {
        let stream = libc::fdopen(fd, c"w".as_ptr());
        assert!(!stream.is_null(), "fdopen failed");
        assert_eq!(libc::malloc_info(0, stream), 0, "malloc_info failed");
        assert_eq!(libc::fclose(stream), 0, "fclose failed");
    }
    let mut info = String::new();
    // The two handles share one offset, left at the end by the writing.
    file.rewind().expect("rewinding");
    file.read_to_string(&mut info).expect("reading malloc_info's report");
    let arenas = info.matches("<heap nr=").count();
    assert!(arenas >= 1, "malloc_info reported no arena: {info}");
    arenas
}
