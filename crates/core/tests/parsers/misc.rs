//! The smaller parsers: resource ids, scope names and sets, text enums,
//! requirement lists, timestamps and OAuth2 endpoint URLs.

use gatehouse_core::{
    id::has_kind,
    new_id,
    oauth2::check_endpoint,
    requirement::{parse_requirements, Requirement},
    time::{format_ms, parse_expiry, parse_rfc3339},
    AccessType, IdKind, Role, Scope, ScopeSet,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const KINDS: &[IdKind] = &[
    IdKind::Organization,
    IdKind::Project,
    IdKind::Environment,
    IdKind::User,
    IdKind::AccessKey,
    IdKind::PersonalAccessToken,
    IdKind::App,
    IdKind::Version,
    IdKind::Requirement,
    IdKind::Connection,
    IdKind::Account,
    IdKind::Event,
    IdKind::Webhook,
    IdKind::WebhookDelivery,
    IdKind::WebhookMessage,
    IdKind::Request,
    IdKind::Session,
    IdKind::OAuth2Provider,
    IdKind::OAuth2Flow,
];

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    proptest::sample::subsequence(Scope::ALL.to_vec(), 0..=Scope::ALL.len())
        .prop_map(|scopes| scopes.into_iter().collect())
}

/// Arbitrary JSON: nested arrays and objects of odd strings and numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        crate::nasty_string(20).prop_map(Value::from),
        proptest::sample::select(vec![
            "connection",
            "action_connector_account",
            "pipedream_account",
            "openai",
            "dynamiq.connections.OpenAI",
            "gmail"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(vec![
                            "name",
                            "type",
                            "title",
                            "description",
                            "spec",
                            "data",
                            "app_slug"
                        ])
                        .prop_map(str::to_string),
                        crate::nasty_string(8),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn known(t: &str) -> Option<String> {
    (t == "dynamiq.connections.OpenAI").then(|| "OpenAI".to_string())
}

/// A valid requirement list, to mutate from.
fn requirements() -> impl Strategy<Value = Vec<(String, bool)>> {
    proptest::collection::vec(("[a-z0-9_]{1,64}", any::<bool>()), 0..8)
}

proptest! {
    #![proptest_config(crate::config())]

    /// A new id has its kind's shape and no other kind's.
    #[test]
    fn ids_have_exactly_their_kind(kind in proptest::sample::select(KINDS.to_vec())) {
        let id = new_id(kind);
        for other in KINDS {
            prop_assert_eq!(has_kind(&id, *other), *other == kind, "{} as {:?}", id, other);
        }
    }

    /// Any string: no panic, and a match is `<prefix>_` and 26 alphanumerics.
    #[test]
    fn id_shapes_are_exact(raw in prop_oneof![crate::nasty_string(40), "[a-z]{3,4}_[0-9a-z]{24,28}"], kind in proptest::sample::select(KINDS.to_vec())) {
        if has_kind(&raw, kind) {
            let rest = raw.strip_prefix(&format!("{}_", kind.prefix())).unwrap();
            prop_assert_eq!(rest.len(), 26);
            prop_assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    /// A scope set survives its stored form and its list of names.
    #[test]
    fn scope_sets_round_trip(set in scope_set()) {
        prop_assert_eq!(ScopeSet::from_storage(&set.to_storage()), set);
        prop_assert_eq!(ScopeSet::parse_names(set.names()), Ok(set));
    }

    /// A grant never holds more than the granting credential, and a
    /// default grant never holds `connections:reveal`.
    #[test]
    fn grants_never_exceed_what_is_held(
        held in scope_set(),
        asked in proptest::option::of(proptest::collection::vec(prop_oneof![
            proptest::sample::select(Scope::ALL.to_vec()).prop_map(|s| s.as_str().to_string()),
            crate::nasty_string(12),
        ], 0..6)),
    ) {
        if let Ok(granted) = ScopeSet::grant(held, asked.as_deref()) {
            prop_assert!(granted.is_subset(held));
            if asked.is_none() {
                prop_assert!(!granted.contains(Scope::ConnectionsReveal));
            } else {
                prop_assert!(granted != ScopeSet::EMPTY);
            }
        }
    }

    /// Text enums parse only their own names, and an unknown value's error
    /// quotes at most 64 characters of it.
    #[test]
    fn text_enums_parse_only_their_names(raw in prop_oneof![
        proptest::sample::select(vec!["owner", "admin", "developer", "viewer", "public", "private"]).prop_map(str::to_string),
        crate::nasty_string(200),
    ]) {
        match raw.parse::<Role>() {
            Ok(role) => prop_assert_eq!(role.as_str(), raw.as_str()),
            Err(e) => prop_assert!(e.value.chars().count() <= 64),
        }
        if let Ok(access) = raw.parse::<AccessType>() {
            prop_assert_eq!(access.as_str(), raw.as_str());
        }
        prop_assert_eq!(ScopeSet::from_storage(&raw).is_subset(ScopeSet::all()), true);
    }

    /// Any JSON as a version's `requirements`: no panic; errors name
    /// fields under `requirements`; an accepted list has unique, valid
    /// names and survives being stored and read back.
    #[test]
    fn requirement_lists_parse_or_name_their_fields(input in json_value()) {
        check_requirements(&input)?;
    }

    /// A valid list with one field of one requirement replaced by
    /// anything: still no panic, and the same guarantees.
    #[test]
    fn mutated_requirement_lists_stay_checked(
        reqs in requirements(),
        at in any::<prop::sample::Index>(),
        field in proptest::sample::select(vec!["name", "type", "title", "description", "spec", "extra"]),
        value in json_value(),
    ) {
        let mut list: Vec<Value> = reqs.iter().map(|(name, oauth)| if *oauth {
            json!({"name": name, "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}})
        } else {
            json!({"name": name, "type": "action_connector_account", "title": "Mail", "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}})
        }).collect();
        if !list.is_empty() {
            let i = at.index(list.len());
            list[i][field] = value;
        }
        check_requirements(&Value::from(list))?;
    }

    /// A formatted timestamp parses back to its whole second.
    #[test]
    fn timestamps_round_trip_to_the_second(ms in -62_135_596_800_000i64..253_402_300_799_999) {
        let text = format_ms(ms);
        prop_assert!(text.ends_with('Z'));
        prop_assert_eq!(parse_rfc3339(&text), Some(ms.div_euclid(1000) * 1000));
    }

    /// Any expiry text: no panic; an accepted one is after now.
    #[test]
    fn expiries_are_in_the_future(raw in prop_oneof![crate::nasty_string(30), "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"], now in any::<i64>()) {
        if let Ok(Some(at)) = parse_expiry(Some(&raw), now) {
            prop_assert!(at > now);
        }
    }

    /// An accepted OAuth2 endpoint is https, or http on a loopback host,
    /// without credentials, whitespace or controls.
    #[test]
    fn oauth2_endpoints_are_https_or_loopback(raw in prop_oneof![
        crate::nasty_string(40),
        crate::nasty_string(30).prop_map(|s| format!("https://{s}")),
        crate::nasty_string(30).prop_map(|s| format!("http://{s}")),
    ]) {
        if check_endpoint(&raw).is_ok() {
            prop_assert!(!raw.chars().any(|c| c.is_whitespace() || c.is_control()));
            let url = url::Url::parse(&raw).unwrap();
            prop_assert!(url.username().is_empty() && url.password().is_none());
            let loopback = match url.host().unwrap() {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            };
            prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && loopback));
        }
    }
}

fn check_requirements(input: &Value) -> Result<(), TestCaseError> {
    match parse_requirements(input, known) {
        Ok(reqs) => {
            let mut names: Vec<&str> = reqs.iter().map(|r| r.name.as_str()).collect();
            prop_assert!(names.iter().all(|n| (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))));
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            prop_assert_eq!(names.len(), before);
            for r in &reqs {
                prop_assert!(r.id.starts_with("req_"));
                let stored = serde_json::to_string(r).unwrap();
                let back: Requirement = serde_json::from_str(&stored).unwrap();
                prop_assert_eq!(&back, r);
            }
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors
                .keys()
                .all(|k| k == "requirements" || k.starts_with("requirements.")));
            prop_assert!(errors.values().all(|m| !m.is_empty()));
        }
    }
    Ok(())
}
