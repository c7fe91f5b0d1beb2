//! The life of a Verdict process: read settings once, start telemetry and the admin
//! listener (`/metrics` of everything the process runs), run until SIGINT or SIGTERM,
//! exit 0 after a clean stop.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use verdict_settings::{Env, SettingError};
use verdict_telemetry::TelemetrySettings;

/// Runs `run` with settings parsed by `settings` from the process environment, inside a
/// multi-threaded runtime, until a signal asks it to stop. Errors are printed once,
/// plainly, and give exit code 1.
pub fn main<S, E, Fut>(
    process_name: &str,
    settings: impl FnOnce(&Env) -> Result<S, SettingError>,
    run: impl FnOnce(S, CancellationToken) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let env = Env::process();
    let prepared = TelemetrySettings::from_env(&env, process_name)
        .and_then(|telemetry| settings(&env).map(|settings| (telemetry, settings)));
    let (telemetry, settings) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            eprintln!("{process_name}: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{process_name}: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _telemetry = match verdict_telemetry::init(&telemetry) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("{process_name}: {err}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        // Before anything records, so that no metric handle is made without a registry.
        verdict_telemetry::install_metrics();
        tokio::spawn(verdict_telemetry::admin::run(
            telemetry.admin_listen,
            shutdown.clone(),
        ));
        match run(settings, shutdown).await {
            Ok(()) => {
                tracing::info!("{process_name} stopped");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(error = %err, "{process_name} failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// Cancels `token` on the first SIGINT or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
        () = token.cancelled() => return,
    }
    token.cancel();
}
