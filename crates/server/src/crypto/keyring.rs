//! Sealing secrets at rest: AES-256-GCM under the master key, with a random
//! 96-bit nonce stored in front of the ciphertext and an AAD chosen by the
//! caller (the row id), so a blob cannot be moved to another row. Every
//! blob is stored with the id of the master key that sealed it, so a
//! [`Keyring`] holding more than one key (during a master-key rotation) opens
//! each blob with the right one.

use std::{path::Path, sync::Arc};

use aws_lc_rs::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    digest,
};
use secrecy::zeroize::Zeroizing;

use super::master_key::{next_path, MasterKey};
use crate::config::Config;

/// Mixed into the hash that names a master key, so the id is never a bare
/// hash of the key.
const KEY_ID_LABEL: &[u8] = b"gatehouse master key id v1\0";

/// Why sealing or opening failed (inside the `anyhow::Error` that
/// [`Keyring::seal`] and [`Keyring::open`] return; `downcast_ref` to tell
/// the cases apart). Carries no secret material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The blob names a master key this keyring does not hold.
    #[error("unknown master key id {0:?}")]
    UnknownKey(String),
    /// Wrong key or AAD, or a truncated or altered blob.
    #[error("sealed data does not open: wrong key or row, or altered")]
    Open,
    /// The system random source or the cipher failed.
    #[error("sealing failed")]
    Seal,
    /// The cipher refused the key (the crypto library failed its checks).
    #[error("the master key could not be loaded into AES-256-GCM")]
    Key,
}

/// The id of a master key: the first 16 hex characters of SHA-256 over a
/// fixed label and the key bytes.
pub fn master_key_id(key: &MasterKey) -> String {
    let mut input = Zeroizing::new(Vec::with_capacity(KEY_ID_LABEL.len() + 32));
    input.extend_from_slice(KEY_ID_LABEL);
    input.extend_from_slice(key.bytes());
    let digest = digest::digest(&digest::SHA256, &input);
    let mut id = hex::encode(digest.as_ref());
    id.truncate(16);
    id
}

/// One master key, ready to use.
struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl SealingKey {
    fn new(master: &MasterKey) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, master.bytes()).map_err(|_| CryptoError::Key)?;
        Ok(Self {
            id: master_key_id(master),
            key: LessSafeKey::new(key),
        })
    }
}

/// The master keys: the current one seals, any of them opens. Cheap to
/// clone; `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    /// The current key first.
    keys: Arc<[SealingKey]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring that seals with `current` and opens with it or `others`.
    pub fn new(current: &MasterKey, others: &[&MasterKey]) -> Result<Self, CryptoError> {
        let mut keys = vec![SealingKey::new(current)?];
        for other in others {
            let key = SealingKey::new(other)?;
            if keys.iter().all(|k| k.id != key.id) {
                keys.push(key);
            }
        }
        Ok(Self { keys: keys.into() })
    }

    /// The keyring for `config`: `master` (as loaded at start-up) and, when
    /// a `gatehouse master-key rotate` was interrupted, the key waiting in
    /// `<master_key_file>.next`, so data sealed with either opens.
    pub fn for_config(master: &MasterKey, config: &Config) -> anyhow::Result<Self> {
        if config.master_key.is_some() {
            return Ok(Self::new(master, &[])?);
        }
        let next = MasterKey::load_next(&config.master_key_file)?;
        if next.is_some() {
            tracing::warn!(
                file = %next_path(&config.master_key_file).display(),
                "an interrupted master-key rotation was found; run `gatehouse master-key rotate` to finish it"
            );
        }
        Ok(Self::new(master, &next.iter().collect::<Vec<_>>())?)
    }

    /// The keyring for the master key file alone (no inline key, no
    /// generation): what an offline tool opens data with.
    pub fn from_file(file: &Path) -> anyhow::Result<Self> {
        let master = MasterKey::load_file(file)?;
        let next = MasterKey::load_next(file)?;
        Ok(Self::new(&master, &next.iter().collect::<Vec<_>>())?)
    }

    /// The id of the key [`Keyring::seal`] uses.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether a key with this id is on the keyring.
    pub fn holds(&self, master_key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == master_key_id)
    }

    /// Seals `plaintext` with the current key, bound to `aad`. Returns the
    /// key id to store beside the blob, and the blob (nonce, ciphertext,
    /// tag).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<(String, Vec<u8>)> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CryptoError::Seal)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        blob.extend_from_slice(&nonce);
        // Room for the tag up front, so no unzeroed copy is left behind.
        let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len()));
        body.extend_from_slice(plaintext);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *body,
            )
            .map_err(|_| CryptoError::Seal)?;
        blob.extend_from_slice(&body);
        Ok((key.id.clone(), blob))
    }

    /// Opens a blob sealed with the key `master_key_id` and bound to `aad`.
    /// The plaintext is wiped from memory when dropped.
    pub fn open(
        &self,
        master_key_id: &str,
        blob: &[u8],
        aad: &[u8],
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == master_key_id)
            .ok_or_else(|| CryptoError::UnknownKey(master_key_id.to_owned()))?;
        if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Open.into());
        }
        let (nonce, body) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = key
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    /// A sealed blob opens back to the plaintext, under the current key's
    /// id, and never contains the plaintext.
    #[test]
    fn round_trip() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let (id, blob) = ring.seal(b"top secret value", b"conn_1").unwrap();
        assert_eq!(id, ring.current_id());
        assert_eq!(id.len(), 16);
        assert!(!blob
            .windows(b"top secret value".len())
            .any(|w| w == b"top secret value"));
        let plain = ring.open(&id, &blob, b"conn_1").unwrap();
        assert_eq!(&plain[..], b"top secret value");
    }

    /// Two seals of the same plaintext differ (fresh nonce each time).
    #[test]
    fn nonce_is_fresh() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let (_, a) = ring.seal(b"x", b"a").unwrap();
        let (_, b) = ring.seal(b"x", b"a").unwrap();
        assert_ne!(a, b);
    }

    /// A blob bound to one row does not open for another.
    #[test]
    fn wrong_aad_fails() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let (id, blob) = ring.seal(b"secret", b"conn_1").unwrap();
        let err = ring.open(&id, &blob, b"conn_2").unwrap_err();
        assert!(matches!(err.downcast_ref(), Some(CryptoError::Open)));
    }

    /// Any flipped bit, or a truncated blob, fails to open.
    #[test]
    fn tampered_blob_fails() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let (id, blob) = ring.seal(b"secret", b"conn_1").unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(ring.open(&id, &bad, b"conn_1").is_err(), "byte {i}");
        }
        assert!(ring.open(&id, &blob[..blob.len() - 1], b"conn_1").is_err());
        assert!(ring.open(&id, &blob[..5], b"conn_1").is_err());
    }

    /// A key id the keyring does not hold is refused, and a blob labelled
    /// with another key's id does not open.
    #[test]
    fn unknown_key_id_fails() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let (_, blob) = ring.seal(b"secret", b"r").unwrap();
        let err = ring.open("0000000000000000", &blob, b"r").unwrap_err();
        assert!(matches!(
            err.downcast_ref(),
            Some(CryptoError::UnknownKey(_))
        ));
        let both = Keyring::new(&key(2), &[&key(1)]).unwrap();
        let other_id = master_key_id(&key(2));
        let err = both.open(&other_id, &blob, b"r").unwrap_err();
        assert!(matches!(err.downcast_ref(), Some(CryptoError::Open)));
    }

    /// During a rotation the keyring seals with the new key and opens both.
    #[test]
    fn rotation_keyring_opens_old_and_new() {
        let old = Keyring::new(&key(1), &[]).unwrap();
        let (old_id, old_blob) = old.seal(b"old", b"r").unwrap();
        let ring = Keyring::new(&key(2), &[&key(1)]).unwrap();
        let (new_id, new_blob) = ring.seal(b"new", b"r").unwrap();
        assert_ne!(old_id, new_id);
        assert_eq!(new_id, master_key_id(&key(2)));
        assert!(ring.holds(&old_id) && ring.holds(&new_id));
        assert_eq!(&ring.open(&old_id, &old_blob, b"r").unwrap()[..], b"old");
        assert_eq!(&ring.open(&new_id, &new_blob, b"r").unwrap()[..], b"new");
    }

    /// Key ids depend on the key and are stable.
    #[test]
    fn key_ids_are_stable_and_distinct() {
        assert_eq!(master_key_id(&key(7)), master_key_id(&key(7)));
        assert_ne!(master_key_id(&key(7)), master_key_id(&key(8)));
        assert!(master_key_id(&key(7))
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
    }

    /// Debug shows ids, never key bytes.
    #[test]
    fn debug_never_shows_key_bytes() {
        let ring = Keyring::new(&key(0xab), &[&key(0xcd)]).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains(ring.current_id()));
        assert!(!shown.to_lowercase().contains("abababab"));
        assert!(!shown.to_lowercase().contains("cdcdcdcd"));
        assert!(!shown.contains("171, 171"));
        let err = ring.open("nope", b"", b"").unwrap_err();
        assert!(!format!("{err:?}").contains("abab"));
    }
}
