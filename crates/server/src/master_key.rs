//! The master key: 32 random bytes that encrypt stored secrets. Taken from
//! `master_key` (64 hex characters) or `master_key_file`, which is
//! generated (mode 0600) on first start.
//!
//! Rotation (`gatehouse master-key rotate`, file keys only) is safe to
//! interrupt: the new key is first written to `<master_key_file>.next`
//! (0600), then every sealed blob is re-sealed with it in one transaction,
//! then the `.next` file is renamed over the key file. While a `.next` file
//! exists, [`crate::crypto::Keyring::for_config`] loads both keys, and
//! running the command again finishes the job.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use gatehouse_store::{
    sealed::{ResealCounts, Resealed, SealedBlob},
    Store,
};
use rand::RngCore;
use secrecy::{
    zeroize::{Zeroize, Zeroizing},
    ExposeSecret, SecretBox, SecretString,
};

use crate::{config::Config, crypto::Keyring};

/// The key bytes, never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// The raw key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// A key holding these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A new random key (not written anywhere).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        key
    }

    fn from_hex(text: &str, source: &str) -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
            anyhow::anyhow!("invalid {source}: must be 64 hexadecimal characters (32 bytes)")
        })?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// Loads the configured key, generating the key file if it is missing.
    pub fn load_or_create(inline: Option<&SecretString>, file: &Path) -> anyhow::Result<Self> {
        if let Some(inline) = inline {
            return Self::from_hex(inline.expose_secret(), "master_key");
        }
        match std::fs::read_to_string(file) {
            Ok(text) => Self::from_hex(&text, "master_key_file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(file),
            Err(e) => Err(e).with_context(|| format!("reading master_key_file {}", file.display())),
        }
    }

    /// Loads an existing key file; never generates one.
    pub fn load_file(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading master_key_file {}", file.display()))?;
        Self::from_hex(&text, "master_key_file")
    }

    /// The key of an unfinished rotation (`<file>.next`), if there is one.
    pub fn load_next(file: &Path) -> anyhow::Result<Option<Self>> {
        let path = next_path(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_hex(&text, "master_key_file (.next)").map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn create(file: &Path) -> anyhow::Result<Self> {
        let key = Self::generate();
        key.write_new(file)?;
        Ok(key)
    }

    /// Writes the key as hex into a new 0600 file.
    fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        let text = Zeroizing::new(hex::encode(self.bytes()));
        write_private(path, text.as_bytes())
    }
}

/// Where an unfinished rotation keeps the new key: `<file>.next`.
pub fn next_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// What `gatehouse master-key rotate` did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Id of the key that was replaced.
    pub old_id: String,
    /// Id of the key now in the master key file.
    pub new_id: String,
    /// Blobs re-sealed, per table.
    pub resealed: ResealCounts,
    /// True when an interrupted rotation's `.next` key was reused.
    pub resumed: bool,
}

/// Replaces the master key file's key with a new one, re-sealing every
/// sealed blob in the configured database first (see the module docs for
/// why this is safe to interrupt). Refuses an inline `master_key`, and a
/// missing key file, before touching anything. Nodes running during the
/// rotation keep the old key in memory: stop them first, start them after.
pub async fn rotate(config: &Config) -> anyhow::Result<Rotation> {
    if config.master_key.is_some() {
        anyhow::bail!(
            "the master key is given inline (master_key / GATEHOUSE_MASTER_KEY), so it cannot be \
             rotated in place; use master_key_file instead (move the key into a 0600 file and \
             remove the inline setting), then run `gatehouse master-key rotate` again"
        );
    }
    let file = &config.master_key_file;
    let current = MasterKey::load_file(file)?;
    let store = crate::app::open_store(config).await?;
    let result = rotate_with(&store, file, &current).await;
    store.close().await;
    result
}

async fn rotate_with(store: &Store, file: &Path, current: &MasterKey) -> anyhow::Result<Rotation> {
    let (next, resumed) = match MasterKey::load_next(file)? {
        Some(next) => (next, true),
        None => {
            let next = MasterKey::generate();
            next.write_new(&next_path(file))?;
            (next, false)
        }
    };
    let keyring = Keyring::new(&next, &[current])?;
    let old_id = crate::crypto::master_key_id(current);
    let new_id = keyring.current_id().to_owned();
    let mut resealed = ResealCounts::default();
    // The first pass re-seals everything; the next one must find nothing
    // left (a node still writing with the old key would show up here).
    for _ in 0..3 {
        let pass = store
            .reseal_all(|blob| reseal(&keyring, blob))
            .await
            .context(
                "re-sealing stored secrets (this pass was rolled back; both master keys stay \
                 usable: run `gatehouse master-key rotate` again)",
            )?;
        if pass.total() == 0 {
            promote_next(file)?;
            return Ok(Rotation {
                old_id,
                new_id,
                resealed,
                resumed,
            });
        }
        resealed.signing_keys += pass.signing_keys;
        resealed.connections += pass.connections;
    }
    anyhow::bail!(
        "secrets keep being written with the old master key; stop every gatehouse node and run \
         `gatehouse master-key rotate` again (both keys stay usable until it finishes)"
    )
}

/// Re-seals one blob with the keyring's current key, unless it already is.
fn reseal(keyring: &Keyring, blob: &SealedBlob) -> anyhow::Result<Option<Resealed>> {
    if blob.master_key_id == keyring.current_id() {
        return Ok(None);
    }
    let aad = blob.id.as_bytes();
    let plain = keyring
        .open(&blob.master_key_id, &blob.blob, aad)
        .with_context(|| format!("opening {:?} {}", blob.kind, blob.id))?;
    let (master_key_id, blob) = keyring.seal(&plain, aad)?;
    Ok(Some(Resealed {
        master_key_id,
        blob,
    }))
}

/// Renames `<file>.next` over `file` and syncs the directory.
fn promote_next(file: &Path) -> anyhow::Result<()> {
    let next = next_path(file);
    std::fs::rename(&next, file)
        .with_context(|| format!("renaming {} to {}", next.display(), file.display()))?;
    #[cfg(unix)]
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

/// Creates `path` with mode 0600 (owner read/write only) and writes `data`;
/// refuses to overwrite an existing file.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated key file is 0600 and loads back to the same key.
    #[test]
    fn generated_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let first = MasterKey::load_or_create(None, &path).unwrap();
        let second = MasterKey::load_or_create(None, &path).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(format!("{first:?}"), "MasterKey([REDACTED])");
    }

    /// A malformed inline key stops start-up naming the key.
    #[test]
    fn invalid_inline_key() {
        let err =
            MasterKey::load_or_create(Some(&SecretString::from("abc")), Path::new("/nonexistent"))
                .unwrap_err();
        assert!(err.to_string().contains("master_key"));
    }
}
