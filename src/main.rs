//! The `inlet` binary (also installed as `target-inlet`, which means `inlet load`).

fn main() -> std::process::ExitCode {
    tune_allocator();
    inlet::cli::main_with(std::env::args_os().collect())
}

/// glibc's malloc raises its mmap threshold each time a big mapped block is
/// freed; after that, chunk-sized buffers (column data, encoded files) come
/// from heaps that fragment, and RSS crept ~10 % from 1M to 5M records. A
/// fixed 4 MB threshold maps and unmaps those buffers, so memory follows what
/// is live. Fixing it also fixes the trim threshold at 128 KB, which hands
/// freed heap back to the kernel after every chunk only to fault it in again
/// (half of all page faults, ~5 % CPU); 16 MB keeps a few chunks' worth
/// (32 MB measured no faster, and peak memory varied more). Either
/// setting made in the environment (`MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`) wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let set =
        |var: &str, tunable: &str| std::env::var_os(var).is_some() || tunables.contains(tunable);
    // SAFETY: mallopt takes plain integers; it runs before any other thread
    unsafe {
        if !set("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
        if !set("MALLOC_TRIM_THRESHOLD_", "trim_threshold") {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
