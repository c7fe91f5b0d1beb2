//! `verdict`: run the whole system on one machine (`up`) or one service (`serve`);
//! back up and restore a service's database (`backup`, `restore`); send test reports
//! to a server (`report`), or stream them from a test command as it runs (`run`);
//! probe a service from inside its container (`healthcheck`). A
//! library, so that the end-to-end tests build the same command as a binary of their own (see
//! `tests/cluster_node.rs`).

mod backup;
mod healthcheck;
pub mod report;
pub mod run;
pub mod up;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use verdict_bus::process;
use verdict_contracts::ProcessKind;

#[derive(Parser)]
#[command(
    name = "verdict",
    version,
    about = "Verdict tracks automated test runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process, with a local nats-server unless NATS_URL is set.
    Up {
        /// Address of the HTTP API (overrides VERDICT_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where databases, artifacts and the nats-server store live (overrides VERDICT_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run one service, for a scaled deployment.
    Serve {
        #[arg(value_enum)]
        service: Service,
    },
    /// Write a consistent copy of a service's database while the service runs (the
    /// database is found by the service's own settings: VERDICT_<SERVICE>_DB or
    /// VERDICT_DATA_DIR).
    Backup {
        #[arg(long, value_enum)]
        service: backup::StoreOwner,
        /// The file to write; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace a service's database with a backup (stop the service first).
    Restore {
        #[arg(long, value_enum)]
        service: backup::StoreOwner,
        /// The backup to restore; it is checked before anything is replaced.
        #[arg(long)]
        from: PathBuf,
    },
    #[command(about = report::ABOUT, long_about = report::LONG_ABOUT, after_long_help = report::EXAMPLES)]
    Report(Box<report::ReportArgs>),
    #[command(about = run::ABOUT, long_about = run::LONG_ABOUT, after_long_help = run::EXAMPLES)]
    Run(Box<run::RunCommandArgs>),
    /// Exit 0 when this container's own instance of SERVICE answers on the bus, 1 when
    /// it does not (with the reason), 2 on a configuration error. For exec probes: run
    /// it with the service's own settings; it reads the instance id the service wrote
    /// to VERDICT_INSTANCE_FILE (default <VERDICT_DATA_DIR>/verdict-<SERVICE>.instance)
    /// and pings that one instance as the service's NATS user.
    Healthcheck {
        /// auth, runs, artifacts, realtime, notify or gateway.
        #[arg(value_parser = clap::value_parser!(ProcessKind))]
        service: ProcessKind,
        /// How long connecting, and then the answer, may each take.
        #[arg(long, default_value = "2s", value_name = "DURATION",
            value_parser = verdict_settings::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print the `authorization` block of a nats-server configuration for Verdict: one
    /// NATS user per kind of process, each allowed only its own subjects, passwords read
    /// from $VERDICT_NATS_PASSWORD_<USER> (deploy/nats/nats.conf holds the same).
    BusPermissions,
}

#[derive(Clone, Copy, ValueEnum)]
enum Service {
    Gateway,
    Auth,
    Runs,
    Artifacts,
    Realtime,
    Notify,
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Up { listen, data_dir } => process::main(
            "verdict",
            |env| up::UpSettings::from_env(env, listen, data_dir),
            up::run,
        ),
        Command::Backup { service, out } => backup::backup(service, &out),
        Command::Restore { service, from } => backup::restore(service, &from),
        Command::Report(args) => report::main(*args),
        Command::Run(args) => run::main(*args),
        Command::Healthcheck { service, timeout } => healthcheck::healthcheck(service, timeout),
        Command::BusPermissions => {
            print!(
                "{}",
                verdict_contracts::bus_access::deployment_authorization()
            );
            ExitCode::SUCCESS
        }
        Command::Serve { service } => match service {
            Service::Gateway => process::main(
                "verdict-gateway",
                verdict_gateway::Settings::from_env,
                verdict_gateway::run,
            ),
            Service::Auth => process::main(
                "verdict-auth",
                verdict_auth::Settings::from_env,
                verdict_auth::run,
            ),
            Service::Runs => process::main(
                "verdict-runs",
                verdict_runs::Settings::from_env,
                verdict_runs::run,
            ),
            Service::Artifacts => process::main(
                "verdict-artifacts",
                verdict_artifacts::Settings::from_env,
                verdict_artifacts::run,
            ),
            Service::Realtime => process::main(
                "verdict-realtime",
                verdict_realtime::Settings::from_env,
                verdict_realtime::run,
            ),
            Service::Notify => process::main(
                "verdict-notify",
                verdict_notify::Settings::from_env,
                verdict_notify::run,
            ),
        },
    }
}
