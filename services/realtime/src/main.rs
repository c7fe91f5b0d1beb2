//! `verdict-realtime`: the realtime service on its own, for a scaled deployment.

/// mimalloc: measurably faster than the system allocator for the services' many small,
/// short-lived allocations (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-realtime",
        verdict_realtime::Settings::from_env,
        verdict_realtime::run,
    )
}
