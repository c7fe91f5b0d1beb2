//! `verdict-gateway`: one edge gateway, for a scaled deployment.

/// mimalloc: measurably faster than the system allocator for the services' many small,
/// short-lived allocations (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-gateway",
        verdict_gateway::Settings::from_env,
        verdict_gateway::run,
    )
}
