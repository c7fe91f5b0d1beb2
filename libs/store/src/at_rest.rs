//! Secrets at rest in a service's database (auth's signing keys, notify's webhook
//! secrets). With `VERDICT_KEY_ENCRYPTION_KEY` set, each is stored sealed with
//! AES-256-GCM under that key, the id of its row bound in as associated data (so a sealed
//! secret moved to another row does not open), and a copy of the database (a backup, a
//! stolen volume) no longer holds it. Without it, secrets are stored as they are; those
//! stored plain can be sealed once a key is set.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use verdict_settings::{Env, SettingError};

/// Marks a sealed secret. No secret stored plain starts with it: PKCS#8 DER starts with
/// an ASN.1 SEQUENCE (0x30), a webhook secret with `whsec_`.
const SEALED: &[u8] = b"verdict-sealed-v1:";

/// The setting that holds the key encryption key.
const SETTING: &str = "VERDICT_KEY_ENCRYPTION_KEY";

/// Why a secret could not be sealed or opened; each names the row.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("no randomness for sealing the secret of {0}")]
    NoRandomness(String),
    #[error("the secret of {0} cannot be sealed")]
    Seal(String),
    #[error("the secret of {0} is encrypted: set VERDICT_KEY_ENCRYPTION_KEY to the key it was sealed with")]
    Locked(String),
    #[error("cannot open the secret of {0}: VERDICT_KEY_ENCRYPTION_KEY is not the key it was sealed with, or the row is damaged")]
    WrongKey(String),
}

/// The key that seals secrets. Never printed.
pub struct KeyEncryptionKey(LessSafeKey);

impl KeyEncryptionKey {
    /// From the base64 of 32 random bytes (`openssl rand -base64 32`).
    pub fn from_base64(text: &str) -> Result<Self, &'static str> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "must be base64 (openssl rand -base64 32)")?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "must be 32 bytes, base64-encoded (openssl rand -base64 32)")?;
        Ok(Self(LessSafeKey::new(key)))
    }
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

/// How a service keeps its secrets in its database.
#[derive(Debug, Clone, Default)]
pub enum AtRest {
    /// As they are.
    #[default]
    Plain,
    /// Sealed under the key encryption key.
    Sealed(Arc<KeyEncryptionKey>),
}

impl AtRest {
    /// From `VERDICT_KEY_ENCRYPTION_KEY` (or its `_FILE`): sealed when it is set.
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let Some(text) = env.secret(SETTING)? else {
            return Ok(AtRest::Plain);
        };
        KeyEncryptionKey::from_base64(&text)
            .map(|key| AtRest::Sealed(Arc::new(key)))
            .map_err(|reason| SettingError {
                name: SETTING.into(),
                value: verdict_settings::REDACTED.into(),
                reason: reason.into(),
            })
    }

    /// What to store for the secret `plain` of row `id`.
    pub fn store(&self, id: &str, plain: &[u8]) -> Result<Vec<u8>, AtRestError> {
        let AtRest::Sealed(key) = self else {
            return Ok(plain.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| AtRestError::NoRandomness(id.to_owned()))?;
        let mut sealed = plain.to_vec();
        key.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| AtRestError::Seal(id.to_owned()))?;
        Ok([SEALED, &nonce, &sealed].concat())
    }

    /// The secret of row `id` from what is stored.
    pub fn open(&self, id: &str, stored: &[u8]) -> Result<Vec<u8>, AtRestError> {
        let Some(sealed) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_vec());
        };
        let AtRest::Sealed(key) = self else {
            return Err(AtRestError::Locked(id.to_owned()));
        };
        let wrong = || AtRestError::WrongKey(id.to_owned());
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN).ok_or_else(wrong)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .0
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buffer)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }

    /// Whether `stored` should be sealed now: it is plain and a key encryption key is set.
    pub fn needs_sealing(&self, stored: &[u8]) -> bool {
        matches!(self, AtRest::Sealed(_)) && !stored.starts_with(SEALED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_with(byte: u8) -> AtRest {
        let key = STANDARD.encode([byte; 32]);
        AtRest::Sealed(Arc::new(KeyEncryptionKey::from_base64(&key).unwrap()))
    }

    const DER: &[u8] = b"\x30\x2e\x02\x01\x00 private key bytes";

    #[test]
    fn a_sealed_key_opens_to_the_same_bytes_and_does_not_contain_them() {
        let at_rest = sealed_with(7);
        let stored = at_rest.store("kid-1", DER).unwrap();
        assert!(stored.starts_with(SEALED));
        assert!(!stored.windows(DER.len()).any(|window| window == DER));
        assert_eq!(at_rest.open("kid-1", &stored).unwrap(), DER);
        assert!(!at_rest.needs_sealing(&stored));
    }

    #[test]
    fn sealing_twice_gives_different_bytes() {
        let at_rest = sealed_with(7);
        assert_ne!(
            at_rest.store("kid-1", DER).unwrap(),
            at_rest.store("kid-1", DER).unwrap()
        );
    }

    #[test]
    fn another_key_or_another_row_does_not_open_it() {
        let stored = sealed_with(7).store("kid-1", DER).unwrap();
        let other_key = sealed_with(8).open("kid-1", &stored).unwrap_err();
        assert!(other_key.to_string().contains("kid-1"), "{other_key}");
        assert!(sealed_with(7).open("kid-2", &stored).is_err());
        assert!(sealed_with(7).open("kid-1", SEALED).is_err());
    }

    #[test]
    fn a_sealed_key_without_the_encryption_key_names_the_setting() {
        let stored = sealed_with(7).store("kid-1", DER).unwrap();
        let error = AtRest::Plain.open("kid-1", &stored).unwrap_err();
        assert!(
            error.to_string().contains("VERDICT_KEY_ENCRYPTION_KEY"),
            "{error}"
        );
    }

    #[test]
    fn plain_keys_stay_readable_and_are_sealed_once_a_key_is_set() {
        assert_eq!(AtRest::Plain.store("kid-1", DER).unwrap(), DER);
        assert_eq!(sealed_with(7).open("kid-1", DER).unwrap(), DER);
        assert!(sealed_with(7).needs_sealing(DER));
        assert!(!AtRest::Plain.needs_sealing(DER));
    }

    #[test]
    fn the_setting_seals_when_set_and_names_itself_when_invalid() {
        assert!(matches!(
            AtRest::from_env(&Env::from_pairs::<&str, &str>([])),
            Ok(AtRest::Plain)
        ));
        let key = STANDARD.encode([3u8; 32]);
        assert!(matches!(
            AtRest::from_env(&Env::from_pairs([(SETTING, key.as_str())])),
            Ok(AtRest::Sealed(_))
        ));
        let error = AtRest::from_env(&Env::from_pairs([(SETTING, "c2hvcnQ=")])).unwrap_err();
        assert_eq!(error.name, SETTING);
        assert!(!error.to_string().contains("c2hvcnQ="), "{error}");
    }

    #[test]
    fn only_32_bytes_of_base64_make_an_encryption_key() {
        assert!(KeyEncryptionKey::from_base64("not base64!").is_err());
        assert!(KeyEncryptionKey::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        let key = KeyEncryptionKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
        assert_eq!(format!("{key:?}"), "KeyEncryptionKey([redacted])");
    }
}
