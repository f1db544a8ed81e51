//! Enums stored and sent as text: every one has `as_str` and `parse`, and
//! through [`text_enum!`] also `Display`, `FromStr` and `TryFrom<String>`
//! (what the store decodes columns with).

/// A text value that names no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
}

/// Implements `Display`, `FromStr` and `TryFrom<String>` for an enum that
/// has `as_str(self) -> &'static str` and `parse(&str) -> Option<Self>`.
#[macro_export]
macro_rules! text_enum {
    ($ty:ty, $what:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::text::UnknownVariant;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| $crate::text::UnknownVariant {
                    what: $what,
                    value: s.chars().take(64).collect(),
                })
            }
        }

        impl ::std::convert::TryFrom<String> for $ty {
            type Error = $crate::text::UnknownVariant;

            fn try_from(s: String) -> ::std::result::Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::{connection::ConnectionStatus, AccessType, Role, TokenKind};

    /// Every text enum round-trips through its text and refuses other text.
    #[test]
    fn round_trips() {
        for kind in [TokenKind::AccessKey, TokenKind::PersonalAccessToken] {
            assert_eq!(TokenKind::try_from(kind.to_string()), Ok(kind));
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        assert_eq!("public".parse::<AccessType>(), Ok(AccessType::Public));
        assert_eq!(
            ConnectionStatus::try_from("expired".to_string()),
            Ok(ConnectionStatus::Expired)
        );
        let err = "superuser".parse::<Role>().unwrap_err();
        assert_eq!(err.to_string(), "unknown role \"superuser\"");
    }
}
