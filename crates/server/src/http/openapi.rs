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

/// Operation ids are the handlers' names, which repeat across resources
/// (`list`, `create`, `show`…); code generators need them unique. Each id
/// used more than once becomes `<id>_<resource>`, the resource being the
/// path's last literal segment other than the id itself (`list` on
/// `/v1/access-keys` is `list_access_keys`, `rotate` on
/// `/v1/access-keys/{id}/rotate` is `rotate_access_keys`); one still
/// repeated after that also gets its method.
pub fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    use std::collections::HashMap;
    fn operations(
        item: &mut utoipa::openapi::PathItem,
    ) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
        [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
            ("head", item.head.as_mut()),
            ("options", item.options.as_mut()),
        ]
        .into_iter()
        .filter_map(|(method, op)| op.map(|op| (method, op)))
    }
    let rename = |doc: &mut utoipa::openapi::OpenApi,
                  new_id: &dyn Fn(&str, &str, &str) -> String| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for item in doc.paths.paths.values_mut() {
            for (_, op) in operations(item) {
                if let Some(id) = &op.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for (path, item) in &mut doc.paths.paths {
            for (method, op) in operations(item) {
                if let Some(id) = op.operation_id.as_mut() {
                    if seen.get(id.as_str()).copied().unwrap_or(0) > 1 {
                        *id = new_id(id, path, method);
                    }
                }
            }
        }
    };
    rename(doc, &|id, path, _| {
        let resource = path
            .split('/')
            .rev()
            .find(|s| !s.is_empty() && !s.starts_with('{') && *s != id)
            .unwrap_or("api")
            .replace('-', "_");
        format!("{id}_{resource}")
    });
    rename(doc, &|id, _, method| format!("{id}_{method}"));
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Self-hosted credentials service: access keys, personal access tokens and connect tokens."),
    modifiers(&BearerAuth),
    components(schemas(ErrorEnvelope, CreateCredential, RotateCredential))
)]
pub struct ApiDoc;
