//! Who may grant, change and remove which roles (SPEC §3, §4): only owners
//! and admins manage members, only an owner makes, unmakes or removes an
//! owner, a credential can only grant a role whose every scope it holds
//! itself, and an organization always keeps at least one owner.

use crate::{Role, ScopeSet};

/// Why a membership change is refused. `Forbidden` cases are about the
/// caller; `LastOwner` is about the organization's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRuleError {
    #[error("only owners and admins manage members")]
    NotAManager,
    #[error("only an owner can add an owner")]
    OwnerAddsOwner,
    #[error("only an owner can make or unmake an owner")]
    OwnerChangesOwner,
    #[error("only an owner can remove an owner")]
    OwnerRemovesOwner,
    #[error("the organization must keep at least one owner")]
    LastOwner,
    #[error("this credential does not hold every scope of that role (missing: {0})")]
    ScopesShort(String),
}

impl MemberRuleError {
    /// True when the caller lacks the right (403); false when the change
    /// is invalid for anyone (400).
    pub fn is_forbidden(&self) -> bool {
        *self != Self::LastOwner
    }
}

/// The caller's role, when it manages members at all.
pub fn manager(caller: Option<Role>) -> Result<Role, MemberRuleError> {
    caller
        .filter(|r| r.manages_members())
        .ok_or(MemberRuleError::NotAManager)
}

/// May a credential holding `held` grant, change or remove `role`? Only
/// when it holds every scope of that role, so a narrow credential of an
/// owner cannot make a broader one.
pub fn check_scopes(held: ScopeSet, role: Role) -> Result<(), MemberRuleError> {
    let missing = role.scopes().excess_over(held);
    if missing.iter().next().is_some() {
        return Err(MemberRuleError::ScopesShort(missing.names().join(", ")));
    }
    Ok(())
}

/// May `caller` add a member with `role`?
pub fn check_add(caller: Role, role: Role) -> Result<(), MemberRuleError> {
    if role == Role::Owner && caller != Role::Owner {
        return Err(MemberRuleError::OwnerAddsOwner);
    }
    Ok(())
}

/// May `caller` change a member from `current` to `new`, with `owners`
/// owners in the organization now?
pub fn check_change(
    caller: Role,
    current: Role,
    new: Role,
    owners: i64,
) -> Result<(), MemberRuleError> {
    if (new == Role::Owner || current == Role::Owner) && caller != Role::Owner {
        return Err(MemberRuleError::OwnerChangesOwner);
    }
    if current == Role::Owner && new != Role::Owner && owners <= 1 {
        return Err(MemberRuleError::LastOwner);
    }
    Ok(())
}

/// May `caller` remove a member whose role is `target`?
pub fn check_remove(caller: Role, target: Role, owners: i64) -> Result<(), MemberRuleError> {
    if target == Role::Owner {
        if caller != Role::Owner {
            return Err(MemberRuleError::OwnerRemovesOwner);
        }
        if owners <= 1 {
            return Err(MemberRuleError::LastOwner);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Admin, Developer, Owner, Viewer};

    /// Only owners and admins manage members.
    #[test]
    fn managers() {
        assert_eq!(manager(Some(Owner)), Ok(Owner));
        assert_eq!(manager(Some(Admin)), Ok(Admin));
        assert_eq!(manager(Some(Developer)), Err(MemberRuleError::NotAManager));
        assert_eq!(manager(None), Err(MemberRuleError::NotAManager));
    }

    /// Admins add anyone but owners; owners add owners.
    #[test]
    fn adding() {
        assert!(check_add(Admin, Developer).is_ok());
        assert_eq!(
            check_add(Admin, Owner),
            Err(MemberRuleError::OwnerAddsOwner)
        );
        assert!(check_add(Owner, Owner).is_ok());
    }

    /// Owner changes need an owner, and the last owner stays an owner.
    #[test]
    fn changing() {
        assert!(check_change(Admin, Viewer, Developer, 1).is_ok());
        assert_eq!(
            check_change(Admin, Owner, Admin, 2),
            Err(MemberRuleError::OwnerChangesOwner)
        );
        assert_eq!(
            check_change(Admin, Viewer, Owner, 2),
            Err(MemberRuleError::OwnerChangesOwner)
        );
        assert_eq!(
            check_change(Owner, Owner, Admin, 1),
            Err(MemberRuleError::LastOwner)
        );
        assert!(check_change(Owner, Owner, Admin, 2).is_ok());
        assert!(!MemberRuleError::LastOwner.is_forbidden());
    }

    /// Granting a role needs every one of its scopes.
    #[test]
    fn scopes_cover_the_role() {
        assert!(check_scopes(ScopeSet::all(), Owner).is_ok());
        assert!(check_scopes(Viewer.scopes(), Viewer).is_ok());
        let narrow = ScopeSet::parse_names(["projects:write", "projects:read"]).unwrap();
        let Err(MemberRuleError::ScopesShort(missing)) = check_scopes(narrow, Owner) else {
            panic!("a narrow credential makes an owner");
        };
        assert!(missing.contains("keys:write"), "{missing}");
        assert!(check_scopes(Developer.scopes(), Admin).is_err());
    }

    /// Removing an owner needs an owner and another owner left.
    #[test]
    fn removing() {
        assert!(check_remove(Admin, Developer, 1).is_ok());
        assert_eq!(
            check_remove(Admin, Owner, 3),
            Err(MemberRuleError::OwnerRemovesOwner)
        );
        assert_eq!(
            check_remove(Owner, Owner, 1),
            Err(MemberRuleError::LastOwner)
        );
        assert!(check_remove(Owner, Owner, 2).is_ok());
    }
}
