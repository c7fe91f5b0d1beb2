//! Opaque secrets: refresh tokens, API tokens and generated passwords. Only their
//! SHA-256 is stored; the tokens carry 256 random bits, so a fast hash is enough (a
//! slow one protects guessable secrets, which these are not).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "vdr_";
/// Prefix of API tokens; lets secret scanners and the gateway recognise them.
pub const API_TOKEN_PREFIX: &str = "vdt_";

/// A newly made secret: `plain` goes to the client once, `hash` to the database.
pub struct NewSecret {
    pub plain: String,
    pub hash: Vec<u8>,
}

pub fn new_secret(prefix: &str) -> NewSecret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let plain = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&plain);
    NewSecret { plain, hash }
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A random password for the first administrator: 24 URL-safe characters (144 bits).
pub fn generated_password() -> String {
    let mut bytes = [0u8; 18];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_their_prefix_and_differ_every_time() {
        let a = new_secret(API_TOKEN_PREFIX);
        let b = new_secret(API_TOKEN_PREFIX);
        assert!(a.plain.starts_with("vdt_"));
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.hash, hash(&a.plain));
    }

    #[test]
    fn generated_passwords_are_long_enough_to_be_accepted() {
        assert_eq!(generated_password().len(), 24);
    }
}
