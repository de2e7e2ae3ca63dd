//! The process's allocator ([`Allocator`]: mimalloc, big blocks on huge pages) and its
//! one setting: give freed memory back to the system at once.
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

use std::alloc::{GlobalAlloc, Layout};

/// The process's allocator: mimalloc, with big blocks on transparent huge pages.
///
/// A full evaluation fills arrays of tens of megabytes (a table's rows, its membership
/// set, a round's derived rows) and probes them at random. On 4 KiB pages that is a page
/// fault per 4 KiB first touched (a fifth of workload c's evaluation was spent in the
/// kernel) and a TLB miss on most probes. Blocks of [`HUGE_BLOCK`] and more are advised
/// onto 2 MiB pages (`MADV_HUGEPAGE`, which the kernel's default `madvise` mode of
/// transparent huge pages honours). Measured on this machine, first evaluations in fresh
/// processes (docs/bench.md): in `benches/peers.sh`, workload c 231-237 -> 213-227 ms and b
/// 89 -> 74-77 ms; a, d and C 100k's anonymous resident set unchanged (none of C's blocks
/// is that big). The cost: when the memory comes cold from another process's writes, c is
/// slower (224 -> 257 ms), as the kernel clears whole 2 MiB pages out of cache where 4 KiB
/// faults reuse this process's just-freed pages. Smaller blocks stay on 4 KiB pages, which
/// keeps the resident set of many small tables what it was (the `no_thp` feature keeps
/// mimalloc from advising its own arenas so; it still lets the process have huge pages).
/// The advice is dropped when a block is freed or handed back to mimalloc to resize, so
/// that the range, reused for small blocks, goes back to small pages.
pub struct Allocator;

/// Blocks from this size up are advised onto huge pages. At 4 MiB (the smallest size that
/// always holds a whole, aligned 2 MiB page) nothing ran faster than at 8; at 16, b lost
/// most of its gain (its closure's rows are 12 MB).
const HUGE_BLOCK: usize = 8 << 20;

/// A transparent huge page on x86-64 and on arm64 with 4 KiB pages. Elsewhere the advice
/// covers a range the kernel backs with what pages it has: nothing breaks.
const HUGE_PAGE: usize = 2 << 20;

/// Give `advice` for the whole huge pages inside `size` bytes at `p`. The advice is only
/// that: an error (no transparent huge pages in this kernel) changes nothing, and is
/// ignored.
fn advise(p: *mut u8, size: usize, advice: libc::c_int) {
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + size) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        // SAFETY: the range lies inside a block the caller owns (just allocated, or
        // about to be freed), and these advices change how its pages are backed, never
        // their contents.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, advice)
        };
    }
}

/// `p`, a block of `size` bytes just allocated (or null), advised onto huge pages if it
/// is big enough.
fn onto_huge_pages(p: *mut u8, size: usize) -> *mut u8 {
    if size >= HUGE_BLOCK && !p.is_null() {
        advise(p, size, libc::MADV_HUGEPAGE);
    }
    p
}

// SAFETY: every block comes from mimalloc, with the layout asked for, and goes back to
// it with the layout it was allocated with; the only additions are `madvise` calls on
// whole pages inside a live block (see `advise`) and, for a block growing past
// HUGE_BLOCK, a copy into a new block of the new size (as `GlobalAlloc::realloc`'s
// default does).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is mimalloc's.
        onto_huge_pages(unsafe { mimalloc::MiMalloc.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`. A block fresh from the system is zero without being
        // written, so its pages are first touched after the advice.
        onto_huge_pages(unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if layout.size() >= HUGE_BLOCK {
            advise(p, layout.size(), libc::MADV_NOHUGEPAGE);
        }
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size < HUGE_BLOCK || new_size <= layout.size() {
            // Shrinking, or growing while small: mimalloc's own realloc, which may move
            // the block and free the old one itself, so a big block's advice goes first
            // and the result is advised again if it is still big.
            if layout.size() >= HUGE_BLOCK {
                advise(p, layout.size(), libc::MADV_NOHUGEPAGE);
            }
            // SAFETY: the caller's contract is mimalloc's.
            return onto_huge_pages(unsafe { mimalloc::MiMalloc.realloc(p, layout, new_size) }, new_size);
        }
        // Growing into a big block: a new block, advised before the copy first touches
        // its pages (mimalloc's own realloc would copy into small pages).
        // SAFETY: `new_size` is nonzero and, rounded to the alignment, does not overflow
        // (the caller's contract for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid, nonzero layout.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, distinct and at least `layout.size()` long;
            // the old one is then freed with the layout it was allocated with.
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size());
                self.dealloc(p, layout);
            }
        }
        q
    }
}

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

    /// The flags the kernel shows for the mapping that holds `addr`
    /// (`/proc/self/smaps`, `VmFlags`: `hg` for `MADV_HUGEPAGE`, `nh` for
    /// `MADV_NOHUGEPAGE`); none when no mapping holds it.
    fn vm_flags(addr: usize) -> Option<Vec<String>> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().and_then(|r| r.split_once('-'));
            if let Some((lo, hi)) = range
                && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.split_whitespace().map(str::to_string).collect());
            }
        }
        None
    }

    /// Whether `flags` (from [`vm_flags`]) hold `flag`.
    fn has(flags: &Option<Vec<String>>, flag: &str) -> bool {
        flags.as_ref().is_some_and(|v| v.iter().any(|x| x == flag))
    }

    /// Whether this kernel has transparent huge pages at all (else `madvise` refuses the
    /// advice, and there is nothing to see in the flags). Without `/sys` to tell, the
    /// advice is not looked for: the other checks still run.
    fn kernel_has_huge_pages() -> bool {
        std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
    }

    /// The first whole huge page inside a block.
    fn first_huge_page(p: *const u8) -> usize {
        (p as usize).next_multiple_of(super::HUGE_PAGE)
    }

    /// A block of [`super::HUGE_BLOCK`] or more is advised onto huge pages while it lives
    /// and advised off when freed; a smaller block is never advised.
    #[test]
    fn big_blocks_are_advised_onto_huge_pages_while_they_live() {
        let big = vec![7u8; super::HUGE_BLOCK * 2];
        let small = vec![7u8; super::HUGE_BLOCK / 8];
        let page = first_huge_page(big.as_ptr());
        let (big_flags, small_flags) = (vm_flags(page), vm_flags(small.as_ptr() as usize));
        assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 7 * big.len());
        drop(big);
        let freed_flags = vm_flags(page);
        assert!(small_flags.is_some(), "the small block lies in a mapping");
        assert!(!has(&small_flags, "hg"), "a small block is never advised: {small_flags:?}");
        assert!(!has(&freed_flags, "hg"), "a freed block's range is advised off: {freed_flags:?}");
        assert!(big_flags.is_some(), "the big block lies in a mapping");
        if kernel_has_huge_pages() {
            assert!(has(&big_flags, "hg"), "a live big block is advised onto huge pages: {big_flags:?}");
        }
    }

    /// A block keeps its contents as it grows past [`super::HUGE_BLOCK`] (a new block, advised,
    /// then the copy), grows further, and shrinks back below it (mimalloc's own realloc);
    /// a zeroed big block is zero and advised.
    #[test]
    fn blocks_keep_their_contents_through_every_resize() {
        let words = super::HUGE_BLOCK / 8;
        let mut v: Vec<u64> = (0..words as u64 / 4).collect();
        for i in v.len() as u64..(words * 4) as u64 {
            v.push(i);
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64), "contents after growing");
        if kernel_has_huge_pages() {
            assert!(has(&vm_flags(first_huge_page(v.as_ptr().cast())), "hg"), "the grown block is advised");
        }
        v.truncate(words / 4);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64), "contents after shrinking");
        let zeroed = vec![0u64; words * 2];
        assert!(zeroed.iter().all(|&x| x == 0));
        if kernel_has_huge_pages() {
            assert!(has(&vm_flags(first_huge_page(zeroed.as_ptr().cast())), "hg"), "a zeroed big block is advised");
        }
    }

    /// A big block shrunk below [`super::HUGE_BLOCK`] (mimalloc's realloc, which may move
    /// it and free the old block itself) leaves no advice on its old range, and keeps its
    /// contents.
    #[test]
    fn a_big_block_shrunk_small_leaves_no_advice_behind() {
        let mut v: Vec<u8> = (0..super::HUGE_BLOCK * 2).map(|i| i as u8).collect();
        let page = first_huge_page(v.as_ptr());
        v.truncate(super::HUGE_BLOCK / 8);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8), "contents after shrinking");
        let flags = vm_flags(page);
        assert!(!has(&flags, "hg"), "the old range is advised off: {flags:?}");
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
