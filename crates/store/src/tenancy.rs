//! Organizations, projects, environments, and the one-time bootstrap.

use crate::{
    audit::AuditEvent,
    credentials::Credential,
    effects::{write_effects, Effects},
    error::{is_unique_violation, unique, Result, StoreError},
    members::User,
    on_pool,
    page::{Page, PageRequest},
    Store,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Project {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Environment {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub name: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// Its own `environment` rate limit (requests per window), if set.
    pub rate_limit: Option<i64>,
    /// The window of `rate_limit`, in seconds.
    pub rate_limit_window: Option<i64>,
}

/// Everything the first start writes, in one transaction.
#[derive(Debug)]
pub struct Bootstrap {
    pub organization: Organization,
    pub project: Project,
    pub environments: Vec<Environment>,
    pub owner: User,
    pub credentials: Vec<Credential>,
    pub events: Vec<AuditEvent>,
}

macro_rules! insert_project {
    ($p:expr) => {
        sqlx::query(
            "INSERT INTO projects (id, organization_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&$p.id)
        .bind(&$p.organization_id)
        .bind(&$p.name)
        .bind($p.created_at)
    };
}

macro_rules! insert_environment {
    ($e:expr) => {
        sqlx::query(
            "INSERT INTO environments (id, organization_id, project_id, name, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&$e.id)
        .bind(&$e.organization_id)
        .bind(&$e.project_id)
        .bind(&$e.name)
        .bind($e.created_at)
    };
}

/// The unique index of `environments`: one name per project.
const ENVIRONMENT_UNIQUE: &[(&str, &str)] = &[("name", "name")];

const PROJECT_COLUMNS: &str = "id, organization_id, name, created_at, deleted_at";
/// The limit columns are `INTEGER`, which PostgreSQL reads as a 32-bit
/// value; the casts make them 64-bit on both backends, as the row says.
const ENVIRONMENT_COLUMNS: &str = "id, organization_id, project_id, name, created_at, deleted_at, \
     CAST(rate_limit AS BIGINT) AS rate_limit, CAST(rate_limit_window AS BIGINT) AS rate_limit_window";

impl Store {
    /// The organization this installation was bootstrapped with, if any.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn installation(&self) -> Result<Option<String>> {
        let id: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT organization_id FROM installation WHERE id = 1")
                .fetch_optional(p)
                .await?
        });
        Ok(id)
    }

    /// Writes the bootstrap records, or fails with
    /// [`StoreError::AlreadyInitialised`] and writes nothing.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn bootstrap(&self, b: &Bootstrap) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let marked = sqlx::query(
                "INSERT INTO installation (id, organization_id, initialised_at) VALUES (1, $1, $2)",
            )
            .bind(&b.organization.id)
            .bind(b.organization.created_at)
            .execute(&mut *tx)
            .await;
            match marked {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::AlreadyInitialised)
                }
                other => other?,
            };
            sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&b.organization.id)
                .bind(&b.organization.name)
                .bind(b.organization.created_at)
                .execute(&mut *tx)
                .await?;
            insert_project!(b.project).execute(&mut *tx).await?;
            for e in &b.environments {
                insert_environment!(e).execute(&mut *tx).await?;
            }
            crate::members::insert_user!(b.owner)
                .execute(&mut *tx)
                .await?;
            for c in &b.credentials {
                crate::credentials::insert_credential!(c)
                    .execute(&mut *tx)
                    .await?;
            }
            for e in &b.events {
                crate::audit::insert_event!(e).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn organization(&self, id: &str) -> Result<Option<Organization>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Creates a project and its environments together.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_project(
        &self,
        project: &Project,
        environments: &[Environment],
        effects: &Effects,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_project!(project)
                .execute(&mut *tx)
                .await
                .map_err(unique(&[("id", "id")]))?;
            for e in environments {
                insert_environment!(e)
                    .execute(&mut *tx)
                    .await
                    .map_err(unique(ENVIRONMENT_UNIQUE))?;
            }
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Live projects of an organization, optionally just one, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_projects(
        &self,
        org: &str,
        only: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Project>> {
        let filter = "organization_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR id = $2)";
        let list = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE {filter} ORDER BY id DESC LIMIT $3 OFFSET $4");
        let count = format!("SELECT COUNT(*) FROM projects WHERE {filter}");
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(org)
                .bind(only)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(org)
                .bind(only)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// A live project.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn project(&self, id: &str) -> Result<Option<Project>> {
        let q =
            format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND deleted_at IS NULL");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn rename_project(&self, id: &str, name: &str, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE projects SET name = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Soft-deletes a project: it, its environments and every credential
    /// reaching into it stop at once; the rows stay for the audit trail.
    /// Returns the ids of the credentials it revoked.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_project(
        &self,
        id: &str,
        at: i64,
        effects: &Effects,
    ) -> Result<Vec<String>> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE projects SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE environments SET deleted_at = $1 WHERE project_id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE webhook_messages SET status = 'cancelled', finished_at = $1 WHERE status = 'pending' \
                 AND webhook_id IN (SELECT id FROM webhooks WHERE project_id = $2)",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhooks SET deleted_at = $1 WHERE project_id = $2 AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let revoked: Vec<String> = sqlx::query_scalar(
                "UPDATE credentials SET revoked_at = $1 WHERE project_id = $2 AND revoked_at IS NULL RETURNING id",
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

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_environment(&self, env: &Environment, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            insert_environment!(env)
                .execute(&mut *tx)
                .await
                .map_err(unique(ENVIRONMENT_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Sets (or with `None` clears) an environment's own `environment`
    /// rate limit: (requests, window in seconds).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn set_environment_rate_limit(
        &self,
        id: &str,
        limit: Option<(i64, i64)>,
        effects: &Effects,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE environments SET rate_limit = $1, rate_limit_window = $2 WHERE id = $3 AND deleted_at IS NULL",
            )
            .bind(limit.map(|l| l.0))
            .bind(limit.map(|l| l.1))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The ids of the live environments a reach covers.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn environments_in(&self, reach: &gatehouse_core::Reach) -> Result<Vec<String>> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT id FROM environments WHERE organization_id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR project_id = $2) AND ($3 IS NULL OR id = $3) ORDER BY id"
        )
        .bind(&reach.organization_id)
        .bind(&reach.project_id)
        .bind(&reach.environment_id)
        .fetch_all(p)
        .await?))
    }

    /// The `environment` rate limits environments set for themselves:
    /// (environment id, requests, window in seconds).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn environment_rate_limits(&self) -> Result<Vec<(String, i64, i64)>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, CAST(rate_limit AS BIGINT), CAST(rate_limit_window AS BIGINT) FROM environments \
             WHERE rate_limit IS NOT NULL AND rate_limit_window IS NOT NULL AND deleted_at IS NULL"
        )
        .fetch_all(p)
        .await?
        }))
    }

    /// Live environments of a project, optionally just one, oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_environments(
        &self,
        project: &str,
        only: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Environment>> {
        let filter = "project_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR id = $2)";
        let list = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE {filter} ORDER BY id ASC LIMIT $3 OFFSET $4");
        let count = format!("SELECT COUNT(*) FROM environments WHERE {filter}");
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(project)
                .bind(only)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(project)
                .bind(only)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// A live environment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn environment(&self, id: &str) -> Result<Option<Environment>> {
        let q = format!(
            "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1 AND deleted_at IS NULL"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }
}
