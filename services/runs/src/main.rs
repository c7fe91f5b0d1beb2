//! `verdict-runs`: the runs service on its own, for a scaled deployment.

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-runs",
        verdict_runs::Settings::from_env,
        verdict_runs::run,
    )
}
