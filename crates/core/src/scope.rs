//! Scopes and roles (SPEC §3): what a credential may do, and what each
//! dashboard role holds.

use std::fmt;

macro_rules! scopes {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// One permission a credential can hold.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Scope { $($variant),* }

        impl Scope {
            /// Every scope, in the SPEC's order.
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Scope> {
                match s { $($name => Some(Scope::$variant),)* _ => None }
            }
        }
    };
}

scopes! {
    KeysRead => "keys:read",
    KeysWrite => "keys:write",
    AppsRead => "apps:read",
    AppsWrite => "apps:write",
    ConnectionsRead => "connections:read",
    ConnectionsWrite => "connections:write",
    ConnectionsReveal => "connections:reveal",
    ConnectWrite => "connect:write",
    EndUsersRead => "end_users:read",
    EndUsersWrite => "end_users:write",
    AuditRead => "audit:read",
    WebhooksRead => "webhooks:read",
    WebhooksWrite => "webhooks:write",
    ProjectsRead => "projects:read",
    ProjectsWrite => "projects:write",
}

impl Scope {
    /// True for the `…:read` scopes, the only ones a viewer holds.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(":read")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, stored as a bit mask.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn all() -> Self {
        Scope::ALL.iter().copied().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= 1 << scope as u8;
    }

    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !(1 << scope as u8);
    }

    pub fn without(mut self, scope: Scope) -> Self {
        self.remove(scope);
        self
    }

    pub fn is_subset(self, of: ScopeSet) -> bool {
        self.0 & !of.0 == 0
    }

    pub fn intersect(self, other: ScopeSet) -> Self {
        ScopeSet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// The scopes as names, in the SPEC's order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Space-separated names: how a set is stored.
    pub fn to_storage(self) -> String {
        self.names().join(" ")
    }

    /// Reads the stored form; unknown names (from a newer version) are
    /// ignored rather than granted.
    pub fn from_storage(s: &str) -> Self {
        s.split_whitespace().filter_map(Scope::parse).collect()
    }

    /// Parses a list of names, returning the first unknown one on failure.
    pub fn parse_names<'a, I>(names: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut set = ScopeSet::EMPTY;
        for name in names {
            set.insert(Scope::parse(name).ok_or_else(|| name.to_string())?);
        }
        Ok(set)
    }
}

/// Why a set of scopes cannot be granted to a new credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// An explicit, empty list (input error).
    #[error("must name at least one scope")]
    Empty,
    /// A name that is not a scope (input error).
    #[error("unknown scope {0:?}")]
    Unknown(String),
    /// Scopes the granting credential does not hold itself (forbidden).
    #[error("exceeds the caller's scopes: {}", names(.0))]
    Exceeds(ScopeSet),
}

fn names(set: &ScopeSet) -> String {
    set.names().join(", ")
}

impl ScopeSet {
    /// The scopes of `self` that `held` lacks.
    pub fn excess_over(self, held: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & !held.0)
    }

    /// The scopes a new credential gets from a caller holding `held`
    /// (SPEC §3): the `requested` names, or by default everything held
    /// except `connections:reveal`; never more than `held`.
    pub fn grant(held: ScopeSet, requested: Option<&[String]>) -> Result<ScopeSet, GrantError> {
        let scopes = match requested {
            None => return Ok(held.without(Scope::ConnectionsReveal)),
            Some([]) => return Err(GrantError::Empty),
            Some(names) => ScopeSet::parse_names(names.iter().map(String::as_str))
                .map_err(GrantError::Unknown)?,
        };
        let excess = scopes.excess_over(held);
        if excess == ScopeSet::EMPTY {
            Ok(scopes)
        } else {
            Err(GrantError::Exceeds(excess))
        }
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        let mut set = ScopeSet::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A dashboard member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// The scopes a member of this role holds.
    pub fn scopes(self) -> ScopeSet {
        match self {
            Role::Owner | Role::Admin => ScopeSet::all(),
            Role::Developer => ScopeSet::all()
                .without(Scope::ConnectionsReveal)
                .without(Scope::ProjectsWrite),
            Role::Viewer => Scope::ALL.iter().copied().filter(|s| s.is_read()).collect(),
        }
    }

    /// Owners and admins manage members.
    pub fn manages_members(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

crate::text_enum!(Role, "role");

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles hold exactly the scopes SPEC §3 gives them.
    #[test]
    fn role_scopes() {
        assert_eq!(Role::Owner.scopes(), ScopeSet::all());
        let dev = Role::Developer.scopes();
        assert!(dev.contains(Scope::KeysWrite));
        assert!(!dev.contains(Scope::ConnectionsReveal));
        assert!(!dev.contains(Scope::ProjectsWrite));
        let viewer = Role::Viewer.scopes();
        assert!(viewer.iter().all(Scope::is_read));
        assert!(viewer.contains(Scope::AuditRead));
        assert_eq!(viewer.iter().count(), 7);
    }

    /// A grant defaults to what is held minus reveal, and never exceeds it.
    #[test]
    fn grants() {
        let held = Role::Developer.scopes();
        let granted = ScopeSet::grant(held, None).unwrap();
        assert_eq!(granted, held.without(Scope::ConnectionsReveal));
        let asked = vec!["keys:read".to_string()];
        assert_eq!(
            ScopeSet::grant(held, Some(&asked)),
            Ok([Scope::KeysRead].into_iter().collect())
        );
        assert_eq!(ScopeSet::grant(held, Some(&[])), Err(GrantError::Empty));
        let unknown = vec!["keys:read".to_string(), "root".to_string()];
        assert_eq!(
            ScopeSet::grant(held, Some(&unknown)),
            Err(GrantError::Unknown("root".into()))
        );
        let beyond = vec![
            "projects:write".to_string(),
            "connections:reveal".to_string(),
            "apps:read".to_string(),
        ];
        let err = ScopeSet::grant(held, Some(&beyond)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeds the caller's scopes: connections:reveal, projects:write"
        );
    }

    /// The stored form round-trips and never grants unknown names.
    #[test]
    fn storage_round_trip() {
        let set: ScopeSet = [Scope::KeysRead, Scope::ProjectsWrite]
            .into_iter()
            .collect();
        assert_eq!(set.to_storage(), "keys:read projects:write");
        assert_eq!(
            ScopeSet::from_storage("keys:read projects:write bogus"),
            set
        );
        assert_eq!(
            ScopeSet::parse_names(["keys:read", "nope"]),
            Err("nope".into())
        );
        assert!(set.is_subset(ScopeSet::all()));
        assert!(!ScopeSet::all().is_subset(set));
    }
}
