//! `verdict-auth`: the auth service on its own, for a scaled deployment.

fn main() -> std::process::ExitCode {
    verdict_bus::process::main(
        "verdict-auth",
        verdict_auth::Settings::from_env,
        verdict_auth::run,
    )
}
