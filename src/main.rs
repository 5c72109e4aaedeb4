//! The `inlet` binary (also installed as `target-inlet`, which means `inlet load`).

// Batches allocate and free large column buffers over and over; mimalloc
// keeps those pages around instead of mapping fresh zeroed memory each time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    inlet::cli::alloc::keep_freed_memory();
    inlet::cli::main_with(std::env::args_os().collect())
}
