//! The `verdict` command (see the library for what it does).

use std::process::ExitCode;

/// mimalloc: measurably faster than the system allocator for the services' many small,
/// short-lived allocations (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    verdict_cli::main()
}
