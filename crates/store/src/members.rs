//! Dashboard users and their membership (role) in the organization.

use gatehouse_core::Role;

use crate::{
    effects::{write_effects, Effects},
    error::{unique, Result},
    on_pool,
    page::{Page, PageRequest},
    Store,
};

#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    /// An argon2id PHC string; never the password.
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

macro_rules! insert_user {
    ($u:expr) => {
        sqlx::query(
            "INSERT INTO users (id, organization_id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$u.id)
        .bind(&$u.organization_id)
        .bind(&$u.email)
        .bind(&$u.password_hash)
        .bind($u.role.as_str())
        .bind($u.created_at)
    };
}
pub(crate) use insert_user;

const USER_COLUMNS: &str =
    "id, organization_id, email, password_hash, role, created_at, deleted_at";

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_user(&self, user: &User, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_user!(user)
                .execute(&mut *tx)
                .await
                .map_err(unique(&[("email", "email")]))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// An active member.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let q = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// An active member by (lower-cased) email.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let q = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1 AND deleted_at IS NULL");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(email)
            .fetch_optional(p)
            .await?))
    }

    /// Active members of an organization, oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_users(&self, org: &str, page: PageRequest) -> Result<Page<User>> {
        let list = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY id ASC LIMIT $2 OFFSET $3"
        );
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(org)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE organization_id = $1 AND deleted_at IS NULL",
            )
            .bind(org)
            .fetch_one(p)
            .await?;
            Page { items, total }
        }))
    }

    /// Number of active owners, so the last one cannot be demoted or removed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn count_owners(&self, org: &str) -> Result<i64> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE organization_id = $1 AND role = 'owner' AND deleted_at IS NULL")
                .bind(org)
                .fetch_one(p)
                .await?
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn set_role(&self, id: &str, role: Role, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(role.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a member: the user row is kept (deleted) for the audit trail
    /// and every personal access token of theirs is revoked at once.
    /// Returns the ids of the revoked tokens.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn remove_user(&self, id: &str, at: i64, effects: &Effects) -> Result<Vec<String>> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE users SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let revoked: Vec<String> = sqlx::query_scalar(
                "UPDATE credentials SET revoked_at = $1 WHERE user_id = $2 AND kind = 'personal_access_token' AND revoked_at IS NULL RETURNING id",
            )
            .bind(at)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
            revoked
        }))
    }
}
