//! A typed client of Verdict's HTTP API (`/api/v1`, see API.md and the OpenAPI document
//! at `/api/v1/openapi.json`): the `verdict report` command's transport, and what tests
//! and benchmarks call the API with.
//!
//! * Requests and answers are the wire types of `verdict_contracts` where those exist.
//! * An error answer is an [`Error::Api`] holding the RFC 9457 [`Problem`]: status,
//!   type, title, detail, field errors and `Retry-After`.
//! * Calls that are safe to repeat (GET, PUT, DELETE, and POSTs carrying an
//!   `Idempotency-Key`) are retried on connection failures and on 429, 502, 503 and 504,
//!   after a wait with full jitter and at least the server's `Retry-After`, within the
//!   [`RetryPolicy`]'s budget. Every creating POST gets a UUIDv7 `Idempotency-Key`,
//!   the same on each of its retries.
//! * HTTPS through rustls with ring, verifying against the system's roots plus, when
//!   given, a private CA ([`ClientBuilder::ca_cert`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), verdict_client::Error> {
//! use verdict_client::Client;
//! let client = Client::builder("https://verdict.example.com").token("vdt_…").build()?;
//! let run = client.run("0191c0de-…").await?;
//! println!("{} is {}", run.name, run.status.as_str());
//! # Ok(()) }
//! ```

mod artifacts;
mod auth;
mod client;
mod error;
mod projects;
pub mod retry;
mod runs;
mod system;
mod tls;
mod triage;

pub use artifacts::{ArtifactFile, UploadSource};
pub use client::{Client, ClientBuilder, IDEMPOTENCY_KEY};
pub use error::{Error, Problem};
pub use projects::NewToken;
pub use retry::RetryPolicy;
pub use runs::{Accepted, ImportReport, ResultFilter, RunFilter};
pub use system::{Readiness, ServiceInstance, ServiceStatus, SystemStatus, Versions};
