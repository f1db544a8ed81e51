//! `/v1/apps`: apps on their own hostnames, their immutable versions
//! (requirements) and deployments (SPEC §5).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
    Router,
};
use gatehouse_core::{
    new_id,
    requirement::{parse_requirements, Requirement},
    time::{format_ms, now_ms},
    validate::{Hostname, Name, Slug, BLANK},
    AccessType, IdKind, Reach,
};
use gatehouse_store::apps::{App, AppFilter, AppVersion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::{Auth, Principal},
    error::{ApiError, ApiResult, FieldErrors},
    http::environments::visible_environment,
    http::{
        extract::{ApiJson, OptionalJson, QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        surface::normalize_host,
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/apps", get(list).post(create))
        .route("/v1/apps/{id}", get(show).patch(update).delete(remove))
        .route(
            "/v1/apps/{id}/versions",
            get(list_versions).post(create_version),
        )
        .route("/v1/apps/{id}/deployments", post(deploy))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessControl {
    /// `private` (an access key with connect:write mints tokens) or `public`.
    pub access_type: String,
}

/// An app (SPEC §5).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// `app_…`
    pub id: String,
    pub name: String,
    pub slug: String,
    pub hostname: String,
    pub project_id: String,
    pub environment_id: String,
    pub access_control: AccessControl,
    pub deployed_version_id: Option<String>,
    pub created_at: String,
}

impl From<&App> for AppView {
    fn from(a: &App) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            slug: a.slug.clone(),
            hostname: a.hostname.clone(),
            project_id: a.project_id.clone(),
            environment_id: a.environment_id.clone(),
            access_control: AccessControl {
                access_type: a.access_type.to_string(),
            },
            deployed_version_id: a.deployed_version_id.clone(),
            created_at: format_ms(a.created_at),
        }
    }
}

/// An immutable snapshot of an app's requirements.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// `ver_…`
    pub id: String,
    pub app_id: String,
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<Requirement>,
    pub created_at: String,
}

impl VersionView {
    fn new(v: &AppVersion) -> ApiResult<Self> {
        Ok(Self {
            id: v.id.clone(),
            app_id: v.app_id.clone(),
            requirements: requirements_of(v)?,
            created_at: format_ms(v.created_at),
        })
    }
}

/// The requirements stored in a version.
pub fn requirements_of(v: &AppVersion) -> ApiResult<Vec<Requirement>> {
    serde_json::from_str(&v.requirements)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("version {} requirements: {e}", v.id)))
}

/// Body of `POST /v1/apps`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub name: Option<String>,
    /// Optional for an environment-scoped credential.
    pub environment_id: Option<String>,
    /// `[a-z0-9-]{1,63}`, unique per environment; derived from the name.
    pub slug: Option<String>,
    /// Default `<slug>.<apps_domain>` in `live`, `<slug>-<environment>.<apps_domain>` elsewhere.
    pub hostname: Option<String>,
    /// `private` (default) or `public`.
    pub access_type: Option<String>,
}

/// Body of `PATCH /v1/apps/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub access_type: Option<String>,
}

/// Body of `POST /v1/apps/{id}/versions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    /// Each `{name, type, title?, description?, spec: {type, data}}`.
    #[schema(value_type = Vec<Object>)]
    pub requirements: Option<serde_json::Value>,
}

/// Body of `POST /v1/apps/{id}/deployments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    pub version_id: Option<String>,
}

fn parse_access_type(raw: Option<&str>) -> Result<AccessType, String> {
    match raw.unwrap_or("private") {
        "" => Err(BLANK.into()),
        t => AccessType::parse(t).ok_or_else(|| "must be private or public".into()),
    }
}

/// A custom hostname: a DNS name that is not the management host.
fn parse_hostname(state: &AppState, raw: &str) -> Result<String, String> {
    let host = Hostname::parse(raw)?.into_inner();
    let public_host = state
        .config()
        .public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(normalize_host);
    if public_host.as_deref() == Some(host.as_str()) {
        return Err("must not be the host of public_url".into());
    }
    Ok(host)
}

pub fn app_reach(app: &App) -> Reach {
    Reach {
        organization_id: app.organization_id.clone(),
        project_id: Some(app.project_id.clone()),
        environment_id: Some(app.environment_id.clone()),
    }
}

/// A live app the caller can see (404 otherwise).
pub async fn visible_app(state: &AppState, p: &Principal, id: &str) -> ApiResult<App> {
    let app = state.store().app(id).await?.ok_or(ApiError::NotFound)?;
    if app.organization_id != p.organization_id()
        || !p
            .reach
            .sees_environment(&app.project_id, &app.environment_id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(app)
}

/// Apps the caller can see, newest first; filter with `environment_id`.
#[utoipa::path(get, path = "/v1/apps", tag = "apps",
    params(("environment_id" = Option<String>, Query), ("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<AppView>> {
    let page = query.page()?;
    let mut filter = AppFilter {
        organization_id: p.organization_id().to_string(),
        project_id: p.reach.project_id.clone(),
        environment_id: p.reach.environment_id.clone(),
    };
    if let Some(env_id) = query.string("environment_id") {
        let env = visible_environment(&state, &p.reach, &env_id).await?;
        filter.environment_id = Some(env.id);
    }
    let found = state.store().list_apps(&filter, page).await?;
    Ok(List::new(found.map(|a| AppView::from(&a)), page))
}

/// Create an app in an environment.
#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = CreateApp,
    responses((status = 201, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateApp>,
) -> ApiResult<Response> {
    let env_id = body
        .environment_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| p.reach.environment_id.clone())
        .ok_or_else(|| ApiError::field("environment_id", BLANK))?;
    let env = visible_environment(&state, &p.reach, &env_id).await?;
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
    let hostname = match (body.hostname.as_deref(), &slug) {
        (Some(raw), _) => errors.check("hostname", parse_hostname(&state, raw)),
        (None, Some(slug)) => {
            let host = if env.name == "live" {
                format!("{}.{}", slug, state.config().apps_domain)
            } else {
                format!("{}-{}.{}", slug, env.name, state.config().apps_domain)
            };
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
    };
    state.store().create_app(&app).await?;
    state.forget_apps().await;
    state
        .audit(&p, "app.created", ("app", &app.id), &app_reach(&app), &meta)
        .await?;
    Ok(created(AppView::from(&app)))
}

/// One app.
#[utoipa::path(get, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 200, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<AppView>> {
    Ok(ok(AppView::from(&visible_app(&state, &p, &id).await?)))
}

/// Change an app's name, hostname or access type.
#[utoipa::path(patch, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)), request_body = UpdateApp,
    responses((status = 200, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<UpdateApp>,
) -> ApiResult<Data<AppView>> {
    let mut app = visible_app(&state, &p, &id).await?;
    let mut errors = FieldErrors::new();
    if let Some(raw) = body.name.as_deref() {
        if let Some(name) = errors.check("name", Name::parse(raw)) {
            app.name = name.into_inner();
        }
    }
    if let Some(raw) = body.hostname.as_deref() {
        if let Some(host) = errors.check("hostname", parse_hostname(&state, raw)) {
            app.hostname = host;
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
    state.store().update_app(&app).await?;
    state.forget_apps().await;
    state
        .audit(&p, "app.updated", ("app", &app.id), &app_reach(&app), &meta)
        .await?;
    Ok(ok(AppView::from(&app)))
}

/// Delete an app: its hostname stops answering, its connect tokens stop
/// working and its end users' connections are deleted.
#[utoipa::path(delete, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let app = visible_app(&state, &p, &id).await?;
    state.store().delete_app(&app.id, now_ms()).await?;
    state.forget_apps().await;
    state
        .audit(&p, "app.deleted", ("app", &app.id), &app_reach(&app), &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An app's versions, newest first.
#[utoipa::path(get, path = "/v1/apps/{id}/versions", tag = "apps",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<VersionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn list_versions(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<List<VersionView>> {
    let page = query.page()?;
    let app = visible_app(&state, &p, &id).await?;
    let found = state.store().list_versions(&app.id, page).await?;
    let views = found
        .items
        .iter()
        .map(VersionView::new)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(List::new(
        gatehouse_store::Page {
            items: views,
            total: found.total,
        },
        page,
    ))
}

/// Create a version: an immutable snapshot of the requirements.
#[utoipa::path(post, path = "/v1/apps/{id}/versions", tag = "apps", params(("id" = String, Path)),
    request_body = CreateVersion,
    responses((status = 201, body = Data<VersionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn create_version(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateVersion>,
) -> ApiResult<Response> {
    let app = visible_app(&state, &p, &id).await?;
    let input = body.requirements.unwrap_or(serde_json::Value::Null);
    let catalog = state.catalog();
    let requirements =
        parse_requirements(&input, |t| catalog.get(t).map(|ct| ct.title().to_string()))
            .map_err(ApiError::BadRequest)?;
    let version = AppVersion {
        id: new_id(IdKind::Version),
        app_id: app.id.clone(),
        requirements: serde_json::to_string(&requirements)
            .map_err(|e| ApiError::Internal(e.into()))?,
        created_at: now_ms(),
    };
    state.store().create_version(&version).await?;
    state
        .audit(
            &p,
            "app_version.created",
            ("app_version", &version.id),
            &app_reach(&app),
            &meta,
        )
        .await?;
    Ok(created(VersionView::new(&version)?))
}

/// Deploy a version: it becomes the requirements end users fulfil.
#[utoipa::path(post, path = "/v1/apps/{id}/deployments", tag = "apps", params(("id" = String, Path)),
    request_body = CreateDeployment,
    responses((status = 201, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn deploy(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<Response> {
    let mut app = visible_app(&state, &p, &id).await?;
    let version_id = body
        .version_id
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::field("version_id", BLANK))?;
    let version = state
        .store()
        .version(&app.id, &version_id)
        .await?
        .ok_or_else(|| ApiError::field("version_id", "is not a version of this app"))?;
    state.store().deploy(&app.id, &version.id).await?;
    app.deployed_version_id = Some(version.id.clone());
    state.forget_apps().await;
    state
        .audit(
            &p,
            "app.deployed",
            ("app_version", &version.id),
            &app_reach(&app),
            &meta,
        )
        .await?;
    Ok(created(AppView::from(&app)))
}
