//! Allocator tuning for the binary.
//!
//! Every batch allocates column buffers of tens of MB, hands them to the
//! writer thread, which frees them. mimalloc's default returns such memory
//! to the OS after 10 ms, so the next batch faults in freshly zeroed pages
//! (a quarter of all CPU time in profiles). Memory is bounded by the batch
//! limits anyway, so keep freed pages for reuse.

/// `mi_option_purge_delay` in the `mi_option_e` enum of the mimalloc bundled
/// by libmimalloc-sys (v2 and v3 agree); the crate does not export it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of purging it.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options lazily and
    // this is called first thing in main, before any worker thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_index_matches_the_bundled_mimalloc() {
        // the default of mi_option_purge_delay: 1000 ms in mimalloc v3, 10 ms in v2
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(
            v == 1000 || v == 10,
            "option 15 is {v}, not purge_delay (1000 in v3, 10 in v2): update MI_OPTION_PURGE_DELAY"
        );
    }
}
