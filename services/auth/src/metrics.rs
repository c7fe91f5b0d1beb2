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
