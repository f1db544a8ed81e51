//! Apps (SPEC §5): who may call an app's hostname, and the hostname an app
//! gets when none is given.

use crate::validate::Slug;

/// The environment whose apps get the bare `<slug>.<apps_domain>`.
pub const LIVE_ENVIRONMENT: &str = "live";

/// `private` (an access key with `connect:write` mints connect tokens) or
/// `public` (anyone may).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AccessType {
    #[default]
    Private,
    Public,
}

impl AccessType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

crate::text_enum!(AccessType, "access type");

/// `<slug>.<apps_domain>` in the `live` environment,
/// `<slug>-<environment>.<apps_domain>` in every other one.
pub fn default_hostname(slug: &Slug, environment_name: &str, apps_domain: &str) -> String {
    if environment_name == LIVE_ENVIRONMENT {
        format!("{slug}.{apps_domain}")
    } else {
        format!("{slug}-{environment_name}.{apps_domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Live apps get the bare slug; other environments are suffixed.
    #[test]
    fn default_hostnames() {
        let slug = Slug::parse("acme").unwrap();
        assert_eq!(
            default_hostname(&slug, "live", "apps.localhost"),
            "acme.apps.localhost"
        );
        assert_eq!(
            default_hostname(&slug, "sandbox", "apps.example.com"),
            "acme-sandbox.apps.example.com"
        );
    }
}
