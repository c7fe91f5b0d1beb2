//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1). Each hash
//! takes tens of milliseconds and 19 MiB by design, so they run on the blocking pool and
//! only so many at once (see [`HashingPolicy`]): a burst of logins waits briefly, then is
//! told to come back, instead of running the service out of memory.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::HashingPolicy;
use crate::Error;

/// Memory one hash uses, in KiB (OWASP's minimum for argon2id with t=2).
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(HASH_MEMORY_KIB, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(Error::PasswordHash)
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs hashes on the blocking pool, at most `max_concurrent` at once.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    policy: HashingPolicy,
}

impl Hasher {
    pub fn new(policy: HashingPolicy) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(policy.max_concurrent)),
            policy,
        }
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move || hash(&password)).await?
    }

    /// Whether `password` matches the stored `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Error> {
        self.run(move || verify(&password, &phc)).await
    }

    /// Spends the time and memory a real verification would, so an unknown e-mail
    /// answers like a wrong password and cannot be told apart by timing.
    pub async fn verify_nothing(&self, password: String) -> Result<(), Error> {
        static DUMMY: OnceLock<String> = OnceLock::new();
        self.run(move || {
            let dummy = DUMMY.get_or_init(|| hash("not a real password").unwrap_or_default());
            verify(&password, dummy);
        })
        .await
    }

    /// Runs `work` once a permit is free, waiting at most the policy's queue wait. The
    /// permit goes with the work, so a hash whose caller gave up still counts until it
    /// ends.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let waiting = crate::metrics::HashWaiting::start();
        let permit =
            tokio::time::timeout(self.policy.queue_wait, self.permits.clone().acquire_owned())
                .await;
        drop(waiting);
        let permit = permit.map_err(|_| Error::Busy)?.map_err(|_| Error::Busy)?;
        tokio::task::spawn_blocking(move || {
            let done = work();
            drop(permit);
            done
        })
        .await
        .map_err(Error::PasswordTask)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("wrong horse battery", &phc));
    }

    #[test]
    fn a_malformed_stored_hash_never_matches() {
        assert!(!verify("anything", "not-a-phc-string"));
    }

    #[tokio::test]
    async fn a_hash_that_cannot_start_within_the_queue_wait_is_refused_as_busy() {
        let hasher = Hasher::new(HashingPolicy {
            max_concurrent: 1,
            queue_wait: Duration::from_millis(10),
        });
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            hasher.hash("a password".into()).await,
            Err(Error::Busy)
        ));
        drop(held);
        assert!(hasher.hash("a password".into()).await.is_ok());
    }
}
