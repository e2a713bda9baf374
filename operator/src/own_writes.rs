//! The resource versions the operator itself wrote, so the watch events its own writes cause do
//! not trigger another reconcile: a reconcile that just wrote the status and the Secret has
//! nothing left to do, and at 10,000 resources those echoes would double the work.

use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct OwnWrites {
    versions: Mutex<HashMap<String, String>>,
}

fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

impl OwnWrites {
    /// Records the version a write returned.
    pub fn wrote<K: Resource<DynamicType = ()>>(&self, object: &K) {
        if let Some(version) = object.resource_version() {
            self.versions
                .lock()
                .expect("lock")
                .insert(key(object), version);
        }
    }

    /// Whether this watch event shows exactly the operator's last write (then forgotten, so a
    /// later relist of the same version still reaches the controller).
    pub fn is_echo<K: Resource<DynamicType = ()>>(&self, object: &K) -> bool {
        let Some(version) = object.resource_version() else {
            return false;
        };
        let mut versions = self.versions.lock().expect("lock");
        let key = key(object);
        if versions.get(&key) == Some(&version) {
            versions.remove(&key);
            return true;
        }
        false
    }

    /// Drops what is known of a deleted object.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.versions.lock().expect("lock").remove(&key(object));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::secret_at as secret;

    #[test]
    fn only_the_exact_version_written_is_an_echo_and_only_once() {
        let writes = OwnWrites::default();
        writes.wrote(&secret("5"));
        assert!(!writes.is_echo(&secret("4")), "an older version");
        assert!(!writes.is_echo(&secret("6")), "someone else's change");
        assert!(writes.is_echo(&secret("5")));
        assert!(!writes.is_echo(&secret("5")), "a relist is not swallowed");
    }

    #[test]
    fn kinds_and_deletions_are_kept_apart() {
        let writes = OwnWrites::default();
        writes.wrote(&secret("5"));
        let mut other_kind = crate::crd::TookenToken::new(
            "s",
            serde_json::from_value(serde_json::json!({"scopes": ["tokens:read"]})).unwrap(),
        );
        other_kind.metadata.namespace = Some("apps".into());
        other_kind.metadata.resource_version = Some("5".into());
        assert!(!writes.is_echo(&other_kind));
        writes.forget(&secret("5"));
        assert!(!writes.is_echo(&secret("5")));
    }
}
