//! The OpenAPI 3.1 document's frame: title, the two security schemes and
//! the error envelope. Each route adds its own description where it is
//! registered (`utoipa-axum`), so nothing lists the routes twice.

use serde::Serialize;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

use crate::service::credentials::{CreateCredential, RotateCredential};

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
    components(schemas(ErrorEnvelope, CreateCredential, RotateCredential))
)]
pub struct ApiDoc;
