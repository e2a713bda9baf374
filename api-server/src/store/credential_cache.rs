//! Credential lookups kept in memory, on SQLite and PostgreSQL alike, never staler than a
//! stated bound.
//!
//! - A generation counter makes invalidation all-or-nothing: entries filled under an older
//!   generation are never returned, so a lookup that raced a change cannot be cached after it.
//! - A change to a credential bumps `credential_epoch` in its transaction. The replica that made
//!   it drops its entries at commit; the others learn of it from a check of the epoch (woken by
//!   PostgreSQL's `NOTIFY`, and run at least every quarter of the bound) and drop theirs.
//! - **The bound.** An entry is returned only while the newest check that found the epoch
//!   unchanged *began* less than `bound` ago. A change committed before that check began was
//!   seen by it; so a hit at time `t` can miss only changes committed after `t - bound`. When
//!   checks stop succeeding (the database is slow or gone, the listening connection is lost),
//!   entries stop being returned within the bound, and every lookup goes to the database.

use super::credentials::Credential;
use crate::metrics::CacheCounters;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

pub struct CredentialCache {
    generation: AtomicU64,
    entries: RwLock<HashMap<String, (u64, Credential)>>,
    capacity: usize,
    bound: Duration,
    origin: Instant,
    /// Microseconds after `origin` at which the newest successful check began; 0 for none.
    confirmed_at: AtomicU64,
    /// The epoch the entries belong to.
    epoch: AtomicI64,
    /// Set while the change feed is known to be broken (the listening connection is lost).
    suspended: AtomicBool,
    /// Orders checks, so an older reading never overrides a newer one.
    confirming: Mutex<()>,
    counters: CacheCounters,
}

impl CredentialCache {
    pub fn new(capacity: usize, bound: Duration, counters: CacheCounters) -> CredentialCache {
        CredentialCache {
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
            capacity,
            bound,
            // Far enough back that a check's start is never before it.
            origin: Instant::now()
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or_else(Instant::now),
            confirmed_at: AtomicU64::new(0),
            epoch: AtomicI64::new(i64::MIN),
            suspended: AtomicBool::new(false),
            confirming: Mutex::new(()),
            counters,
        }
    }

    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// Read before the database lookup whose result will be inserted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The entry for `secret_hash`, if the cache is current; `None` sends the caller to the
    /// database.
    pub fn get(&self, secret_hash: &str) -> Option<Credential> {
        if !self.is_current(Instant::now()) {
            self.counters.bypasses.inc();
            self.counters.current.set(0);
            return None;
        }
        let current = self.generation();
        let entries = self.entries.read().expect("cache lock");
        match entries.get(secret_hash) {
            Some((generation, credential)) if *generation == current => {
                self.counters.hits.inc();
                Some(credential.clone())
            }
            _ => {
                self.counters.misses.inc();
                None
            }
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

    /// Drops every entry: after a committed change that may affect any credential.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.write().expect("cache lock").clear();
    }

    /// A check that began at `began` read `epoch`: entries of an older epoch go, and the
    /// cache counts as current from `began` for the length of the bound.
    pub fn confirm(&self, began: Instant, epoch: i64) {
        let _order = self.confirming.lock().expect("confirm lock");
        let known = self.epoch.load(Ordering::Acquire);
        if epoch > known {
            self.invalidate();
            self.epoch.store(epoch, Ordering::Release);
        }
        let began = self.micros(began).max(1);
        self.confirmed_at.fetch_max(began, Ordering::AcqRel);
        self.counters
            .current
            .set(i64::from(self.is_current(Instant::now())));
    }

    /// The change feed broke: drop everything and serve from the database until `resume`.
    pub fn suspend(&self) {
        self.suspended.store(true, Ordering::Release);
        self.confirmed_at.store(0, Ordering::Release);
        self.invalidate();
        self.counters.current.set(0);
    }

    /// The change feed is back; only a check that begins after this makes the cache current.
    pub fn resume(&self) {
        let _order = self.confirming.lock().expect("confirm lock");
        self.confirmed_at.store(0, Ordering::Release);
        self.suspended.store(false, Ordering::Release);
    }

    /// Whether entries may be returned at `now`.
    pub fn is_current(&self, now: Instant) -> bool {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        confirmed != 0
            && !self.suspended.load(Ordering::Acquire)
            && self.micros(now).saturating_sub(confirmed) < self.bound.as_micros() as u64
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
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

    fn current_cache() -> CredentialCache {
        let cache = CredentialCache::new(10, Duration::from_secs(3600), CacheCounters::default());
        cache.confirm(Instant::now(), 0);
        cache
    }

    #[test]
    fn entries_die_with_their_generation() {
        let cache = current_cache();
        let generation = cache.generation();
        cache.insert("h", generation, credential("a"));
        assert_eq!(cache.get("h"), Some(credential("a")));
        cache.invalidate();
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_kept() {
        let cache = current_cache();
        let before = cache.generation();
        cache.invalidate();
        cache.insert("h", before, credential("stale"));
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn a_newer_epoch_drops_the_entries_and_an_older_reading_changes_nothing() {
        let cache = current_cache();
        cache.insert("h", cache.generation(), credential("a"));
        cache.confirm(Instant::now(), 0);
        assert_eq!(cache.get("h"), Some(credential("a")));
        cache.confirm(Instant::now(), 1);
        assert_eq!(cache.get("h"), None);
        cache.insert("h", cache.generation(), credential("b"));
        cache.confirm(Instant::now(), 0);
        assert_eq!(cache.get("h"), Some(credential("b")));
    }

    #[test]
    fn nothing_is_returned_until_a_check_or_after_the_bound() {
        let cache = CredentialCache::new(10, Duration::from_millis(50), CacheCounters::default());
        cache.insert("h", cache.generation(), credential("a"));
        assert_eq!(cache.get("h"), None, "never checked");
        let long_ago = Instant::now() - Duration::from_millis(60);
        cache.confirm(long_ago, 0);
        assert!(
            !cache.is_current(Instant::now()),
            "the check began beyond the bound"
        );
        assert_eq!(cache.get("h"), None);
        cache.confirm(Instant::now(), 0);
        assert!(cache.is_current(Instant::now()));
        assert!(!cache.is_current(Instant::now() + Duration::from_millis(50)));
    }

    #[test]
    fn a_broken_feed_bypasses_the_cache_until_resumed_and_checked() {
        let cache = current_cache();
        cache.insert("h", cache.generation(), credential("a"));
        cache.suspend();
        cache.confirm(Instant::now(), 0);
        assert_eq!(cache.get("h"), None);
        cache.resume();
        assert!(
            !cache.is_current(Instant::now()),
            "a check before resume does not count"
        );
        cache.confirm(Instant::now(), 0);
        cache.insert("h", cache.generation(), credential("a"));
        assert_eq!(cache.get("h"), Some(credential("a")));
        assert_eq!(cache.counters.hits.get(), 1);
        assert_eq!(cache.counters.bypasses.get(), 1);
    }
}
