//! The `congress` binary: every subcommand lives in `congress::cli`.

// The engine allocates and frees many small values (interned strings, rows in flight);
// mimalloc is markedly faster than the system allocator at that. `no_thp` keeps it from
// backing its arenas with transparent huge pages, which cut peak RSS by a fifth on the
// bench at no measurable cost in speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    congress::cli::run()
}
