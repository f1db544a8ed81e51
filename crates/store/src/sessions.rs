//! Dashboard sessions, found by the SHA-256 of the cookie's token.

use crate::{
    effects::{write_effects, Effects},
    error::{unique, Result},
    members::User,
    on_pool, Store,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A live session and its (active) user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session: SessionRow,
    pub user: User,
}

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_session(&self, s: &SessionRow, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&s.id)
            .bind(&s.token_hash)
            .bind(&s.user_id)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .execute(&mut *tx)
            .await
            .map_err(unique(&[("token_hash", "token")]))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The unexpired, unrevoked session with this token hash, with its user
    /// (who must still be a member).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn session_by_hash(&self, hash: &[u8], now: i64) -> Result<Option<SessionRecord>> {
        let row: Option<SessionRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, token_hash, user_id, created_at, expires_at, revoked_at, ip, user_agent FROM sessions \
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(hash)
            .bind(now)
            .fetch_optional(p)
            .await?
        });
        let Some(session) = row else { return Ok(None) };
        Ok(self
            .user(&session.user_id)
            .await?
            .map(|user| SessionRecord { session, user }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_session(&self, id: &str, at: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
