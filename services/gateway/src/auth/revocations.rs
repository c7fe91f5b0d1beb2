//! The deny list: revoked sessions, users and API tokens, kept until every token they
//! concern has expired. Fed by a watch on the revocation bucket, so every gateway learns
//! of a revocation within milliseconds, and a new gateway loads the current list before
//! it serves.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use verdict_bus::backoff::{Pauses, Retries};
use verdict_bus::{KvOperation, KvStore};
use verdict_contracts::auth::{Revocation, RevocationTarget};
use verdict_contracts::Timestamp;

/// Pauses before watching the revocation bucket again after the watch failed.
const WATCH_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(500),
    max: Duration::from_secs(5),
};

#[derive(Default)]
pub struct DenyList {
    entries: RwLock<HashMap<String, Revocation>>,
}

impl DenyList {
    /// Whether a token issued at `issued_at` is denied by a revocation of `target`.
    pub fn denies(&self, target: &RevocationTarget, issued_at: i64, now: i64) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&target.key())
            .is_some_and(|revocation| revocation.until >= now && issued_at <= revocation.revoked_at)
    }

    fn apply(&self, key: &str, revocation: Option<Revocation>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match revocation {
            Some(revocation) => entries.insert(key.to_owned(), revocation),
            None => entries.remove(key),
        };
    }

    fn prune(&self, now: i64) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, revocation| revocation.until >= now);
    }
}

/// Follows the bucket until `shutdown`, calling `on_revoked` for each new revocation
/// (to drop cached grants). Starts from the last value of every key, so a gateway that
/// starts after a revocation still honours it, and says so on `caught_up` once those
/// are loaded. A watch that ends is resumed after the last revision seen, so nothing is
/// missed and nothing replayed.
pub async fn watch(
    bucket: KvStore,
    deny: Arc<DenyList>,
    on_revoked: impl Fn(&Revocation) + Send + 'static,
    caught_up: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut next_revision = None;
    let mut retries = Retries::new(WATCH_PAUSES);
    while !shutdown.is_cancelled() {
        let watched = match next_revision {
            None => bucket.watch_with_history(ALL_KEYS).await,
            Some(revision) => bucket.watch_all_from_revision(revision).await,
        };
        let mut entries = match watched {
            Ok(entries) => {
                retries.succeeded();
                entries
            }
            Err(err) => {
                let pause = retries.next_pause();
                tracing::warn!(error = %err, ?pause, "cannot watch revocations; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        // An empty bucket replays nothing: there is nothing to wait for.
        if next_revision.is_none() && is_empty(&bucket).await {
            caught_up.send_replace(true);
        }
        loop {
            let entry = tokio::select! {
                () = shutdown.cancelled() => return,
                entry = entries.next() => entry,
            };
            let Some(Ok(entry)) = entry else { break };
            next_revision = Some(entry.revision + 1);
            deny.prune(Timestamp::now().secs());
            match entry.operation {
                KvOperation::Put => match serde_json::from_slice::<Revocation>(&entry.value) {
                    Ok(revocation) => {
                        deny.apply(&entry.key, Some(revocation.clone()));
                        // After the deny list has it: callers re-check right away.
                        on_revoked(&revocation);
                    }
                    Err(err) => {
                        tracing::warn!(key = %entry.key, error = %err, "ignoring a malformed revocation")
                    }
                },
                KvOperation::Delete | KvOperation::Purge => deny.apply(&entry.key, None),
            }
            if entry.delta == 0 {
                caught_up.send_replace(true);
            }
        }
    }
}

/// Every key of the bucket, as a watch filter.
const ALL_KEYS: &str = ">";

async fn is_empty(bucket: &KvStore) -> bool {
    match bucket.status().await {
        Ok(status) => status.values() == 0,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the revocation bucket's status");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_contracts::ids::{SessionId, UserId};

    fn revocation(target: RevocationTarget, revoked_at: i64, until: i64) -> Revocation {
        Revocation {
            target,
            revoked_at,
            until,
        }
    }

    #[test]
    fn tokens_issued_before_a_revocation_are_denied_until_it_lapses() {
        let deny = DenyList::default();
        let target = RevocationTarget::User(UserId::generate());
        deny.apply(&target.key(), Some(revocation(target.clone(), 100, 1000)));
        assert!(deny.denies(&target, 90, 200));
        assert!(deny.denies(&target, 100, 200));
        assert!(
            !deny.denies(&target, 101, 200),
            "a token issued after re-enabling is fine"
        );
        assert!(
            !deny.denies(&target, 90, 1001),
            "expired revocations deny nothing"
        );
    }

    #[test]
    fn a_deleted_revocation_denies_nothing() {
        let deny = DenyList::default();
        let target = RevocationTarget::Session(SessionId::generate());
        deny.apply(&target.key(), Some(revocation(target.clone(), 100, 1000)));
        deny.apply(&target.key(), None);
        assert!(!deny.denies(&target, 90, 200));
    }
}
