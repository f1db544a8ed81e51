//! Connect-token signing keys: the RSA public parts in the clear, the
//! private part sealed with a master key. At most one key signs at a time
//! (the newest one without `retired_at`); retired keys stay in the table so
//! their tokens keep verifying until they expire.

use crate::{
    error::{unique, Result},
    on_pool, Store,
};

/// One row of `signing_keys`. `Debug` leaves out the sealed private key.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRow {
    /// Key id, as put in the JWT header and the JWKS.
    pub kid: String,
    /// The JWS algorithm, `RS256`.
    pub algorithm: String,
    /// RSA modulus, big-endian, base64url without padding.
    pub public_n: String,
    /// RSA public exponent, big-endian, base64url without padding.
    pub public_e: String,
    /// The PKCS#8 private key, sealed with the master key `master_key_id`.
    pub private_sealed: Vec<u8>,
    /// Id of the master key that sealed `private_sealed`.
    pub master_key_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; set once a newer key took over signing.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("master_key_id", &self.master_key_id)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

macro_rules! insert_signing_key {
    ($k:expr) => {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, public_n, public_e, private_sealed, master_key_id, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&$k.kid)
        .bind(&$k.algorithm)
        .bind(&$k.public_n)
        .bind(&$k.public_e)
        .bind(&$k.private_sealed)
        .bind(&$k.master_key_id)
        .bind($k.created_at)
        .bind($k.retired_at)
    };
}

impl Store {
    /// Stores a key as it is (active or not); a duplicate kid is a
    /// [`crate::StoreError::Conflict`].
    #[tracing::instrument(level = "debug", skip_all, fields(kid = %key.kid))]
    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        on_pool!(self, |p| {
            insert_signing_key!(key)
                .execute(p)
                .await
                .map_err(unique(&[("kid", "kid")]))?;
        });
        Ok(())
    }

    /// Every stored key, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        Ok(on_pool!(self, |p| sqlx::query_as(
            "SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC"
        )
        .fetch_all(p)
        .await?))
    }

    /// Makes `key` the signing key: stores it and retires, at
    /// `key.created_at`, every key that was not retired yet, in one
    /// transaction. Returns how many keys were retired.
    #[tracing::instrument(level = "debug", skip_all, fields(kid = %key.kid))]
    pub async fn activate_signing_key(&self, key: &SigningKeyRow) -> Result<u64> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let retired = sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
            )
            .bind(key.created_at)
            .bind(&key.kid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            insert_signing_key!(key)
                .execute(&mut *tx)
                .await
                .map_err(unique(&[("kid", "kid")]))?;
            tx.commit().await?;
            retired
        }))
    }

    /// Deletes keys retired before `cutoff` (Unix milliseconds); returns
    /// how many were deleted.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_signing_keys_retired_before(&self, cutoff: i64) -> Result<u64> {
        Ok(on_pool!(self, |p| sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1"
        )
        .bind(cutoff)
        .execute(p)
        .await?
        .rows_affected()))
    }
}
