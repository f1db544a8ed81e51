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
