//! `verdict-notify`: the notify service on its own, for a scaled deployment.

/// mimalloc: measurably faster than the system allocator for the services' many small,
/// short-lived allocations (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-notify",
        verdict_notify::Settings::from_env,
        verdict_notify::run,
    )
}
