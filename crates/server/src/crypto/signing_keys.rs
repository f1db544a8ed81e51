//! The deployment's connect-token signing keys (SPEC §6).
//!
//! [`SigningKeys`] keeps the active key parsed in memory for signing and a
//! decoding key for every published kid. Private keys are stored as PKCS#8
//! sealed with the [`Keyring`] (AAD = kid). A retired key stays published
//! until every token it signed has expired (24 h + 60 s leeway). Tokens
//! themselves are encoded and decoded by [`super::jwt`].
//!
//! Another process (a node, or `gatehouse keys rotate`) may rotate keys:
//! call [`SigningKeys::reload`] periodically (every 30 s keeps every node
//! signing with a key that stays published long enough), and
//! [`SigningKeys::verify_or_refresh`] reloads on demand when a token names
//! a kid we have not seen yet.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair, KeySize},
};
use gatehouse_core::time::now_ms;
use gatehouse_store::{signing_keys::SigningKeyRow, Store};
use jsonwebtoken::DecodingKey;

use super::{
    jwks::{jwk, public_components, thumbprint},
    jwt::{self, ConnectClaims, VerifyError, JWS_ALGORITHM, LEEWAY_SECS, MAX_TOKEN_TTL_SECS},
    keyring::Keyring,
};

/// How long a retired key stays published: until every token it signed
/// has expired, leeway included.
const PUBLISHED_AFTER_RETIREMENT_MS: i64 = (MAX_TOKEN_TTL_SECS + LEEWAY_SECS as i64) * 1000;
/// On-demand reloads (unknown kid) happen at most this often.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// What `gatehouse keys rotate` announces to running nodes (PostgreSQL
/// `NOTIFY` on the invalidation channel).
pub const KEYS_ANNOUNCEMENT: &str = "keys";

/// The key that signs: parsed once, used for every token.
struct Signer {
    kid: String,
    /// The encoded header, ready to prefix every token.
    header: String,
    pair: KeyPair,
}

/// A published public key.
struct PublicKey {
    kid: String,
    n: String,
    e: String,
    retired_at: Option<i64>,
    decoding: DecodingKey,
}

impl PublicKey {
    fn published_at(&self, now_ms: i64) -> bool {
        self.retired_at
            .is_none_or(|at| at >= now_ms - PUBLISHED_AFTER_RETIREMENT_MS)
    }
}

/// One consistent view of the keys, swapped whole on reload.
struct KeySet {
    signer: Arc<Signer>,
    /// Newest first.
    public: Vec<PublicKey>,
}

struct Shared {
    set: RwLock<Arc<KeySet>>,
    /// When the last on-demand refresh ran.
    last_refresh: Mutex<Option<Instant>>,
    /// Woken when another process announced a rotation.
    rotated: tokio::sync::Notify,
}

/// The connect-token keys of this deployment. Cheap to clone; `Debug`
/// shows kids only.
#[derive(Clone)]
pub struct SigningKeys(Arc<Shared>);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.snapshot();
        f.debug_struct("SigningKeys")
            .field("active", &set.signer.kid)
            .field(
                "kids",
                &set.public
                    .iter()
                    .map(|k| k.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SigningKeys {
    /// Loads the keys from the database, first creating an RSA-2048 key
    /// when none is active (first start).
    pub async fn load_or_create(store: &Store, keyring: &Keyring) -> anyhow::Result<Self> {
        let mut rows = store.signing_keys().await?;
        if rows.iter().all(|r| r.retired_at.is_some()) {
            let row = generate_row(keyring).await?;
            store.insert_signing_key(&row).await?;
            tracing::info!(kid = %row.kid, "created the first connect-token signing key");
            // Read back: a node starting at the same moment may have
            // created one too; every node then signs with the newest.
            rows = store.signing_keys().await?;
        }
        let set = KeySet::from_rows(&rows, keyring, None)?;
        Ok(Self(Arc::new(Shared {
            set: RwLock::new(Arc::new(set)),
            last_refresh: Mutex::new(None),
            rotated: tokio::sync::Notify::new(),
        })))
    }

    /// Reloads the keys from the database (another process may have
    /// rotated them). The signing key is re-parsed only when it changed.
    pub async fn reload(&self, store: &Store, keyring: &Keyring) -> anyhow::Result<()> {
        let rows = store.signing_keys().await?;
        let current = self.snapshot();
        let set = KeySet::from_rows(&rows, keyring, Some(&current.signer))?;
        if set.signer.kid != current.signer.kid {
            tracing::info!(kid = %set.signer.kid, "connect tokens are now signed with a new key");
        }
        *self.0.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// [`SigningKeys::reload`], at most once per 5 s however often it is
    /// called: cheap to call for every token with an unknown kid. Returns
    /// whether it reloaded.
    pub async fn refresh(&self, store: &Store, keyring: &Keyring) -> anyhow::Result<bool> {
        {
            let mut last = self
                .0
                .last_refresh
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        self.reload(store, keyring).await?;
        Ok(true)
    }

    /// The kid that [`SigningKeys::sign`] uses.
    pub fn active_kid(&self) -> String {
        self.snapshot().signer.kid.clone()
    }

    /// Signs `claims` with the active key ([`jwt::sign`]), on the calling
    /// thread: one RSA-2048 signature (about 250 µs) costs less there than
    /// the two thread switches of a hop to the blocking pool, and the
    /// runtime's other workers take over this worker's queue meanwhile
    /// (docs/decisions.md, "Caches and performance").
    pub fn sign(&self, claims: &ConnectClaims) -> anyhow::Result<String> {
        let snapshot = self.snapshot();
        let signer = &snapshot.signer;
        let input = jwt::signing_input(&signer.header, claims)?;
        jwt::sign(&signer.pair, &input)
    }

    /// Verifies a connect token issued by `issuer` (RFC 8725): RS256 only,
    /// a kid of ours that is still published, exp/nbf with 60 s leeway, iss
    /// and aud. Whether the app still exists and the token is not revoked
    /// is for the caller.
    pub fn verify(&self, token: &str, issuer: &str) -> Result<ConnectClaims, VerifyError> {
        let kid = jwt::header_kid(token)?;
        let set = self.snapshot();
        let now = now_ms();
        let key = set
            .public
            .iter()
            .find(|k| k.kid == kid && k.published_at(now))
            .ok_or(VerifyError::UnknownKid)?;
        jwt::decode(token, &key.decoding, issuer)
    }

    /// [`SigningKeys::verify`], and when the kid is unknown, a rate-limited
    /// [`SigningKeys::refresh`] and one more try (another node may have
    /// rotated the key a moment ago).
    pub async fn verify_or_refresh(
        &self,
        token: &str,
        issuer: &str,
        store: &Store,
        keyring: &Keyring,
    ) -> Result<ConnectClaims, VerifyError> {
        match self.verify(token, issuer) {
            Err(VerifyError::UnknownKid) => match self.refresh(store, keyring).await {
                Ok(true) => self.verify(token, issuer),
                Ok(false) => Err(VerifyError::UnknownKid),
                Err(err) => {
                    tracing::warn!(error = %err, "reloading signing keys failed");
                    Err(VerifyError::UnknownKid)
                }
            },
            other => other,
        }
    }

    /// The JWKS document: every key not retired before
    /// now − (24 h + 60 s), newest first.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.snapshot();
        let now = now_ms();
        let keys: Vec<serde_json::Value> = set
            .public
            .iter()
            .filter(|k| k.published_at(now))
            .map(|k| jwk(&k.kid, &k.n, &k.e))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Generates and stores a new signing key, retiring the previous ones
    /// (they stay published until their tokens have expired), and deletes
    /// keys no longer published. Returns the new kid. Running nodes pick it
    /// up on their next [`SigningKeys::reload`].
    pub async fn rotate(store: &Store, keyring: &Keyring) -> anyhow::Result<String> {
        let row = generate_row(keyring).await?;
        let retired = store.activate_signing_key(&row).await?;
        let deleted = store
            .delete_signing_keys_retired_before(row.created_at - PUBLISHED_AFTER_RETIREMENT_MS)
            .await?;
        tracing::info!(kid = %row.kid, retired, deleted, "rotated the connect-token signing key");
        // Running nodes on the same PostgreSQL database reload at once
        // (their periodic reload is the fallback should this be lost).
        if let Err(err) = store.announce_invalidation(KEYS_ANNOUNCEMENT).await {
            tracing::warn!(error = %err, "could not announce the rotation to running nodes");
        }
        Ok(row.kid)
    }

    /// Another process rotated the keys: wakes [`SigningKeys::rotated`].
    pub fn announce_rotated(&self) {
        self.0.rotated.notify_one();
    }

    /// Waits until another process announces a rotation.
    pub async fn rotated(&self) {
        self.0.rotated.notified().await;
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.0.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl KeySet {
    /// Builds the set from `rows` (newest first): the newest unretired key
    /// signs (reusing `previous` when it is the same kid), all are public.
    fn from_rows(
        rows: &[SigningKeyRow],
        keyring: &Keyring,
        previous: Option<&Arc<Signer>>,
    ) -> anyhow::Result<Self> {
        let active = rows
            .iter()
            .find(|r| r.retired_at.is_none())
            .context("no active connect-token signing key")?;
        let signer = match previous {
            Some(prev) if prev.kid == active.kid => prev.clone(),
            _ => Arc::new(open_signer(active, keyring)?),
        };
        let public = rows
            .iter()
            .filter(|r| r.algorithm == JWS_ALGORITHM)
            .map(|r| {
                Ok(PublicKey {
                    kid: r.kid.clone(),
                    n: r.public_n.clone(),
                    e: r.public_e.clone(),
                    retired_at: r.retired_at,
                    decoding: DecodingKey::from_rsa_components(&r.public_n, &r.public_e)
                        .with_context(|| format!("public key of signing key {}", r.kid))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { signer, public })
    }
}

/// Opens and parses a stored private key, checking it matches the stored
/// public part.
fn open_signer(row: &SigningKeyRow, keyring: &Keyring) -> anyhow::Result<Signer> {
    anyhow::ensure!(
        row.algorithm == JWS_ALGORITHM,
        "signing key {} has unsupported algorithm {}",
        row.kid,
        row.algorithm
    );
    let pkcs8 = keyring
        .open(&row.master_key_id, &row.private_sealed, row.kid.as_bytes())
        .with_context(|| format!("opening signing key {}", row.kid))?;
    let pair = KeyPair::from_pkcs8(&pkcs8)
        .map_err(|e| anyhow::anyhow!("parsing signing key {}: {e}", row.kid))?;
    let (n, e) = public_components(&pair);
    anyhow::ensure!(
        n == row.public_n && e == row.public_e,
        "signing key {}: the private key does not match the stored public key",
        row.kid
    );
    Ok(Signer {
        header: jwt::encoded_header(&row.kid)?,
        kid: row.kid.clone(),
        pair,
    })
}

/// A new RSA-2048 key as a row: kid = RFC 7638 thumbprint, private key
/// PKCS#8 sealed with the keyring's current key (AAD = kid).
async fn generate_row(keyring: &Keyring) -> anyhow::Result<SigningKeyRow> {
    let pair = tokio::task::spawn_blocking(|| KeyPair::generate(KeySize::Rsa2048))
        .await
        .context("key generation task")?
        .map_err(|_| anyhow::anyhow!("generating an RSA-2048 key failed"))?;
    let (n, e) = public_components(&pair);
    let kid = thumbprint(&n, &e);
    let pkcs8 = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the signing key as PKCS#8 failed"))?;
    let (master_key_id, private_sealed) = keyring.seal(pkcs8.as_ref(), kid.as_bytes())?;
    Ok(SigningKeyRow {
        kid,
        algorithm: JWS_ALGORITHM.to_owned(),
        public_n: n,
        public_e: e,
        private_sealed,
        master_key_id,
        created_at: now_ms(),
        retired_at: None,
    })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::{
        hmac,
        signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256},
    };
    use serde_json::json;

    use super::*;
    use crate::crypto::{
        jwt::{encoded_header, AUDIENCE},
        master_key::MasterKey,
    };
    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{KeyPair as _, RSA_PKCS1_SHA256},
    };
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    const ISSUER: &str = "https://gatehouse.example.com";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        keyring: Keyring,
        keys: SigningKeys,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let keyring = Keyring::new(&MasterKey::from_bytes([7; 32]), &[]).unwrap();
        let keys = SigningKeys::load_or_create(&store, &keyring).await.unwrap();
        Fixture {
            _dir: dir,
            store,
            keyring,
            keys,
        }
    }

    fn now() -> i64 {
        now_ms() / 1000
    }

    fn claims() -> ConnectClaims {
        let now = now();
        ConnectClaims {
            user_id: "user-1".into(),
            sub: "user-1".into(),
            app_id: "app_1".into(),
            environment_id: "env_1".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: now,
            exp: now + 3600,
            jti: "jti-1".into(),
            redirect_url: Some("https://app.example.com/done".into()),
            minted_by: Some("key_1".into()),
            error_redirect_url: None,
            allowed_origins: Vec::new(),
        }
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token made by hand: `header` and `payload` as JSON, signed over
    /// `header.payload` by `sign`.
    fn forge(
        header: &serde_json::Value,
        payload: &serde_json::Value,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = sign(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    fn rsa_sign(pair: &KeyPair) -> impl FnOnce(&[u8]) -> Vec<u8> + '_ {
        move |msg| {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
                .unwrap();
            sig
        }
    }

    fn active_pair(keys: &SigningKeys) -> Arc<Signer> {
        keys.snapshot().signer.clone()
    }

    /// A signed token verifies back to the same claims, redirect_url
    /// included; without redirect_url the claim is left out.
    #[tokio::test]
    async fn sign_then_verify_round_trip() {
        let f = fixture().await;
        let c = claims();
        let token = f.keys.sign(&c).unwrap();
        assert_eq!(f.keys.verify(&token, ISSUER).unwrap(), c);

        let bare = ConnectClaims {
            redirect_url: None,
            ..claims()
        };
        let token = f.keys.sign(&bare).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(payload.get("redirect_url").is_none());
        assert_eq!(payload["aud"], AUDIENCE);
        assert!(payload["exp"].is_i64());
        assert_eq!(f.keys.verify(&token, ISSUER).unwrap(), bare);
    }

    /// The header is exactly {"alg":"RS256","typ":"JWT","kid":…} and the
    /// kid is the RFC 7638 thumbprint of the key.
    #[tokio::test]
    async fn header_is_exact() {
        let f = fixture().await;
        let token = f.keys.sign(&claims()).unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        let kid = f.keys.active_kid();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#)
        );
        let (n, e) = public_components(&active_pair(&f.keys).pair);
        assert_eq!(kid, thumbprint(&n, &e));
        assert_eq!(kid.len(), 43);
    }

    /// Changing the payload after signing breaks the signature.
    #[tokio::test]
    async fn tampered_payload_fails() {
        let f = fixture().await;
        let token = f.keys.sign(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let other = ConnectClaims {
            user_id: "someone-else".into(),
            sub: "someone-else".into(),
            ..claims()
        };
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::to_vec(&other).unwrap()),
            parts[2]
        );
        assert_eq!(f.keys.verify(&forged, ISSUER), Err(VerifyError::Signature));
        assert_eq!(
            f.keys
                .verify(&format!("{token}x"), ISSUER)
                .unwrap_err()
                .reason(),
            "malformed"
        );
        assert_eq!(
            f.keys.verify("not a token", ISSUER),
            Err(VerifyError::Malformed)
        );
    }

    /// Another issuer or audience is refused.
    #[tokio::test]
    async fn wrong_issuer_or_audience_fails() {
        let f = fixture().await;
        let token = f.keys.sign(&claims()).unwrap();
        assert_eq!(
            f.keys.verify(&token, "https://other.example.com"),
            Err(VerifyError::Issuer)
        );
        let other_aud = ConnectClaims {
            aud: "gatehouse:other".into(),
            ..claims()
        };
        let token = f.keys.sign(&other_aud).unwrap();
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::Audience));
    }

    /// exp past the leeway fails, within it passes; nbf ahead fails.
    #[tokio::test]
    async fn expiry_and_not_before() {
        let f = fixture().await;
        let now = now();
        let expired = ConnectClaims {
            iat: now - 7200,
            nbf: now - 7200,
            exp: now - 3 * LEEWAY_SECS as i64,
            ..claims()
        };
        let token = f.keys.sign(&expired).unwrap();
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::Expired));

        let just = ConnectClaims {
            exp: now - 10,
            ..expired
        };
        let token = f.keys.sign(&just).unwrap();
        assert!(f.keys.verify(&token, ISSUER).is_ok(), "within the leeway");

        let early = ConnectClaims {
            nbf: now + 600,
            ..claims()
        };
        let token = f.keys.sign(&early).unwrap();
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::NotYetValid));
    }

    /// Tokens missing a required claim are refused.
    #[tokio::test]
    async fn missing_claims_fail() {
        let f = fixture().await;
        let signer = active_pair(&f.keys);
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": signer.kid});
        for drop in ["exp", "nbf", "iat", "iss", "aud", "sub"] {
            let mut payload = serde_json::to_value(claims()).unwrap();
            payload.as_object_mut().unwrap().remove(drop);
            let token = forge(&header, &payload, rsa_sign(&signer.pair));
            assert!(f.keys.verify(&token, ISSUER).is_err(), "without {drop}");
        }
    }

    /// A token signed by another key but naming our kid fails.
    #[tokio::test]
    async fn foreign_key_with_our_kid_fails() {
        let f = fixture().await;
        let foreign = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": f.keys.active_kid()});
        let token = forge(
            &header,
            &serde_json::to_value(claims()).unwrap(),
            rsa_sign(&foreign),
        );
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::Signature));
    }

    /// alg "none" and HS256 keyed with our public key are refused.
    #[tokio::test]
    async fn none_and_hs256_fail() {
        let f = fixture().await;
        let kid = f.keys.active_kid();
        let payload = serde_json::to_value(claims()).unwrap();

        let none = forge(
            &json!({"alg": "none", "typ": "JWT", "kid": kid}),
            &payload,
            |_| Vec::new(),
        );
        assert_eq!(f.keys.verify(&none, ISSUER), Err(VerifyError::Algorithm));

        let signer = active_pair(&f.keys);
        let public_der = signer.pair.public_key().as_ref().to_vec();
        let jwks = f.keys.jwks().to_string();
        for secret in [public_der, jwks.into_bytes()] {
            let hs = forge(
                &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
                &payload,
                |msg| {
                    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
                    hmac::sign(&key, msg).as_ref().to_vec()
                },
            );
            assert_eq!(f.keys.verify(&hs, ISSUER), Err(VerifyError::Algorithm));
        }
    }

    /// A header bringing its own key, key URL or anything beyond
    /// alg/typ/kid is refused even when the signature is good; so are a
    /// wrong typ and a missing or unknown kid.
    #[tokio::test]
    async fn header_extras_and_kids_fail() {
        let f = fixture().await;
        let signer = active_pair(&f.keys);
        let (n, e) = public_components(&signer.pair);
        let payload = serde_json::to_value(claims()).unwrap();
        let base = json!({"alg": "RS256", "typ": "JWT", "kid": signer.kid});
        let good = forge(&base, &payload, rsa_sign(&signer.pair));
        assert!(f.keys.verify(&good, ISSUER).is_ok());

        let extras = [
            ("jku", json!("https://attacker.example/jwks.json")),
            ("jwk", json!({"kty": "RSA", "n": n, "e": e})),
            ("x5u", json!("https://attacker.example/cert.pem")),
            ("x5c", json!(["MIIB"])),
            ("crit", json!(["exp"])),
            ("custom", json!("x")),
        ];
        for (name, value) in extras {
            let mut header = base.clone();
            header[name] = value;
            let token = forge(&header, &payload, rsa_sign(&signer.pair));
            assert!(f.keys.verify(&token, ISSUER).is_err(), "header with {name}");
        }
        let mut header = base.clone();
        header["jku"] = json!("https://attacker.example/jwks.json");
        let token = forge(&header, &payload, rsa_sign(&signer.pair));
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::Header));

        let mut header = base.clone();
        header["typ"] = json!("at+jwt");
        let token = forge(&header, &payload, rsa_sign(&signer.pair));
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::Header));

        let mut header = base.clone();
        header.as_object_mut().unwrap().remove("kid");
        let token = forge(&header, &payload, rsa_sign(&signer.pair));
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::UnknownKid));

        let mut header = base.clone();
        header["kid"] = json!("somebody-elses-key");
        let token = forge(&header, &payload, rsa_sign(&signer.pair));
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::UnknownKid));
    }

    /// The JWKS publishes the key with n/e that verify our signatures.
    #[tokio::test]
    async fn jwks_has_correct_n_and_e() {
        let f = fixture().await;
        let token = f.keys.sign(&claims()).unwrap();
        let jwks = f.keys.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["kid"], f.keys.active_kid());
        let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
        let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(e, [1, 0, 1]);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .unwrap();
    }

    /// After a rotation the new key signs, old tokens still verify, both
    /// keys are published; a key retired longer ago than a token lives is
    /// neither published nor accepted, and the next rotation deletes it.
    #[tokio::test]
    async fn rotation_keeps_old_tokens_valid() {
        let f = fixture().await;
        let old_kid = f.keys.active_kid();
        let old_token = f.keys.sign(&claims()).unwrap();

        let new_kid = SigningKeys::rotate(&f.store, &f.keyring).await.unwrap();
        assert_ne!(new_kid, old_kid);
        f.keys.reload(&f.store, &f.keyring).await.unwrap();
        assert_eq!(f.keys.active_kid(), new_kid);
        let new_token = f.keys.sign(&claims()).unwrap();
        assert!(new_token.starts_with(&encoded_header(&new_kid).unwrap()));
        assert!(f.keys.verify(&old_token, ISSUER).is_ok());
        assert!(f.keys.verify(&new_token, ISSUER).is_ok());
        let kids: Vec<String> = f.keys.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kids, [new_kid.clone(), old_kid.clone()]);

        // A key retired just over a day ago: unpublished and refused.
        let stale = generate_row(&f.keyring).await.unwrap();
        let stale = SigningKeyRow {
            created_at: now_ms() - 3 * 86_400_000,
            retired_at: Some(now_ms() - PUBLISHED_AFTER_RETIREMENT_MS - 1000),
            ..stale
        };
        f.store.insert_signing_key(&stale).await.unwrap();
        f.keys.reload(&f.store, &f.keyring).await.unwrap();
        assert_eq!(f.keys.jwks()["keys"].as_array().unwrap().len(), 2);
        let stale_signer = open_signer(&stale, &f.keyring).unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": stale.kid});
        let token = forge(
            &header,
            &serde_json::to_value(claims()).unwrap(),
            rsa_sign(&stale_signer.pair),
        );
        assert_eq!(f.keys.verify(&token, ISSUER), Err(VerifyError::UnknownKid));

        SigningKeys::rotate(&f.store, &f.keyring).await.unwrap();
        let stored: Vec<String> = f
            .store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.kid)
            .collect();
        assert_eq!(stored.len(), 3);
        assert!(!stored.contains(&stale.kid));
    }

    /// A node that has not seen a rotation yet accepts the new kid after
    /// one on-demand refresh; further refreshes within 5 s are skipped.
    #[tokio::test]
    async fn unknown_kid_refreshes_once() {
        let f = fixture().await;
        let other_node = SigningKeys::load_or_create(&f.store, &f.keyring)
            .await
            .unwrap();
        assert_eq!(other_node.active_kid(), f.keys.active_kid());
        SigningKeys::rotate(&f.store, &f.keyring).await.unwrap();
        f.keys.reload(&f.store, &f.keyring).await.unwrap();
        let token = f.keys.sign(&claims()).unwrap();

        assert_eq!(
            other_node.verify(&token, ISSUER),
            Err(VerifyError::UnknownKid)
        );
        let verified = other_node
            .verify_or_refresh(&token, ISSUER, &f.store, &f.keyring)
            .await;
        assert!(verified.is_ok());
        assert_eq!(other_node.active_kid(), f.keys.active_kid());
        assert!(!other_node.refresh(&f.store, &f.keyring).await.unwrap());
    }

    /// Loading opens the stored private key; a keyring without its master
    /// key cannot, and Debug shows kids only.
    #[tokio::test]
    async fn load_needs_the_master_key() {
        let f = fixture().await;
        let wrong = Keyring::new(&MasterKey::from_bytes([8; 32]), &[]).unwrap();
        assert!(SigningKeys::load_or_create(&f.store, &wrong).await.is_err());
        let shown = format!("{:?}", f.keys);
        assert!(shown.contains(&f.keys.active_kid()));
        assert!(!shown.contains("private"));
        let row = &f.store.signing_keys().await.unwrap()[0];
        assert_eq!(row.master_key_id, f.keyring.current_id());
        assert!(!format!("{row:?}").contains("private_sealed"));
    }
}
