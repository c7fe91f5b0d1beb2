//! `verdict` under another name: the command the local-cluster tests run as every part.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    verdict_cli::main()
}
