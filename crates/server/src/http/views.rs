//! The JSON objects more than one route returns, built from stored rows,
//! and [`Sensitive`], the wrapper for the few values shown once.

use gatehouse_core::{time::format_ms, ScopeSet};
use gatehouse_store::{
    audit::AuditEvent,
    credentials::CredentialRecord,
    members::User,
    tenancy::{Environment, Organization},
};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    http::response::Data,
    service::{credentials::Issued, tenancy::ProjectWithEnvironments, Services},
};

/// A value shown once, in the one response that creates or reveals it:
/// serialized as it is, never printed by `Debug`.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Sensitive<T>(pub T);

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<&SecretString> for Sensitive<String> {
    fn from(secret: &SecretString) -> Self {
        Sensitive(secret.expose_secret().to_string())
    }
}

/// Who created a credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBy {
    /// `usr_…`
    pub id: String,
    pub email: String,
    /// The access key that made it, when a key did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_key_id: Option<String>,
}

/// An access key or personal access token (SPEC §3). `token` appears only
/// in the create and rotate responses.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// `key_…` or `pat_…`
    pub id: String,
    pub name: String,
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub scopes: Vec<String>,
    /// The last six characters of the token.
    pub checksum: String,
    /// `dyn_AbC…q1w2e3`
    pub preview: String,
    pub created_by: CreatedBy,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token: Option<Sensitive<String>>,
}

impl CredentialView {
    /// `pending_use` is this node's newest unflushed use of the credential.
    pub fn new(r: &CredentialRecord, now: i64, pending_use: Option<i64>) -> Self {
        let c = &r.credential;
        let last_used = Self::last_used(r, pending_use);
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            organization_id: c.organization_id.clone(),
            project_id: c.project_id.clone(),
            environment_id: c.environment_id.clone(),
            scopes: ScopeSet::from_storage(&c.scopes)
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            checksum: c.checksum.clone(),
            preview: c.preview.clone(),
            created_by: CreatedBy {
                id: c.user_id.clone(),
                email: r.user_email.clone(),
                via_key_id: c.via_key_id.clone(),
            },
            created_at: format_ms(c.created_at),
            expires_at: c.expires_at.map(format_ms),
            last_used_at: last_used.map(format_ms),
            revoked_at: c.revoked_at.map(format_ms),
            active: c.revoked_at.is_none() && c.expires_at.is_none_or(|e| e > now),
            token: None,
        }
    }

    /// When the credential was last used: the stored time or this node's
    /// newer unflushed use.
    pub fn last_used(r: &CredentialRecord, pending_use: Option<i64>) -> Option<i64> {
        match (r.credential.last_used_at, pending_use) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// A stored credential as shown now, with this node's unflushed use.
    pub fn of(svc: &Services, record: &CredentialRecord) -> Self {
        Self::new(
            record,
            gatehouse_core::time::now_ms(),
            svc.usage().pending(&record.credential.id),
        )
    }

    /// A credential just created or rotated, with its token.
    pub fn issued(issued: &Issued, now: i64) -> Self {
        Self {
            token: Some((&issued.token).into()),
            ..Self::new(&issued.record, now, None)
        }
    }
}

/// `GET /v1/tokens/me`: the caller's own credential and its kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenIntrospection {
    /// `access_key` or `personal_access_token`
    pub kind: String,
    #[serde(flatten)]
    pub credential: CredentialView,
}

impl TokenIntrospection {
    /// The `{"data": …}` body of a usable credential cut around its
    /// `last_used_at` value, the one field that changes from request to
    /// request while the credential stays cached: (before, after), to be
    /// joined with that value as a JSON string. `None` for a credential
    /// that is not active now (its body is built whole).
    pub fn template(
        kind: &str,
        record: &CredentialRecord,
        now: i64,
    ) -> Option<(Arc<str>, Arc<str>)> {
        // NUL is in no stored field (names and ids have no control
        // characters), so its escaped form marks the one place.
        const MARK: &str = "\u{0}last_used_at\u{0}";
        let mut credential = CredentialView::new(record, now, None);
        if !credential.active {
            return None;
        }
        credential.last_used_at = Some(MARK.to_string());
        let body = serde_json::to_string(&Data {
            data: Self {
                kind: kind.to_string(),
                credential,
            },
        })
        .ok()?;
        let mark = serde_json::to_string(MARK).ok()?;
        let (before, after) = body.split_once(&mark)?;
        if after.contains(&mark) {
            return None;
        }
        Some((before.into(), after.into()))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id.clone(),
            name: o.name.clone(),
            created_at: format_ms(o.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentView {
    /// `env_…`
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub organization_id: String,
    /// The environment's own `environment` rate limit; `null`: the
    /// deployment's default.
    pub rate_limit: Option<RateLimitView>,
    pub created_at: String,
}

/// Requests per window.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitView {
    pub limit: i64,
    pub window_seconds: i64,
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.clone(),
            name: e.name.clone(),
            project_id: e.project_id.clone(),
            organization_id: e.organization_id.clone(),
            rate_limit: e
                .rate_limit
                .zip(e.rate_limit_window)
                .map(|(limit, window_seconds)| RateLimitView {
                    limit,
                    window_seconds,
                }),
            created_at: format_ms(e.created_at),
        }
    }
}

/// A project with its environments.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    /// `prj_…`
    pub id: String,
    pub name: String,
    pub organization_id: String,
    pub environments: Vec<EnvironmentView>,
    pub created_at: String,
}

impl From<&ProjectWithEnvironments> for ProjectView {
    fn from(p: &ProjectWithEnvironments) -> Self {
        let ProjectWithEnvironments {
            project,
            environments,
        } = p;
        Self {
            id: project.id.clone(),
            name: project.name.clone(),
            organization_id: project.organization_id.clone(),
            environments: environments.iter().map(EnvironmentView::from).collect(),
            created_at: format_ms(project.created_at),
        }
    }
}

/// An organization member. `password` appears only when the member was
/// created with a generated password, in that one response.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// `usr_…`
    pub id: String,
    pub email: String,
    /// `owner`, `admin`, `developer` or `viewer`
    pub role: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Sensitive<String>>,
}

impl From<&User> for MemberView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            role: u.role.to_string(),
            created_at: format_ms(u.created_at),
            password: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    /// `access_key`, `personal_access_token`, `session` (a dashboard user),
    /// `user` (signing in), `end_user` (through a connect token), `public`
    /// (a public app's anonymous caller), `anonymous` (a failed sign-in) or
    /// `system` (Gatehouse itself)
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// An audit event (SPEC §9).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// `evt_…`
    pub id: String,
    pub actor: ActorView,
    /// e.g. `access_key.created`
    pub action: String,
    pub target: TargetView,
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            actor: ActorView {
                kind: e.actor_kind,
                id: e.actor_id,
            },
            action: e.action,
            target: TargetView {
                kind: e.target_type,
                id: e.target_id,
            },
            organization_id: e.organization_id,
            project_id: e.project_id,
            environment_id: e.environment_id,
            ip: e.ip,
            user_agent: e.user_agent,
            at: format_ms(e.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_core::{Role, Scope, TokenKind};
    use gatehouse_store::credentials::Credential;

    use super::*;

    fn record(name: &str, project: Option<&str>, expires_at: Option<i64>) -> CredentialRecord {
        CredentialRecord {
            credential: Credential {
                id: "key_01".into(),
                kind: TokenKind::AccessKey,
                name: name.into(),
                organization_id: "org_01".into(),
                project_id: project.map(str::to_string),
                environment_id: None,
                user_id: "usr_01".into(),
                via_key_id: Some("key_00".into()),
                scopes: ScopeSet::all()
                    .without(Scope::ConnectionsReveal)
                    .to_storage(),
                token_hash: vec![7; 32],
                checksum: "a1b2c3".into(),
                preview: "dyn_AbC…a1b2c3".into(),
                created_at: 1_700_000_000_123,
                expires_at,
                last_used_at: Some(1_700_000_100_000),
                revoked_at: None,
            },
            user_email: "ada@example.com".into(),
            user_role: Role::Owner,
            user_deleted_at: None,
        }
    }

    /// The cut body joined with a `last_used_at` value is byte for byte
    /// what serialising the whole view gives, whatever the fields hold.
    #[test]
    fn introspection_template_matches_the_whole_body() {
        let now = 1_800_000_000_000;
        for r in [
            record("ci", None, None),
            record(
                "quote \" back\\slash «ünï» \u{2028}",
                Some("prj_01"),
                Some(now + 1),
            ),
        ] {
            let (before, after) = TokenIntrospection::template("access_key", &r, now).unwrap();
            let used = now - 5;
            let spliced = format!("{before}\"{}\"{after}", format_ms(used));
            let whole = serde_json::to_string(&Data {
                data: TokenIntrospection {
                    kind: "access_key".into(),
                    credential: CredentialView::new(&r, now, Some(used)),
                },
            })
            .unwrap();
            assert_eq!(spliced, whole);
        }
    }

    /// A credential that is not active now gets no template.
    #[test]
    fn no_template_for_an_inactive_credential() {
        let now = 1_800_000_000_000;
        assert!(
            TokenIntrospection::template("access_key", &record("x", None, Some(now)), now)
                .is_none()
        );
        let mut revoked = record("x", None, None);
        revoked.credential.revoked_at = Some(now - 1);
        assert!(TokenIntrospection::template("access_key", &revoked, now).is_none());
    }
}
