//! The master key: 32 random bytes that encrypt stored secrets. Taken from
//! `master_key` (64 hex characters) or `master_key_file`, which is
//! generated (mode 0600) on first start.
//!
//! Rotation is [`super::rotation`]: it writes the next key to
//! `<master_key_file>.next` first ([`next_path`]).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use rand::RngCore;
use secrecy::{
    zeroize::{Zeroize, Zeroizing},
    ExposeSecret, SecretBox, SecretString,
};

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
    pub(super) fn write_new(&self, path: &Path) -> anyhow::Result<()> {
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

/// Creates `path` with mode 0600 (owner read/write only) holding `data`;
/// refuses to overwrite an existing file. The file appears whole or not at
/// all: `data` goes to a temporary file that is linked into place once it
/// is on disk, so a process killed meanwhile never leaves an empty or
/// partial key behind.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", hex::encode(rand::random::<[u8; 6]>())));
    let tmp = parent.join(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> anyhow::Result<()> {
        let mut f = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
        // A link fails when `path` exists: never an overwrite.
        std::fs::hard_link(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
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

    /// The key file appears whole through a temporary file that does not
    /// stay behind, and an existing file is never overwritten.
    #[test]
    fn key_files_appear_whole_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_private(&path, b"first").unwrap();
        assert!(write_private(&path, b"second").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["master.key"]);
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
