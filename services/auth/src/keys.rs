//! Ed25519 signing keys and access tokens. The newest key signs; retired keys stay in
//! the JWKS until every token they signed has expired, so rotation never logs anyone out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rngs::OsRng;
use verdict_contracts::auth::AccessClaims;

use crate::Error;

/// One signing key as stored.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 DER of the private key; as [`crate::AtRest`] keeps it when read from or
    /// written to the database.
    pub private_pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl SigningKey {
    pub fn generate(now: i64) -> Result<Self, Error> {
        let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let private_pkcs8 = key
            .to_pkcs8_der()
            .map_err(Error::KeyEncoding)?
            .as_bytes()
            .to_vec();
        Ok(Self {
            kid: uuid::Uuid::now_v7().simple().to_string(),
            private_pkcs8,
            public_key: key.verifying_key().to_bytes().to_vec(),
            created_at: now,
            retired_at: None,
        })
    }

    /// The public half as a JWK (RFC 8037 `OKP`/`Ed25519`).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public_key),
        })
    }
}

/// Every key the service knows, newest last.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    pub fn new(mut keys: Vec<SigningKey>) -> Self {
        keys.sort_by_key(|key| key.created_at);
        Self { keys }
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|key| key.retired_at.is_none())
    }

    /// Keys whose tokens may still be valid: the current one and those retired less
    /// than `access_ttl` ago.
    pub fn published(&self, now: i64, access_ttl: i64) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().filter(move |key| {
            key.retired_at
                .is_none_or(|retired| retired + access_ttl >= now)
        })
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, Error> {
        let key = self.current().ok_or(Error::NoSigningKey)?;
        let header = Header {
            kid: Some(key.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ed_der(&key.private_pkcs8),
        )
        .map_err(Error::Signing)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use verdict_contracts::auth::AccessTokenType;
    use verdict_contracts::ids::{SessionId, UserId};

    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "verdict".into(),
            aud: "verdict-api".into(),
            sub: UserId::generate(),
            exp: 4_000_000_000,
            iat: 1_700_000_000,
            jti: "j".into(),
            typ: AccessTokenType::Access,
            sid: SessionId::generate(),
            adm: false,
        }
    }

    #[test]
    fn a_signed_token_verifies_against_the_published_jwk() {
        let ring = KeyRing::new(vec![SigningKey::generate(1).unwrap()]);
        let claims = claims();
        let token = ring.sign(&claims).unwrap();
        let jwk = ring.current().unwrap().jwk();
        let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["verdict-api"]);
        let decoded = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims, claims);
        assert_eq!(
            decoded.header.kid.as_deref(),
            Some(ring.current().unwrap().kid.as_str())
        );
    }

    #[test]
    fn the_newest_unretired_key_signs() {
        let old = SigningKey::generate(1).unwrap();
        let mut retired = SigningKey::generate(2).unwrap();
        retired.retired_at = Some(3);
        let ring = KeyRing::new(vec![retired.clone(), old.clone()]);
        assert_eq!(ring.current().unwrap().kid, old.kid);
    }

    #[test]
    fn a_retired_key_is_published_until_its_tokens_have_expired() {
        let current = SigningKey::generate(10).unwrap();
        let mut retired = SigningKey::generate(1).unwrap();
        retired.retired_at = Some(10);
        let ring = KeyRing::new(vec![retired, current]);
        assert_eq!(ring.published(100, 900).count(), 2);
        assert_eq!(ring.published(1000, 900).count(), 1);
    }
}
