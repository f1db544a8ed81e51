//! App requirements (SPEC §5): what an end user must connect before an
//! app's workflow can run, and when a connection or linked account
//! satisfies one.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    connection::{ConnectionKind, ConnectionStatus, Holding},
    new_id,
    validate::BLANK,
    IdKind,
};

/// `connection` or `action_connector_account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementType {
    Connection,
    ActionConnectorAccount,
}

impl RequirementType {
    /// Parses a type name; `pipedream_account` is accepted as an alias.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connection" => Some(Self::Connection),
            "action_connector_account" | "pipedream_account" => Some(Self::ActionConnectorAccount),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::ActionConnectorAccount => "action_connector_account",
        }
    }
}

/// `spec`: the requirement's type again, and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementSpec {
    #[serde(rename = "type")]
    pub kind: RequirementType,
    pub data: Value,
}

/// One requirement of an app version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    /// `req_…`
    pub id: String,
    /// `[a-z0-9_]+`, unique in the version.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RequirementType,
    pub title: String,
    pub description: String,
    pub spec: RequirementSpec,
}

impl Requirement {
    /// The connection type a `connection` requirement needs.
    pub fn connection_type(&self) -> Option<&str> {
        (self.kind == RequirementType::Connection)
            .then(|| self.spec.data.get("type").and_then(Value::as_str))
            .flatten()
    }

    /// The action connector a `action_connector_account` requirement needs.
    pub fn app_slug(&self) -> Option<&str> {
        (self.kind == RequirementType::ActionConnectorAccount)
            .then(|| self.spec.data.get("app_slug").and_then(Value::as_str))
            .flatten()
    }

    /// True when `held` (a stored connection or account) satisfies this
    /// requirement: the right kind, for the right type or app slug, active.
    pub fn satisfied_by(&self, held: &impl Holding) -> bool {
        if held.status() != ConnectionStatus::Active {
            return false;
        }
        match self.kind {
            RequirementType::Connection => {
                held.kind() == ConnectionKind::Connection
                    && self.connection_type() == Some(held.type_or_slug())
            }
            RequirementType::ActionConnectorAccount => {
                held.kind() == ConnectionKind::Account
                    && self.app_slug() == Some(held.type_or_slug())
            }
        }
    }
}

/// A requirement of the deployed version and what the end user holds for
/// it (matched by requirement name), if anything.
#[derive(Debug, Clone)]
pub struct RequirementState<C> {
    pub requirement: Requirement,
    pub held: Option<C>,
}

impl<C: Holding> RequirementState<C> {
    /// Pairs each requirement with the connection or account held for its
    /// name; what is held for no current requirement is dropped.
    pub fn pair(requirements: Vec<Requirement>, mut held: Vec<C>) -> Vec<Self> {
        requirements
            .into_iter()
            .map(|requirement| {
                let at = held
                    .iter()
                    .position(|c| c.requirement_name() == requirement.name);
                RequirementState {
                    held: at.map(|i| held.swap_remove(i)),
                    requirement,
                }
            })
            .collect()
    }

    /// Whether what is held satisfies the requirement.
    pub fn satisfied(&self) -> bool {
        self.held
            .as_ref()
            .is_some_and(|c| self.requirement.satisfied_by(c))
    }

    /// `completed` or `pending`, as the connect-token routes say it.
    pub fn status_word(&self) -> &'static str {
        status_word(self.satisfied())
    }
}

/// `completed` for a satisfied requirement, else `pending`.
pub const fn status_word(satisfied: bool) -> &'static str {
    if satisfied {
        "completed"
    } else {
        "pending"
    }
}

/// Field path → message, as the API's `details`.
pub type FieldErrors = BTreeMap<String, String>;

/// Parses a version's `requirements` array, assigning `req_…` ids.
/// `known_type` says whether a connection type exists and returns its title.
pub fn parse_requirements(
    input: &Value,
    known_type: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Requirement>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(items) = input.as_array() else {
        errors.insert(
            "requirements".into(),
            if input.is_null() {
                BLANK.into()
            } else {
                "must be an array".into()
            },
        );
        return Err(errors);
    };
    if items.len() > 100 {
        errors.insert(
            "requirements".into(),
            "must have at most 100 requirements".into(),
        );
        return Err(errors);
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("requirements.{i}.{field}");
        let Some(obj) = item.as_object() else {
            errors.insert(format!("requirements.{i}"), "must be an object".into());
            continue;
        };
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "name" | "type" | "title" | "description" | "spec"
            ) {
                errors.insert(at(key), "is not a requirement field".into());
            }
        }
        let text = |field: &str| {
            obj.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = text("name");
        if name.is_empty() {
            errors.insert(at("name"), BLANK.into());
        } else if name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            errors.insert(
                at("name"),
                "must be 1-64 characters of a-z, 0-9 and _".into(),
            );
        } else if !names.insert(name.clone()) {
            errors.insert(
                at("name"),
                "is used by another requirement of this version".into(),
            );
        }
        let kind = match obj.get("type").and_then(Value::as_str) {
            None | Some("") => {
                errors.insert(at("type"), BLANK.into());
                None
            }
            Some(t) => RequirementType::parse(t).or_else(|| {
                errors.insert(
                    at("type"),
                    "must be connection or action_connector_account".into(),
                );
                None
            }),
        };
        let spec = obj.get("spec").and_then(Value::as_object);
        let spec_kind = match spec.and_then(|s| s.get("type")).and_then(Value::as_str) {
            None | Some("") => {
                errors.insert(at("spec.type"), BLANK.into());
                None
            }
            Some(t) => RequirementType::parse(t).or_else(|| {
                errors.insert(
                    at("spec.type"),
                    "must be connection or action_connector_account".into(),
                );
                None
            }),
        };
        if let (Some(k), Some(sk)) = (kind, spec_kind) {
            if k != sk {
                errors.insert(at("type"), "must equal spec.type".into());
            }
        }
        let data = spec
            .and_then(|s| s.get("data"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut default_title = String::new();
        match kind {
            Some(RequirementType::Connection) => match data.get("type").and_then(Value::as_str) {
                None | Some("") => {
                    errors.insert(at("spec.data.type"), BLANK.into());
                }
                Some(t) => match known_type(t) {
                    Some(title) => default_title = title,
                    None => {
                        errors.insert(
                            at("spec.data.type"),
                            format!("unknown connection type {t:?}"),
                        );
                    }
                },
            },
            Some(RequirementType::ActionConnectorAccount) => {
                match data.get("app_slug").and_then(Value::as_str) {
                    None | Some("") => {
                        errors.insert(at("spec.data.app_slug"), BLANK.into());
                    }
                    Some(slug) if crate::validate::Slug::parse(slug).is_err() => {
                        errors.insert(
                            at("spec.data.app_slug"),
                            "must be a slug such as gmail".into(),
                        );
                    }
                    Some(slug) => default_title = slug.to_string(),
                }
            }
            None => {}
        }
        let title = match obj.get("title") {
            Some(Value::String(t)) if t.chars().count() <= 200 => t.trim().to_string(),
            Some(Value::String(_)) => {
                errors.insert(at("title"), "must be at most 200 characters".into());
                String::new()
            }
            Some(Value::Null) | None => String::new(),
            Some(_) => {
                errors.insert(at("title"), "must be a string".into());
                String::new()
            }
        };
        let description = match obj.get("description") {
            Some(Value::String(d)) if d.chars().count() <= 2000 => d.clone(),
            Some(Value::String(_)) => {
                errors.insert(at("description"), "must be at most 2000 characters".into());
                String::new()
            }
            Some(Value::Null) | None => String::new(),
            Some(_) => {
                errors.insert(at("description"), "must be a string".into());
                String::new()
            }
        };
        if let Some(kind) = kind {
            out.push(Requirement {
                id: new_id(IdKind::Requirement),
                name,
                kind,
                title: if title.is_empty() {
                    default_title
                } else {
                    title
                },
                description,
                spec: RequirementSpec { kind, data },
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(t: &str) -> Option<String> {
        (t == "dynamiq.connections.OpenAI").then(|| "OpenAI".to_string())
    }

    /// A held connection for the tests: kind, type or slug, status, and
    /// the requirement name (`openai` unless said otherwise).
    #[derive(Debug, Clone, PartialEq)]
    struct Held(ConnectionKind, String, ConnectionStatus);

    impl Holding for Held {
        fn requirement_name(&self) -> &str {
            if self.0 == ConnectionKind::Account {
                "mail"
            } else {
                "openai"
            }
        }
        fn kind(&self) -> ConnectionKind {
            self.0
        }
        fn type_or_slug(&self) -> &str {
            &self.1
        }
        fn status(&self) -> ConnectionStatus {
            self.2
        }
    }

    /// Requirements pair with what is held under their name; only an
    /// active holding of the right type completes one.
    #[test]
    fn requirement_states_pair_by_name() {
        let input = json!([
            {"name": "openai", "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}},
            {"name": "mail", "type": "action_connector_account", "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}},
        ]);
        let reqs = parse_requirements(&input, known).unwrap();
        let active = Held(
            ConnectionKind::Connection,
            "dynamiq.connections.OpenAI".into(),
            ConnectionStatus::Active,
        );
        let expired_mail = Held(
            ConnectionKind::Account,
            "gmail".into(),
            ConnectionStatus::Expired,
        );
        let states = RequirementState::pair(reqs.clone(), vec![expired_mail, active.clone()]);
        assert_eq!(states[0].held.as_ref(), Some(&active));
        assert_eq!(states[0].status_word(), "completed");
        assert!(states[1].held.is_some());
        assert!(!states[1].satisfied());
        assert_eq!(states[1].status_word(), "pending");
        let none = RequirementState::<Held>::pair(reqs, Vec::new());
        assert!(none.iter().all(|s| !s.satisfied()));
    }

    /// Both kinds parse; the pipedream alias is stored as action_connector_account.
    #[test]
    fn parses_both_kinds_and_alias() {
        let reqs = parse_requirements(
            &json!([
                {"name": "openai", "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}},
                {"name": "mail", "type": "pipedream_account", "title": "Your Gmail", "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}}
            ]),
            known,
        )
        .unwrap();
        assert_eq!(reqs[0].title, "OpenAI");
        assert!(reqs[0].id.starts_with("req_"));
        assert_eq!(reqs[1].kind, RequirementType::ActionConnectorAccount);
        assert_eq!(reqs[1].spec.kind, RequirementType::ActionConnectorAccount);
        let stored = serde_json::to_value(&reqs[1]).unwrap();
        assert_eq!(stored["type"], "action_connector_account");
        assert_eq!(stored["spec"]["type"], "action_connector_account");
        let held = |kind, ty: &str, status| Held(kind, ty.to_string(), status);
        use ConnectionKind::{Account, Connection};
        use ConnectionStatus::{Active, Expired};
        assert!(reqs[0].satisfied_by(&held(Connection, "dynamiq.connections.OpenAI", Active)));
        assert!(!reqs[0].satisfied_by(&held(Connection, "dynamiq.connections.OpenAI", Expired)));
        assert!(reqs[1].satisfied_by(&held(Account, "gmail", Active)));
        assert!(!reqs[1].satisfied_by(&held(Connection, "gmail", Active)));
    }

    /// Errors name the field by its dotted path.
    #[test]
    fn errors_name_fields() {
        let errs = parse_requirements(
            &json!([
                {"name": "a", "type": "connection", "spec": {"type": "action_connector_account", "data": {"app_slug": "x"}}},
                {"name": "a", "type": "connection", "spec": {"type": "connection", "data": {"type": "nope"}}},
                {"name": "Bad Name", "type": "weird", "spec": {}}
            ]),
            known,
        )
        .unwrap_err();
        assert_eq!(errs["requirements.0.type"], "must equal spec.type");
        assert_eq!(
            errs["requirements.1.name"],
            "is used by another requirement of this version"
        );
        assert!(errs["requirements.1.spec.data.type"].contains("unknown connection type"));
        assert!(errs.contains_key("requirements.2.name"));
        assert!(errs.contains_key("requirements.2.type"));
        assert_eq!(
            parse_requirements(&Value::Null, known).unwrap_err()["requirements"],
            BLANK
        );
    }
}
