//! The `congress` binary: the command line ([`cli`], one module per subcommand) and the
//! operator's reconcilers ([`controllers`]). The engine (`congress_engine`), the resource
//! types and loaders (`congress_model`), the drivers (`congress_drivers`, this package's
//! library) and the conformance replay (`congress_conformance`) are crates of their own, so
//! what may depend on what is checked by the compiler: see `docs/architecture.md`.

mod alloc;
mod api;
mod cli;
mod controllers;

// The engine allocates and frees many small values (interned strings, rows in flight);
// mimalloc is markedly faster than the system allocator at that. `no_thp` keeps it from
// backing all its arenas with transparent huge pages, which cut peak RSS by a fifth on the
// bench; only blocks of 8 MiB and more go on them (`alloc::Allocator`), where they save
// page faults and TLB misses. `v2` is mimalloc 2.x, which returns freed memory to
// the system after 10 ms where 3.x waits a second: tables grow by doubling, and 3.x kept
// every outgrown copy resident through a load (C 100k: peak RSS 294 -> 236 bytes per fact,
// same speed; docs/bench.md).
#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

fn main() -> std::process::ExitCode {
    alloc::purge_freed_memory_at_once();
    cli::run()
}
