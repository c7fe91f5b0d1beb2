//! The only coupling between Verdict's services: bus subjects, stream definitions,
//! header names and message types. Nothing outside this crate spells a subject.
//!
//! Messages are JSON. Adding an optional field is backwards compatible and unknown
//! fields are ignored on the bus; a breaking change gets a new `v2` subject.

pub mod artifacts;
pub mod auth;
pub mod bus_access;
pub mod error;
pub mod events;
pub mod headers;
pub mod idempotency;
pub mod ids;
pub mod live;
pub mod notify;
pub mod operation;
pub mod page;
pub mod runs;
pub mod service;
pub mod streams;
pub mod system;
pub mod tasks;
pub mod timestamp;

pub use error::{ErrorCode, FieldError, ServiceError};
pub use operation::{Caller, Operation};
pub use service::{ProcessKind, ServiceName};
pub use timestamp::Timestamp;
