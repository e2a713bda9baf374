//! Webhook envelopes and the `X-Tooken-Signature` scheme (README "Webhooks", Verifying a
//! signature): `sha256=<hex HMAC-SHA256(endpoint secret, raw body)>`.

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Tooken-Signature";
pub const EVENT_ID_HEADER: &str = "X-Tooken-Event-Id";
pub const TIMESTAMP_HEADER: &str = "X-Tooken-Timestamp";

/// The body of every delivery. `data` never carries a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: Timestamp,
    pub workspace: String,
    pub data: serde_json::Value,
}

/// The header value for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Whether `header` is a valid signature of `body` under any of `secrets`.
/// Several secrets let a receiver accept both sides of a secret rotation.
/// The comparison runs in constant time.
pub fn verify<S: AsRef<[u8]>>(secrets: &[S], header: &str, body: &[u8]) -> bool {
    let Some(digest) = header
        .strip_prefix("sha256=")
        .and_then(|hex_part| hex::decode(hex_part).ok())
    else {
        return false;
    };
    secrets.iter().fold(false, |matched, secret| {
        // Check every secret so the time taken does not reveal which one matched.
        mac(secret.as_ref(), body).verify_slice(&digest).is_ok() | matched
    })
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_any_active_secret_and_rejects_tampering() {
        let body = br#"{"id":"e1","type":"token.rotated"}"#;
        let header = sign(b"new", body);
        assert!(verify(
            &[b"old".as_slice(), b"new".as_slice()],
            &header,
            body
        ));
        assert!(!verify(&[b"old".as_slice()], &header, body));
        assert!(!verify(&[b"new".as_slice()], &header, b"{}"));
        assert!(!verify(&[b"new".as_slice()], "sha256=zz", body));
        assert!(!verify(
            &[b"new".as_slice()],
            &header.replace("sha256=", "sha1="),
            body
        ));
    }
}
