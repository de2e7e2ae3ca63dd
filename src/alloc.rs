//! The allocator's one setting: give freed memory back to the system at once.
//!
//! mimalloc 2.x keeps memory that was freed for 10 ms (a whole freed segment for ten times
//! that), and purges it only at a later allocator call in the same part of the heap. The
//! engine frees big buffers in bursts: a table's outgrown arrays as it grows, a recomputed
//! stratum's rows, a load's pages. What is kept counts against a pod's memory limit, and
//! how much is kept at any moment depends on timing. Measured on C 100k and workload d
//! (docs/bench.md, `MIMALLOC_PURGE_DELAY=D`, the same binary, interleaved):
//!
//! | purge delay | C 100k rss, bytes per fact | d1000 |
//! |---|---|---|
//! | 10 ms (mimalloc's default) | 158 to 172 | 1.56 to 1.69 ms |
//! | 1 ms | 150 to 152 | 1.61 to 2.03 ms |
//! | 0 (this setting) | 143 to 145 | 1.81 to 2.08 ms |
//!
//! At 0 the resident set after a burst is what the engine holds, the same in every run, so
//! a memory limit can be set from it. The cost is a purge per freed span on small deltas.
//! `MIMALLOC_PURGE_DELAY`, when set, still decides: mimalloc reads it at start, and this
//! leaves it alone.

/// mimalloc 2.x's `mi_option_purge_delay`: the 16th option of `mi_option_e` in its
/// `include/mimalloc.h` (`libmimalloc-sys` names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The delay chosen, in milliseconds (the table above).
const PURGE_DELAY_MS: std::ffi::c_long = 0;

/// Purge freed memory at once, unless the environment says otherwise. Call first thing in
/// `main`, before any other thread starts: the setting is not thread-safe.
pub fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one integer option of the allocator (no pointer is passed); called
    // before any other thread exists, as `mi_option_set` requires.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS)
    };
}

#[cfg(test)]
#[allow(unsafe_code)] // SAFETY of each call: integer arguments only, no pointer.
mod tests {
    use super::PURGE_DELAY;
    use libmimalloc_sys::{mi_collect, mi_option_get};
    use std::time::{Duration, Instant};

    /// Resident bytes of this process (`/proc/self/statm`, in pages of 4 KiB).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()).expect("resident pages") * 4096
    }

    /// Blocks of 256 KiB (inside mimalloc's segments, not mapped one by one) freed leave the
    /// resident set once the delay (none) has passed and the allocator collects, as it does
    /// by itself every so many allocations. With the purge delay at -1 (never) they stay;
    /// a wrong option number is caught by the next test.
    #[test]
    fn freed_memory_leaves_the_resident_set_after_the_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        super::purge_freed_memory_at_once();
        assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, super::PURGE_DELAY_MS);
        let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8 | 1; 256 << 10]).collect();
        let before = resident();
        let touched: usize = blocks.iter().map(|b| b[b.len() / 2] as usize).sum();
        drop(blocks);
        let start = Instant::now();
        let mut after = resident();
        // Bounded by a second of collections, far above the delay: this asserts that the
        // memory goes, not how fast (the benches measure that).
        while before.saturating_sub(after) <= 48 << 20 && start.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(2));
            unsafe { mi_collect(false) };
            after = resident();
        }
        assert!(touched > 0);
        assert!(
            before.saturating_sub(after) > 48 << 20,
            "64 MiB freed, resident {before} -> {after} bytes after {:?}",
            start.elapsed()
        );
    }

    /// The option [`PURGE_DELAY`] holds `MIMALLOC_PURGE_DELAY` when it is set (mimalloc
    /// reads it at start, and [`super::purge_freed_memory_at_once`] leaves it alone), and
    /// the delay chosen when it is not.
    #[test]
    fn the_purge_delay_is_the_environments_or_ours() {
        super::purge_freed_memory_at_once();
        let want = match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(v) => v.trim().parse::<std::ffi::c_long>().expect("MIMALLOC_PURGE_DELAY is a number"),
            Err(_) => super::PURGE_DELAY_MS,
        };
        assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, want);
    }

    /// [`PURGE_DELAY`] is the option mimalloc reads from `MIMALLOC_PURGE_DELAY`: the test
    /// above, run again in a copy of this test binary started with the variable set.
    #[test]
    fn the_option_number_is_the_one_the_environment_sets() {
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "alloc::tests::the_purge_delay_is_the_environments_or_ours", "--nocapture"])
            .env("MIMALLOC_PURGE_DELAY", "7")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(" 1 passed"), "the test ran: {stdout}");
    }
}
