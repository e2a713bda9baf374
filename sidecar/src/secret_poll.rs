//! Waiting for the operator to write a rotation into a Secret, shared by receiver mode (before
//! restarting workloads) and volume mode (before rewriting the token file).

use std::time::Duration;

/// How often a Secret is read again while waiting for the operator to write a rotation.
pub const SECRET_POLL: Duration = Duration::from_millis(500);
