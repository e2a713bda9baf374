//! The `tooken.io/restarted-for-rotation` and `tooken.io/pending-rotation` annotations on a
//! workload: comma-separated `<token-id>:<rotation>` entries, one per token the workload
//! follows. They live on the workload itself, so "already restarted" and "to be restarted"
//! survive repeated events and sidecar restarts.

/// The rotation of `token_id` the workload was last restarted for.
pub fn restarted_for(annotation: Option<&str>, token_id: &str) -> Option<u64> {
    entries(annotation?).find_map(|(id, rotation)| (id == token_id).then_some(rotation))
}

/// The annotation with `token_id` recorded at `rotation`, other tokens' entries kept.
pub fn record(annotation: Option<&str>, token_id: &str, rotation: u64) -> String {
    let entry = format!("{token_id}:{rotation}");
    match remove(annotation, token_id) {
        Some(rest) => format!("{rest},{entry}"),
        None => entry,
    }
}

/// The annotation without `token_id`'s entry; `None` when nothing is left.
pub fn remove(annotation: Option<&str>, token_id: &str) -> Option<String> {
    let rest: Vec<String> = annotation
        .map(entries)
        .into_iter()
        .flatten()
        .filter(|(id, _)| *id != token_id)
        .map(|(id, rotation)| format!("{id}:{rotation}"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

/// Every `(token, rotation)` entry.
pub fn all(annotation: &str) -> Vec<(String, u64)> {
    entries(annotation)
        .map(|(id, rotation)| (id.to_owned(), rotation))
        .collect()
}

fn entries(annotation: &str) -> impl Iterator<Item = (&str, u64)> {
    annotation.split(',').filter_map(|entry| {
        let (id, rotation) = entry.trim().rsplit_once(':')?;
        Some((id, rotation.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rotation_recorded_for_a_token() {
        let value = Some("tok-a:3,tok-b:7");
        assert_eq!(restarted_for(value, "tok-a"), Some(3));
        assert_eq!(restarted_for(value, "tok-b"), Some(7));
        assert_eq!(restarted_for(value, "tok-c"), None);
        assert_eq!(restarted_for(None, "tok-a"), None);
        assert_eq!(restarted_for(Some("garbage,tok-a:x"), "tok-a"), None);
    }

    #[test]
    fn recording_replaces_only_that_tokens_entry() {
        assert_eq!(record(None, "tok-a", 1), "tok-a:1");
        assert_eq!(
            record(Some("tok-a:3,tok-b:7"), "tok-a", 4),
            "tok-b:7,tok-a:4"
        );
        assert_eq!(record(Some("tok-b:7"), "tok-a", 1), "tok-b:7,tok-a:1");
    }

    #[test]
    fn removing_keeps_other_tokens_and_empties_to_none() {
        assert_eq!(
            remove(Some("tok-a:3,tok-b:7"), "tok-a").as_deref(),
            Some("tok-b:7")
        );
        assert_eq!(remove(Some("tok-a:3"), "tok-a"), None);
        assert_eq!(remove(None, "tok-a"), None);
        assert_eq!(
            all("tok-a:3, tok-b:7,junk"),
            [("tok-a".to_owned(), 3), ("tok-b".to_owned(), 7)]
        );
    }
}
