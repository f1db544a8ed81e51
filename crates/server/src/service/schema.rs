//! OpenAPI schemas of the validated values request bodies and parameters
//! carry, so the document states exactly what the API accepts: the
//! patterns come from [`gatehouse_core::patterns`], the enumerations from
//! the domain's own lists. Input structs name them with
//! `#[schema(value_type = …)]`; they are never values themselves.

use gatehouse_core::{patterns, webhook::EVENT_TYPES, AccessType, Role, Scope};
use utoipa::{
    openapi::{
        schema::{AdditionalProperties, SchemaType},
        ObjectBuilder, RefOr, Schema, Type,
    },
    PartialSchema, ToSchema,
};

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
}

fn one_of(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    text(description).enum_values(Some(values)).into()
}

macro_rules! schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

schema!(
    /// A key, project, app or provider name.
    NameText => text("1–100 characters once surrounding whitespace is trimmed; no control characters.")
        .pattern(Some(patterns::name()))
        .into()
);

schema!(
    /// An app slug or environment name.
    SlugText => text("1–63 characters of a-z, 0-9 and '-', not starting or ending with '-'.")
        .pattern(Some(patterns::SLUG))
        .into()
);

schema!(
    /// A platform's id for its end user.
    UserIdText => text(
        "1–250 characters (after NFC); no leading or trailing whitespace, no control or \
         invisible format characters.",
    )
    .max_length(Some(250))
    .pattern(Some(patterns::user_id()))
    .into()
);

schema!(
    /// One string of a leak report.
    LeakedToken => text("A token found in the open: at most 256 characters.")
        .max_length(Some(256))
        .into()
);

schema!(
    /// A scope name (SPEC §3).
    ScopeName => one_of("A scope.", Scope::ALL.iter().map(|s| s.as_str()))
);

schema!(
    /// A member's role.
    RoleName => one_of("A role.", Role::ALL.iter().map(|r| r.as_str()))
);

schema!(
    /// An app's access type.
    AccessTypeName => one_of(
        "`private` (default) or `public`.",
        [AccessType::Private.as_str(), AccessType::Public.as_str()],
    )
);

/// What a requirement's `type` and `spec.type` may be
/// (`pipedream_account` is the alias of `action_connector_account`).
const REQUIREMENT_TYPES: [&str; 3] = [
    "connection",
    "action_connector_account",
    "pipedream_account",
];

fn nullable_text(max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .description(Some(description))
}

schema!(
    /// One requirement of `POST /v1/apps/{id}/versions` (SPEC §5), as
    /// `gatehouse_core::requirement::parse_requirements` reads it.
    RequirementInput => ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .description(Some(
            "`type` equals `spec.type`; names are unique in the version; \
             `spec.data` is `{type}` (a catalog connection type) for a connection, \
             `{app_slug}` for an action-connector account.",
        ))
        .property(
            "name",
            text("1–64 characters of a-z, 0-9 and _.").pattern(Some("^[a-z0-9_]{1,64}$")),
        )
        .property("type", text("The requirement's kind.").enum_values(Some(REQUIREMENT_TYPES)))
        .property("title", nullable_text(200, "Default: the connection type's title or the app slug."))
        .property("description", nullable_text(2000, "Shown to the end user."))
        .property(
            "spec",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Object))
                .property("type", text("Equals the requirement's `type`.").enum_values(Some(REQUIREMENT_TYPES)))
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::Type(Type::Object))
                        .description(Some(
                            "`{type}` for a connection, `{app_slug}` for an account.",
                        ))
                        .property("type", text("A catalog connection type, e.g. `dynamiq.connections.OpenAI`."))
                        .property("app_slug", text("An action connector's app, e.g. `gmail`.")),
                )
                .required("type")
                .required("data"),
        )
        .required("name")
        .required("type")
        .required("spec")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
);

schema!(
    /// A webhook event type (SPEC §9).
    EventType => one_of("An event type.", EVENT_TYPES.iter().copied())
);
