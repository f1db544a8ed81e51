//! Server-made ids: a resource prefix, `_`, and a lowercase ULID, so ids
//! sort by creation time and reveal nothing else. Within one process the
//! ULIDs are monotonic, so ids made in the same millisecond still sort in
//! the order they were made (newest-first lists and cursors rely on it).

use std::fmt;

/// The kinds of resource that carry an id, each with its SPEC §1 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Organization,
    Project,
    Environment,
    User,
    AccessKey,
    PersonalAccessToken,
    App,
    Version,
    Requirement,
    Connection,
    Account,
    Event,
    Webhook,
    WebhookDelivery,
    WebhookMessage,
    Request,
    Session,
    OAuth2Provider,
    OAuth2Flow,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Organization => "org",
            IdKind::Project => "prj",
            IdKind::Environment => "env",
            IdKind::User => "usr",
            IdKind::AccessKey => "key",
            IdKind::PersonalAccessToken => "pat",
            IdKind::App => "app",
            IdKind::Version => "ver",
            IdKind::Requirement => "req",
            IdKind::Connection => "conn",
            IdKind::Account => "acct",
            IdKind::Event => "evt",
            IdKind::Webhook => "whk",
            IdKind::WebhookDelivery => "whd",
            IdKind::WebhookMessage => "msg",
            IdKind::Request => "rid",
            IdKind::Session => "ses",
            IdKind::OAuth2Provider => "oap",
            IdKind::OAuth2Flow => "flw",
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A new id of the given kind, e.g. `key_01jd7m0z8k3q4w5e6r7t8y9u0i`.
pub fn new_id(kind: IdKind) -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let next = GENERATOR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .generate()
        // 2^80 ids in one millisecond: fall back to a random one.
        .unwrap_or_else(|_| ulid::Ulid::new());
    let ulid = next.to_string().to_ascii_lowercase();
    format!("{}_{}", kind.prefix(), ulid)
}

/// True when `id` has the shape of an id of `kind` (cheap pre-check that
/// keeps obviously foreign ids away from storage).
pub fn has_kind(id: &str, kind: IdKind) -> bool {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids carry their prefix and sort in creation order.
    #[test]
    fn ids_are_prefixed_and_sortable() {
        let a = new_id(IdKind::AccessKey);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(IdKind::AccessKey);
        assert!(a.starts_with("key_"));
        assert!(has_kind(&a, IdKind::AccessKey));
        assert!(!has_kind(&a, IdKind::Project));
        assert!(a < b);
    }

    /// Ids made in the same millisecond sort in the order they were made.
    #[test]
    fn ids_in_one_millisecond_keep_their_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(IdKind::Event)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
