//! End users of apps, their connections and linked accounts, and
//! connect-token revocations.

use std::sync::Arc;

use gatehouse_core::connection::{ConnectionKind, ConnectionStatus, Holding};

use crate::{
    effects::{write_effects, Effects},
    error::{unique, Result},
    on_pool,
    page::{Page, PageRequest},
    Store,
};

/// A connection or a linked account.
#[derive(Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: ConnectionKind,
    pub environment_id: String,
    pub app_id: String,
    pub user_id: String,
    pub requirement_name: String,
    /// The connection type, or the action connector's `app_slug`.
    pub r#type: String,
    #[sqlx(try_from = "String")]
    pub status: ConnectionStatus,
    pub label: Option<String>,
    pub sealed_config: Option<Vec<u8>>,
    pub master_key_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// OAuth2: the provider that issued the tokens (`api:<id>` or
    /// `file:<name>`).
    pub provider_ref: Option<String>,
    /// OAuth2: when the access token expires (Unix ms).
    pub access_expires_at: Option<i64>,
    /// OAuth2: whether the sealed config holds a refresh token.
    pub has_refresh_token: bool,
    /// OAuth2: when the refresher should try next (after a failure).
    pub next_refresh_at: Option<i64>,
    /// OAuth2: transient refresh failures in a row.
    pub refresh_failures: i32,
    /// The last provider error, in our words.
    pub last_error: Option<String>,
}

impl ConnectionRow {
    /// The bytes its strings and sealed config hold.
    pub fn heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.id.len()
            + self.environment_id.len()
            + self.app_id.len()
            + self.user_id.len()
            + self.requirement_name.len()
            + self.r#type.len()
            + opt(&self.label)
            + self.sealed_config.as_ref().map_or(0, Vec::len)
            + opt(&self.master_key_id)
            + opt(&self.provider_ref)
            + opt(&self.last_error)
    }
}

impl std::fmt::Debug for ConnectionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRow")
            .field("id", &self.id)
            .field("requirement_name", &self.requirement_name)
            .field("type", &self.r#type)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Holding for ConnectionRow {
    fn requirement_name(&self) -> &str {
        &self.requirement_name
    }

    fn kind(&self) -> ConnectionKind {
        self.kind
    }

    fn type_or_slug(&self) -> &str {
        &self.r#type
    }

    fn status(&self) -> ConnectionStatus {
        self.status
    }
}

/// What [`Store::replace_connection`] may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Whatever is there.
    Any,
    /// Only a connection that is not active (expired, revoked).
    NotActive,
}

/// One end user in a listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndUserSummary {
    pub user_id: String,
    pub created_at: i64,
}

pub(crate) const CONNECTION_COLUMNS: &str = "id, kind, environment_id, app_id, user_id, requirement_name, type, status, label, sealed_config, master_key_id, created_at, updated_at, \
     provider_ref, access_expires_at, has_refresh_token, next_refresh_at, refresh_failures, last_error";

/// Records (environment, user, app) as an end user from `$at` (Unix ms),
/// unless already recorded; to execute on a transaction.
macro_rules! insert_end_user {
    ($environment_id:expr, $user_id:expr, $app_id:expr, $at:expr) => {
        sqlx::query(
            "INSERT INTO end_users (environment_id, user_id, app_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (environment_id, user_id, app_id) DO NOTHING",
        )
        .bind($environment_id)
        .bind($user_id)
        .bind($app_id)
        .bind($at)
    };
}
pub(crate) use insert_end_user;

impl Store {
    /// When the end user first appeared in the environment, if they exist.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn end_user(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> Result<Option<EndUserSummary>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT user_id, MIN(created_at) AS created_at FROM end_users WHERE environment_id = $1 AND user_id = $2 GROUP BY user_id",
            )
            .bind(environment_id)
            .bind(user_id)
            .fetch_optional(p)
            .await?
        }))
    }

    /// End users of an environment (optionally of one app), by user id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_end_users(
        &self,
        environment_id: &str,
        app_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<EndUserSummary>> {
        let cond = "environment_id = $1 AND ($2 IS NULL OR app_id = $2)";
        let list = format!(
            "SELECT user_id, MIN(created_at) AS created_at FROM end_users WHERE {cond} GROUP BY user_id ORDER BY user_id LIMIT $3 OFFSET $4"
        );
        let count = format!("SELECT COUNT(DISTINCT user_id) FROM end_users WHERE {cond}");
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(environment_id)
                .bind(app_id)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(environment_id)
                .bind(app_id)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// Every connection and account of an end user in an environment,
    /// oldest first (from memory when unchanged since last read).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connections_of_user(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> Result<Arc<Vec<ConnectionRow>>> {
        if let Some(rows) = self.connections.get(environment_id, user_id) {
            return Ok(rows);
        }
        let epoch = self.connections.epoch();
        let q = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE environment_id = $1 AND user_id = $2 ORDER BY id");
        let rows: Vec<ConnectionRow> = on_pool!(self, |p| sqlx::query_as(&q)
            .bind(environment_id)
            .bind(user_id)
            .fetch_all(p)
            .await?);
        let rows = Arc::new(rows);
        self.connections
            .insert(epoch, environment_id, user_id, rows.clone());
        Ok(rows)
    }

    /// The end user's connections and accounts for one app, by requirement
    /// name.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connections_for_app(
        &self,
        environment_id: &str,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRow>> {
        let all = self.connections_of_user(environment_id, user_id).await?;
        let mut rows: Vec<ConnectionRow> =
            all.iter().filter(|r| r.app_id == app_id).cloned().collect();
        rows.sort_by(|a, b| a.requirement_name.cmp(&b.requirement_name));
        Ok(rows)
    }

    /// Drops the cached connections of one end user (another node changed
    /// them).
    pub fn forget_connections(&self, environment_id: &str, user_id: &str) {
        self.connections.forget(environment_id, user_id);
    }

    /// Drops every cached connection (another node's changes may have been
    /// missed).
    pub fn forget_all_connections(&self) {
        self.connections.forget_all();
    }

    /// Stores `row`, replacing what the user had for the same requirement
    /// (with [`Replace::NotActive`], only one that is not active: an active
    /// one makes this a `Conflict` on `requirement`), and records that the
    /// user uses the app, in one transaction. Returns the replaced row's
    /// id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn replace_connection(
        &self,
        row: &ConnectionRow,
        replace: Replace,
        effects: &Effects,
    ) -> Result<Option<String>> {
        let delete = match replace {
            Replace::Any => "DELETE FROM connections WHERE environment_id = $1 AND app_id = $2 AND user_id = $3 \
                             AND requirement_name = $4 RETURNING id",
            Replace::NotActive => "DELETE FROM connections WHERE environment_id = $1 AND app_id = $2 AND user_id = $3 \
                                   AND requirement_name = $4 AND status <> 'active' RETURNING id",
        };
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let old: Option<String> = sqlx::query_scalar(delete)
                .bind(&row.environment_id)
                .bind(&row.app_id)
                .bind(&row.user_id)
                .bind(&row.requirement_name)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO connections ({CONNECTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(&row.id)
            .bind(row.kind.as_str())
            .bind(&row.environment_id)
            .bind(&row.app_id)
            .bind(&row.user_id)
            .bind(&row.requirement_name)
            .bind(&row.r#type)
            .bind(row.status.as_str())
            .bind(&row.label)
            .bind(&row.sealed_config)
            .bind(&row.master_key_id)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(&row.provider_ref)
            .bind(row.access_expires_at)
            .bind(row.has_refresh_token)
            .bind(row.next_refresh_at)
            .bind(row.refresh_failures)
            .bind(&row.last_error)
            .execute(&mut *tx)
            .await
            .map_err(unique(&[("id", "id"), ("requirement_name", "requirement")]))?;
            insert_end_user!(
                &row.environment_id,
                &row.user_id,
                &row.app_id,
                row.created_at
            )
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
            self.connections.forget(&row.environment_id, &row.user_id);
            old
        }))
    }

    /// Deletes the user's connection or account for a requirement.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_connection_for_requirement(
        &self,
        environment_id: &str,
        app_id: &str,
        user_id: &str,
        requirement_name: &str,
        effects: impl FnOnce(&ConnectionRow) -> Effects,
    ) -> Result<Option<ConnectionRow>> {
        let q = format!(
            "DELETE FROM connections WHERE environment_id = $1 AND app_id = $2 AND user_id = $3 AND requirement_name = $4 \
             RETURNING {CONNECTION_COLUMNS}"
        );
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let removed: Option<ConnectionRow> = sqlx::query_as(&q)
                .bind(environment_id)
                .bind(app_id)
                .bind(user_id)
                .bind(requirement_name)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = &removed {
                write_effects!(tx, &effects(row));
            }
            tx.commit().await?;
            self.connections.forget(environment_id, user_id);
            removed
        }))
    }

    /// Deletes one connection or account of the user by id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_connection(
        &self,
        environment_id: &str,
        user_id: &str,
        id: &str,
        effects: impl FnOnce(&ConnectionRow) -> Effects,
    ) -> Result<Option<ConnectionRow>> {
        let q = format!("DELETE FROM connections WHERE environment_id = $1 AND user_id = $2 AND id = $3 RETURNING {CONNECTION_COLUMNS}");
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let removed: Option<ConnectionRow> = sqlx::query_as(&q)
                .bind(environment_id)
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = &removed {
                write_effects!(tx, &effects(row));
            }
            tx.commit().await?;
            self.connections.forget(environment_id, user_id);
            removed
        }))
    }

    /// Refuses the user's connect tokens issued at or before `at_seconds`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_end_user_tokens(
        &self,
        environment_id: &str,
        user_id: &str,
        at_seconds: i64,
        effects: &Effects,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO end_user_revocations (environment_id, user_id, revoked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (environment_id, user_id) DO UPDATE SET revoked_at = excluded.revoked_at",
            )
            .bind(environment_id)
            .bind(user_id)
            .bind(at_seconds)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The time (seconds) up to which the user's tokens are revoked.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn end_user_revoked_at(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> Result<Option<i64>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT revoked_at FROM end_user_revocations WHERE environment_id = $1 AND user_id = $2")
                .bind(environment_id)
                .bind(user_id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Erases everything of an end user in an environment (connections,
    /// accounts, app links) and revokes their tokens, in one transaction.
    /// Returns how many connections and accounts were deleted.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn erase_end_user(
        &self,
        environment_id: &str,
        user_id: &str,
        at_seconds: i64,
        effects: &Effects,
    ) -> Result<u64> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let deleted =
                sqlx::query("DELETE FROM connections WHERE environment_id = $1 AND user_id = $2")
                    .bind(environment_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            sqlx::query("DELETE FROM end_users WHERE environment_id = $1 AND user_id = $2")
                .bind(environment_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO end_user_revocations (environment_id, user_id, revoked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (environment_id, user_id) DO UPDATE SET revoked_at = excluded.revoked_at",
            )
            .bind(environment_id)
            .bind(user_id)
            .bind(at_seconds)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
            self.connections.forget(environment_id, user_id);
            deleted
        }))
    }

    /// Revokes one connect token by its `jti` until `expires_at` (seconds).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_connect_token(
        &self,
        jti: &str,
        expires_at: i64,
        effects: &Effects,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO revoked_connect_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connect_token_revoked(&self, jti: &str) -> Result<bool> {
        let found: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT expires_at FROM revoked_connect_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(p)
                .await?
        });
        Ok(found.is_some())
    }

    /// Forgets revocations of tokens that have expired anyway.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn purge_connect_revocations(
        &self,
        now_seconds: i64,
        max_token_lifetime: i64,
    ) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM revoked_connect_tokens WHERE expires_at < $1")
                .bind(now_seconds)
                .execute(p)
                .await?;
            sqlx::query("DELETE FROM end_user_revocations WHERE revoked_at < $1")
                .bind(now_seconds - max_token_lifetime)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
