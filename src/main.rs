//! The `congress` binary: every subcommand lives in `congress::cli`.

// The engine allocates and frees many small values (interned strings, rows in flight);
// mimalloc is markedly faster than the system allocator at that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    congress::cli::run()
}
