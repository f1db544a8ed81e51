//! `gatehouse master-key rotate` (file keys only), safe to interrupt: the
//! new key is first written to `<master_key_file>.next` (0600), then every
//! sealed blob is re-sealed with it in one transaction, then the `.next`
//! file is renamed over the key file. While a `.next` file exists,
//! [`super::keyring::Keyring::for_config`] loads both keys, and running the
//! command again finishes the job.

use std::path::Path;

use anyhow::Context;
use gatehouse_store::{
    sealed::{ResealCounts, Resealed, SealedBlob},
    Store,
};

use super::{
    keyring::{master_key_id, Keyring},
    master_key::{next_path, MasterKey},
};
use crate::config::Config;

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

/// The key file a `gatehouse master-key rotate` works on, and the key in
/// it. Refuses an inline `master_key` and a missing key file before
/// anything is touched.
pub fn rotation_source(config: &Config) -> anyhow::Result<(&Path, MasterKey)> {
    if config.master_key.is_some() {
        anyhow::bail!(
            "the master key is given inline (master_key / GATEHOUSE_MASTER_KEY), so it cannot be \
             rotated in place; use master_key_file instead (move the key into a 0600 file and \
             remove the inline setting), then run `gatehouse master-key rotate` again"
        );
    }
    let file = config.master_key_file.as_path();
    Ok((file, MasterKey::load_file(file)?))
}

/// Replaces the key in `file` (currently `current`) with a new one,
/// re-sealing every sealed blob in `store` first (see the module docs for
/// why this is safe to interrupt). Nodes running during the rotation keep
/// the old key in memory: stop them first, start them after.
pub async fn rotate(store: &Store, file: &Path, current: &MasterKey) -> anyhow::Result<Rotation> {
    let (next, resumed) = match MasterKey::load_next(file)? {
        Some(next) => (next, true),
        None => {
            let next = MasterKey::generate();
            next.write_new(&next_path(file))?;
            (next, false)
        }
    };
    let keyring = Keyring::new(&next, &[current])?;
    let old_id = master_key_id(current);
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
        resealed.oauth2_providers += pass.oauth2_providers;
        resealed.oauth2_flows += pass.oauth2_flows;
        resealed.webhook_secrets += pass.webhook_secrets;
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
