//! The OpenAPI 3.1 document, assembled from the handlers' annotations.

use serde::Serialize;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

use crate::http::{
    access_keys, app_surface, apps, audit_events, connect, credentials, end_users, environments,
    login, ops, organization, personal_access_tokens, projects, tokens,
};

/// `{"error": {"code", "message", "details"?}}` (SPEC §2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, …
    pub code: String,
    /// The status's reason phrase.
    pub message: String,
    /// Field (dotted path) → what is wrong with it.
    #[schema(value_type = Option<Object>)]
    pub details: Option<std::collections::BTreeMap<String, String>>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access key (`dyn_…`) or personal access token (`dyn_pat_…`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "connect_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A connect token from POST /v1/connect/tokens (RS256 JWT).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Self-hosted credentials service: access keys, personal access tokens and connect tokens."),
    modifiers(&BearerAuth),
    paths(
        access_keys::create, access_keys::list, access_keys::show, access_keys::revoke, access_keys::rotate,
        personal_access_tokens::create, personal_access_tokens::list, personal_access_tokens::show,
        personal_access_tokens::revoke, personal_access_tokens::rotate,
        tokens::me,
        projects::list, projects::create, projects::show, projects::update, projects::remove,
        projects::list_environments, projects::create_environment,
        environments::show,
        organization::show, organization::list_members, organization::add_member,
        organization::update_member, organization::remove_member,
        audit_events::list,
        apps::list, apps::create, apps::show, apps::update, apps::remove,
        apps::list_versions, apps::create_version, apps::deploy,
        app_surface::mint, app_surface::status,
        connect::session, connect::end_session, connect::requirements, connect::requirements_status,
        connect::submit_credentials, connect::oauth2_authorize, connect::action_connector_authorize, connect::disconnect,
        end_users::list, end_users::show, end_users::erase, end_users::delete_connection, end_users::revoke_tokens,
        end_users::reveal,
        login::current,
        ops::healthz, ops::readyz, ops::metrics, ops::jwks, ops::openapi,
    ),
    components(schemas(ErrorEnvelope, credentials::CreateCredential, credentials::RotateCredential))
)]
pub struct ApiDoc;
