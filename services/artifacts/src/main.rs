//! `verdict-artifacts`: the artifacts service on its own, for a scaled deployment.

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-artifacts",
        verdict_artifacts::Settings::from_env,
        verdict_artifacts::run,
    )
}
