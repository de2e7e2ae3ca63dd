//! The allocator's one setting: give freed memory back to the system at once.
//!
//! mimalloc 2.x keeps memory that was freed for 10 ms, and purges it only at a later
//! allocator call. The engine frees big buffers in bursts: a table's outgrown arrays as it
//! grows, a recomputed stratum's rows, a load's pages. What is kept counts against a pod's
//! memory limit, and how much is kept at any moment depended on timing. Purging at once
//! measured C 100k's resident memory 170 -> 151 bytes per fact, for about 15% more time in
//! C's evaluation (docs/bench.md). `MIMALLOC_PURGE_DELAY`, when set, still decides: mimalloc
//! reads it at start, and this leaves it alone.

/// mimalloc 2.x's `mi_option_purge_delay`: the 16th option of `mi_option_e` in its
/// `include/mimalloc.h` (`libmimalloc-sys` names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

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
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0)
    };
}

#[cfg(test)]
mod tests {
    /// Resident bytes of this process (`/proc/self/statm`, in pages of 4 KiB).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()).expect("resident pages") * 4096
    }

    /// Blocks of 256 KiB (inside mimalloc's segments, not mapped one by one) freed
    /// leave the resident set at once, and no later allocator call is needed. With the
    /// option number wrong they stay for the 10 ms default.
    #[test]
    fn freed_memory_leaves_the_resident_set_at_once() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        super::purge_freed_memory_at_once();
        let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8 | 1; 256 << 10]).collect();
        let before = resident();
        let touched: usize = blocks.iter().map(|b| b[b.len() / 2] as usize).sum();
        drop(blocks);
        let after = resident();
        assert!(touched > 0);
        assert!(before.saturating_sub(after) > 48 << 20, "64 MiB freed, resident {before} -> {after} bytes");
    }
}
