//! The auth service's metrics: their names and help, in one place.

use metrics::{describe_counter, describe_gauge};

use crate::Error;

pub const LOGINS: &str = "verdict_auth_logins_total";
pub const HASH_QUEUE_DEPTH: &str = "verdict_auth_password_hash_queue_depth";

/// Installs the registry and describes the auth service's metrics; the queue depth
/// starts at 0.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_counter!(
        LOGINS,
        "Password logins, by outcome: success, invalid_credentials, locked_out, disabled, busy (no hashing slot in time), error."
    );
    describe_gauge!(
        HASH_QUEUE_DEPTH,
        "Password hashes (argon2id) waiting for a hashing slot."
    );
    metrics::gauge!(HASH_QUEUE_DEPTH).set(0.0);
}

/// A password hash waiting for a slot, counted in the queue depth until dropped (also
/// when its caller gives up).
pub struct HashWaiting(metrics::Gauge);

impl HashWaiting {
    pub fn start() -> Self {
        let depth = metrics::gauge!(HASH_QUEUE_DEPTH);
        depth.increment(1.0);
        Self(depth)
    }
}

impl Drop for HashWaiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts one login by how it ended.
pub fn login<T>(result: &Result<T, Error>) {
    let outcome = match result {
        Ok(_) => "success",
        Err(Error::InvalidCredentials) => "invalid_credentials",
        Err(Error::LockedOut { .. }) => "locked_out",
        Err(Error::Unauthorized(_)) => "disabled",
        Err(Error::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(LOGINS, "outcome" => outcome).increment(1);
}
