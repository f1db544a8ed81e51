//! OpenAPI schemas of the validated values request bodies and parameters
//! carry, so the document states exactly what the API accepts: the
//! patterns come from [`gatehouse_core::patterns`], the enumerations from
//! the domain's own lists. Input structs name them with
//! `#[schema(value_type = …)]`; they are never values themselves.

use gatehouse_core::{patterns, webhook::EVENT_TYPES, AccessType, Role, Scope};
use utoipa::{
    openapi::{schema::SchemaType, ObjectBuilder, RefOr, Schema, Type},
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

schema!(
    /// A webhook event type (SPEC §9).
    EventType => one_of("An event type.", EVENT_TYPES.iter().copied())
);
