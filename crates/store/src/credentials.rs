//! Access keys and personal access tokens: one table, told apart by `kind`.
//! Only the SHA-256 of a token is stored; lookups are by that hash.

use gatehouse_core::{Role, TokenKind};

use crate::{
    effects::{write_effects, Effects},
    error::{unique, Result},
    on_pool,
    page::{Page, PageRequest},
    Store,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: TokenKind,
    pub name: String,
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    /// The owner of a PAT; the user behind the creation of an access key.
    pub user_id: String,
    /// The access key that created this one, if a key did.
    pub via_key_id: Option<String>,
    /// Space-separated scope names.
    pub scopes: String,
    pub token_hash: Vec<u8>,
    pub checksum: String,
    pub preview: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A credential joined with its user, as authentication and responses need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRecord {
    #[sqlx(flatten)]
    pub credential: Credential,
    pub user_email: String,
    #[sqlx(try_from = "String")]
    pub user_role: Role,
    pub user_deleted_at: Option<i64>,
}

/// Which credentials to list.
#[derive(Debug, Clone)]
pub struct CredentialFilter {
    pub organization_id: String,
    pub kind: TokenKind,
    /// Only this user's (PATs are listed per owner).
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    /// `Some(true)`: only usable ones at `now`; `Some(false)`: only revoked
    /// or expired ones.
    pub active: Option<bool>,
    pub now: i64,
}

macro_rules! insert_credential {
    ($c:expr) => {
        sqlx::query(
            "INSERT INTO credentials (id, kind, name, organization_id, project_id, environment_id, user_id, via_key_id, scopes, token_hash, checksum, preview, created_at, expires_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&$c.id)
        .bind($c.kind.as_str())
        .bind(&$c.name)
        .bind(&$c.organization_id)
        .bind(&$c.project_id)
        .bind(&$c.environment_id)
        .bind(&$c.user_id)
        .bind(&$c.via_key_id)
        .bind(&$c.scopes)
        .bind(&$c.token_hash)
        .bind(&$c.checksum)
        .bind(&$c.preview)
        .bind($c.created_at)
        .bind($c.expires_at)
        .bind($c.last_used_at)
        .bind($c.revoked_at)
    };
}
pub(crate) use insert_credential;

/// The unique index of `credentials`: the token hash.
const CREDENTIAL_UNIQUE: &[(&str, &str)] = &[("token_hash", "token")];

const RECORD_SELECT: &str =
    "SELECT c.*, u.email AS user_email, u.role AS user_role, u.deleted_at AS user_deleted_at \
                             FROM credentials c JOIN users u ON u.id = c.user_id";

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_credential(&self, c: &Credential, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_credential!(c)
                .execute(&mut *tx)
                .await
                .map_err(unique(CREDENTIAL_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Writes many credentials in one transaction, with no audit events:
    /// for seeding a benchmark's database (`gatehouse bench-seed`), not
    /// for the API, whose every credential has its event.
    #[tracing::instrument(level = "debug", skip_all, fields(count = cs.len()))]
    pub async fn create_credentials_unaudited(&self, cs: &[Credential]) -> Result<()> {
        // Many rows per statement: 16 parameters a row stays far below
        // either backend's limit.
        const ROWS: usize = 500;
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if matches!(self.pool, crate::Backend::Sqlite(_)) {
                // Token hashes are random, so every insert lands somewhere
                // else in their index: with SQLite's default 2 MB page
                // cache that is a read and a write per row.
                sqlx::query("PRAGMA cache_size = -262144")
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in cs.chunks(ROWS) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO credentials (id, kind, name, organization_id, project_id, environment_id, user_id, via_key_id, scopes, token_hash, checksum, preview, created_at, expires_at, last_used_at, revoked_at) ",
                );
                q.push_values(chunk, |mut row, c| {
                    row.push_bind(&c.id)
                        .push_bind(c.kind.as_str())
                        .push_bind(&c.name)
                        .push_bind(&c.organization_id)
                        .push_bind(&c.project_id)
                        .push_bind(&c.environment_id)
                        .push_bind(&c.user_id)
                        .push_bind(&c.via_key_id)
                        .push_bind(&c.scopes)
                        .push_bind(&c.token_hash)
                        .push_bind(&c.checksum)
                        .push_bind(&c.preview)
                        .push_bind(c.created_at)
                        .push_bind(c.expires_at)
                        .push_bind(c.last_used_at)
                        .push_bind(c.revoked_at);
                });
                q.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(unique(CREDENTIAL_UNIQUE))?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The credential whose token hashes to `hash`, whatever its state.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn credential_by_hash(&self, hash: &[u8]) -> Result<Option<CredentialRecord>> {
        let q = format!("{RECORD_SELECT} WHERE c.token_hash = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(hash)
            .fetch_optional(p)
            .await?))
    }

    /// One credential of `kind` by id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn credential(&self, kind: TokenKind, id: &str) -> Result<Option<CredentialRecord>> {
        let q = format!("{RECORD_SELECT} WHERE c.id = $1 AND c.kind = $2");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(p)
            .await?))
    }

    /// Credentials matching `filter`, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_credentials(
        &self,
        f: &CredentialFilter,
        page: PageRequest,
    ) -> Result<Page<CredentialRecord>> {
        let cond = "c.organization_id = $1 AND c.kind = $2 AND ($3 IS NULL OR c.user_id = $3) \
                    AND ($4 IS NULL OR c.project_id = $4) AND ($5 IS NULL OR c.environment_id = $5) \
                    AND ($6 IS NULL OR $6 = (c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $7)))";
        let list = format!("{RECORD_SELECT} WHERE {cond} ORDER BY c.id DESC LIMIT $8 OFFSET $9");
        let count = format!("SELECT COUNT(*) FROM credentials c WHERE {cond}");
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(&f.organization_id)
                    .bind(f.kind.as_str())
                    .bind(&f.user_id)
                    .bind(&f.project_id)
                    .bind(&f.environment_id)
                    .bind(f.active)
                    .bind(f.now)
            };
        }
        Ok(on_pool!(self, |p| {
            let items = bind_filter!(sqlx::query_as(&list))
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = bind_filter!(sqlx::query_scalar(&count))
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// Revokes a credential, with `effects` when it was not revoked
    /// already; false (and nothing written) when it was.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_credential(&self, id: &str, at: i64, effects: &Effects) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done > 0 {
                write_effects!(tx, effects);
            }
            tx.commit().await?;
            done > 0
        }))
    }

    /// Stores `new` and makes `old_id` expire at `old_expires_at` (never
    /// later than it already would), in one transaction.
    #[tracing::instrument(level = "debug", skip_all)]
    ///
    /// The old credential is re-checked inside the transaction (it takes
    /// the row first): when it was revoked or expired meanwhile, nothing is
    /// written and the answer is `false`, so a rotation racing a
    /// revocation never leaves a working successor of a revoked key.
    pub async fn rotate_credential(
        &self,
        old_id: &str,
        now: i64,
        old_expires_at: i64,
        new: &Credential,
        effects: &Effects,
    ) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let old = sqlx::query(
                "UPDATE credentials SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END \
                 WHERE id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(old_expires_at)
            .bind(old_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if old.rows_affected() != 1 {
                tx.rollback().await?;
                false
            } else {
                insert_credential!(new)
                    .execute(&mut *tx)
                    .await
                    .map_err(unique(CREDENTIAL_UNIQUE))?;
                write_effects!(tx, effects);
                tx.commit().await?;
                true
            }
        }))
    }

    /// Records when credentials were last used, in one transaction; a
    /// stored time is never moved backwards.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn touch_credentials(&self, used: &[(String, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        // Many rows per statement (a use is a row of VALUES, named column1
        // and column2 by both backends): a batch of thousands of uses is a
        // few statements, not thousands.
        const ROWS: usize = 500;
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in used.chunks(ROWS) {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE credentials SET last_used_at = v.column2 FROM (",
                );
                q.push_values(chunk, |mut row, (id, at)| {
                    row.push_bind(id).push_bind(at);
                });
                q.push(") AS v WHERE credentials.id = v.column1 AND (credentials.last_used_at IS NULL OR credentials.last_used_at < v.column2)");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
