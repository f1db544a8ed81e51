//! Apps on their own hostnames, their immutable versions (requirements)
//! and deployments (SPEC §5). Any change to an app drops the host and
//! connect-token caches on every node.

use gatehouse_core::{
    app::default_hostname,
    new_id,
    requirement::{parse_requirements, Requirement},
    time::now_ms,
    validate::{normalize_host, Hostname, Name, Slug, BLANK},
    AccessType, IdKind,
};
use gatehouse_store::{
    apps::{App, AppFilter, AppVersion},
    Page, PageRequest,
};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    audit::{self, Origin},
    principal::{app_reach, Principal},
    schema::{AccessTypeName, NameText, RequirementInput, SlugText},
    visibility, Services,
};
use crate::{
    catalog::{Catalog, PublicView},
    error::{ApiError, ApiResult, FieldErrors},
};

/// Body of `POST /v1/apps`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    #[schema(value_type = NameText, required = true)]
    pub name: Option<String>,
    /// Optional for an environment-scoped credential.
    pub environment_id: Option<String>,
    /// `[a-z0-9-]{1,63}`, unique per environment; derived from the name.
    #[schema(value_type = Option<SlugText>)]
    pub slug: Option<String>,
    /// Default `<slug>.<apps_domain>` in `live`, `<slug>-<environment>.<apps_domain>` elsewhere.
    pub hostname: Option<String>,
    /// `private` (default) or `public`.
    #[schema(value_type = Option<AccessTypeName>)]
    pub access_type: Option<String>,
    /// Origins (`https://app.example.com`) a connect token's `redirect_url`
    /// must be on; none or empty: any https URL.
    #[schema(max_items = 20)]
    pub allowed_redirect_origins: Option<Vec<String>>,
}

/// Body of `PATCH /v1/apps/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    #[schema(value_type = Option<NameText>)]
    pub name: Option<String>,
    pub hostname: Option<String>,
    #[schema(value_type = Option<AccessTypeName>)]
    pub access_type: Option<String>,
    /// Replaces the list; `[]` allows any https URL again.
    #[schema(max_items = 20)]
    pub allowed_redirect_origins: Option<Vec<String>>,
}

/// The most origins one app may list.
const MAX_ORIGINS: usize = 20;

/// The stored form of `allowed_redirect_origins`: canonical origins,
/// space-separated, none for an empty list.
fn parse_origins(raw: &[String]) -> Result<Option<String>, String> {
    if raw.len() > MAX_ORIGINS {
        return Err(format!("must list at most {MAX_ORIGINS} origins"));
    }
    let mut origins = Vec::new();
    for o in raw {
        let o = gatehouse_core::validate::parse_origin(o).map_err(|e| format!("{o:?} {e}"))?;
        if !origins.contains(&o) {
            origins.push(o);
        }
    }
    Ok((!origins.is_empty()).then(|| origins.join(" ")))
}

/// Body of `POST /v1/apps/{id}/versions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    /// Each `{name, type, title?, description?, spec: {type, data}}`; at
    /// most 100.
    #[schema(value_type = Vec<RequirementInput>, max_items = 100)]
    pub requirements: Option<serde_json::Value>,
}

/// Body of `POST /v1/apps/{id}/deployments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// A version (`ver_…`) of this app.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub version_id: Option<String>,
}

/// A stored version with its requirements read back.
#[derive(Debug, Clone)]
pub struct Version {
    pub row: AppVersion,
    pub requirements: Vec<Requirement>,
}

impl Version {
    fn read(row: AppVersion) -> ApiResult<Self> {
        Ok(Self {
            requirements: requirements_of(&row)?,
            row,
        })
    }
}

/// The requirements stored in a version.
pub fn requirements_of(v: &AppVersion) -> ApiResult<Vec<Requirement>> {
    serde_json::from_str(&v.requirements)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("version {} requirements: {e}", v.id)))
}

/// The requirements of the app's deployed version (none when nothing is
/// deployed).
pub async fn deployed_requirements(svc: &Services, app: &App) -> ApiResult<Vec<Requirement>> {
    Ok(deployed(svc, app).await?.requirements.clone())
}

/// The app's deployed version as parsed and rendered once (empty when
/// nothing is deployed), shared with every request that reads it.
pub async fn deployed(svc: &Services, app: &App) -> ApiResult<Arc<Parsed>> {
    let Some(version_id) = app.deployed_version_id.as_deref() else {
        return Ok(Arc::default());
    };
    if let Some(parsed) = svc.requirements_cache().0.get(version_id) {
        return Ok(parsed);
    }
    let version = svc
        .store()
        .version(&app.id, version_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "deployed version {version_id} of {} is missing",
                app.id
            ))
        })?;
    let parsed = Parsed::new(
        requirements_of(&version)?,
        version.requirements.len(),
        svc.catalog(),
    )
    .map_err(|e| ApiError::internal(anyhow::anyhow!("rendering requirements: {e}")))?;
    let parsed = Arc::new(parsed);
    svc.requirements_cache()
        .0
        .insert(version_id.to_owned(), parsed.clone());
    Ok(parsed)
}

/// A requirement with its connection type (title, `auth`, JSON Schema of
/// `config`, secret fields) as the connect-token routes show it.
#[derive(Serialize)]
struct Rendered<'a> {
    #[serde(flatten)]
    requirement: &'a Requirement,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_type: Option<PublicView>,
}

/// The JSON object of [`Rendered`] without its closing brace, so that the
/// end user's own fields can follow it.
fn render(catalog: &Catalog, requirement: &Requirement) -> serde_json::Result<String> {
    let connection_type = requirement
        .connection_type()
        .and_then(|t| catalog.get(t))
        .map(|t| t.public_view());
    let mut json = serde_json::to_string(&Rendered {
        requirement,
        connection_type,
    })?;
    json.pop();
    Ok(json)
}

/// Versions' requirements, parsed once. A version never changes, so an
/// entry never goes stale; it is keyed by version id (unique across apps:
/// a ULID), looked up without allocating, and bounded by
/// the size of the stored requirements and their rendered form.
pub struct RequirementsCache(moka::sync::Cache<String, Arc<Parsed>>);

/// One version's requirements, each also rendered ([`Parsed::rendered`]),
/// and the size of both.
#[derive(Default)]
pub struct Parsed {
    requirements: Vec<Requirement>,
    rendered: Vec<String>,
    bytes: usize,
}

impl Parsed {
    /// `requirements` (parsed from `stored_bytes` of JSON) with their
    /// rendered form, connection types from `catalog`.
    pub fn new(
        requirements: Vec<Requirement>,
        stored_bytes: usize,
        catalog: &Catalog,
    ) -> serde_json::Result<Self> {
        let rendered = requirements
            .iter()
            .map(|r| render(catalog, r))
            .collect::<serde_json::Result<Vec<_>>>()?;
        // The parsed requirements at about the size of their stored JSON,
        // and the rendered text (the connection types in it are shared).
        let bytes = stored_bytes + rendered.iter().map(String::len).sum::<usize>();
        Ok(Self {
            requirements,
            rendered,
            bytes,
        })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Each requirement's JSON object as the connect-token routes show it
    /// (with its connection type), without the closing brace: a `,` and
    /// the fields that depend on the end user, then `}`, complete it.
    pub fn rendered(&self) -> &[String] {
        &self.rendered
    }
}

impl RequirementsCache {
    /// At most this many bytes of stored requirements.
    const BYTES: u64 = 8 << 20;
}

impl Default for RequirementsCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(Self::BYTES)
                .weigher(|k: &String, v: &Arc<Parsed>| {
                    u32::try_from(k.len() + v.bytes).unwrap_or(u32::MAX)
                })
                .build(),
        )
    }
}

fn parse_access_type(raw: Option<&str>) -> Result<AccessType, String> {
    match raw.unwrap_or("private") {
        "" => Err(BLANK.into()),
        t => AccessType::parse(t).ok_or_else(|| "must be private or public".into()),
    }
}

/// A custom hostname: a DNS name that is not the management host.
fn parse_hostname(svc: &Services, raw: &str) -> Result<String, String> {
    let host = Hostname::parse(raw)?.into_inner();
    let public_host = url::Url::parse(&svc.config().public_url)
        .ok()
        .and_then(|u| u.host_str().and_then(normalize_host));
    if public_host.as_deref() == Some(host.as_str()) {
        return Err("must not be the host of public_url".into());
    }
    Ok(host)
}

/// Apps the caller can see, newest first, optionally of one environment.
pub async fn list(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<&str>,
    page: PageRequest,
) -> ApiResult<Page<App>> {
    let mut filter = AppFilter {
        organization_id: caller.organization_id().to_string(),
        project_id: caller.reach.project_id.clone(),
        environment_id: caller.reach.environment_id.clone(),
    };
    if let Some(env_id) = environment_id {
        let env = visibility::environment(svc, &caller.reach, env_id).await?;
        filter.environment_id = Some(env.id);
    }
    Ok(svc.store().list_apps(&filter, page).await?)
}

/// Creates an app in an environment, on its default or a custom hostname.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn create(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    body: CreateApp,
) -> ApiResult<App> {
    let env_id = body
        .environment_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| caller.reach.environment_id.clone())
        .ok_or_else(|| ApiError::field("environment_id", BLANK))?;
    let env = visibility::environment(svc, &caller.reach, &env_id).await?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Name::parse(body.name.as_deref().unwrap_or("")));
    let slug = match body.slug.as_deref() {
        Some(raw) => errors.check("slug", Slug::parse(raw)),
        None => name
            .as_ref()
            .and_then(|n| Slug::from_name(n.as_str()))
            .or_else(|| {
                errors.add("slug", "cannot be derived from the name; give one");
                None
            }),
    };
    let access_type = errors.check(
        "access_type",
        parse_access_type(body.access_type.as_deref()),
    );
    let origins = match body.allowed_redirect_origins.as_deref() {
        Some(list) => errors
            .check("allowed_redirect_origins", parse_origins(list))
            .flatten(),
        None => None,
    };
    let hostname = match (body.hostname.as_deref(), &slug) {
        (Some(raw), _) => errors.check("hostname", parse_hostname(svc, raw)),
        (None, Some(slug)) => {
            let host = default_hostname(slug, &env.name, &svc.config().apps_domain);
            errors.check("hostname", Hostname::parse(&host).map(Hostname::into_inner))
        }
        (None, None) => None,
    };
    errors.finish()?;
    let (Some(name), Some(slug), Some(access_type), Some(hostname)) =
        (name, slug, access_type, hostname)
    else {
        return Err(ApiError::field("input", BLANK));
    };
    let app = App {
        id: new_id(IdKind::App),
        organization_id: env.organization_id.clone(),
        project_id: env.project_id.clone(),
        environment_id: env.id.clone(),
        name: name.into_inner(),
        slug: slug.into_inner(),
        hostname,
        access_type,
        deployed_version_id: None,
        created_at: now_ms(),
        deleted_at: None,
        allowed_redirect_origins: origins,
    };
    let effects = audit::effects(
        caller.into(),
        "app.created",
        ("app", &app.id),
        &app_reach(&app),
        origin,
    );
    svc.store().create_app(&app, &effects).await?;
    svc.forget_apps().await;
    Ok(app)
}

/// One app.
pub async fn show(svc: &Services, caller: &Principal, id: &str) -> ApiResult<App> {
    visibility::app(svc, caller, id).await
}

/// Changes an app's name, hostname or access type.
#[tracing::instrument(skip_all, fields(caller = %caller.id, app = %id))]
pub async fn update(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: UpdateApp,
) -> ApiResult<App> {
    let mut app = visibility::app(svc, caller, id).await?;
    let mut errors = FieldErrors::new();
    if let Some(raw) = body.name.as_deref() {
        if let Some(name) = errors.check("name", Name::parse(raw)) {
            app.name = name.into_inner();
        }
    }
    if let Some(raw) = body.hostname.as_deref() {
        if let Some(host) = errors.check("hostname", parse_hostname(svc, raw)) {
            app.hostname = host;
        }
    }
    if let Some(list) = body.allowed_redirect_origins.as_deref() {
        if let Some(origins) = errors.check("allowed_redirect_origins", parse_origins(list)) {
            app.allowed_redirect_origins = origins;
        }
    }
    if body.access_type.is_some() {
        if let Some(t) = errors.check(
            "access_type",
            parse_access_type(body.access_type.as_deref()),
        ) {
            app.access_type = t;
        }
    }
    errors.finish()?;
    let effects = audit::effects(
        caller.into(),
        "app.updated",
        ("app", &app.id),
        &app_reach(&app),
        origin,
    );
    svc.store().update_app(&app, &effects).await?;
    svc.forget_apps().await;
    Ok(app)
}

/// Deletes an app: its hostname stops answering, its connect tokens stop
/// working and its end users' connections are deleted.
#[tracing::instrument(skip_all, fields(caller = %caller.id, app = %id))]
pub async fn delete(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let app = visibility::app(svc, caller, id).await?;
    let effects = audit::effects(
        caller.into(),
        "app.deleted",
        ("app", &app.id),
        &app_reach(&app),
        origin,
    );
    svc.store().delete_app(&app.id, now_ms(), &effects).await?;
    svc.forget_apps().await;
    Ok(())
}

/// An app's versions, newest first.
pub async fn list_versions(
    svc: &Services,
    caller: &Principal,
    id: &str,
    page: PageRequest,
) -> ApiResult<Page<Version>> {
    let app = visibility::app(svc, caller, id).await?;
    let found = svc.store().list_versions(&app.id, page).await?;
    Ok(Page {
        items: found
            .items
            .into_iter()
            .map(Version::read)
            .collect::<ApiResult<_>>()?,
        total: found.total,
    })
}

/// Creates a version: an immutable snapshot of the requirements, each
/// checked against the catalog.
#[tracing::instrument(skip_all, fields(caller = %caller.id, app = %id))]
pub async fn create_version(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: CreateVersion,
) -> ApiResult<Version> {
    let app = visibility::app(svc, caller, id).await?;
    let input = body.requirements.unwrap_or(serde_json::Value::Null);
    let catalog = svc.catalog();
    let requirements =
        parse_requirements(&input, |t| catalog.get(t).map(|ct| ct.title().to_string()))
            .map_err(ApiError::BadRequest)?;
    let row = AppVersion {
        id: new_id(IdKind::Version),
        app_id: app.id.clone(),
        requirements: serde_json::to_string(&requirements).map_err(ApiError::internal)?,
        created_at: now_ms(),
    };
    let effects = audit::effects(
        caller.into(),
        "app_version.created",
        ("app_version", &row.id),
        &app_reach(&app),
        origin,
    );
    svc.store().create_version(&row, &effects).await?;
    Ok(Version { row, requirements })
}

/// Deploys a version: it becomes the requirements end users fulfil.
#[tracing::instrument(skip_all, fields(caller = %caller.id, app = %id))]
pub async fn deploy(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: CreateDeployment,
) -> ApiResult<App> {
    let mut app = visibility::app(svc, caller, id).await?;
    let version_id = body
        .version_id
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::field("version_id", BLANK))?;
    let version = svc
        .store()
        .version(&app.id, &version_id)
        .await?
        .ok_or_else(|| ApiError::field("version_id", "is not a version of this app"))?;
    let effects = audit::effects(
        caller.into(),
        "app.deployed",
        ("app_version", &version.id),
        &app_reach(&app),
        origin,
    );
    svc.store().deploy(&app.id, &version.id, &effects).await?;
    app.deployed_version_id = Some(version.id.clone());
    svc.forget_apps().await;
    Ok(app)
}
