//! The credential format shared by API keys and tokens (README "The API", Credentials):
//! `tok_live_` + 30 base62 characters (≈178 random bits) + 6 base62 characters of CRC32.
//! Dashboard sessions use the same shape with the prefix `tok_sess_`, so a leaked session is
//! told apart from an API key at a glance.
//!
//! The checksum lets clients, secret scanners and the server reject a mistyped value without a
//! database lookup, as GitHub's token format does.

use rand::RngExt;
use std::fmt;

pub const PREFIX: &str = "tok_live_";
pub const SESSION_PREFIX: &str = "tok_sess_";
pub const BODY_LEN: usize = 30;
pub const CHECKSUM_LEN: usize = 6;
pub const SECRET_LEN: usize = PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
/// Characters of a secret that are safe to display (the prefix plus four of the body).
pub const DISPLAY_PREFIX_LEN: usize = PREFIX.len() + 4;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// API keys and tokens.
    Live,
    /// Signed-in sessions.
    Session,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::Live => PREFIX,
            SecretKind::Session => SESSION_PREFIX,
        }
    }
}

/// A credential secret. Its `Debug` and `Display` never print the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialFormatError {
    #[error("credential does not start with `tok_live_`")]
    Prefix,
    #[error("credential has the wrong length")]
    Length,
    #[error("credential contains characters outside base62")]
    Alphabet,
    #[error("credential checksum does not match")]
    Checksum,
}

impl Secret {
    /// Generates a fresh API key or token secret from the thread-local CSPRNG (seeded by the OS).
    pub fn generate() -> Secret {
        Secret::generate_kind(SecretKind::Live)
    }

    /// Generates a fresh session secret.
    pub fn generate_session() -> Secret {
        Secret::generate_kind(SecretKind::Session)
    }

    fn generate_kind(kind: SecretKind) -> Secret {
        let body = random_base62(BODY_LEN);
        let checksum = checksum(&body);
        Secret(format!("{}{body}{checksum}", kind.prefix()))
    }

    pub fn kind(&self) -> SecretKind {
        if self.0.starts_with(SESSION_PREFIX) {
            SecretKind::Session
        } else {
            SecretKind::Live
        }
    }

    /// Parses a presented value, checking prefix, length, alphabet and checksum.
    pub fn parse(value: &str) -> Result<Secret, CredentialFormatError> {
        let rest = value
            .strip_prefix(PREFIX)
            .or_else(|| value.strip_prefix(SESSION_PREFIX))
            .ok_or(CredentialFormatError::Prefix)?;
        if rest.len() != BODY_LEN + CHECKSUM_LEN {
            return Err(CredentialFormatError::Length);
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CredentialFormatError::Alphabet);
        }
        let (body, sum) = rest.split_at(BODY_LEN);
        if checksum(body) != sum {
            return Err(CredentialFormatError::Checksum);
        }
        Ok(Secret(value.to_owned()))
    }

    /// The full secret. Call only to hand it to its owner or to hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }

    /// The part that may be shown in listings, e.g. `tok_live_Ab3d`.
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}…)", self.display_prefix())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.display_prefix())
    }
}

/// `len` base62 characters from the thread-local CSPRNG (seeded by the OS).
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// CRC32 of the body, base62-encoded, left-padded to six characters.
fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_are_distinct() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert_eq!(Secret::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn sessions_have_their_own_prefix() {
        let session = Secret::generate_session();
        assert!(session.expose().starts_with(SESSION_PREFIX));
        assert_eq!(
            Secret::parse(session.expose()).unwrap().kind(),
            SecretKind::Session
        );
        assert_eq!(Secret::generate().kind(), SecretKind::Live);
    }

    #[test]
    fn body_carries_at_least_160_random_bits() {
        let bits = BODY_LEN as f64 * (62f64).log2();
        assert!(bits >= 160.0, "{bits}");
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let secret = Secret::generate();
        let mut bytes = secret.expose().as_bytes().to_vec();
        let i = PREFIX.len() + 3;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(Secret::parse(&typo), Err(CredentialFormatError::Checksum));
    }

    #[test]
    fn malformed_values_are_named() {
        assert_eq!(
            Secret::parse("tok_test_abc"),
            Err(CredentialFormatError::Prefix)
        );
        assert_eq!(
            Secret::parse("tok_live_abc"),
            Err(CredentialFormatError::Length)
        );
        let bad = format!("{PREFIX}{}", "!".repeat(BODY_LEN + CHECKSUM_LEN));
        assert_eq!(Secret::parse(&bad), Err(CredentialFormatError::Alphabet));
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // crc32("") == 0; crc32("a") == 0xe8b7be43 == 3904355907, which is "4GEHKN" in base62.
        assert_eq!(checksum(""), "000000");
        assert_eq!(checksum("a"), "4GEHKN");
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let secret = Secret::generate();
        let shown = format!("{secret:?} {secret}");
        assert!(!shown.contains(&secret.expose()[DISPLAY_PREFIX_LEN..]));
    }
}
