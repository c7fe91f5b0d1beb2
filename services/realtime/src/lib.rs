//! The realtime service. See DESIGN.md ("Live view").

mod config;
mod error;

use tokio_util::sync::CancellationToken;
use verdict_bus::ServiceHost;
use verdict_contracts::ServiceName;

pub use config::Settings;
pub use error::Error;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the realtime service until `shutdown` fires, then finishes in-flight requests
/// and drains the bus connection.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    let client = verdict_bus::connect(&settings.bus).await?;
    let host = ServiceHost::start(client, ServiceName::Realtime, VERSION).await?;
    tracing::info!("realtime service ready");
    host.serve(shutdown).await?;
    Ok(())
}
