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

/// The SHA-256 of a token, the key connect tokens are cached under.
pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
