//! Random session tokens and the CSRF tokens derived from them, compared
//! in constant time.

use rand::{distr::Alphanumeric, Rng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh random token (43 alphanumerics, about 256 bits).
pub fn random_token() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect()
}

/// The CSRF token of a session: derived from the (secret) session token,
/// so nothing more is stored and a page without the cookie cannot know it.
pub fn csrf_for(session_token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gatehouse csrf\0")
        .chain_update(session_token.as_bytes())
        .finalize();
    hex::encode(&digest[..24])
}

/// Constant-time string equality.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The SHA-256 of a token, the key connect tokens are cached under
/// (aws-lc's, the assembly the JWT signatures use: a connect token is
/// about a kilobyte and hashed on every request).
pub fn sha256(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FIPS 180-2 test vector, and the same digest as the sha2 crate.
    #[test]
    fn sha256_is_sha256() {
        assert_eq!(
            hex::encode(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = "x".repeat(1500);
        assert_eq!(
            sha256(&long),
            <[u8; 32]>::from(Sha256::digest(long.as_bytes()))
        );
    }

    /// CSRF tokens are stable per session and differ between sessions.
    #[test]
    fn csrf_is_derived() {
        let a = random_token();
        let b = random_token();
        assert_eq!(csrf_for(&a), csrf_for(&a));
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert!(!csrf_for(&a).contains(&a));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
