//! JSON Web Keys (RFC 7517) of the signing keys: the public parts as
//! published at `/.well-known/jwks.json`, and the RFC 7638 thumbprint that
//! names each key (its `kid`).

use aws_lc_rs::{
    digest,
    rsa::KeyPair,
    signature::{KeyPair as _, RsaPublicKeyComponents},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::jwt::JWS_ALGORITHM;

/// `n` and `e`, big-endian without leading zeros, base64url.
pub fn public_components(pair: &KeyPair) -> (String, String) {
    let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    (
        URL_SAFE_NO_PAD.encode(parts.n),
        URL_SAFE_NO_PAD.encode(parts.e),
    )
}

/// The RFC 7638 JWK thumbprint of an RSA key (SHA-256, base64url).
pub fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// One published key.
pub fn jwk(kid: &str, n: &str, e: &str) -> serde_json::Value {
    serde_json::json!({
        "kty": "RSA",
        "use": "sig",
        "alg": JWS_ALGORITHM,
        "kid": kid,
        "n": n,
        "e": e,
    })
}
