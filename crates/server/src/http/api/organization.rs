//! `/v1/organization` and its members (SPEC §4): only owners and admins
//! manage members; the last owner stays an owner.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::{ApiJson, QueryMap},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        views::{MemberView, OrganizationView},
    },
    service::{
        audit::Origin,
        members::{self, MemberUpdate, NewMember},
        tenancy, Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
}

/// The caller's organization.
#[utoipa::path(get, path = "/v1/organization", tag = "organization",
    responses((status = 200, body = Data<OrganizationView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn show(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Data<OrganizationView>> {
    Ok(ok(OrganizationView::from(
        &tenancy::organization(&svc, &p).await?,
    )))
}

/// Members of the organization, oldest first.
#[utoipa::path(get, path = "/v1/organization/members", tag = "organization",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list_members(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<MemberView>> {
    let page = query.page()?;
    let found = members::list(&svc, &p, page).await?;
    Ok(List::new(found.map(|u| MemberView::from(&u)), page))
}

/// Add a member. Without a `password`, one is generated and returned in
/// this response only.
#[utoipa::path(post, path = "/v1/organization/members", tag = "organization", request_body = NewMember,
    responses((status = 201, body = Data<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn add_member(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<NewMember>,
) -> ApiResult<Response> {
    let added = members::add(&svc, &p, &origin, body).await?;
    let mut view = MemberView::from(&added.user);
    view.password = added.generated_password.as_ref().map(Into::into);
    Ok(created(view))
}

/// Change a member's role.
#[utoipa::path(patch, path = "/v1/organization/members/{id}", tag = "organization", params(("id" = String, Path)),
    request_body = MemberUpdate,
    responses((status = 200, body = Data<MemberView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, member = %id))]
pub async fn update_member(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MemberUpdate>,
) -> ApiResult<Data<MemberView>> {
    let user = members::update(&svc, &p, &origin, &id, body).await?;
    Ok(ok(MemberView::from(&user)))
}

/// Remove a member; their personal access tokens are revoked.
#[utoipa::path(delete, path = "/v1/organization/members/{id}", tag = "organization", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, member = %id))]
pub async fn remove_member(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    members::remove(&svc, &p, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
