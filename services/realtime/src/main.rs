//! `verdict-realtime`: the realtime service on its own, for a scaled deployment.

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-realtime",
        verdict_realtime::Settings::from_env,
        verdict_realtime::run,
    )
}
