//! The runs service. See DESIGN.md.

mod config;
pub mod domain;
mod error;
pub mod import;
mod store;

use tokio_util::sync::CancellationToken;
use verdict_bus::ServiceHost;
use verdict_contracts::ServiceName;
use verdict_store::Store;

pub use config::Settings;
pub use error::Error;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the runs service until `shutdown` fires, then finishes in-flight requests,
/// drains the bus connection and closes the database.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let store = Store::open(settings.store, store::MIGRATIONS).await?;
    let client = verdict_bus::connect(&settings.bus).await?;
    let host = ServiceHost::start(client, ServiceName::Runs, VERSION).await?;
    tracing::info!(database = %store.path().display(), "runs service ready");
    host.serve(shutdown).await?;
    store.close().await?;
    Ok(())
}
