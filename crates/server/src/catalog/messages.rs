//! Schema errors as the API reports them: one short message per field,
//! named by its dotted path, never repeating the submitted value (it may be
//! a secret).

use std::collections::BTreeMap;

use gatehouse_core::validate::BLANK;
use jsonschema::{
    error::{TypeKind, ValidationErrorKind},
    paths::{Location, LocationSegment},
    JsonType, ValidationError,
};
use serde_json::Value;

use super::builtin::HTTP_URL_PATTERN;

/// `config` followed by the instance path, dotted: `config.headers.0`.
pub(super) fn dotted(path: &Location) -> String {
    let mut key = String::from("config");
    for segment in path.segments() {
        key.push('.');
        match segment {
            LocationSegment::Property(p) => key.push_str(&p),
            LocationSegment::Index(i) => key.push_str(&i.to_string()),
        }
    }
    key
}

/// How telling a message is, when one field provoked several: "cannot be
/// blank" says the most, a failed `format` the least (a `pattern` next to it
/// is usually the more precise check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rank {
    Format,
    Other,
    Blank,
}

/// Field → (rank, message), keeping the best-ranked (then first) message.
#[derive(Default)]
pub(super) struct Details(pub(super) BTreeMap<String, (Rank, String)>);

impl Details {
    pub(super) fn add(&mut self, key: String, rank: Rank, message: String) {
        match self.0.get(&key) {
            Some((kept, _)) if *kept >= rank => {}
            _ => {
                self.0.insert(key, (rank, message));
            }
        }
    }
}

/// A short message for one schema error, without the submitted value.
pub(super) fn message(error: &ValidationError<'_>) -> (Rank, String) {
    let instance = error.instance();
    let blank = instance.is_null() || instance.as_str().is_some_and(|s| s.trim().is_empty());
    let message = match error.kind() {
        ValidationErrorKind::Type { .. }
        | ValidationErrorKind::MinLength { .. }
        | ValidationErrorKind::Pattern { .. }
        | ValidationErrorKind::Format { .. }
            if blank =>
        {
            return (Rank::Blank, BLANK.into());
        }
        ValidationErrorKind::Type {
            kind: TypeKind::Single(ty),
        } => format!("must be {}", a_type(*ty)),
        ValidationErrorKind::Type {
            kind: TypeKind::Multiple(types),
        } => {
            let names: Vec<_> = types.iter().map(a_type).collect();
            format!("must be {}", names.join(" or "))
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} character{}", plural(*limit))
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} character{}", plural(*limit))
        }
        ValidationErrorKind::Pattern { pattern } if pattern == HTTP_URL_PATTERN => {
            "must be an http:// or https:// URL".into()
        }
        ValidationErrorKind::Pattern { pattern } => format!("must match {pattern}"),
        ValidationErrorKind::Format { format } => {
            return (Rank::Format, format!("must be a valid {format}"));
        }
        ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(options) => {
                let options: Vec<_> = options.iter().map(Value::to_string).collect();
                format!("must be one of {}", options.join(", "))
            }
            None => format!("must be {options}"),
        },
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be more than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ValidationErrorKind::MinItems { limit } => {
            format!("must have at least {limit} item{}", plural(*limit))
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!("must have at most {limit} item{}", plural(*limit))
        }
        _ => error.masked().to_string(),
    };
    (Rank::Other, message)
}

fn a_type(ty: JsonType) -> String {
    match ty {
        JsonType::Integer | JsonType::Array | JsonType::Object => format!("an {ty}"),
        JsonType::Null => "null".into(),
        _ => format!("a {ty}"),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A schema that does not compile, named by where in the schema it fails:
/// `schema.properties.x.type: …`.
pub(super) fn schema_error(error: &ValidationError<'_>) -> String {
    let mut key = String::from("schema");
    for segment in error.instance_path().segments() {
        key.push('.');
        key.push_str(&segment.to_string());
    }
    format!("{key}: not a valid JSON Schema: {error}")
}
