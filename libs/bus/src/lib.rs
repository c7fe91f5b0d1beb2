//! NATS glue shared by every Verdict process.
//!
//! * [`connect`]: a connection with bounded retry and a clear error.
//! * [`backoff`]: the one retry rule (exponential pauses with jitter, within a budget).
//! * [`ServiceHost`]: endpoints served through the NATS micro-service protocol.
//! * [`presence`]: registration, instance ids and discovery of every process.
//! * [`Bus`]: typed request/reply with a timeout and distinct "no responders" and
//!   "timed out" errors.
//! * [`trace`]: W3C trace context carried in message headers.
//! * [`streams`]: idempotent creation of the JetStream streams.
//! * [`consume`]: the one JetStream work-queue consumer loop.
//! * [`tasks`]: the one rule for a service's background tasks.
//! * [`turns`]: overlapping rounds of a consumer, done in the order they came.

pub mod access;
pub mod backoff;
mod connect;
pub mod consume;
mod error;
mod metrics;
pub mod presence;
pub mod process;
mod request;
mod serve;
pub mod server;
pub mod streams;
pub mod tasks;
pub mod trace;
pub mod turns;

pub use async_nats::connection::State as ConnectionState;
pub use async_nats::jetstream::kv::{Operation as KvOperation, Store as KvStore};
pub use async_nats::jetstream::{self as jetstream_api, new as jetstream};
pub use async_nats::{Client, HeaderMap, Subscriber};
pub use connect::{connect, BusSettings};
pub use error::{BoxError, BusError};
pub use request::{Bus, RequestError};
pub use serve::{Endpoints, ServiceHost};
