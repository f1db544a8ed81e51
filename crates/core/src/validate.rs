//! Validated values: a handler only ever holds one of these after `parse`
//! succeeded, and the error text is what the API shows for that field.

use std::fmt;

/// The message for a missing or blank required field.
pub const BLANK: &str = "cannot be blank";

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A human name for a key, project or app: 1–100 characters after
    /// trimming, no control characters.
    Name
);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(BLANK.into());
        }
        if trimmed.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_string()))
    }
}

string_newtype!(
    /// A slug: `[a-z0-9-]{1,63}`, not starting or ending with `-`.
    Slug
);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err(BLANK.into());
        }
        let ok = raw.len() <= 63
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(
                "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
                    .into(),
            )
        }
    }

    /// Derives a slug from a free-form name ("My App!" → "my-app").
    pub fn from_name(name: &str) -> Option<Self> {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let trimmed: String = out.trim_matches('-').chars().take(63).collect();
        Slug::parse(trimmed.trim_end_matches('-')).ok()
    }
}

string_newtype!(
    /// An email address, lower-cased: one `@`, a non-empty local part and a
    /// domain with a dot, at most 254 characters.
    Email
);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(BLANK.into());
        }
        let valid = trimmed.len() <= 254
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
            && match trimmed.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(trimmed.to_ascii_lowercase()))
        } else {
            Err("must be a valid email address".into())
        }
    }
}

string_newtype!(
    /// A DNS hostname for an app: lower-cased, at most 253 characters, labels
    /// of `[a-z0-9-]` (1–63, not starting or ending with `-`), at least two
    /// labels, never an IP literal or `localhost`.
    Hostname
);

impl Hostname {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(BLANK.into());
        }
        let labels: Vec<&str> = host.split('.').collect();
        let label_ok = |l: &&str| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err("must be a DNS name such as app.example.com".into());
        }
        if host.parse::<std::net::IpAddr>().is_ok()
            || labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("must be a DNS name, not an IP address".into());
        }
        if host == "localhost" {
            return Err("must not be localhost".into());
        }
        Ok(Self(host))
    }
}

string_newtype!(
    /// The platform's id for one of its end users: 1–250 characters, not
    /// blank, no leading or trailing whitespace, no control or invisible
    /// format characters (bidi overrides, zero-width spaces), in Unicode
    /// NFC, so two ids that look the same are the same id.
    UserId
);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        use unicode_general_category::{get_general_category, GeneralCategory};
        use unicode_normalization::UnicodeNormalization;
        if raw.trim().is_empty() {
            return Err(BLANK.into());
        }
        if raw.trim() != raw {
            return Err("must not start or end with whitespace".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let invisible = |c: char| {
            matches!(
                get_general_category(c),
                GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
        };
        if raw.chars().any(invisible) {
            return Err(
                "must not contain invisible format characters (such as bidi controls or zero-width spaces)"
                    .into(),
            );
        }
        let normalized: String = raw.nfc().collect();
        if normalized.chars().count() > 250 {
            return Err("must be at most 250 characters".into());
        }
        Ok(Self(normalized))
    }
}

string_newtype!(
    /// Where the hosted page sends an end user afterwards: an absolute
    /// `https://` URL, or `http://` for `localhost` and `*.localhost`,
    /// without credentials in it. Kept exactly as given.
    RedirectUrl
);

impl RedirectUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || "must be an absolute https URL (http only for localhost)".to_string();
        let url = url::Url::parse(raw).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        let local = host == "localhost" || host.ends_with(".localhost");
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return Err(bad()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        Ok(Self(raw.to_string()))
    }
}

impl RedirectUrl {
    /// The URL's origin, e.g. `https://app.example.com:8443`.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.0)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// An origin an app's redirect URLs may point to: `https://host[:port]`
/// (http for `localhost` and `*.localhost`), nothing after the host;
/// returned in its canonical form (`https://app.example.com`).
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let bad = || {
        "must be an origin such as https://app.example.com (http only for localhost)".to_string()
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    RedirectUrl::parse(url.as_str()).map_err(|_| bad())?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin alone, without a path, query or fragment".into());
    }
    Ok(url.origin().ascii_serialization())
}

/// A `Host` header value as hosts are compared (SPEC §1): lower-cased,
/// without the port and one trailing dot. `None` for an empty value.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// A new password: at least 12 characters, at most 1024.
pub fn check_password(raw: &str) -> Result<(), String> {
    let n = raw.chars().count();
    if n == 0 {
        Err(BLANK.into())
    } else if n < 12 {
        Err("must be at least 12 characters".into())
    } else if n > 1024 {
        Err("must be at most 1024 characters".into())
    } else {
        Ok(())
    }
}

/// An optional whole-number JSON field (`#[serde(default, deserialize_with
/// = "whole_number")]`): `60` and `60.0` are the same number in JSON, and
/// JSON Schema's `integer` takes both, so both are 60; `60.5`, or a number
/// beyond `i64`, is refused with serde's "invalid type" message.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::{Error, Unexpected};
    const EXPECTED: &str = "a whole number";
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    if let Some(u) = n.as_u64() {
        return Err(D::Error::invalid_value(Unexpected::Unsigned(u), &EXPECTED));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // 2^63 is exactly representable; anything from it up does not fit.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
    {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Some(f as i64));
    }
    Err(D::Error::invalid_type(Unexpected::Float(f), &EXPECTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are trimmed and bounded.
    #[test]
    fn names() {
        assert_eq!(
            Name::parse("  ci key ").map(Name::into_inner),
            Ok("ci key".into())
        );
        assert_eq!(Name::parse("   "), Err(BLANK.into()));
        assert!(Name::parse(&"x".repeat(101)).is_err());
        assert!(Name::parse(&"é".repeat(100)).is_ok());
        assert!(Name::parse("a\u{0}b").is_err());
    }

    /// Slugs follow `[a-z0-9-]{1,63}` and can be derived from names.
    #[test]
    fn slugs() {
        assert!(Slug::parse("my-app-2").is_ok());
        assert!(Slug::parse("My-App").is_err());
        assert!(Slug::parse("-x").is_err());
        assert!(Slug::parse(&"a".repeat(64)).is_err());
        assert_eq!(
            Slug::from_name("My  App!").map(Slug::into_inner),
            Some("my-app".into())
        );
        assert_eq!(Slug::from_name("!!!"), None);
    }

    /// Hostnames are DNS names, never IP literals or localhost.
    #[test]
    fn hostnames() {
        assert_eq!(
            Hostname::parse("Acme.Example.com.").map(Hostname::into_inner),
            Ok("acme.example.com".into())
        );
        assert!(Hostname::parse("acme-sandbox.apps.localhost").is_ok());
        assert!(Hostname::parse("127.0.0.1").is_err());
        assert!(Hostname::parse("localhost").is_err());
        assert!(Hostname::parse("exa mple.com").is_err());
        assert!(Hostname::parse("-bad.example.com").is_err());
        assert!(Hostname::parse("[::1]").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("https://App.Example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("https://a.example.com:8443").unwrap(),
            "https://a.example.com:8443"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "http://example.com",
            "https://example.com/path",
            "https://example.com/?q",
            "ftp://x.y",
            "nope",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        let url = RedirectUrl::parse("https://app.example.com:8443/done?x=1").unwrap();
        assert_eq!(url.origin(), "https://app.example.com:8443");
    }

    /// User ids are bounded, trimmed of nothing (edges must be clean), free
    /// of control and format characters, and NFC.
    #[test]
    fn user_ids() {
        assert_eq!(
            UserId::parse("customer 7").map(UserId::into_inner),
            Ok("customer 7".into())
        );
        assert!(UserId::parse(" customer 7").is_err());
        assert!(UserId::parse("customer 7\u{3000}").is_err());
        for sneaky in [
            "ad\u{202e}min",
            "ad\u{200b}min",
            "\u{feff}admin",
            "a\u{2028}b",
            "a\u{2066}b",
        ] {
            assert!(
                UserId::parse(sneaky).unwrap_err().contains("format"),
                "{sneaky:?}"
            );
        }
        // "é" decomposed and composed are one id.
        assert_eq!(
            UserId::parse("jose\u{301}").map(UserId::into_inner),
            Ok("jos\u{e9}".into())
        );
        assert_eq!(UserId::parse("  "), Err(BLANK.into()));
        assert!(UserId::parse(&"é".repeat(250)).is_ok());
        assert!(UserId::parse(&"é".repeat(251)).is_err());
        assert!(UserId::parse("a\nb").is_err());
    }

    /// Redirects are https, or http on localhost only, never with credentials.
    #[test]
    fn redirect_urls() {
        assert!(RedirectUrl::parse("https://app.example.com/done?x=1").is_ok());
        assert!(RedirectUrl::parse("http://localhost:3000/done").is_ok());
        assert!(RedirectUrl::parse("http://acme.localhost/done").is_ok());
        assert!(RedirectUrl::parse("http://example.com/done").is_err());
        assert!(RedirectUrl::parse("http://localhost.example.com/done").is_err());
        assert!(RedirectUrl::parse("javascript:alert(1)").is_err());
        assert!(RedirectUrl::parse("/relative").is_err());
        assert_eq!(
            RedirectUrl::parse("https://user:pw@example.com/"),
            Err("must not contain credentials".into())
        );
    }

    /// Hosts compare case-insensitively, without port or one trailing dot.
    #[test]
    fn normalises_hosts() {
        assert_eq!(
            normalize_host("Acme.Apps.Localhost:8080").as_deref(),
            Some("acme.apps.localhost")
        );
        assert_eq!(
            normalize_host("acme.apps.localhost.").as_deref(),
            Some("acme.apps.localhost")
        );
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(normalize_host(""), None);
    }

    /// Emails are lower-cased and need a domain with a dot.
    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").map(Email::into_inner),
            Ok("ada@example.com".into())
        );
        assert!(Email::parse("ada@localhost").is_err());
        assert!(Email::parse("a b@example.com").is_err());
        assert!(Email::parse("@example.com").is_err());
        assert_eq!(Email::parse(""), Err(BLANK.into()));
    }
}
