//! Apps, their immutable versions, and which version is deployed.

use gatehouse_core::AccessType;

use crate::{
    effects::{write_effects, Effects},
    error::{unique, Result},
    on_pool,
    page::{Page, PageRequest},
    Store,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct App {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub environment_id: String,
    pub name: String,
    pub slug: String,
    /// Lower-case, no port, no trailing dot.
    pub hostname: String,
    #[sqlx(try_from = "String")]
    pub access_type: AccessType,
    pub deployed_version_id: Option<String>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// Space-separated origins a connect token's redirect URL must be on
    /// (none: any).
    pub allowed_redirect_origins: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppVersion {
    pub id: String,
    pub app_id: String,
    /// JSON array of requirements.
    pub requirements: String,
    pub created_at: i64,
}

/// Which apps to list.
#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
}

/// The unique indexes of `apps`: one hostname per deployment, one slug per
/// environment.
const APP_UNIQUE: &[(&str, &str)] = &[("hostname", "hostname"), ("slug", "slug")];

const APP_COLUMNS: &str = "id, organization_id, project_id, environment_id, name, slug, hostname, access_type, deployed_version_id, created_at, deleted_at, allowed_redirect_origins";

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_app(&self, app: &App, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                                "INSERT INTO apps (id, organization_id, project_id, environment_id, name, slug, hostname, access_type, created_at, allowed_redirect_origins) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&app.id)
            .bind(&app.organization_id)
            .bind(&app.project_id)
            .bind(&app.environment_id)
            .bind(&app.name)
            .bind(&app.slug)
            .bind(&app.hostname)
                        .bind(app.access_type.as_str())
            .bind(app.created_at)
            .bind(&app.allowed_redirect_origins)
            .execute(&mut *tx)
            .await
            .map_err(unique(APP_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A live app by id, whose environment (and so project) is live too:
    /// deleting a project cuts its apps off.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn app(&self, id: &str) -> Result<Option<App>> {
        let columns = APP_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let q = format!(
            "SELECT {columns} FROM apps a JOIN environments e ON e.id = a.environment_id \
             WHERE a.id = $1 AND a.deleted_at IS NULL AND e.deleted_at IS NULL"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// The live app serving `hostname` (already normalised), whose
    /// environment is live too.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn app_by_hostname(&self, hostname: &str) -> Result<Option<App>> {
        let q = "SELECT a.id, a.organization_id, a.project_id, a.environment_id, a.name, a.slug, a.hostname, a.access_type, \
                 a.deployed_version_id, a.created_at, a.deleted_at, a.allowed_redirect_origins FROM apps a JOIN environments e ON e.id = a.environment_id \
                 WHERE a.hostname = $1 AND a.deleted_at IS NULL AND e.deleted_at IS NULL";
        Ok(on_pool!(self, |p| sqlx::query_as(q)
            .bind(hostname)
            .fetch_optional(p)
            .await?))
    }

    /// Live apps matching `filter`, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_apps(&self, f: &AppFilter, page: PageRequest) -> Result<Page<App>> {
        let cond = "organization_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR project_id = $2) AND ($3 IS NULL OR environment_id = $3)";
        let list = format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE {cond} ORDER BY id DESC LIMIT $4 OFFSET $5"
        );
        let count = format!("SELECT COUNT(*) FROM apps WHERE {cond}");
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(&f.organization_id)
                .bind(&f.project_id)
                .bind(&f.environment_id)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(&f.organization_id)
                .bind(&f.project_id)
                .bind(&f.environment_id)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// Writes an app's mutable fields (name, hostname, access type).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_app(&self, app: &App, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE apps SET name = $1, hostname = $2, access_type = $3, allowed_redirect_origins = $4 WHERE id = $5 AND deleted_at IS NULL")
                .bind(&app.name)
                .bind(&app.hostname)
                .bind(app.access_type.as_str())
                .bind(&app.allowed_redirect_origins)
                .bind(&app.id)
                .execute(&mut *tx)
                .await
                .map_err(unique(APP_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Soft-deletes an app: its hostname is freed, its connect tokens stop
    /// working, and its end users' connections are deleted.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_app(&self, id: &str, at: i64, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE apps SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM connections WHERE app_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
            self.connections.forget_all();
        });
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_version(&self, v: &AppVersion, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO app_versions (id, app_id, requirements, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&v.id)
                .bind(&v.app_id)
                .bind(&v.requirements)
                .bind(v.created_at)
                .execute(&mut *tx)
                .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn version(&self, app_id: &str, id: &str) -> Result<Option<AppVersion>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT id, app_id, requirements, created_at FROM app_versions WHERE id = $1 AND app_id = $2")
                .bind(id)
                .bind(app_id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// An app's versions, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_versions(&self, app_id: &str, page: PageRequest) -> Result<Page<AppVersion>> {
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(
                "SELECT id, app_id, requirements, created_at FROM app_versions WHERE app_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
            )
            .bind(app_id)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(p)
            .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM app_versions WHERE app_id = $1")
                .bind(app_id)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn deploy(&self, app_id: &str, version_id: &str, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE apps SET deployed_version_id = $1 WHERE id = $2 AND deleted_at IS NULL",
            )
            .bind(version_id)
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }
}
