//! A short-lived cache of API token grants, so CI jobs posting results do not cost an
//! auth round trip per request, and can go on reporting while auth is away. Revocations
//! evict at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use verdict_contracts::auth::{ApiTokenGrant, API_TOKEN_CACHE_SECS, API_TOKEN_STALE_SECS};
use verdict_contracts::ids::TokenId;

/// Grants kept at most; beyond it the cache is cleared (a flood of distinct tokens is
/// an attack, and clearing keeps memory bounded).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct GrantCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

#[derive(Clone)]
struct Entry {
    grant: ApiTokenGrant,
    /// When auth last confirmed the grant.
    confirmed: Instant,
    /// Until when the grant is used without asking auth.
    fresh_until: Instant,
}

fn fresh_for() -> Duration {
    Duration::from_secs(API_TOKEN_CACHE_SECS as u64)
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl GrantCache {
    /// A grant confirmed recently enough to use without asking auth.
    pub fn get(&self, token: &str) -> Option<ApiTokenGrant> {
        let now = Instant::now();
        self.read(token)
            .filter(|entry| entry.fresh_until > now)
            .map(|entry| entry.grant)
    }

    /// While auth cannot be asked: a grant it confirmed less than
    /// [`API_TOKEN_STALE_SECS`] ago, which is then used without asking for another
    /// [`API_TOKEN_CACHE_SECS`], so that requests do not each wait for the outage.
    pub fn get_while_unconfirmable(&self, token: &str) -> Option<ApiTokenGrant> {
        let stale_limit = Duration::from_secs(API_TOKEN_STALE_SECS as u64);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries
            .get_mut(&key(token))
            .filter(|entry| entry.confirmed.elapsed() < stale_limit)?;
        entry.fresh_until = Instant::now() + fresh_for();
        Some(entry.grant.clone())
    }

    pub fn put(&self, token: &str, grant: ApiTokenGrant) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let now = Instant::now();
        entries.insert(
            key(token),
            Entry {
                grant,
                confirmed: now,
                fresh_until: now + fresh_for(),
            },
        );
    }

    pub fn evict_token(&self, token_id: TokenId) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, entry| entry.grant.token_id != token_id);
    }

    fn read(&self, token: &str) -> Option<Entry> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(token))
            .cloned()
    }

    /// Ages the entry of `token` by `age`, as if it had been confirmed that long ago.
    #[cfg(test)]
    fn age(&self, token: &str, age: Duration) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(&key(token)) {
            entry.confirmed -= age;
            entry.fresh_until -= age;
        }
    }
}

#[cfg(test)]
mod tests {
    use verdict_contracts::auth::Role;

    use super::*;

    fn grant(id: TokenId) -> ApiTokenGrant {
        ApiTokenGrant {
            token_id: id,
            project_id: verdict_contracts::ids::ProjectId::generate(),
            role: Role::Reporter,
            expires_at: None,
        }
    }

    #[test]
    fn a_cached_grant_is_found_by_its_token_only() {
        let cache = GrantCache::default();
        let a = TokenId::generate();
        cache.put("vdt_a", grant(a));
        assert_eq!(cache.get("vdt_a").unwrap().token_id, a);
        assert!(cache.get("vdt_b").is_none());
    }

    #[test]
    fn a_grant_older_than_the_cache_period_is_not_fresh() {
        let cache = GrantCache::default();
        let a = TokenId::generate();
        cache.put("vdt_a", grant(a));
        cache.age("vdt_a", fresh_for());
        assert!(cache.get("vdt_a").is_none());
    }

    #[test]
    fn while_auth_is_away_a_grant_is_used_up_to_the_stale_limit_and_then_fresh_again() {
        let cache = GrantCache::default();
        let a = TokenId::generate();
        cache.put("vdt_a", grant(a));
        cache.age(
            "vdt_a",
            Duration::from_secs(API_TOKEN_STALE_SECS as u64 - 5),
        );
        assert_eq!(cache.get_while_unconfirmable("vdt_a").unwrap().token_id, a);
        // Used without asking again for a while, so requests do not each wait.
        assert_eq!(cache.get("vdt_a").unwrap().token_id, a);
        cache.age("vdt_a", Duration::from_secs(10));
        assert!(cache.get_while_unconfirmable("vdt_a").is_none());
        assert!(cache.get_while_unconfirmable("vdt_b").is_none());
    }

    #[test]
    fn evicting_a_token_id_forgets_its_grant() {
        let cache = GrantCache::default();
        let a = TokenId::generate();
        cache.put("vdt_a", grant(a));
        cache.evict_token(a);
        assert!(cache.get("vdt_a").is_none());
    }
}
