//! A short-lived cache of API token grants, so CI jobs posting results do not cost an
//! auth round trip per request. Revocations evict at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use verdict_contracts::auth::{ApiTokenGrant, API_TOKEN_CACHE_SECS};

/// Grants kept at most; beyond it the cache is cleared (a flood of distinct tokens is
/// an attack, and clearing keeps memory bounded).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct GrantCache {
    entries: RwLock<HashMap<[u8; 32], (ApiTokenGrant, Instant)>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl GrantCache {
    pub fn get(&self, token: &str) -> Option<ApiTokenGrant> {
        let ttl = Duration::from_secs(API_TOKEN_CACHE_SECS as u64);
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(token))
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(grant, _)| grant.clone())
    }

    pub fn put(&self, token: &str, grant: ApiTokenGrant) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key(token), (grant, Instant::now()));
    }

    pub fn evict_token(&self, token_id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (grant, _)| grant.token_id != token_id);
    }
}

#[cfg(test)]
mod tests {
    use verdict_contracts::auth::Role;

    use super::*;

    fn grant(id: &str) -> ApiTokenGrant {
        ApiTokenGrant {
            token_id: id.into(),
            project_id: "p".into(),
            role: Role::Reporter,
            expires_at: None,
        }
    }

    #[test]
    fn a_cached_grant_is_found_by_its_token_only() {
        let cache = GrantCache::default();
        cache.put("vdt_a", grant("a"));
        assert_eq!(cache.get("vdt_a").unwrap().token_id, "a");
        assert!(cache.get("vdt_b").is_none());
    }

    #[test]
    fn evicting_a_token_id_forgets_its_grant() {
        let cache = GrantCache::default();
        cache.put("vdt_a", grant("a"));
        cache.evict_token("a");
        assert!(cache.get("vdt_a").is_none());
    }
}
