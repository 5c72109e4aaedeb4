//! The `inlet` binary (also installed as `target-inlet`, which means `inlet load`).

fn main() -> std::process::ExitCode {
    inlet::cli::main_with(std::env::args_os().collect())
}
