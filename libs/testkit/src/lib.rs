//! The test harness. Everything is real: a `nats-server` with JetStream on a free port
//! in a temporary directory, the services running in-process against it, and HTTP over
//! a real socket to the gateway. [`TestCluster`] runs the scaled deployment instead:
//! a 3-node NATS cluster, every service and two gateways as separate processes, haproxy.
//!
//! ```ignore
//! let app = TestApp::spawn().await;
//! let response = app.get("/readyz").await;
//! ```

mod app;
pub mod browser;
mod client;
mod cluster;
mod imports;
mod live;
mod nats;
pub mod otlp;
pub mod ports;
mod receiver;
pub mod s3;
pub mod spans;
mod web;

pub use app::{BlobStoreKind, Component, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
pub use browser::{Browser, BrowserKind};
pub use client::access_token;
pub use cluster::TestCluster;
pub use imports::{junit_report, LiveReporter};
pub use live::{LiveClient, Received};
pub use nats::TestNats;
pub use otlp::OtlpReceiver;
pub use receiver::{ReceivedRequest, Receiver};
pub use s3::TestS3;
pub use verdict_telemetry::install_tls_provider;
pub use web::WebSession;
