//! Remembered answers of creating requests that carried an `Idempotency-Key`, in the
//! database of the service that owns what they created, written in the transaction
//! that creates it: a request is never answered twice differently, nor created twice.
//!
//! What is stored gives nothing away without the key itself: rows are found by a hash
//! of (scope, key); the request is kept as a hash over the key and the request (so a
//! request that holds a password cannot be guessed from it); the answer is sealed with
//! AES-256-GCM under a key derived from (scope, key) (an answer may hold a secret shown
//! once, such as a new API token). Rows older than [`RETENTION`] are ignored, and
//! deleted by [`forget_expired`].

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use verdict_contracts::auth::Principal;
use verdict_contracts::idempotency::{scope, Keyed};
use verdict_contracts::Operation;

/// How long an answer is remembered, in milliseconds (24 h, as API.md promises).
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The table, as a migration of its own in each service that remembers answers.
pub const MIGRATION: &str = include_str!("../migrations/idempotency_keys.sql");

/// One keyed request: where its row is, what it asked, and the key its answer is sealed
/// with. Derived from the client's key, which is itself never stored.
pub struct KeyedRequest {
    id: [u8; 32],
    request: [u8; 32],
    sealing: [u8; 32],
}

/// What a keyed request finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Recall<A> {
    /// The key is new (or its answer expired): carry out the request, then
    /// [`KeyedRequest::remember`] the answer in the same transaction.
    New,
    /// The same request was answered with this.
    Repeat(A),
    /// The key was used for another request.
    Conflict,
}

/// Why a remembered answer could not be stored or read back.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("a remembered answer could not be {0}")]
    Sealing(&'static str),
    #[error("a remembered answer could not be encoded or decoded: {0}")]
    Json(#[from] serde_json::Error),
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        // Each part with its length, so no two lists of parts hash alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The keyed request `request` to `operation` by `principal` stands for, if it carries
/// an `Idempotency-Key`.
pub fn keyed<T: Serialize, R>(
    principal: &Principal,
    operation: &Operation<Keyed<T>, R>,
    request: &Keyed<T>,
) -> Option<KeyedRequest> {
    let key = request.idempotency_key.as_ref()?;
    Some(KeyedRequest::new(
        &scope(principal),
        key.as_str(),
        operation.name,
        &request.canonical_request(),
    ))
}

impl KeyedRequest {
    /// `scope` tells callers apart (see `verdict_contracts::idempotency::scope`),
    /// `operation` names what was asked, and `request` is its canonical form (the
    /// request's JSON as the service decoded it).
    pub fn new(scope: &str, key: &str, operation: &str, request: &[u8]) -> Self {
        let (scope, key) = (scope.as_bytes(), key.as_bytes());
        Self {
            id: digest(&[b"verdict idempotency id", scope, key]),
            request: digest(&[
                b"verdict idempotency request",
                scope,
                key,
                operation.as_bytes(),
                request,
            ]),
            sealing: digest(&[b"verdict idempotency sealing", scope, key]),
        }
    }

    fn cipher(&self) -> Result<LessSafeKey, IdempotencyError> {
        UnboundKey::new(&AES_256_GCM, &self.sealing)
            .map(LessSafeKey::new)
            .map_err(|_| IdempotencyError::Sealing("sealed"))
    }

    fn seal(&self, response: &[u8]) -> Result<Vec<u8>, IdempotencyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| IdempotencyError::Sealing("sealed"))?;
        let mut sealed = response.to_vec();
        self.cipher()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.id),
                &mut sealed,
            )
            .map_err(|_| IdempotencyError::Sealing("sealed"))?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open(&self, stored: &[u8]) -> Result<Vec<u8>, IdempotencyError> {
        if stored.len() < NONCE_LEN {
            return Err(IdempotencyError::Sealing("opened"));
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| IdempotencyError::Sealing("opened"))?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(&self.id), &mut sealed)
            .map_err(|_| IdempotencyError::Sealing("opened"))?;
        Ok(plain.to_vec())
    }
}

impl KeyedRequest {
    /// What the key was used for within [`RETENTION_MS`] before `now`.
    pub fn recall<A: DeserializeOwned>(
        &self,
        conn: &Connection,
        now: i64,
    ) -> Result<Recall<A>, IdempotencyError> {
        let found: Option<(Vec<u8>, Vec<u8>)> = conn
            .prepare_cached(
                "SELECT request, response FROM idempotency_keys WHERE id = ?1 AND created_at > ?2",
            )?
            .query_row(params![&self.id[..], now - RETENTION_MS], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        match found {
            None => Ok(Recall::New),
            Some((asked, _)) if asked != self.request => Ok(Recall::Conflict),
            Some((_, answer)) => Ok(Recall::Repeat(serde_json::from_slice(
                &self.open(&answer)?,
            )?)),
        }
    }

    /// Remembers `answer` as the answer to this request (replacing an expired one).
    pub fn remember<A: Serialize>(
        &self,
        conn: &Connection,
        answer: &A,
        now: i64,
    ) -> Result<(), IdempotencyError> {
        let sealed = self.seal(&serde_json::to_vec(answer)?)?;
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (id, request, response, created_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![&self.id[..], &self.request[..], sealed, now])?;
        Ok(())
    }
}

/// Deletes up to `limit` answers older than [`RETENTION_MS`]; answers how many went.
pub fn forget_expired(conn: &Connection, now: i64, limit: u32) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE id IN
           (SELECT id FROM idempotency_keys WHERE created_at <= ?1 ORDER BY created_at LIMIT ?2)",
    )?
    .execute(params![now - RETENTION_MS, limit])
}

/// How often [`forget_expired_periodically`] runs, and how much it deletes per run: a
/// day's keys of a busy service go over a few runs.
const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(10 * 60);
const FORGET_PER_RUN: u32 = 50_000;

/// Deletes expired answers every few minutes until `shutdown`.
pub async fn forget_expired_periodically(store: crate::Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(FORGET_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        let forgotten = store
            .write(move |conn| {
                forget_expired(conn, now, FORGET_PER_RUN).map_err(crate::StoreError::from)
            })
            .await;
        if let Err(err) = forgotten {
            tracing::error!(error = %err, "forgetting expired idempotency keys failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATION).unwrap();
        conn
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_new_key_is_new_and_its_answer_comes_back_for_the_same_request() {
        let conn = conn();
        let request = KeyedRequest::new("user:u1", "k1", "create_run", br#"{"name":"a"}"#);
        assert_eq!(request.recall::<String>(&conn, NOW).unwrap(), Recall::New);
        request.remember(&conn, &"the answer", NOW).unwrap();
        let again = KeyedRequest::new("user:u1", "k1", "create_run", br#"{"name":"a"}"#);
        assert_eq!(
            again.recall(&conn, NOW + 1000).unwrap(),
            Recall::Repeat("the answer".to_owned())
        );
    }

    #[test]
    fn the_same_key_for_another_request_is_a_conflict() {
        let conn = conn();
        let first = KeyedRequest::new("user:u1", "k1", "create_run", br#"{"name":"a"}"#);
        first.remember(&conn, &"answer", NOW).unwrap();
        let other_body = KeyedRequest::new("user:u1", "k1", "create_run", br#"{"name":"b"}"#);
        let other_operation =
            KeyedRequest::new("user:u1", "k1", "create_import", br#"{"name":"a"}"#);
        assert_eq!(
            other_body.recall::<String>(&conn, NOW).unwrap(),
            Recall::Conflict
        );
        assert_eq!(
            other_operation.recall::<String>(&conn, NOW).unwrap(),
            Recall::Conflict
        );
    }

    #[test]
    fn keys_are_scoped_to_their_caller() {
        let conn = conn();
        let mine = KeyedRequest::new("user:u1", "k1", "create_run", b"{}");
        mine.remember(&conn, &"answer", NOW).unwrap();
        let theirs = KeyedRequest::new("token:t1", "k1", "create_run", b"{}");
        assert_eq!(theirs.recall::<String>(&conn, NOW).unwrap(), Recall::New);
    }

    #[test]
    fn answers_expire_after_a_day_and_are_then_forgotten() {
        let conn = conn();
        let request = KeyedRequest::new("user:u1", "k1", "create_run", b"{}");
        request.remember(&conn, &"answer", NOW).unwrap();
        let later = NOW + RETENTION_MS;
        assert_eq!(request.recall::<String>(&conn, later).unwrap(), Recall::New);
        assert_eq!(forget_expired(&conn, later - 1, 100).unwrap(), 0);
        assert_eq!(forget_expired(&conn, later, 100).unwrap(), 1);
        request.remember(&conn, &"new answer", later).unwrap();
        assert_eq!(
            request.recall(&conn, later).unwrap(),
            Recall::Repeat("new answer".to_owned())
        );
    }

    #[test]
    fn the_table_holds_neither_the_key_the_request_nor_the_answer_in_clear() {
        let conn = conn();
        let request = KeyedRequest::new(
            "user:u1",
            "key-1234",
            "create_token",
            b"{\"password\":\"hunter2\"}",
        );
        request
            .remember(&conn, &"{\"token\":\"vdt_secret\"}", NOW)
            .unwrap();
        let (id, asked, answer): (Vec<u8>, Vec<u8>, Vec<u8>) = conn
            .query_row(
                "SELECT id, request, response FROM idempotency_keys",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        let stored = [id, asked, answer].concat();
        for secret in [&b"key-1234"[..], b"hunter2", b"vdt_secret"] {
            assert!(!stored.windows(secret.len()).any(|w| w == secret));
        }
    }

    #[test]
    fn expired_answers_are_found_through_the_age_index() {
        let conn = conn();
        let plan = crate::query_plan(
            &conn,
            "SELECT id FROM idempotency_keys WHERE created_at <= ? ORDER BY created_at LIMIT ?",
        )
        .unwrap();
        assert!(plan.contains("idempotency_keys_by_age"), "{plan}");
    }
}
