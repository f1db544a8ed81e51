//! The master key: 32 random bytes that encrypt stored secrets. Taken from
//! `master_key` (64 hex characters) or `master_key_file`, which is
//! generated (mode 0600) on first start.

use std::{io::Write, path::Path};

use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// The key bytes, never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    pub fn bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
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

    fn create(file: &Path) -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let text = hex::encode(bytes);
        write_private(file, text.as_bytes())?;
        Self::from_hex(&text, "master_key_file")
    }
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
