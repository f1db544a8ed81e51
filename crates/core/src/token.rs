//! Access key and personal access token format (SPEC §3).
//!
//! `<prefix><50 random base62><6-char checksum>`: the checksum is the CRC32
//! (IEEE, as zlib's `crc32`) of the ASCII prefix and the 50 random
//! characters, written in base62 (`0-9A-Za-z`, most significant digit
//! first) and left-padded with `0`. A token whose checksum does not match is
//! rejected before any storage is touched. Only the SHA-256 of the whole
//! token is ever stored.

use rand::{distr::Alphanumeric, Rng};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Characters drawn from the CSPRNG.
pub const RANDOM_LEN: usize = 50;
/// Characters of the checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Characters after the prefix.
pub const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;

/// Which credential a token string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    AccessKey,
    PersonalAccessToken,
}

impl TokenKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::AccessKey => "access_key",
            TokenKind::PersonalAccessToken => "personal_access_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access_key" => Some(TokenKind::AccessKey),
            "personal_access_token" => Some(TokenKind::PersonalAccessToken),
            _ => None,
        }
    }
}

crate::text_enum!(TokenKind, "token kind");

/// The configured prefixes (`dyn_` and `dyn_pat_` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrefixes {
    pub access_key: String,
    pub pat: String,
}

impl Default for TokenPrefixes {
    fn default() -> Self {
        Self {
            access_key: "dyn_".into(),
            pat: "dyn_pat_".into(),
        }
    }
}

impl TokenPrefixes {
    pub fn prefix(&self, kind: TokenKind) -> &str {
        match kind {
            TokenKind::AccessKey => &self.access_key,
            TokenKind::PersonalAccessToken => &self.pat,
        }
    }

    /// Which kind a raw string claims to be. When one prefix extends the
    /// other (`dyn_` and `dyn_pat_`, or `gh` and `ghp`) both can match:
    /// the one that leaves a body of the token's length wins (a random
    /// part may start with the longer prefix's extra letters), else the
    /// longer one, whose error is reported.
    fn classify<'a>(&self, raw: &'a str) -> Option<(TokenKind, &'a str)> {
        [
            (TokenKind::AccessKey, self.access_key.as_str()),
            (TokenKind::PersonalAccessToken, self.pat.as_str()),
        ]
        .into_iter()
        .filter_map(|(kind, prefix)| raw.strip_prefix(prefix).map(|body| (kind, body)))
        .min_by_key(|(_, body)| (body.len() != BODY_LEN, body.len()))
    }
}

/// The SHA-256 of a whole token: the only form of it that is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Constant-time equality, for comparing a presented token's hash with a
    /// stored one.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A freshly generated token: the plaintext (returned once) and what is kept.
pub struct NewToken {
    pub token: SecretString,
    pub hash: TokenHash,
    pub checksum: String,
    pub preview: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &"[REDACTED]")
            .field("preview", &self.preview)
            .finish()
    }
}

/// A presented token that passed the format and checksum checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken {
    pub kind: TokenKind,
    pub hash: TokenHash,
}

/// Why a presented string is not a token of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown token prefix")]
    Prefix,
    #[error("token has the wrong length or characters")]
    Format,
    #[error("token checksum does not match")]
    Checksum,
}

impl TokenError {
    /// Label used for the auth-failure metric.
    pub const fn reason(self) -> &'static str {
        match self {
            TokenError::Prefix => "unknown_prefix",
            TokenError::Format => "malformed",
            TokenError::Checksum => "bad_checksum",
        }
    }
}

/// The 6-character base62 CRC32 checksum of `prefix` + `random`.
pub fn checksum(prefix: &str, random: &str) -> String {
    let encoded = base62::encode(crc(prefix, random));
    format!("{encoded:0>width$}", width = CHECKSUM_LEN)
}

/// CRC32 of the prefix and the random part: the number the checksum
/// writes in base62.
fn crc(prefix: &str, random: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prefix.as_bytes());
    hasher.update(random.as_bytes());
    hasher.finalize()
}

/// `dyn_AbC…q1w2e3`: the prefix, three characters, an ellipsis, the checksum.
pub fn preview(prefix: &str, body: &str) -> String {
    let head = &body[..3.min(body.len())];
    let tail = &body[body.len().saturating_sub(CHECKSUM_LEN)..];
    format!("{prefix}{head}…{tail}")
}

/// Generates a new token of `kind` with the configured prefix.
pub fn generate(prefixes: &TokenPrefixes, kind: TokenKind) -> NewToken {
    let prefix = prefixes.prefix(kind);
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect();
    let sum = checksum(prefix, &random);
    let token = format!("{prefix}{random}{sum}");
    let hash = TokenHash::of(&token);
    let preview = preview(prefix, &token[prefix.len()..]);
    NewToken {
        token: SecretString::from(token),
        hash,
        checksum: sum,
        preview,
    }
}

/// Checks a presented token's prefix, shape and checksum, and hashes it.
pub fn parse(prefixes: &TokenPrefixes, raw: &str) -> Result<ParsedToken, TokenError> {
    let (kind, body) = prefixes.classify(raw).ok_or(TokenError::Prefix)?;
    if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenError::Format);
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    let prefix = &raw[..raw.len() - BODY_LEN];
    // Six base62 digits name each number below 62^6 (more than any CRC32)
    // exactly once, so comparing the number the presented checksum spells
    // is comparing the text, without writing the expected one out. (The
    // checksum is no secret: anyone can compute it from the token.)
    if base62::decode(sum) != Ok(u128::from(crc(prefix, random))) {
        return Err(TokenError::Checksum);
    }
    Ok(ParsedToken {
        kind,
        hash: TokenHash::of(raw),
    })
}

/// Parses a secret-held token without exposing it further.
pub fn parse_secret(
    prefixes: &TokenPrefixes,
    raw: &SecretString,
) -> Result<ParsedToken, TokenError> {
    parse(prefixes, raw.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX";

    /// Fixed vector, computed independently with zlib's crc32 and a
    /// base62 (0-9A-Za-z) encoder.
    #[test]
    fn checksum_matches_fixed_vector() {
        assert_eq!(RANDOM.len(), RANDOM_LEN);
        assert_eq!(checksum("dyn_", RANDOM), "1KuepX");
        assert_eq!(checksum("dyn_pat_", RANDOM), "4BjpQG");
        let token = format!("dyn_{RANDOM}1KuepX");
        let parsed = parse(&TokenPrefixes::default(), &token).expect("valid token");
        assert_eq!(parsed.kind, TokenKind::AccessKey);
        assert_eq!(parsed.hash, TokenHash::of(&token));
    }

    /// Small CRC values are left-padded with `0` to six characters
    /// (crc32 of this input is 12325314, four base62 digits).
    #[test]
    fn checksum_is_left_padded() {
        let random = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV0E";
        assert_eq!(checksum("dyn_", random), "00piNO");
    }

    /// Generated tokens have the SPEC §3 shape and round-trip through parse.
    #[test]
    fn generated_tokens_parse() {
        let prefixes = TokenPrefixes::default();
        for kind in [TokenKind::AccessKey, TokenKind::PersonalAccessToken] {
            let new = generate(&prefixes, kind);
            let raw = new.token.expose_secret();
            let prefix = prefixes.prefix(kind);
            assert!(raw.starts_with(prefix));
            assert_eq!(raw.len(), prefix.len() + BODY_LEN);
            assert!(raw[prefix.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()));
            assert!(raw.ends_with(&new.checksum));
            assert!(new.preview.starts_with(prefix) && new.preview.ends_with(&new.checksum));
            let parsed = parse(&prefixes, raw).expect("parses");
            assert_eq!(parsed.kind, kind);
            assert_eq!(parsed.hash, new.hash);
        }
    }

    /// One changed character fails the checksum; wrong shapes fail earlier.
    #[test]
    fn rejects_tampered_and_malformed() {
        let prefixes = TokenPrefixes::default();
        let new = generate(&prefixes, TokenKind::AccessKey);
        let raw = new.token.expose_secret().to_string();
        let mut bytes = raw.clone().into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(parse(&prefixes, &tampered), Err(TokenError::Checksum));
        assert_eq!(parse(&prefixes, "sk_live_123"), Err(TokenError::Prefix));
        assert_eq!(parse(&prefixes, "dyn_short"), Err(TokenError::Format));
        assert_eq!(
            parse(&prefixes, &format!("{raw}x")),
            Err(TokenError::Format)
        );
    }

    /// Regression: with an access-key prefix that a PAT prefix extends by
    /// letters (`gh` and `ghp`), an access key whose random part starts with
    /// `p` was taken for a PAT with a short body and refused.
    #[test]
    fn nested_prefixes_keep_each_kind() {
        let prefixes = TokenPrefixes {
            access_key: "gh".into(),
            pat: "ghp".into(),
        };
        let random = format!("p{}", "a".repeat(RANDOM_LEN - 1));
        let key = format!("gh{random}{}", checksum("gh", &random));
        assert_eq!(
            parse(&prefixes, &key).map(|p| p.kind),
            Ok(TokenKind::AccessKey)
        );
        let swapped = TokenPrefixes {
            access_key: "ghp".into(),
            pat: "gh".into(),
        };
        assert_eq!(
            parse(&swapped, &key).map(|p| p.kind),
            Ok(TokenKind::PersonalAccessToken)
        );
    }

    /// Debug output of a new token never contains the plaintext.
    #[test]
    fn debug_redacts_plaintext() {
        let new = generate(&TokenPrefixes::default(), TokenKind::PersonalAccessToken);
        let shown = format!("{new:?} {:?}", new.token);
        assert!(!shown.contains(new.token.expose_secret()));
    }
}
