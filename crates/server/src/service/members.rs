//! Organization members (SPEC §4). Only owners and admins manage members,
//! with an organization-wide credential of their own (a PAT or a session)
//! that holds every scope of any role it grants; only an owner makes
//! another owner, and the last owner can be neither demoted nor removed (the rules
//! are [`gatehouse_core::members`]). Removing a member revokes their
//! personal access tokens at once; access keys they created belong to the
//! organization and keep working.

use gatehouse_core::{
    members::{self as rules, MemberRuleError},
    new_id,
    time::now_ms,
    validate::{check_password, Email, BLANK},
    IdKind, Reach, Role,
};
use gatehouse_store::{members::User, Page, PageRequest};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::service::schema::RoleName;

use super::{
    audit::{self, Origin},
    principal::Principal,
    Services,
};
use crate::{
    crypto::passwords,
    error::{ApiError, ApiResult, FieldErrors},
};

/// Body of `POST /v1/organization/members`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[schema(value_type = String, required = true, format = Email)]
    pub email: Option<String>,
    /// `owner`, `admin`, `developer` (default) or `viewer`.
    #[schema(value_type = Option<RoleName>)]
    pub role: Option<String>,
    /// 12–1024 characters; generated (and returned once) when omitted.
    #[schema(value_type = Option<String>, min_length = 12, max_length = 1024)]
    pub password: Option<SecretString>,
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("email", &self.email)
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Body of `PATCH /v1/organization/members/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    #[schema(value_type = RoleName, required = true)]
    pub role: Option<String>,
}

/// A member just added, and their generated password when none was given.
pub struct Added {
    pub user: User,
    pub generated_password: Option<SecretString>,
}

/// The caller's role, when it may manage members: an owner or admin,
/// organization-wide, with their own credential (a PAT or a session,
/// never an access key, which belongs to no one).
fn require_manager(caller: &Principal) -> ApiResult<Role> {
    if !caller.kind.is_user() {
        return Err(ApiError::forbidden(
            "credential",
            "members are managed with a personal access token or a dashboard session, not an access key",
        ));
    }
    let role =
        rules::manager(caller.role).map_err(|e| ApiError::forbidden("role", e.to_string()))?;
    if !caller
        .reach
        .covers(&Reach::organization(caller.organization_id()))
    {
        return Err(ApiError::forbidden(
            "credential",
            "members are managed with an organization-wide credential",
        ));
    }
    Ok(role)
}

fn parse_role(raw: Option<&str>, default: Option<Role>) -> Result<Role, String> {
    match raw {
        None => default.ok_or_else(|| BLANK.to_string()),
        Some("") => Err(BLANK.into()),
        Some(r) => {
            Role::parse(r).ok_or_else(|| "must be one of owner, admin, developer, viewer".into())
        }
    }
}

async fn member_in_org(svc: &Services, caller: &Principal, id: &str) -> ApiResult<User> {
    let user = svc.store().user(id).await?.ok_or(ApiError::NotFound)?;
    if user.organization_id != caller.organization_id() {
        return Err(ApiError::NotFound);
    }
    Ok(user)
}

/// Members of the organization, oldest first.
pub async fn list(svc: &Services, caller: &Principal, page: PageRequest) -> ApiResult<Page<User>> {
    Ok(svc
        .store()
        .list_users(caller.organization_id(), page)
        .await?)
}

/// Adds a member; without a password, one is generated.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn add(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    body: NewMember,
) -> ApiResult<Added> {
    use secrecy::ExposeSecret;
    let caller_role = require_manager(caller)?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(body.email.as_deref().unwrap_or("")));
    let role = errors.check(
        "role",
        parse_role(body.role.as_deref(), Some(Role::Developer)),
    );
    if let Some(pw) = &body.password {
        errors.check("password", check_password(pw.expose_secret()));
    }
    if let Some(role) = role {
        rules::check_add(caller_role, role)?;
        rules::check_scopes(caller.scopes, role)?;
    }
    errors.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::field("input", BLANK));
    };
    let generated = body.password.is_none();
    let password = body.password.unwrap_or_else(passwords::generate);
    let user = User {
        id: new_id(IdKind::User),
        organization_id: caller.organization_id().to_string(),
        email: email.into_inner(),
        password_hash: passwords::hash(password.clone()).await?,
        role,
        created_at: now_ms(),
        deleted_at: None,
    };
    let effects = audit::effects(
        caller.into(),
        "member.created",
        ("user", &user.id),
        &Reach::organization(caller.organization_id()),
        origin,
    );
    svc.store().create_user(&user, &effects).await?;
    Ok(Added {
        user,
        generated_password: generated.then_some(password),
    })
}

/// Changes a member's role.
#[tracing::instrument(skip_all, fields(caller = %caller.id, member = %id))]
pub async fn update(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: MemberUpdate,
) -> ApiResult<User> {
    let caller_role = require_manager(caller)?;
    let mut user = member_in_org(svc, caller, id).await?;
    let mut errors = FieldErrors::new();
    let role = errors.check("role", parse_role(body.role.as_deref(), None));
    errors.finish()?;
    let role = role.ok_or_else(|| ApiError::field("role", BLANK))?;
    // Count owners only when the rule needs it.
    let owners = if user.role == Role::Owner && role != Role::Owner && caller_role == Role::Owner {
        svc.store().count_owners(caller.organization_id()).await?
    } else {
        i64::MAX
    };
    rules::check_change(caller_role, user.role, role, owners)?;
    rules::check_scopes(caller.scopes, role)?;
    rules::check_scopes(caller.scopes, user.role)?;
    if user.role != role {
        let effects = audit::effects(
            caller.into(),
            "member.updated",
            ("user", &user.id),
            &Reach::organization(caller.organization_id()),
            origin,
        );
        svc.store().set_role(&user.id, role, &effects).await?;
        svc.forget_all_credentials().await;
        user.role = role;
    }
    Ok(user)
}

/// Removes a member; their personal access tokens are revoked.
#[tracing::instrument(skip_all, fields(caller = %caller.id, member = %id))]
pub async fn remove(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let caller_role = require_manager(caller)?;
    let user = member_in_org(svc, caller, id).await?;
    let owners = if user.role == Role::Owner && caller_role == Role::Owner {
        svc.store().count_owners(caller.organization_id()).await?
    } else {
        i64::MAX
    };
    rules::check_remove(caller_role, user.role, owners).map_err(|e| match e {
        // Removing names the member, not a role.
        MemberRuleError::LastOwner => ApiError::field("id", e.to_string()),
        other => other.into(),
    })?;
    rules::check_scopes(caller.scopes, user.role)?;
    let effects = audit::effects(
        caller.into(),
        "member.removed",
        ("user", &user.id),
        &Reach::organization(caller.organization_id()),
        origin,
    );
    svc.store()
        .remove_user(&user.id, now_ms(), &effects)
        .await?;
    svc.forget_all_credentials().await;
    Ok(())
}
