use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::at_rest::AtRest;
use verdict_store::StoreSettings;

use crate::passwords;

/// Everything the auth service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    pub store: StoreSettings,
    pub tokens: TokenSettings,
    pub login: LoginPolicy,
    pub hashing: HashingPolicy,
    pub admin: AdminBootstrap,
    /// `VERDICT_KEY_ROTATION`, default 7d: how often the signing key is replaced.
    pub key_rotation: Duration,
    /// `VERDICT_STREAM_REPLICAS`, default 1: replicas of the revocation bucket.
    pub replicas: usize,
    /// `VERDICT_KEY_ENCRYPTION_KEY` (base64 of 32 bytes): private signing keys are
    /// stored sealed under it; stored plain when unset.
    pub key_encryption: AtRest,
}

/// What access and refresh tokens say and how long they live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `VERDICT_JWT_ISSUER`, default `verdict`.
    pub issuer: String,
    /// `VERDICT_JWT_AUDIENCE`, default `verdict-api`.
    pub audience: String,
    /// `VERDICT_ACCESS_TOKEN_TTL`, default 15m, at most 1d.
    pub access_ttl: Duration,
    /// `VERDICT_REFRESH_TOKEN_TTL`, default 30d: a sign-in's lifetime from its login;
    /// rotating its refresh token does not extend it.
    pub refresh_ttl: Duration,
}

/// How login slows down an account after repeated failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// `VERDICT_LOGIN_MAX_FAILURES`, default 5: failures in a row before the account locks.
    pub max_failures: u32,
    /// `VERDICT_LOGIN_LOCKOUT`, default 30s: the first lock; each further failure doubles
    /// it, up to 15 minutes.
    pub lockout: Duration,
}

/// How many password hashes run at once, and how long one may wait for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingPolicy {
    /// `VERDICT_AUTH_MAX_CONCURRENT_HASHES`, default [`DEFAULT_MAX_CONCURRENT_HASHES`].
    pub max_concurrent: usize,
    /// `VERDICT_AUTH_HASH_QUEUE_WAIT`, default 2s: beyond it a login is answered 503.
    pub queue_wait: Duration,
}

/// Memory the auth service may spend on password hashes at once: a quarter of the
/// 512 MiB its Kubernetes manifest allows, leaving the rest to SQLite and the runtime.
const HASH_MEMORY_BUDGET_KIB: u32 = 128 * 1024;

/// As many hashes as fit the memory budget: 6.
pub const DEFAULT_MAX_CONCURRENT_HASHES: usize =
    (HASH_MEMORY_BUDGET_KIB / passwords::HASH_MEMORY_KIB) as usize;

/// The first administrator, created on an empty database.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminBootstrap {
    /// `VERDICT_ADMIN_EMAIL`, default `admin@verdict.local`.
    pub email: String,
    /// `VERDICT_ADMIN_PASSWORD`; when unset a password is generated and printed once.
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

const DAY: Duration = Duration::from_secs(86_400);

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let access_ttl = env.duration("VERDICT_ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60))?;
        if access_ttl > DAY || access_ttl.is_zero() {
            return Err(SettingError {
                name: "VERDICT_ACCESS_TOKEN_TTL".into(),
                value: format!("{access_ttl:?}"),
                reason: "must be between 1s and 1d".into(),
            });
        }
        let max_concurrent_hashes = env.parse(
            "VERDICT_AUTH_MAX_CONCURRENT_HASHES",
            DEFAULT_MAX_CONCURRENT_HASHES,
        )?;
        if max_concurrent_hashes == 0 {
            return Err(SettingError {
                name: "VERDICT_AUTH_MAX_CONCURRENT_HASHES".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let bus = BusSettings::from_env(env, "verdict-auth")?;
        let hash_queue_wait =
            env.duration("VERDICT_AUTH_HASH_QUEUE_WAIT", Duration::from_secs(2))?;
        if hash_queue_wait >= bus.request_timeout {
            // The gateway would give up first and answer 504 instead of a clean 503.
            return Err(SettingError {
                name: "VERDICT_AUTH_HASH_QUEUE_WAIT".into(),
                value: format!("{hash_queue_wait:?}"),
                reason: "must be shorter than VERDICT_BUS_REQUEST_TIMEOUT".into(),
            });
        }
        let key_encryption = AtRest::from_env(env)?;
        Ok(Self {
            bus,
            store: StoreSettings::from_env(env, "auth")?,
            tokens: TokenSettings {
                issuer: env.string("VERDICT_JWT_ISSUER", "verdict"),
                audience: env.string("VERDICT_JWT_AUDIENCE", "verdict-api"),
                access_ttl,
                refresh_ttl: env.duration("VERDICT_REFRESH_TOKEN_TTL", 30 * DAY)?,
            },
            login: LoginPolicy {
                max_failures: env.parse("VERDICT_LOGIN_MAX_FAILURES", 5)?,
                lockout: env.duration("VERDICT_LOGIN_LOCKOUT", Duration::from_secs(30))?,
            },
            hashing: HashingPolicy {
                max_concurrent: max_concurrent_hashes,
                queue_wait: hash_queue_wait,
            },
            admin: AdminBootstrap {
                email: env.string("VERDICT_ADMIN_EMAIL", "admin@verdict.local"),
                password: env.secret("VERDICT_ADMIN_PASSWORD")?,
            },
            key_rotation: env.duration("VERDICT_KEY_ROTATION", 7 * DAY)?,
            replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            key_encryption,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_last_fifteen_minutes_by_default() {
        let settings = Settings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(settings.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(settings.tokens.issuer, "verdict");
        assert_eq!(settings.tokens.audience, "verdict-api");
    }

    #[test]
    fn an_access_token_lifetime_over_a_day_is_refused() {
        let env = Env::from_pairs([("VERDICT_ACCESS_TOKEN_TTL", "2d")]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_ACCESS_TOKEN_TTL"
        );
    }

    #[test]
    fn the_default_hash_limit_keeps_argon2_within_the_memory_budget() {
        let settings = Settings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        let max = settings.hashing.max_concurrent;
        assert_eq!(max, 6);
        assert!(max as u32 * passwords::HASH_MEMORY_KIB <= HASH_MEMORY_BUDGET_KIB);
    }

    #[test]
    fn a_hash_limit_of_zero_is_refused() {
        let env = Env::from_pairs([("VERDICT_AUTH_MAX_CONCURRENT_HASHES", "0")]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_AUTH_MAX_CONCURRENT_HASHES"
        );
    }

    #[test]
    fn a_hash_queue_wait_the_gateway_would_not_wait_for_is_refused() {
        let env = Env::from_pairs([
            ("VERDICT_AUTH_HASH_QUEUE_WAIT", "5s"),
            ("VERDICT_BUS_REQUEST_TIMEOUT", "5s"),
        ]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_AUTH_HASH_QUEUE_WAIT"
        );
    }

    #[test]
    fn the_admin_password_never_appears_in_debug_output() {
        let env = Env::from_pairs([("VERDICT_ADMIN_PASSWORD", "hunter2hunter2")]);
        let settings = Settings::from_env(&env).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn a_key_encryption_key_must_be_32_bytes_and_is_never_shown() {
        let short = Env::from_pairs([("VERDICT_KEY_ENCRYPTION_KEY", "c2hvcnQ=")]);
        let error = Settings::from_env(&short).unwrap_err();
        assert_eq!(error.name, "VERDICT_KEY_ENCRYPTION_KEY");
        assert!(!error.to_string().contains("c2hvcnQ="), "{error}");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let settings =
            Settings::from_env(&Env::from_pairs([("VERDICT_KEY_ENCRYPTION_KEY", key)])).unwrap();
        assert!(matches!(settings.key_encryption, AtRest::Sealed(_)));
        assert!(!format!("{settings:?}").contains(key));
    }

    #[test]
    fn the_key_encryption_key_and_the_admin_password_may_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("kek");
        let password_file = dir.path().join("admin-password");
        std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
        std::fs::write(&password_file, "hunter2hunter2\n").unwrap();
        let env = Env::from_pairs([
            (
                "VERDICT_KEY_ENCRYPTION_KEY_FILE",
                key_file.to_str().unwrap(),
            ),
            (
                "VERDICT_ADMIN_PASSWORD_FILE",
                password_file.to_str().unwrap(),
            ),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        assert!(matches!(settings.key_encryption, AtRest::Sealed(_)));
        assert_eq!(settings.admin.password.as_deref(), Some("hunter2hunter2"));
    }
}
