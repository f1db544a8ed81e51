//! The OpenAPI 3.1 document's frame: title, the two security schemes and
//! the error envelope. Each route adds its own description where it is
//! registered (`utoipa-axum`), so nothing lists the routes twice.

use serde::Serialize;
use utoipa::{
    openapi::{
        schema::{SchemaType, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        RefOr, Schema,
    },
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

/// A route whose body fields are all optional takes no body at all
/// (SPEC §2), which its `request_body = Option<T>` says; but utoipa then
/// also writes the body's schema as `T | null`, and `null` is not a body
/// such a route takes. This keeps the optional body and drops the `null`.
pub fn optional_bodies_not_null(doc: &mut utoipa::openapi::OpenApi) {
    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let Some(body) = op.request_body.as_mut().filter(|b| b.required.is_none()) else {
                continue;
            };
            for content in body.content.values_mut() {
                if let Some(RefOr::T(Schema::OneOf(one))) = &content.schema {
                    if let [a, b] = one.items.as_slice() {
                        match (is_null(a), is_null(b)) {
                            (true, false) => content.schema = Some(b.clone()),
                            (false, true) => content.schema = Some(a.clone()),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Self-hosted credentials service: access keys, personal access tokens and connect tokens."),
    modifiers(&BearerAuth),
    components(schemas(ErrorEnvelope, CreateCredential, RotateCredential))
)]
pub struct ApiDoc;
