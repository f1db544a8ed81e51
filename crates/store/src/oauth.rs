//! OAuth2: providers configured through the API, pending authorizations
//! (single-use, found by the hash of their `state`), and the refresh
//! bookkeeping of OAuth2 connections and accounts, with a lease so only
//! one node spends a refresh token at a time.

use gatehouse_core::oauth2::{ClientAuth, ProviderTarget};

use crate::{
    connect::{ConnectionRow, CONNECTION_COLUMNS},
    effects::{write_effects, Effects},
    error::{unique, Result},
    on_pool, Store,
};

/// A provider created through the API. `Debug` leaves out the sealed
/// client secret.
#[derive(Clone, sqlx::FromRow)]
pub struct ProviderRow {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub environment_id: String,
    pub name: String,
    /// `connection_type` or `app_slug`.
    pub target_kind: String,
    pub target: String,
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    pub master_key_id: String,
    /// Space-separated.
    pub scopes: String,
    /// A JSON object of strings.
    pub extra_authorize_params: String,
    #[sqlx(try_from = "String")]
    pub client_auth: ClientAuth,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl ProviderRow {
    /// What the provider serves.
    pub fn target(&self) -> ProviderTarget {
        match self.target_kind.as_str() {
            "app_slug" => ProviderTarget::AppSlug(self.target.clone()),
            _ => ProviderTarget::ConnectionType(self.target.clone()),
        }
    }
}

impl std::fmt::Debug for ProviderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A pending authorization. `Debug` leaves out the sealed verifier.
#[derive(Clone, sqlx::FromRow)]
pub struct FlowRow {
    pub id: String,
    pub state_hash: Vec<u8>,
    pub environment_id: String,
    pub app_id: String,
    pub user_id: String,
    pub requirement_id: String,
    pub requirement_name: String,
    /// `connection` or `account`.
    pub kind: String,
    /// The connection type or app slug.
    pub target: String,
    /// `api:<id>` or `file:<name>`.
    pub provider_ref: String,
    pub verifier_sealed: Vec<u8>,
    pub master_key_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// Started with an add-only connect token (minted without an access
    /// key): it may not replace an active connection.
    pub add_only: bool,
}

impl std::fmt::Debug for FlowRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRow")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("requirement_name", &self.requirement_name)
            .finish_non_exhaustive()
    }
}

/// What consuming a state found.
#[derive(Debug)]
pub enum Consumed {
    /// The flow, now used up (it may still have expired: check `expires_at`).
    Flow(Box<FlowRow>),
    /// It existed and was used before.
    Replayed,
    /// No such state.
    Unknown,
}

/// Tokens just obtained by a refresh, sealed.
#[derive(Clone)]
pub struct Refreshed {
    pub sealed_config: Vec<u8>,
    pub master_key_id: String,
    pub access_expires_at: Option<i64>,
    pub has_refresh_token: bool,
    /// When the background refresher should renew them.
    pub next_refresh_at: Option<i64>,
}

const PROVIDER_COLUMNS: &str = "id, organization_id, project_id, environment_id, name, target_kind, target, preset, \
     authorize_url, token_url, userinfo_url, issuer, discovery_url, client_id, client_secret_sealed, master_key_id, \
     scopes, extra_authorize_params, client_auth, created_at, updated_at, deleted_at";

const PROVIDER_UNIQUE: &[(&str, &str)] = &[("target", "target"), ("name", "name")];

const FLOW_COLUMNS: &str = "id, state_hash, environment_id, app_id, user_id, requirement_id, requirement_name, kind, target, \
          provider_ref, verifier_sealed, master_key_id, created_at, expires_at, consumed_at, add_only";

impl Store {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_provider(&self, r: &ProviderRow, effects: &Effects) -> Result<()> {
        let q = format!(
            "INSERT INTO oauth2_providers ({PROVIDER_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        );
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(&q)
                .bind(&r.id)
                .bind(&r.organization_id)
                .bind(&r.project_id)
                .bind(&r.environment_id)
                .bind(&r.name)
                .bind(&r.target_kind)
                .bind(&r.target)
                .bind(&r.preset)
                .bind(&r.authorize_url)
                .bind(&r.token_url)
                .bind(&r.userinfo_url)
                .bind(&r.issuer)
                .bind(&r.discovery_url)
                .bind(&r.client_id)
                .bind(&r.client_secret_sealed)
                .bind(&r.master_key_id)
                .bind(&r.scopes)
                .bind(&r.extra_authorize_params)
                .bind(r.client_auth.as_str())
                .bind(r.created_at)
                .bind(r.updated_at)
                .bind(r.deleted_at)
                .execute(&mut *tx)
                .await
                .map_err(unique(PROVIDER_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Writes a provider's mutable fields (everything but its ids, target
    /// and environment).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_provider(&self, r: &ProviderRow, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE oauth2_providers SET name = $1, preset = $2, authorize_url = $3, token_url = $4, userinfo_url = $5, \
                 issuer = $6, discovery_url = $7, client_id = $8, client_secret_sealed = $9, master_key_id = $10, scopes = $11, \
                 extra_authorize_params = $12, client_auth = $13, updated_at = $14 WHERE id = $15 AND deleted_at IS NULL",
            )
            .bind(&r.name)
            .bind(&r.preset)
            .bind(&r.authorize_url)
            .bind(&r.token_url)
            .bind(&r.userinfo_url)
            .bind(&r.issuer)
            .bind(&r.discovery_url)
            .bind(&r.client_id)
            .bind(&r.client_secret_sealed)
            .bind(&r.master_key_id)
            .bind(&r.scopes)
            .bind(&r.extra_authorize_params)
            .bind(r.client_auth.as_str())
            .bind(r.updated_at)
            .bind(&r.id)
            .execute(&mut *tx)
            .await
            .map_err(unique(PROVIDER_UNIQUE))?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A live provider by id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn provider(&self, id: &str) -> Result<Option<ProviderRow>> {
        let q = format!(
            "SELECT {PROVIDER_COLUMNS} FROM oauth2_providers WHERE id = $1 AND deleted_at IS NULL"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// The live provider of an environment for a target, if one was made.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn provider_for(
        &self,
        environment_id: &str,
        target: &ProviderTarget,
    ) -> Result<Option<ProviderRow>> {
        let q = format!(
            "SELECT {PROVIDER_COLUMNS} FROM oauth2_providers WHERE environment_id = $1 AND target_kind = $2 \
             AND target = $3 AND deleted_at IS NULL"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(environment_id)
            .bind(target.field())
            .bind(target.as_str())
            .fetch_optional(p)
            .await?))
    }

    /// Live providers of an organization, optionally narrowed to a project
    /// or environment, oldest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_providers(
        &self,
        organization_id: &str,
        project_id: Option<&str>,
        environment_id: Option<&str>,
    ) -> Result<Vec<ProviderRow>> {
        let q = format!(
            "SELECT {PROVIDER_COLUMNS} FROM oauth2_providers WHERE organization_id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR project_id = $2) AND ($3 IS NULL OR environment_id = $3) ORDER BY id"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(organization_id)
            .bind(project_id)
            .bind(environment_id)
            .fetch_all(p)
            .await?))
    }

    /// Soft-deletes a provider; connections it issued stay until they can no
    /// longer be refreshed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_provider(&self, id: &str, at: i64, effects: &Effects) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE oauth2_providers SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
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

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_flow(&self, f: &FlowRow) -> Result<()> {
        let q = format!(
                        "INSERT INTO oauth2_flows ({FLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        );
        on_pool!(self, |p| {
            sqlx::query(&q)
                .bind(&f.id)
                .bind(&f.state_hash)
                .bind(&f.environment_id)
                .bind(&f.app_id)
                .bind(&f.user_id)
                .bind(&f.requirement_id)
                .bind(&f.requirement_name)
                .bind(&f.kind)
                .bind(&f.target)
                .bind(&f.provider_ref)
                .bind(&f.verifier_sealed)
                .bind(&f.master_key_id)
                .bind(f.created_at)
                .bind(f.expires_at)
                .bind(f.consumed_at)
                .bind(f.add_only)
                .execute(p)
                .await
                .map_err(unique(&[("state_hash", "state")]))?;
        });
        Ok(())
    }

    /// Uses up the flow whose state hashes to `state_hash`, atomically: of
    /// two callbacks with the same state, exactly one gets the flow.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn consume_flow(&self, state_hash: &[u8], now: i64) -> Result<Consumed> {
        let q = format!(
            "UPDATE oauth2_flows SET consumed_at = $1 WHERE state_hash = $2 AND consumed_at IS NULL RETURNING {FLOW_COLUMNS}"
        );
        let taken: Option<FlowRow> = on_pool!(self, |p| sqlx::query_as(&q)
            .bind(now)
            .bind(state_hash)
            .fetch_optional(p)
            .await?);
        if let Some(flow) = taken {
            return Ok(Consumed::Flow(Box::new(flow)));
        }
        let seen: Option<String> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT id FROM oauth2_flows WHERE state_hash = $1"
        )
        .bind(state_hash)
        .fetch_optional(p)
        .await?);
        Ok(match seen {
            Some(_) => Consumed::Replayed,
            None => Consumed::Unknown,
        })
    }

    /// Forgets flows that expired before `before` (used or not).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn purge_flows(&self, before: i64) -> Result<u64> {
        Ok(on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth2_flows WHERE expires_at < $1"
        )
        .bind(before)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// One connection or account by id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connection(&self, id: &str) -> Result<Option<ConnectionRow>> {
        let q = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// Drops the cached connections of the user who owns a changed row.
    fn forget_owner(&self, owner: Option<(String, String)>) {
        if let Some((environment_id, user_id)) = owner {
            self.connections.forget(&environment_id, &user_id);
        }
    }

    /// Takes the refresh lease of a connection until `until`, unless
    /// another holder's lease is still running at `now`. True when taken.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn take_refresh_lease(&self, id: &str, now: i64, until: i64) -> Result<bool> {
        let done = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE connections SET refresh_lease_until = $1 WHERE id = $2 AND status = 'active' \
                 AND (refresh_lease_until IS NULL OR refresh_lease_until < $3)",
            )
            .bind(until)
            .bind(id)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Stores refreshed tokens and releases the lease.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn store_refreshed(&self, id: &str, r: &Refreshed) -> Result<()> {
        on_pool!(self, |p| {
            let owner: Option<(String, String)> = sqlx::query_as(
                "UPDATE connections SET sealed_config = $1, master_key_id = $2, access_expires_at = $3, \
                 has_refresh_token = $4, next_refresh_at = $5, refresh_lease_until = NULL, refresh_failures = 0, \
                 last_error = NULL WHERE id = $6 RETURNING environment_id, user_id",
            )
            .bind(&r.sealed_config)
            .bind(&r.master_key_id)
            .bind(r.access_expires_at)
            .bind(r.has_refresh_token)
            .bind(r.next_refresh_at)
            .bind(id)
            .fetch_optional(p)
            .await?;
            self.forget_owner(owner);
        });
        Ok(())
    }

    /// Looks at a connection again at `at` (nothing to refresh before),
    /// releasing the lease.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn schedule_refresh(&self, id: &str, at: i64) -> Result<()> {
        on_pool!(self, |p| {
            let owner: Option<(String, String)> = sqlx::query_as(
                "UPDATE connections SET next_refresh_at = $1, refresh_lease_until = NULL WHERE id = $2 \
                 RETURNING environment_id, user_id",
            )
            .bind(at)
            .bind(id)
            .fetch_optional(p)
            .await?;
            self.forget_owner(owner);
        });
        Ok(())
    }

    /// Records a transient refresh failure: the next try, the error, one
    /// more failure in a row; releases the lease.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record_refresh_failure(
        &self,
        id: &str,
        error: &str,
        next_refresh_at: i64,
        effects: &Effects,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let owner: Option<(String, String)> = sqlx::query_as(
                "UPDATE connections SET last_error = $1, next_refresh_at = $2, refresh_failures = refresh_failures + 1, \
                 refresh_lease_until = NULL WHERE id = $3 RETURNING environment_id, user_id",
            )
            .bind(error)
            .bind(next_refresh_at)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
            self.forget_owner(owner);
        });
        Ok(())
    }

    /// Marks a connection expired (its refresh token was refused, or it is
    /// past expiry with none); releases the lease. False when it was not
    /// active.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn expire_connection(
        &self,
        id: &str,
        error: &str,
        effects: &Effects,
    ) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let owner: Option<(String, String)> = sqlx::query_as(
                "UPDATE connections SET status = 'expired', last_error = $1, next_refresh_at = NULL, \
                 refresh_lease_until = NULL WHERE id = $2 AND status = 'active' \
                 RETURNING environment_id, user_id",
            )
            .bind(error)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let done = owner.is_some();
            if done {
                write_effects!(tx, effects);
            }
            tx.commit().await?;
            self.forget_owner(owner);
            done
        }))
    }

    /// Active OAuth2 connections that are due: their `next_refresh_at` has
    /// come, or (with none set) their access token expires before
    /// `now + within`; never one whose lease is held. Soonest first, at most
    /// `limit`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn due_for_refresh(
        &self,
        now: i64,
        within: i64,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>> {
        let q = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE status = 'active' AND provider_ref IS NOT NULL \
             AND access_expires_at IS NOT NULL \
             AND ((next_refresh_at IS NULL AND access_expires_at <= $1) OR next_refresh_at <= $2) \
             AND (refresh_lease_until IS NULL OR refresh_lease_until < $2) \
             ORDER BY access_expires_at LIMIT $3"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(now + within)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?))
    }
}
