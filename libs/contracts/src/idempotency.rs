//! `Idempotency-Key` on creating requests (API.md: the same key and body within 24 h
//! return the first response; the same key with another body is refused with 422). The
//! gateway checks the key and passes it along with the request; the service that owns
//! the resource remembers the answer in its own database, in the transaction that
//! creates the resource (see `verdict_store::idempotency`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::Principal;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// How long a key is remembered.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    /// Never shown: the key is what unseals the remembered answer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdempotencyKey(<redacted>)")
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty()
            || value.len() > MAX_KEY_BYTES
            || !value.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "must be 1 to {MAX_KEY_BYTES} visible ASCII characters"
            ));
        }
        Ok(Self(value))
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

/// A creating request as it travels on the bus: the request itself and, when the client
/// sent one, its `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed<T> {
    #[serde(flatten)]
    pub request: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// The SHA-256 (hex) of a body that travels beside the request rather than in it (an
    /// imported report), so that the key stands for that body too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

impl<T> Keyed<T> {
    /// A request without a key.
    pub fn plain(request: T) -> Self {
        Self {
            request,
            idempotency_key: None,
            body_sha256: None,
        }
    }

    pub fn new(request: T, idempotency_key: Option<IdempotencyKey>) -> Self {
        Self {
            idempotency_key,
            ..Self::plain(request)
        }
    }
}

impl<T: Serialize> Keyed<T> {
    /// What the key stands for, in one canonical form: the request's JSON and the
    /// digest of the body beside it.
    pub fn canonical_request(&self) -> Vec<u8> {
        let mut canonical = serde_json::to_vec(&self.request).unwrap_or_default();
        if let Some(digest) = &self.body_sha256 {
            canonical.push(b'\n');
            canonical.extend_from_slice(digest.as_bytes());
        }
        canonical
    }
}

/// Whose keys a key is told apart from: each user and each API token has its own.
pub fn scope(principal: &Principal) -> String {
    match principal {
        Principal::User { user_id, .. } => format!("user:{user_id}"),
        Principal::ApiToken { token_id, .. } => format!("token:{token_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::ids::ProjectId;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::try_from("0191c0de-7a1b-7c3d".to_owned()).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::try_from("k".repeat(255)).is_ok());
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let key = IdempotencyKey::try_from("secret-key".to_owned()).unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }

    #[test]
    fn a_keyed_request_travels_as_the_request_with_its_key_beside_it() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Create {
            name: String,
        }
        let keyed = Keyed::new(
            Create { name: "a".into() },
            Some("k1".to_owned().try_into().unwrap()),
        );
        let json = serde_json::to_value(&keyed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "a", "idempotency_key": "k1"})
        );
        assert_eq!(
            serde_json::from_value::<Keyed<Create>>(json).unwrap(),
            keyed
        );
        let plain: Keyed<Create> = serde_json::from_str(r#"{"name":"b"}"#).unwrap();
        assert_eq!(plain.idempotency_key, None);
    }

    #[test]
    fn users_and_tokens_have_scopes_of_their_own() {
        let id = crate::ids::TokenId::generate();
        let user = Principal::User {
            user_id: id.to_string().parse().unwrap(),
            session_id: crate::ids::SessionId::generate(),
        };
        let token = Principal::ApiToken {
            token_id: id,
            project_id: ProjectId::generate(),
            role: Role::Reporter,
        };
        assert_ne!(scope(&user), scope(&token));
    }
}
