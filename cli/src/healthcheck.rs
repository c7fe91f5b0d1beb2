//! `verdict healthcheck <service>`: whether this process's own instance of a service
//! answers on the bus, for exec probes (Docker healthchecks, Kubernetes probes) in an
//! image without a shell or an HTTP client.
//!
//! How it finds its own instance: every process, once registered on the bus, writes
//! the instance id it registered with to `VERDICT_INSTANCE_FILE` (default
//! `<VERDICT_DATA_DIR>/verdict-<service>.instance`). An exec probe runs in the
//! service's container with the service's environment, so this command reads the same
//! settings, reads that id, connects as the service's own NATS user and pings that one
//! instance (`$SRV.PING.verdict-<service>.<id>`). Only that process can answer: a
//! healthy replica elsewhere does not make a stuck or disconnected one look healthy.

use std::process::ExitCode;
use std::time::Duration;

use verdict_bus::presence::{ping_instance, read_instance_id};
use verdict_bus::{BusSettings, RequestError};
use verdict_contracts::ProcessKind;
use verdict_settings::Env;

/// Checks `kind`'s instance of this container within about `timeout` (connecting,
/// then the ping): 0 when it answers, 1 when it does not, 2 on a configuration error.
pub fn healthcheck(kind: ProcessKind, timeout: Duration) -> ExitCode {
    let mut settings = match BusSettings::from_env(&Env::process(), &kind.micro_name()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("verdict healthcheck: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(instance_file) = settings.instance_file.clone() else {
        eprintln!("verdict healthcheck: no instance file is configured");
        return ExitCode::from(2);
    };
    let id = match read_instance_id(&instance_file) {
        Ok(id) => id,
        Err(err) => {
            eprintln!(
                "verdict healthcheck: {kind} is not registered on the bus: no instance id in {} ({err}); \
                 the service writes it there once it has started (check VERDICT_DATA_DIR or VERDICT_INSTANCE_FILE)",
                instance_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    settings.connection_name = format!("{}-healthcheck", kind.micro_name());
    settings.connect_deadline = timeout;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("verdict healthcheck: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    verdict_telemetry::install_tls_provider();
    runtime.block_on(async {
        let client = match verdict_bus::connect(&settings).await {
            Ok(client) => client,
            Err(err) => {
                eprintln!("verdict healthcheck: {kind} instance {id} cannot be asked: {err}");
                return ExitCode::FAILURE;
            }
        };
        match ping_instance(&client, kind, &id, timeout).await {
            Ok(pong) if pong.id == id => {
                println!("{kind} instance {id} (version {}) answers", pong.version);
                ExitCode::SUCCESS
            }
            Ok(pong) => {
                eprintln!(
                    "verdict healthcheck: instance {} answered for {kind} instance {id}",
                    pong.id
                );
                ExitCode::FAILURE
            }
            Err(RequestError::NoResponders { .. }) => {
                eprintln!(
                    "verdict healthcheck: {kind} instance {id} does not answer: it is not on the bus \
                     (the process stopped, or lost its NATS connection)"
                );
                ExitCode::FAILURE
            }
            Err(err) => {
                eprintln!("verdict healthcheck: {kind} instance {id} does not answer: {err}");
                ExitCode::FAILURE
            }
        }
    })
}
