//! Local verification of access tokens against the auth service's JWKS. The algorithm
//! is pinned to EdDSA: `none`, HMAC with the public key and every other confusion fail
//! before any key is used.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;
use verdict_bus::Bus;
use verdict_contracts::auth::{self, AccessClaims};
use verdict_contracts::system::Empty;

/// The least time between two JWKS fetches triggered by unknown `kid`s, so forged
/// tokens cannot make the gateway hammer the auth service.
const REFETCH_THROTTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

pub struct JwtVerifier {
    bus: Bus,
    validation: Validation,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl JwtVerifier {
    pub fn new(bus: Bus, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            bus,
            validation,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(JwtError::Invalid);
        }
        let kid = header.kid.ok_or(JwtError::Invalid)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch(false).await?;
                self.key(&kid).ok_or(JwtError::UnknownKey)?
            }
        };
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(|err| {
                match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                    _ => JwtError::Invalid,
                }
            })?;
        Ok(data.claims)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// Fetches the JWKS again; unless `forced` (the auth service announced new keys), at
    /// most once per throttle period.
    pub async fn refetch(&self, forced: bool) -> Result<(), JwtError> {
        let mut last = self.last_fetch.lock().await;
        if !forced && last.is_some_and(|at| at.elapsed() < REFETCH_THROTTLE) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks = self
            .bus
            .request(&auth::JWKS, &Empty {})
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "cannot fetch the JWKS");
                JwtError::KeysUnavailable
            })?;
        let keys = jwks
            .keys
            .iter()
            .filter(|jwk| jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519")
            .filter_map(|jwk| {
                let kid = jwk["kid"].as_str()?;
                let key = DecodingKey::from_ed_components(jwk["x"].as_str()?).ok()?;
                Some((kid.to_owned(), key))
            })
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }
}
