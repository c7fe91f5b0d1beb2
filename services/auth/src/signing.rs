//! Signing key lifecycle: load or create at start, rotate on a schedule and on demand,
//! publish the JWKS.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_contracts::auth::{Jwks, RotatedKey, KEYS_CHANGED_SUBJECT};
use verdict_contracts::Timestamp;

use crate::access::Caller;
use crate::context::Auth;
use crate::keys::{KeyRing, SigningKey};
use crate::{store, Error};
use verdict_store::at_rest::AtRest;

/// Loads the keys, creating the first one on an empty database and sealing those
/// stored plain when a key encryption key is set.
pub async fn load(store: &verdict_store::Store, at_rest: &AtRest) -> Result<KeyRing, Error> {
    let at_rest = at_rest.clone();
    store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let mut keys = store::signing_keys(&tx)?;
            if !keys.iter().any(|key| key.retired_at.is_none()) {
                let now = Timestamp::now().secs();
                let key = as_stored(&at_rest, SigningKey::generate(now)?)?;
                store::rotate_signing_key(&tx, &key, now)?;
                keys = store::signing_keys(&tx)?;
            }
            for key in keys
                .iter()
                .filter(|key| at_rest.needs_sealing(&key.private_pkcs8))
            {
                let sealed = at_rest.store(&key.kid, &key.private_pkcs8)?;
                store::replace_private_key(&tx, &key.kid, &sealed)?;
            }
            let ring = opened(&at_rest, keys)?;
            tx.commit()?;
            Ok(ring)
        })
        .await
}

/// `key` as the database keeps it.
fn as_stored(at_rest: &AtRest, key: SigningKey) -> Result<SigningKey, Error> {
    Ok(SigningKey {
        private_pkcs8: at_rest.store(&key.kid, &key.private_pkcs8)?,
        ..key
    })
}

/// The key ring of keys read from the database, their private keys opened.
fn opened(at_rest: &AtRest, keys: Vec<SigningKey>) -> Result<KeyRing, Error> {
    let keys = keys
        .into_iter()
        .map(|key| {
            Ok(SigningKey {
                private_pkcs8: at_rest.open(&key.kid, &key.private_pkcs8)?,
                ..key
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(KeyRing::new(keys))
}

pub fn jwks(auth: &Auth) -> Jwks {
    let ring = auth.keys.read().unwrap_or_else(|p| p.into_inner());
    let access_ttl = auth.tokens.access_ttl.as_secs() as i64;
    Jwks {
        keys: ring
            .published(Timestamp::now().secs(), access_ttl)
            .map(SigningKey::jwk)
            .collect(),
    }
}

/// Retires the current key and signs with a new one from now on. Gateways are told to
/// refetch the JWKS; the retired key stays published until its tokens have expired.
pub async fn rotate(auth: &Auth) -> Result<RotatedKey, Error> {
    let now = Timestamp::now().secs();
    let key = as_stored(&auth.at_rest, SigningKey::generate(now)?)?;
    let kid = key.kid.clone();
    let forget_before = now - auth.tokens.access_ttl.as_secs() as i64;
    let at_rest = auth.at_rest.clone();
    let ring = auth
        .store
        .write(move |conn| {
            let tx = conn.transaction()?;
            store::rotate_signing_key(&tx, &key, now)?;
            store::delete_keys_retired_before(&tx, forget_before)?;
            let keys = store::signing_keys(&tx)?;
            tx.commit()?;
            opened(&at_rest, keys)
        })
        .await?;
    *auth.keys.write().unwrap_or_else(|p| p.into_inner()) = ring;
    if let Err(err) = auth
        .client
        .publish(KEYS_CHANGED_SUBJECT, kid.clone().into())
        .await
    {
        tracing::warn!(error = %err, "could not announce the new signing key; gateways fetch it on first sight");
    }
    tracing::info!(%kid, "rotated the signing key");
    Ok(RotatedKey { kid })
}

pub async fn rotate_on_request(auth: &Auth, caller: Caller) -> Result<RotatedKey, Error> {
    if !caller.is_admin() {
        return Err(Error::Forbidden("only administrators can rotate keys"));
    }
    rotate(auth).await
}

/// Rotates whenever the current key is older than `every`, checking once a minute (and
/// at start, so a service that was down past a rotation catches up).
pub async fn rotate_on_schedule(auth: Auth, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60).min(every));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let created_at = {
            let ring = auth.keys.read().unwrap_or_else(|p| p.into_inner());
            ring.current().map(|key| key.created_at)
        };
        let due = created_at
            .is_none_or(|created| Timestamp::now().secs() - created >= every.as_secs() as i64);
        if due {
            if let Err(err) = rotate(&auth).await {
                tracing::error!(error = %err, "scheduled key rotation failed; retrying in a minute");
            }
        }
    }
}
