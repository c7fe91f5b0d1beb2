/// Why the realtime service stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
}
