//! Credential lookups kept in memory, for SQLite only: with SQLite one process owns the data, so
//! it sees every change. A generation counter makes invalidation all-or-nothing: committing a
//! write transaction bumps it (unless the caller states the write changes no credential), and
//! entries filled under an older generation are never returned.
//!
//! PostgreSQL serves several replicas, which would not see each other's revocations, so there
//! every lookup goes to the database.

use super::credentials::Credential;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct CredentialCache {
    generation: AtomicU64,
    entries: RwLock<HashMap<String, (u64, Credential)>>,
    capacity: usize,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> CredentialCache {
        CredentialCache {
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// Read before the database lookup whose result will be inserted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, secret_hash: &str) -> Option<Credential> {
        let current = self.generation();
        let entries = self.entries.read().expect("cache lock");
        match entries.get(secret_hash) {
            Some((generation, credential)) if *generation == current => Some(credential.clone()),
            _ => None,
        }
    }

    /// Remembers a lookup made under `generation`; ignored if anything changed since.
    pub fn insert(&self, secret_hash: &str, generation: u64, credential: Credential) {
        if generation != self.generation() {
            return;
        }
        let mut entries = self.entries.write().expect("cache lock");
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(secret_hash.to_owned(), (generation, credential));
    }

    /// Called after a committed change that may affect any credential.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.write().expect("cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::credentials::ApiKeyCredential;
    use tooken_contract::api_keys::ApiKeyKind;

    fn credential(id: &str) -> Credential {
        Credential::ApiKey(ApiKeyCredential {
            secret_hash: "h".into(),
            key_id: id.into(),
            name: id.into(),
            member_email: None,
            workspace_id: "w".into(),
            workspace_slug: "s".into(),
            kind: ApiKeyKind::Team,
            member_id: None,
            role: None,
        })
    }

    #[test]
    fn entries_die_with_their_generation() {
        let cache = CredentialCache::new(10);
        let generation = cache.generation();
        cache.insert("h", generation, credential("a"));
        assert_eq!(cache.get("h"), Some(credential("a")));
        cache.invalidate();
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_cached() {
        let cache = CredentialCache::new(10);
        let before_lookup = cache.generation();
        cache.invalidate(); // a revocation commits while the lookup reads old data
        cache.insert("h", before_lookup, credential("stale"));
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = CredentialCache::new(2);
        let generation = cache.generation();
        for key in ["a", "b", "c"] {
            cache.insert(key, generation, credential(key));
        }
        assert!(cache.entries.read().unwrap().len() <= 2);
        assert_eq!(cache.get("c"), Some(credential("c")));
    }
}
