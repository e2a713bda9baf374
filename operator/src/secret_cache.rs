//! What the operator knows of its own Secrets without reading them: the version each is at now
//! (from a metadata-only watch), and a fingerprint of the version it last read or wrote (owner,
//! labels, annotations and a digest of each value; never a value). When reconcile expects
//! exactly that fingerprint at the version the watch shows, it needs no request; otherwise it
//! reads the Secret afresh. A fingerprint is 32 bytes where the fields were kilobytes.

use crate::cluster::ObservedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher::Event;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// `namespace/name` → the resourceVersion the watch shows.
    current: HashMap<String, String>,
    /// A relist in progress: it replaces `current` when complete.
    relist: Option<HashMap<String, String>>,
    /// `namespace/name` → the version last read or written, and the fingerprint of what it held.
    known: HashMap<String, (String, [u8; 32])>,
}

#[derive(Default)]
pub struct SecretCache {
    state: Mutex<State>,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn key_of(secret: &PartialObjectMeta<Secret>) -> Option<(String, String)> {
    let version = secret.resource_version()?;
    Some((
        key(&secret.namespace().unwrap_or_default(), &secret.name_any()),
        version,
    ))
}

impl SecretCache {
    /// Follows the watch of the operator's Secrets.
    pub fn watched(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let mut state = self.state.lock().expect("lock");
        match event {
            Event::Init => state.relist = Some(HashMap::new()),
            Event::InitApply(secret) => {
                if let (Some(relist), Some((key, version))) = (&mut state.relist, key_of(secret)) {
                    relist.insert(key, version);
                }
            }
            Event::InitDone => {
                if let Some(relist) = state.relist.take() {
                    state.known.retain(|key, _| relist.contains_key(key));
                    state.current = relist;
                }
            }
            Event::Apply(secret) => {
                if let Some((key, version)) = key_of(secret) {
                    state.current.insert(key, version);
                }
            }
            Event::Delete(secret) => {
                let key = key(&secret.namespace().unwrap_or_default(), &secret.name_any());
                state.current.remove(&key);
                state.known.remove(&key);
            }
        }
    }

    /// Records a Secret just read or written; returns it as observed, values included.
    pub fn remember(&self, namespace: &str, secret: &Secret) -> ObservedSecret {
        let observed = ObservedSecret::read(secret);
        let key = key(namespace, &secret.name_any());
        let mut state = self.state.lock().expect("lock");
        match secret.resource_version() {
            Some(version) => {
                state.known.insert(key, (version, observed.fingerprint()));
            }
            None => {
                state.known.remove(&key);
            }
        }
        observed
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        self.state
            .lock()
            .expect("lock")
            .known
            .remove(&key(namespace, name));
    }

    /// Whether the Secret is `expected`: it was, as last read or written, and the watch shows it
    /// still at that version.
    pub fn holds(&self, namespace: &str, name: &str, expected: &ObservedSecret) -> bool {
        let state = self.state.lock().expect("lock");
        let key = key(namespace, name);
        state.known.get(&key).is_some_and(|(version, fingerprint)| {
            state.current.get(&key) == Some(version) && *fingerprint == expected.fingerprint()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::secret_at as secret;

    fn meta(version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: secret(version).metadata,
            _phantom: Default::default(),
        }
    }

    fn expected() -> ObservedSecret {
        ObservedSecret {
            digests: [(
                "token".to_owned(),
                crate::cluster::sha256_hex(b"tok_live_x"),
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_secret_is_known_only_while_the_watch_shows_the_version_last_seen() {
        let cache = SecretCache::default();
        assert!(!cache.holds("apps", "s", &expected()), "nothing known yet");
        cache.remember("apps", &secret("5"));
        assert!(!cache.holds("apps", "s", &expected()), "not yet watched");
        cache.watched(&Event::Apply(meta("5")));
        assert!(cache.holds("apps", "s", &expected()));
        let mut other = expected();
        other.labels.insert("team".into(), "a".into());
        assert!(!cache.holds("apps", "s", &other), "not what was expected");
        cache.watched(&Event::Apply(meta("6")));
        assert!(
            !cache.holds("apps", "s", &expected()),
            "changed by someone else"
        );
        cache.remember("apps", &secret("6"));
        assert!(cache.holds("apps", "s", &expected()));
        cache.watched(&Event::Delete(meta("7")));
        assert!(!cache.holds("apps", "s", &expected()), "deleted");
    }

    #[test]
    fn a_relist_replaces_what_the_watch_showed() {
        let cache = SecretCache::default();
        cache.remember("apps", &secret("5"));
        cache.watched(&Event::Apply(meta("5")));
        cache.watched(&Event::Init);
        assert!(
            cache.holds("apps", "s", &expected()),
            "kept until the relist is done"
        );
        cache.watched(&Event::InitDone);
        assert!(
            !cache.holds("apps", "s", &expected()),
            "gone while the watch was down"
        );
    }
}
