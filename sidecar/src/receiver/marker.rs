//! The `tooken.io/restarted-for-rotation` annotation on a workload: comma-separated
//! `<token-id>:<rotation>` entries, one per token the workload follows. It lives on the
//! workload itself, so "already restarted" survives repeated events and sidecar restarts.

/// The rotation of `token_id` the workload was last restarted for.
pub fn restarted_for(annotation: Option<&str>, token_id: &str) -> Option<u64> {
    entries(annotation?).find_map(|(id, rotation)| (id == token_id).then_some(rotation))
}

/// The annotation with `token_id` recorded at `rotation`, other tokens' entries kept.
pub fn record(annotation: Option<&str>, token_id: &str, rotation: u64) -> String {
    let mut out: Vec<String> = annotation
        .map(entries)
        .into_iter()
        .flatten()
        .filter(|(id, _)| *id != token_id)
        .map(|(id, rotation)| format!("{id}:{rotation}"))
        .collect();
    out.push(format!("{token_id}:{rotation}"));
    out.join(",")
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
}
