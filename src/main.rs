//! The `inlet` binary (also installed as `target-inlet`, which means `inlet load`).

fn main() -> std::process::ExitCode {
    tune_allocator();
    inlet::cli::main_with(std::env::args_os().collect())
}

/// glibc's malloc raises its mmap threshold each time a big mapped block is
/// freed; after that, chunk-sized buffers (column data, encoded files) come
/// from heaps that fragment, and RSS crept ~10 % from 1M to 5M records. A
/// fixed 4 MB threshold maps and unmaps those buffers, so memory follows what
/// is live, for about 3 % more CPU. A threshold set in the environment
/// (`MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES`) wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    let tuned = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("mmap_threshold"));
    if !tuned {
        // SAFETY: mallopt takes plain integers; it runs before any other thread
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
