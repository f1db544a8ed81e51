//! The JSON API, one module per resource path (`/v1/access-keys` is
//! [`access_keys`], `/v1/connect/*` and the app surface are [`connect`]).
//! A handler parses (extractors), calls one use case of
//! [`crate::service`], and renders the result; each module registers its
//! routes, with their OpenAPI description, once.

pub mod access_keys;
pub mod apps;
pub mod audit_events;
pub mod connect;
pub mod credentials;
pub mod end_users;
pub mod environments;
pub mod oauth2_providers;
pub mod ops;
pub mod organization;
pub mod personal_access_tokens;
pub mod projects;
pub mod session;
pub mod tokens;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::{
    error::ApiResult, http::extract::QueryMap, service::credentials::ListCredentials,
    state::AppState,
};

/// Every management-surface API route.
pub fn management_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::routes())
        .merge(ops::management_ops_routes())
        .merge(tokens::routes())
        .merge(access_keys::routes())
        .merge(personal_access_tokens::routes())
        .merge(projects::routes())
        .merge(environments::routes())
        .merge(organization::routes())
        .merge(audit_events::routes())
        .merge(apps::routes())
        .merge(oauth2_providers::routes())
        .merge(end_users::routes())
        .merge(connect::routes())
        .merge(session::routes())
        .merge(webhooks::routes())
        .merge(credentials::routes())
}

/// Every route of an app's own hostname.
pub fn app_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::routes())
        .merge(connect::app_routes())
}

/// `?project_id=&environment_id=&active=` of the credential listings.
fn credential_filter(query: &QueryMap) -> ApiResult<ListCredentials> {
    Ok(ListCredentials {
        project_id: query.string("project_id"),
        environment_id: query.string("environment_id"),
        active: query.boolean("active")?,
    })
}
