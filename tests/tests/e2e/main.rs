//! The end-to-end tests: one binary (linking the whole system once), one module per
//! capability; a test is named `<module>::<test>`, e.g. `cluster::…`.

mod artifacts;
mod auth_hash_limit;
mod auth_listing;
mod auth_login_limits;
mod auth_revocation;
mod auth_roles;
mod auth_tokens;
mod bus;
mod cluster;
mod deploy_manifests;
mod healthcheck;
mod hostile_input;
mod http_errors;
mod http_hardening;
mod idempotency;
mod import_availability;
mod import_formats;
mod import_live;
mod import_queue;
mod import_s3;
mod live;
mod live_sequencing;
mod metrics;
mod notify;
mod openapi;
mod probes;
mod runs_builds;
mod runs_import;
mod runs_ingest;
mod runs_queries;
mod status;
mod tracing;
mod triage;
mod web_browser;
mod web_pages;
