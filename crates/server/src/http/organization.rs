//! `/v1/organization` and its members. Only owners and admins manage
//! members (with an organization-wide credential); only an owner makes
//! another owner, and the last owner can be neither demoted nor removed.
//! Removing a member revokes their personal access tokens at once; access
//! keys they created belong to the organization and keep working.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, patch},
    Router,
};
use gatehouse_core::{
    new_id,
    time::now_ms,
    validate::{check_password, Email, BLANK},
    IdKind, Reach, Role,
};
use gatehouse_store::members::User;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    auth::{Auth, Principal},
    error::{ApiError, ApiResult, FieldErrors},
    http::{
        extract::{ApiJson, QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        views::{MemberView, OrganizationView},
    },
    passwords,
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/organization", get(show))
        .route(
            "/v1/organization/members",
            get(list_members).post(add_member),
        )
        .route(
            "/v1/organization/members/{id}",
            patch(update_member).delete(remove_member),
        )
}

/// Body of `POST /v1/organization/members`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: Option<String>,
    /// `owner`, `admin`, `developer` (default) or `viewer`.
    pub role: Option<String>,
    /// At least 12 characters; generated (and returned once) when omitted.
    pub password: Option<String>,
}

/// Body of `PATCH /v1/organization/members/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    pub role: Option<String>,
}

/// 403 unless the caller acts for an owner or admin, organization-wide.
fn require_member_manager(p: &Principal) -> ApiResult<Role> {
    let role = p
        .role
        .filter(|r| r.manages_members())
        .ok_or_else(|| ApiError::forbidden("role", "only owners and admins manage members"))?;
    if !p.reach.covers(&Reach::organization(p.organization_id())) {
        return Err(ApiError::forbidden(
            "credential",
            "members are managed with an organization-wide credential",
        ));
    }
    Ok(role)
}

fn parse_role(raw: Option<&str>, default: Option<Role>) -> Result<Role, String> {
    match raw {
        None => default.ok_or_else(|| BLANK.to_string()),
        Some("") => Err(BLANK.into()),
        Some(r) => {
            Role::parse(r).ok_or_else(|| "must be one of owner, admin, developer, viewer".into())
        }
    }
}

async fn member_in_org(state: &AppState, p: &Principal, id: &str) -> ApiResult<User> {
    let user = state.store().user(id).await?.ok_or(ApiError::NotFound)?;
    if user.organization_id != p.organization_id() {
        return Err(ApiError::NotFound);
    }
    Ok(user)
}

/// The caller's organization.
#[utoipa::path(get, path = "/v1/organization", tag = "organization",
    responses((status = 200, body = Data<OrganizationView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Data<OrganizationView>> {
    let org = state
        .store()
        .organization(p.organization_id())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(OrganizationView::from(&org)))
}

/// Members of the organization, oldest first.
#[utoipa::path(get, path = "/v1/organization/members", tag = "organization",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list_members(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<MemberView>> {
    let page = query.page()?;
    let found = state.store().list_users(p.organization_id(), page).await?;
    Ok(List::new(found.map(|u| MemberView::from(&u)), page))
}

/// Add a member. Without a `password`, one is generated and returned in
/// this response only.
#[utoipa::path(post, path = "/v1/organization/members", tag = "organization", request_body = NewMember,
    responses((status = 201, body = Data<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    ApiJson(body): ApiJson<NewMember>,
) -> ApiResult<Response> {
    let caller_role = require_member_manager(&p)?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(body.email.as_deref().unwrap_or("")));
    let role = errors.check(
        "role",
        parse_role(body.role.as_deref(), Some(Role::Developer)),
    );
    if let Some(pw) = body.password.as_deref() {
        errors.check("password", check_password(pw));
    }
    if role == Some(Role::Owner) && caller_role != Role::Owner {
        return Err(ApiError::forbidden(
            "role",
            "only an owner can add an owner",
        ));
    }
    errors.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::field("input", BLANK));
    };
    let generated = body.password.is_none();
    let password = body
        .password
        .map(SecretString::from)
        .unwrap_or_else(passwords::generate);
    let user = User {
        id: new_id(IdKind::User),
        organization_id: p.organization_id().to_string(),
        email: email.into_inner(),
        password_hash: passwords::hash(password.clone()).await?,
        role,
        created_at: now_ms(),
        deleted_at: None,
    };
    state.store().create_user(&user).await?;
    state
        .audit(
            &p,
            "member.created",
            ("user", &user.id),
            &Reach::organization(p.organization_id()),
            &meta,
        )
        .await?;
    let mut view = MemberView::from(&user);
    if generated {
        view.password = Some(password.expose_secret().to_string());
    }
    Ok(created(view))
}

/// Change a member's role.
#[utoipa::path(patch, path = "/v1/organization/members/{id}", tag = "organization", params(("id" = String, Path)),
    request_body = MemberUpdate,
    responses((status = 200, body = Data<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), member = %id))]
pub async fn update_member(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MemberUpdate>,
) -> ApiResult<Data<MemberView>> {
    let caller_role = require_member_manager(&p)?;
    let mut user = member_in_org(&state, &p, &id).await?;
    let current = Some(user.role);
    let mut errors = FieldErrors::new();
    let role = errors.check("role", parse_role(body.role.as_deref(), None));
    errors.finish()?;
    let role = role.ok_or_else(|| ApiError::field("role", BLANK))?;
    if (role == Role::Owner || current == Some(Role::Owner)) && caller_role != Role::Owner {
        return Err(ApiError::forbidden(
            "role",
            "only an owner can make or unmake an owner",
        ));
    }
    if current == Some(Role::Owner)
        && role != Role::Owner
        && state.store().count_owners(p.organization_id()).await? <= 1
    {
        return Err(ApiError::field(
            "role",
            "the organization must keep at least one owner",
        ));
    }
    if current != Some(role) {
        state.store().set_role(&user.id, role).await?;
        state.forget_all_credentials().await;
        state
            .audit(
                &p,
                "member.updated",
                ("user", &user.id),
                &Reach::organization(p.organization_id()),
                &meta,
            )
            .await?;
        user.role = role;
    }
    Ok(ok(MemberView::from(&user)))
}

/// Remove a member; their personal access tokens are revoked.
#[utoipa::path(delete, path = "/v1/organization/members/{id}", tag = "organization", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), member = %id))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let caller_role = require_member_manager(&p)?;
    let user = member_in_org(&state, &p, &id).await?;
    if user.role == Role::Owner {
        if caller_role != Role::Owner {
            return Err(ApiError::forbidden(
                "role",
                "only an owner can remove an owner",
            ));
        }
        if state.store().count_owners(p.organization_id()).await? <= 1 {
            return Err(ApiError::field(
                "id",
                "the organization must keep at least one owner",
            ));
        }
    }
    state.store().remove_user(&user.id, now_ms()).await?;
    state.forget_all_credentials().await;
    state
        .audit(
            &p,
            "member.removed",
            ("user", &user.id),
            &Reach::organization(p.organization_id()),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
