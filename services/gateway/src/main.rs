//! `verdict-gateway`: one edge gateway, for a scaled deployment.

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-gateway",
        verdict_gateway::Settings::from_env,
        verdict_gateway::run,
    )
}
