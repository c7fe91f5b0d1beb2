//! `verdict backup` and `verdict restore`: a consistent copy of one service's SQLite
//! database taken while the service runs, and putting one back while it is stopped.

use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use verdict_settings::Env;
use verdict_store::{backup, StoreSettings};

/// The services that own a database.
#[derive(Clone, Copy, ValueEnum)]
pub enum StoreOwner {
    Auth,
    Runs,
    Artifacts,
    Notify,
}

impl StoreOwner {
    fn name(self) -> &'static str {
        match self {
            StoreOwner::Auth => "auth",
            StoreOwner::Runs => "runs",
            StoreOwner::Artifacts => "artifacts",
            StoreOwner::Notify => "notify",
        }
    }
}

/// Where `owner`'s database is, and the files derived from it, by the same settings the
/// service reads.
fn database(owner: StoreOwner) -> Result<StoreSettings, ExitCode> {
    let env = Env::process();
    let settings = match owner {
        StoreOwner::Runs => verdict_runs::Settings::from_env(&env).map(|runs| runs.store),
        _ => StoreSettings::from_env(&env, owner.name()),
    };
    settings.map_err(|err| {
        eprintln!("verdict: configuration error: {err}");
        ExitCode::from(2)
    })
}

pub fn backup(owner: StoreOwner, out: &Path) -> ExitCode {
    let store = match database(owner) {
        Ok(store) => store,
        Err(code) => return code,
    };
    match backup::backup(&store.path, out) {
        Ok(bytes) => {
            println!(
                "backed up {} ({}) to {} ({bytes} bytes)",
                owner.name(),
                store.path.display(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("verdict backup: {err}");
            ExitCode::FAILURE
        }
    }
}

pub fn restore(owner: StoreOwner, from: &Path) -> ExitCode {
    let store = match database(owner) {
        Ok(store) => store,
        Err(code) => return code,
    };
    match backup::restore(from, &store.path) {
        Ok(()) => {
            println!(
                "restored {} ({}) from {}",
                owner.name(),
                store.path.display(),
                from.display()
            );
            forget_derived(&store)
        }
        Err(err) => {
            eprintln!("verdict restore: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the files derived from a restored database (the runs service's text index):
/// they describe the data it held before, and the service rebuilds them at start.
fn forget_derived(store: &StoreSettings) -> ExitCode {
    for attached in &store.attached {
        if let Err(err) = backup::remove_database(&attached.path) {
            eprintln!(
                "verdict restore: remove {} before starting the service: {err}",
                attached.path.display()
            );
            return ExitCode::FAILURE;
        }
        println!(
            "removed {}, which the service rebuilds from the restored data",
            attached.path.display()
        );
    }
    ExitCode::SUCCESS
}
