//! OAuth2 providers (SPEC §5.1): from `gatehouse.toml` (read-only,
//! `source: "file"`) or created through the API (`source: "api"`, the
//! client secret sealed under the master key and never returned). For one
//! target in one environment the API's provider wins over the file's.

use std::collections::BTreeMap;

use gatehouse_core::{
    new_id,
    oauth2::ProviderTarget,
    time::now_ms,
    validate::{Name, BLANK},
    IdKind,
};
use gatehouse_store::{oauth::ProviderRow, Page, PageRequest};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::service::schema::NameText;

use crate::{
    catalog::AuthKind,
    config::{self, OAuth2ProviderConfig, ProviderSettings, SettingsError, SettingsInput},
    error::{ApiError, ApiResult},
    service::{
        audit::{self, Origin},
        principal::Principal,
        visibility::{self, environment_reach},
        Services,
    },
};

/// Where a provider is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Api => "api",
        }
    }
}

/// A provider, whichever its source, ready to run the flow with.
#[derive(Debug, Clone)]
pub struct Provider {
    /// `oap_…` (for file providers `oap_file_<name>`).
    pub id: String,
    pub name: String,
    pub source: Source,
    /// The environment of an API provider.
    pub environment_id: Option<String>,
    /// The environments a file provider serves (empty: every one).
    pub environments: Vec<String>,
    pub target: ProviderTarget,
    pub settings: ProviderSettings,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

impl Provider {
    /// What a connection records to find its provider again when refreshing:
    /// `api:<id>` or `file:<name>`.
    pub fn reference(&self) -> String {
        match self.source {
            Source::Api => format!("api:{}", self.id),
            Source::File => format!("file:{}", self.name),
        }
    }
}

/// The id under which a file provider is shown.
fn file_id(name: &str) -> String {
    format!("{}_file_{name}", IdKind::OAuth2Provider.prefix())
}

fn from_file(name: &str, p: &OAuth2ProviderConfig) -> Provider {
    Provider {
        id: file_id(name),
        name: name.to_string(),
        source: Source::File,
        environment_id: None,
        environments: p.environments.clone(),
        target: p.target.clone(),
        settings: p.settings.clone(),
        created_at: None,
        updated_at: None,
    }
}

fn from_row(svc: &Services, row: ProviderRow) -> ApiResult<Provider> {
    let secret = svc.keyring().open(
        &row.master_key_id,
        &row.client_secret_sealed,
        row.id.as_bytes(),
    )?;
    let secret = String::from_utf8(secret.to_vec()).map_err(ApiError::internal)?;
    let extra: BTreeMap<String, String> =
        serde_json::from_str(&row.extra_authorize_params).map_err(ApiError::internal)?;
    Ok(Provider {
        target: row.target(),
        settings: ProviderSettings {
            preset: row.preset,
            authorize_url: row.authorize_url,
            token_url: row.token_url,
            userinfo_url: row.userinfo_url,
            issuer: row.issuer,
            discovery_url: row.discovery_url,
            client_id: row.client_id,
            client_secret: SecretString::from(secret),
            scopes: row.scopes.split_whitespace().map(str::to_string).collect(),
            extra_authorize_params: extra,
            client_auth: row.client_auth,
        },
        id: row.id,
        name: row.name,
        source: Source::Api,
        environment_id: Some(row.environment_id),
        environments: Vec::new(),
        created_at: Some(row.created_at),
        updated_at: Some(row.updated_at),
    })
}

/// The provider that signs end users of `environment_id` in for `target`.
pub async fn for_target(
    svc: &Services,
    environment_id: &str,
    target: &ProviderTarget,
) -> ApiResult<Option<Provider>> {
    if let Some(row) = svc.store().provider_for(environment_id, target).await? {
        return Ok(Some(from_row(svc, row)?));
    }
    Ok(svc
        .config()
        .oauth2_provider_for(environment_id, target)
        .map(|(name, p)| from_file(name, p)))
}

/// The provider a connection was made with (see [`Provider::reference`]),
/// if it still exists and still serves the environment.
pub async fn by_reference(
    svc: &Services,
    reference: &str,
    environment_id: &str,
) -> ApiResult<Option<Provider>> {
    if let Some(id) = reference.strip_prefix("api:") {
        return match svc.store().provider(id).await? {
            Some(row) if row.environment_id == environment_id => Ok(Some(from_row(svc, row)?)),
            _ => Ok(None),
        };
    }
    let name = reference.strip_prefix("file:").unwrap_or(reference);
    Ok(svc
        .config()
        .oauth2_providers
        .get(name)
        .filter(|p| p.serves(environment_id))
        .map(|p| from_file(name, p)))
}

/// Body of `POST /v1/oauth2-providers`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    /// 1–100 characters, unique in the environment.
    #[schema(value_type = NameText, required = true)]
    pub name: Option<String>,
    pub environment_id: Option<String>,
    /// An OAuth2 connection type, e.g. `dynamiq.connections.GoogleOAuth2`.
    pub connection_type: Option<String>,
    /// Or an action connector's app slug, e.g. `gmail`.
    pub app_slug: Option<String>,
    /// `google`, `github`, `microsoft`, `slack`, `notion`, `dropbox`, `box`,
    /// `hubspot`, `salesforce` or `atlassian`: fills the endpoints.
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: Option<String>,
    /// Write-only: sealed, never returned.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub extra_authorize_params: Option<BTreeMap<String, String>>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub client_auth: Option<String>,
}

impl std::fmt::Debug for CreateProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProvider")
            .field("name", &self.name)
            .field("environment_id", &self.environment_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

/// Body of `PATCH /v1/oauth2-providers/{id}`: any field but the
/// environment and the target. Fields left out keep their value.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    #[schema(value_type = Option<NameText>)]
    pub name: Option<String>,
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub extra_authorize_params: Option<BTreeMap<String, String>>,
    pub client_auth: Option<String>,
}

impl std::fmt::Debug for UpdateProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateProvider")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

fn settings_error(e: SettingsError) -> ApiError {
    ApiError::field(e.field, e.message)
}

/// 400 unless `target` is an OAuth2 connection type of the catalog (or an
/// app slug).
fn check_target(svc: &Services, target: &ProviderTarget) -> ApiResult<()> {
    if let ProviderTarget::ConnectionType(ty) = target {
        if svc.catalog().get(ty).map(|t| t.auth()) != Some(AuthKind::OAuth2) {
            return Err(ApiError::field(
                "connection_type",
                format!("{ty:?} is not an oauth2 connection type"),
            ));
        }
    }
    Ok(())
}

/// The row for `settings`, the client secret sealed under the master key
/// (AAD: the provider id).
fn seal_row(
    svc: &Services,
    base: ProviderRow,
    settings: &ProviderSettings,
) -> ApiResult<ProviderRow> {
    use secrecy::ExposeSecret;
    let (master_key_id, sealed) = svc.keyring().seal(
        settings.client_secret.expose_secret().as_bytes(),
        base.id.as_bytes(),
    )?;
    Ok(ProviderRow {
        preset: settings.preset.clone(),
        authorize_url: settings.authorize_url.clone(),
        token_url: settings.token_url.clone(),
        userinfo_url: settings.userinfo_url.clone(),
        issuer: settings.issuer.clone(),
        discovery_url: settings.discovery_url.clone(),
        client_id: settings.client_id.clone(),
        client_secret_sealed: sealed,
        master_key_id,
        scopes: settings.scopes.join(" "),
        extra_authorize_params: serde_json::to_string(&settings.extra_authorize_params)
            .map_err(ApiError::internal)?,
        client_auth: settings.client_auth,
        ..base
    })
}

/// The conflict of a provider write, named by the field the caller sent.
fn conflict(err: gatehouse_store::StoreError, target: &ProviderTarget) -> ApiError {
    match err {
        gatehouse_store::StoreError::Conflict { field: "target" } => {
            ApiError::conflict(target.field(), "already has a provider in this environment")
        }
        gatehouse_store::StoreError::Conflict { field } => {
            ApiError::conflict(field, "is already taken in this environment")
        }
        other => other.into(),
    }
}

/// Creates a provider in an environment.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn create(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    body: CreateProvider,
) -> ApiResult<Provider> {
    let env_id = body
        .environment_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| caller.reach.environment_id.clone())
        .ok_or_else(|| ApiError::field("environment_id", BLANK))?;
    let env = visibility::environment(svc, &caller.reach, &env_id).await?;
    let name =
        Name::parse(body.name.as_deref().unwrap_or("")).map_err(|m| ApiError::field("name", m))?;
    let target =
        config::oauth2::target(body.connection_type, body.app_slug).map_err(settings_error)?;
    check_target(svc, &target)?;
    let settings = SettingsInput {
        preset: body.preset,
        authorize_url: body.authorize_url,
        token_url: body.token_url,
        userinfo_url: body.userinfo_url,
        issuer: body.issuer,
        discovery_url: body.discovery_url,
        client_id: body.client_id,
        client_secret: body.client_secret,
        scopes: body.scopes.unwrap_or_default(),
        extra_authorize_params: body.extra_authorize_params.unwrap_or_default(),
        client_auth: body.client_auth,
    }
    .check()
    .map_err(settings_error)?;
    let now = now_ms();
    let base = ProviderRow {
        id: new_id(IdKind::OAuth2Provider),
        organization_id: env.organization_id.clone(),
        project_id: env.project_id.clone(),
        environment_id: env.id.clone(),
        name: name.into_inner(),
        target_kind: target.field().to_string(),
        target: target.as_str().to_string(),
        preset: None,
        authorize_url: None,
        token_url: None,
        userinfo_url: None,
        issuer: None,
        discovery_url: None,
        client_id: String::new(),
        client_secret_sealed: Vec::new(),
        master_key_id: String::new(),
        scopes: String::new(),
        extra_authorize_params: String::new(),
        client_auth: settings.client_auth,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let row = seal_row(svc, base, &settings)?;
    let effects = audit::effects(
        caller.into(),
        "oauth2_provider.created",
        ("oauth2_provider", &row.id),
        &environment_reach(&env),
        origin,
    );
    svc.store()
        .create_provider(&row, &effects)
        .await
        .map_err(|e| conflict(e, &target))?;
    from_row(svc, row)
}

/// Providers the caller can see: the API's of the visible environments
/// and the file's, optionally for one environment, API ones first.
pub async fn list(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<&str>,
    page: PageRequest,
) -> ApiResult<Page<Provider>> {
    let env = match environment_id {
        Some(id) => Some(visibility::environment(svc, &caller.reach, id).await?),
        None => None,
    };
    let env_filter = env
        .as_ref()
        .map(|e| e.id.clone())
        .or_else(|| caller.reach.environment_id.clone());
    let rows = svc
        .store()
        .list_providers(
            caller.organization_id(),
            caller.reach.project_id.as_deref(),
            env_filter.as_deref(),
        )
        .await?;
    let mut all = rows
        .into_iter()
        .map(|r| from_row(svc, r))
        .collect::<ApiResult<Vec<_>>>()?;
    all.extend(
        svc.config()
            .oauth2_providers
            .iter()
            .filter(|(_, p)| env_filter.as_deref().is_none_or(|e| p.serves(e)))
            .map(|(name, p)| from_file(name, p)),
    );
    let total = all.len() as i64;
    let items = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Page { items, total })
}

/// One provider the caller can see.
pub async fn show(svc: &Services, caller: &Principal, id: &str) -> ApiResult<Provider> {
    if let Some(name) = id.strip_prefix(&file_id("")) {
        let p = svc
            .config()
            .oauth2_providers
            .get(name)
            .ok_or(ApiError::NotFound)?;
        let visible = caller
            .reach
            .environment_id
            .as_deref()
            .is_none_or(|e| p.serves(e));
        return if visible {
            Ok(from_file(name, p))
        } else {
            Err(ApiError::NotFound)
        };
    }
    let row = svc.store().provider(id).await?.ok_or(ApiError::NotFound)?;
    if row.organization_id != caller.organization_id()
        || !caller
            .reach
            .sees_environment(&row.project_id, &row.environment_id)
    {
        return Err(ApiError::NotFound);
    }
    from_row(svc, row)
}

/// An API provider the caller may change (a file provider is 400: it is
/// changed in `gatehouse.toml`).
async fn changeable(svc: &Services, caller: &Principal, id: &str) -> ApiResult<Provider> {
    let p = show(svc, caller, id).await?;
    if p.source == Source::File {
        return Err(ApiError::field(
            "id",
            "is defined in gatehouse.toml; change it there",
        ));
    }
    Ok(p)
}

/// Changes a provider's settings (not its environment or target).
#[tracing::instrument(skip_all, fields(caller = %caller.id, provider = %id))]
pub async fn update(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: UpdateProvider,
) -> ApiResult<Provider> {
    let current = changeable(svc, caller, id).await?;
    let name = match body.name.as_deref() {
        Some(raw) => Name::parse(raw)
            .map_err(|m| ApiError::field("name", m))?
            .into_inner(),
        None => current.name.clone(),
    };
    let s = current.settings.clone();
    let settings = SettingsInput {
        preset: body.preset.or(s.preset),
        authorize_url: body.authorize_url.or(s.authorize_url),
        token_url: body.token_url.or(s.token_url),
        userinfo_url: body.userinfo_url.or(s.userinfo_url),
        issuer: body.issuer.or(s.issuer),
        discovery_url: body.discovery_url.or(s.discovery_url),
        client_id: body.client_id.or(Some(s.client_id)),
        client_secret: body.client_secret.or(Some(s.client_secret)),
        scopes: body.scopes.unwrap_or(s.scopes),
        extra_authorize_params: body
            .extra_authorize_params
            .unwrap_or(s.extra_authorize_params),
        client_auth: Some(
            body.client_auth
                .unwrap_or_else(|| s.client_auth.to_string()),
        ),
    }
    .check()
    .map_err(settings_error)?;
    let row = svc.store().provider(id).await?.ok_or(ApiError::NotFound)?;
    let env_reach = visibility::environment(svc, &caller.reach, &row.environment_id)
        .await
        .map(|e| environment_reach(&e))?;
    let row = seal_row(
        svc,
        ProviderRow {
            name,
            updated_at: now_ms(),
            ..row
        },
        &settings,
    )?;
    let effects = audit::effects(
        caller.into(),
        "oauth2_provider.updated",
        ("oauth2_provider", &row.id),
        &env_reach,
        origin,
    );
    svc.store()
        .update_provider(&row, &effects)
        .await
        .map_err(|e| conflict(e, &current.target))?;
    from_row(svc, row)
}

/// Deletes an API provider. Connections it issued keep their tokens until
/// they expire; they cannot be refreshed any more.
#[tracing::instrument(skip_all, fields(caller = %caller.id, provider = %id))]
pub async fn delete(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let current = changeable(svc, caller, id).await?;
    let env_id = current.environment_id.clone().unwrap_or_default();
    let env = visibility::environment(svc, &caller.reach, &env_id).await?;
    let effects = audit::effects(
        caller.into(),
        "oauth2_provider.deleted",
        ("oauth2_provider", &current.id),
        &environment_reach(&env),
        origin,
    );
    svc.store()
        .delete_provider(&current.id, now_ms(), &effects)
        .await?;
    Ok(())
}
