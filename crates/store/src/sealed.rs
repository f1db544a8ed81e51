//! Every blob sealed with a master key, read and rewritten in one
//! transaction: what master-key rotation needs. The crypto itself is the
//! caller's; by convention a blob's AAD is its row id (the `kid` of a
//! signing key, the `id` of a connection), so [`SealedBlob::id`] is all the
//! caller needs to open and re-seal it.

use crate::{error::StoreError, on_pool, Store};

/// Which table a sealed blob lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// `signing_keys.private_sealed`, keyed by `kid`.
    SigningKey,
    /// `connections.sealed_config`, keyed by `id`.
    Connection,
    /// `oauth2_providers.client_secret_sealed`, keyed by `id`.
    OAuth2Provider,
    /// `oauth2_flows.verifier_sealed`, keyed by `id`.
    OAuth2Flow,
    /// `webhooks.secret_sealed`, keyed by `id`.
    WebhookSecret,
    /// `webhooks.previous_secret_sealed`, keyed by `id`.
    WebhookPreviousSecret,
}

/// One sealed blob as stored. `Debug` leaves out the blob.
#[derive(Clone)]
pub struct SealedBlob {
    pub kind: SealedKind,
    /// The row id, which is also the blob's AAD.
    pub id: String,
    /// The master key that sealed `blob` (empty when the row names none).
    pub master_key_id: String,
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedBlob")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("master_key_id", &self.master_key_id)
            .finish_non_exhaustive()
    }
}

/// A blob sealed anew, to be written back in place of the old one.
#[derive(Clone)]
pub struct Resealed {
    pub master_key_id: String,
    pub blob: Vec<u8>,
}

/// How many blobs [`Store::reseal_all`] rewrote, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResealCounts {
    pub signing_keys: u64,
    pub connections: u64,
    pub oauth2_providers: u64,
    pub oauth2_flows: u64,
    pub webhook_secrets: u64,
}

impl ResealCounts {
    /// Every table together.
    pub fn total(&self) -> u64 {
        self.signing_keys
            + self.connections
            + self.oauth2_providers
            + self.oauth2_flows
            + self.webhook_secrets
    }
}

fn db<E: From<StoreError>>(err: sqlx::Error) -> E {
    StoreError::Database(err).into()
}

impl Store {
    /// Reads every sealed blob and hands each to `f`, which returns the
    /// re-sealed blob or `None` to leave it as it is; writes the results
    /// back, all in one transaction. The first error from `f` or the
    /// database rolls everything back. Every blob is held in memory at
    /// once, which suits the number of secrets one deployment keeps.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reseal_all<E, F>(&self, mut f: F) -> Result<ResealCounts, E>
    where
        E: From<StoreError>,
        F: FnMut(&SealedBlob) -> Result<Option<Resealed>, E>,
    {
        on_pool!(self, |p| {
            let mut counts = ResealCounts::default();
            let mut tx = p.begin().await.map_err(db::<E>)?;
            let keys: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT kid, master_key_id, private_sealed FROM signing_keys ORDER BY kid",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db::<E>)?;
            let connections: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, COALESCE(master_key_id, ''), sealed_config FROM connections \
                 WHERE sealed_config IS NOT NULL ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db::<E>)?;
            let providers: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, master_key_id, client_secret_sealed FROM oauth2_providers ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db::<E>)?;
            let flows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, master_key_id, verifier_sealed FROM oauth2_flows ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db::<E>)?;
            let hooks: Vec<(String, String, Vec<u8>)> =
                sqlx::query_as("SELECT id, master_key_id, secret_sealed FROM webhooks ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db::<E>)?;
            let previous: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, previous_master_key_id, previous_secret_sealed FROM webhooks \
                 WHERE previous_secret_sealed IS NOT NULL AND previous_master_key_id IS NOT NULL ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(db::<E>)?;
            let rows = keys
                .into_iter()
                .map(|row| (SealedKind::SigningKey, row))
                .chain(
                    connections
                        .into_iter()
                        .map(|row| (SealedKind::Connection, row)),
                )
                .chain(
                    providers
                        .into_iter()
                        .map(|row| (SealedKind::OAuth2Provider, row)),
                )
                .chain(flows.into_iter().map(|row| (SealedKind::OAuth2Flow, row)))
                .chain(
                    hooks
                        .into_iter()
                        .map(|row| (SealedKind::WebhookSecret, row)),
                )
                .chain(
                    previous
                        .into_iter()
                        .map(|row| (SealedKind::WebhookPreviousSecret, row)),
                );
            for (kind, (id, master_key_id, blob)) in rows {
                let sealed = SealedBlob {
                    kind,
                    id,
                    master_key_id,
                    blob,
                };
                let Some(new) = f(&sealed)? else {
                    continue;
                };
                let (query, count) = match kind {
                    SealedKind::SigningKey => (
                        "UPDATE signing_keys SET private_sealed = $1, master_key_id = $2 WHERE kid = $3",
                        &mut counts.signing_keys,
                    ),
                    SealedKind::Connection => (
                        "UPDATE connections SET sealed_config = $1, master_key_id = $2 WHERE id = $3",
                        &mut counts.connections,
                    ),
                    SealedKind::OAuth2Provider => (
                        "UPDATE oauth2_providers SET client_secret_sealed = $1, master_key_id = $2 WHERE id = $3",
                        &mut counts.oauth2_providers,
                    ),
                    SealedKind::OAuth2Flow => (
                        "UPDATE oauth2_flows SET verifier_sealed = $1, master_key_id = $2 WHERE id = $3",
                                                &mut counts.oauth2_flows,
                    ),
                    SealedKind::WebhookSecret => (
                        "UPDATE webhooks SET secret_sealed = $1, master_key_id = $2 WHERE id = $3",
                        &mut counts.webhook_secrets,
                    ),
                    SealedKind::WebhookPreviousSecret => (
                        "UPDATE webhooks SET previous_secret_sealed = $1, previous_master_key_id = $2 WHERE id = $3",
                        &mut counts.webhook_secrets,
                    ),
                };
                sqlx::query(query)
                    .bind(&new.blob)
                    .bind(&new.master_key_id)
                    .bind(&sealed.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db::<E>)?;
                *count += 1;
            }
            tx.commit().await.map_err(db::<E>)?;
            self.connections.forget_all();
            Ok(counts)
        })
    }
}
