//! What an end user holds for a requirement: a connection (credentials or
//! OAuth2 tokens for a connection type) or a linked action-connector
//! account, and the state it is in (SPEC §6).

/// `connection` or `account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    /// Credentials or OAuth2 tokens for a connection type.
    Connection,
    /// A linked action-connector account.
    Account,
}

impl ConnectionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connection" => Some(Self::Connection),
            "account" => Some(Self::Account),
            _ => None,
        }
    }
}

crate::text_enum!(ConnectionKind, "connection kind");

/// `active`, `expired` or `revoked`; only `active` satisfies a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    Active,
    /// The provider refused to refresh it, or it is past expiry with no
    /// refresh token.
    Expired,
    /// Disconnected.
    Revoked,
}

impl ConnectionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "expired" => Some(Self::Expired),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

crate::text_enum!(ConnectionStatus, "connection status");

/// The facts about a held connection or account that decide whether it
/// satisfies a requirement; implemented by the stored row.
pub trait Holding {
    /// The requirement it was made for (by name, so it survives redeploys).
    fn requirement_name(&self) -> &str;
    fn kind(&self) -> ConnectionKind;
    /// The connection type, or the action connector's app slug.
    fn type_or_slug(&self) -> &str;
    fn status(&self) -> ConnectionStatus;
}
