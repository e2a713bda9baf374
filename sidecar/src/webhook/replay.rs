//! The ids of recently handled events, to refuse repeats, in bounded memory.

use jiff::Timestamp;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// Remembers at most `capacity` ids, and none older than the staleness tolerance: an event
/// older than that is refused as stale anyway, so its id need not be kept.
pub struct ReplayCache {
    capacity: usize,
    tolerance: Duration,
    order: VecDeque<(Timestamp, String)>,
    ids: HashSet<String>,
}

impl ReplayCache {
    pub fn new(capacity: usize, tolerance: Duration) -> Self {
        ReplayCache {
            capacity: capacity.max(1),
            tolerance,
            order: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records `id`, created at `created_at`, forgetting ids that can no longer be replayed and,
    /// past the capacity, the oldest ones.
    pub fn insert(&mut self, id: &str, created_at: Timestamp, now: Timestamp) {
        if self.ids.contains(id) {
            return;
        }
        let horizon = now.checked_sub(self.tolerance).unwrap_or(Timestamp::MIN);
        self.order.push_back((created_at, id.to_owned()));
        self.ids.insert(id.to_owned());
        // Ids arrive roughly in creation order, so expired ones gather at the front.
        while let Some((oldest, _)) = self.order.front() {
            if self.order.len() <= self.capacity && *oldest >= horizon {
                break;
            }
            let (_, id) = self.order.pop_front().expect("front exists");
            self.ids.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn remembers_ids_up_to_its_capacity() {
        let mut cache = ReplayCache::new(2, Duration::from_secs(300));
        cache.insert("a", at(0), at(0));
        cache.insert("b", at(1), at(1));
        assert!(cache.contains("a") && cache.contains("b"));
        cache.insert("c", at(2), at(2));
        assert!(
            !cache.contains("a"),
            "the oldest id is forgotten past capacity"
        );
        assert!(cache.contains("b") && cache.contains("c"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn forgets_ids_that_would_be_refused_as_stale_anyway() {
        let mut cache = ReplayCache::new(100, Duration::from_secs(300));
        cache.insert("old", at(0), at(0));
        cache.insert("new", at(400), at(400));
        assert!(!cache.contains("old"));
        assert!(cache.contains("new"));
    }

    #[test]
    fn inserting_an_id_twice_keeps_one_entry() {
        let mut cache = ReplayCache::new(10, Duration::from_secs(300));
        cache.insert("a", at(0), at(0));
        cache.insert("a", at(0), at(1));
        assert_eq!(cache.len(), 1);
    }
}
