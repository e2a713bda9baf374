//! Label and annotation keys shared with the operator, and the custom resource the sidecar reads.

use kube::core::{ApiResource, GroupVersionKind};

/// On a Secret: the token id it holds (label and annotation).
pub const TOKEN_ID: &str = "tooken.io/token-id";
/// On a Secret: the rotation number (secret generation) it holds.
pub const ROTATION: &str = "tooken.io/rotation";
/// On a workload: restart it when the named Secret's token rotates.
pub const RESTART_ON_ROTATION: &str = "tooken.io/restart-on-rotation";
/// On a workload: `<token-id>:<rotation>` entries for the rotations it was already restarted for.
pub const RESTARTED_FOR_ROTATION: &str = "tooken.io/restarted-for-rotation";
/// On a workload: `<token-id>:<rotation>` entries for rotations acknowledged to Tooken whose
/// restart waits for the Secret; cleared by the restart itself.
pub const PENDING_ROTATION: &str = "tooken.io/pending-rotation";
/// On a `TookenToken`: the latest rotation the sidecar was told about, written when the Secret
/// does not hold it yet (a rotation through the API), so the operator heals it at once.
pub const ROTATION_SEEN: &str = "tooken.io/rotation-seen";
/// On a pod template: what `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `tookentokens.tooken.io/v1alpha1`, read as a dynamic object so this crate does not depend on
/// the operator.
pub fn tooken_token_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tooken.io", "v1alpha1", "TookenToken"),
        "tookentokens",
    )
}
