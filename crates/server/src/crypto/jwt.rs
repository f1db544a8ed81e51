//! Connect-token JWTs: the one claims type, and the one place tokens are
//! encoded (RS256 with a parsed aws-lc-rs key) and decoded (jsonwebtoken,
//! pinned to RS256, RFC 8725). Which keys exist is [`super::signing_keys`]'
//! business; this module only needs the signer or the matching public key.

use aws_lc_rs::{rand::SystemRandom, rsa::KeyPair, signature::RSA_PKCS1_SHA256};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The `aud` of every connect token.
pub const AUDIENCE: &str = "gatehouse:connect";
/// The longest a connect token lives, in seconds.
pub const MAX_TOKEN_TTL_SECS: i64 = 86_400;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Longer tokens are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The one JWS algorithm signed and accepted.
pub const JWS_ALGORITHM: &str = "RS256";

/// The claims of a connect token (SPEC §6). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectClaims {
    pub user_id: String,
    /// Equal to `user_id`.
    pub sub: String,
    pub app_id: String,
    pub environment_id: String,
    /// The deployment's `public_url`.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Unique token id, for revocation.
    pub jti: String,
    /// Where the hosted page sends the end user when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Where the hosted page sends the end user when something failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_redirect_url: Option<String>,
    /// Origins whose pages may call the connect-token routes with this
    /// token (CORS) and hear the hosted page's completion message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// The access key that minted the token: the token dies with it. None
    /// for a public app's token minted without a key, which may only fill
    /// requirements that have no active connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
}

/// Why a connect token was refused. [`VerifyError::reason`] is a short
/// label for logs and metrics; none of them carries token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed JWT, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not RS256.
    #[error("algorithm not allowed")]
    Algorithm,
    /// `typ` is not JWT, or the header carries anything beyond alg/typ/kid
    /// (such as its own key: `jwk`, `jku`, `x5u`, `x5c`).
    #[error("header not allowed")]
    Header,
    /// No kid, or one that is not in our published key set.
    #[error("unknown signing key")]
    UnknownKid,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    /// A required claim (exp, nbf, iss, aud, sub) is missing.
    #[error("missing claim")]
    MissingClaim,
}

impl VerifyError {
    /// A short, stable label: `malformed`, `algorithm`, `header`,
    /// `unknown_kid`, `signature`, `expired`, `not_yet_valid`, `issuer`,
    /// `audience`, `missing_claim`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Header => "header",
            Self::UnknownKid => "unknown_kid",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::MissingClaim => "missing_claim",
        }
    }

    fn from_jwt(err: &jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => Self::Signature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::MissingRequiredClaim(_) => Self::MissingClaim,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Self::Algorithm,
            _ => Self::Malformed,
        }
    }
}

/// The JOSE header we sign with, in this exact field order.
#[derive(Serialize)]
struct SignedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// The base64url JOSE header `{"alg":"RS256","typ":"JWT","kid":…}`, in
/// that exact field order, ready to prefix every token signed with `kid`.
pub fn encoded_header(kid: &str) -> anyhow::Result<String> {
    let header = SignedHeader {
        alg: JWS_ALGORITHM,
        typ: "JWT",
        kid,
    };
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?))
}

/// `header.payload` for `claims`: the part the signature covers.
pub fn signing_input(encoded_header: &str, claims: &ConnectClaims) -> anyhow::Result<String> {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    Ok(format!("{encoded_header}.{payload}"))
}

/// Signs a signing input with RSASSA-PKCS1-v1_5 SHA-256: the compact
/// token. CPU-bound: about 250 µs.
pub fn sign(pair: &KeyPair, signing_input: &str) -> anyhow::Result<String> {
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The kid a well-formed connect token names, after the header checks of
/// RFC 8725: `alg` RS256, `typ` JWT, and nothing else but `kid` (above all
/// no key or key location of its own, which is never fetched or used).
pub fn header_kid(token: &str) -> Result<String, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let header = match jsonwebtoken::decode_header(token) {
        Ok(header) => header,
        // Say "algorithm" for `alg: none` and others jsonwebtoken does
        // not even name.
        Err(_) if header_alg(token).is_some_and(|alg| alg != JWS_ALGORITHM) => {
            return Err(VerifyError::Algorithm)
        }
        Err(_) => return Err(VerifyError::Malformed),
    };
    if header.alg != Algorithm::RS256 {
        return Err(VerifyError::Algorithm);
    }
    let extra = header.cty.is_some()
        || header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.x5t.is_some()
        || header.x5t_s256.is_some()
        || header.crit.is_some()
        || header.enc.is_some()
        || header.zip.is_some()
        || header.url.is_some()
        || header.nonce.is_some()
        || !header.extras.is_empty();
    if extra || header.typ.as_deref() != Some("JWT") {
        return Err(VerifyError::Header);
    }
    header.kid.ok_or(VerifyError::UnknownKid)
}

/// Checks the signature with `key` and the claims: exp/nbf with 60 s
/// leeway, `iss` = `issuer`, `aud` = [`AUDIENCE`], and exp, nbf, iss, aud
/// and sub present.
pub fn decode(token: &str, key: &DecodingKey, issuer: &str) -> Result<ConnectClaims, VerifyError> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<ConnectClaims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| VerifyError::from_jwt(&e))
}

/// The `alg` of a header jsonwebtoken could not parse, for the error label.
fn header_alg(token: &str) -> Option<String> {
    let first = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(first).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}
