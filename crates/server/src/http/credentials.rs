//! What access keys and personal access tokens share: creating within the
//! caller's reach and scopes, finding one the caller may see, listing,
//! rotating with a grace period and revoking. The route modules
//! (`access_keys`, `personal_access_tokens`) are thin over this.

use axum::{http::StatusCode, response::Response};
use gatehouse_core::{
    time::{now_ms, parse_rfc3339},
    validate::{Name, BLANK},
    Reach, Scope, ScopeSet, TokenKind,
};
use gatehouse_store::credentials::{CredentialFilter, CredentialRecord};
use secrecy::ExposeSecret;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    auth::Principal,
    error::{ApiError, ApiResult, FieldErrors},
    http::environments::visible_environment,
    http::projects::visible_project,
    http::{
        extract::{QueryMap, RequestMeta},
        response::{created, List},
        views::CredentialView,
    },
    issue::{self, CredentialSpec},
    state::AppState,
};

/// Body of `POST /v1/access-keys` and `POST /v1/personal-access-tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// 1–100 characters.
    pub name: Option<String>,
    /// Narrow to a project (default: the caller's own reach).
    pub project_id: Option<String>,
    /// Narrow to an environment; `project_id` is derived from it.
    pub environment_id: Option<String>,
    /// Default: every scope the caller holds except `connections:reveal`.
    pub scopes: Option<Vec<String>>,
    /// RFC 3339; must be in the future.
    pub expires_at: Option<String>,
}

/// Body of the rotate routes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    /// How long the old token keeps working: 0–604800 seconds, default 0.
    pub grace_period_seconds: Option<i64>,
}

/// The longest rotation grace period: seven days.
pub const MAX_GRACE_SECONDS: i64 = 604_800;

/// The reach named by `project_id`/`environment_id`, or the caller's own.
/// A project or environment the caller cannot see is 404; one it can see
/// but not wholly cover is 403.
pub async fn resolve_reach(
    state: &AppState,
    principal: &Principal,
    project_id: Option<&str>,
    environment_id: Option<&str>,
) -> ApiResult<Reach> {
    let caller = &principal.reach;
    let wanted = match (project_id, environment_id) {
        (project, Some(env_id)) => {
            let env = visible_environment(state, caller, env_id).await?;
            if project.is_some_and(|p| p != env.project_id) {
                return Err(ApiError::field(
                    "project_id",
                    "does not contain environment_id",
                ));
            }
            Reach {
                organization_id: env.organization_id,
                project_id: Some(env.project_id),
                environment_id: Some(env.id),
            }
        }
        (Some(project_id), None) => {
            let project = visible_project(state, principal, project_id).await?;
            Reach {
                organization_id: project.organization_id,
                project_id: Some(project.id),
                environment_id: None,
            }
        }
        (None, None) => caller.clone(),
    };
    if !caller.covers(&wanted) {
        return Err(ApiError::forbidden(
            if wanted.environment_id.is_some() {
                "environment_id"
            } else {
                "project_id"
            },
            format!(
                "a {}-scoped credential cannot create a {}-wide one",
                caller.level(),
                wanted.level()
            ),
        ));
    }
    Ok(wanted)
}

/// Scopes a new credential asks for, or the default; 403 beyond the caller's.
fn resolve_scopes(
    principal: &Principal,
    requested: Option<&[String]>,
    errors: &mut FieldErrors,
) -> ApiResult<ScopeSet> {
    let scopes = match requested {
        None => principal.scopes.without(Scope::ConnectionsReveal),
        Some([]) => {
            errors.add("scopes", "must name at least one scope");
            return Ok(ScopeSet::EMPTY);
        }
        Some(names) => match ScopeSet::parse_names(names.iter().map(String::as_str)) {
            Ok(set) => set,
            Err(unknown) => {
                errors.add("scopes", format!("unknown scope {unknown:?}"));
                return Ok(ScopeSet::EMPTY);
            }
        },
    };
    let excess: Vec<&str> = scopes
        .iter()
        .filter(|s| !principal.scopes.contains(*s))
        .map(Scope::as_str)
        .collect();
    if !excess.is_empty() {
        return Err(ApiError::forbidden(
            "scopes",
            format!("exceeds the caller's scopes: {}", excess.join(", ")),
        ));
    }
    Ok(scopes)
}

fn parse_expiry(raw: Option<&str>, now: i64) -> Result<Option<i64>, String> {
    match raw {
        None => Ok(None),
        Some(text) => match parse_rfc3339(text) {
            Some(at) if at > now => Ok(Some(at)),
            Some(_) => Err("must be in the future".into()),
            None => Err("must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z".into()),
        },
    }
}

/// The user and key a new credential is attributed to (SPEC §3
/// `created_by`): the caller's user, plus `via_key_id` when a key acts.
fn creator(principal: &Principal) -> (&str, Option<&str>) {
    let via = (principal.kind == TokenKind::AccessKey).then(|| principal.id());
    (principal.user_id(), via)
}

pub async fn create(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    kind: TokenKind,
    body: CreateCredential,
) -> ApiResult<Response> {
    let now = now_ms();
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Name::parse(body.name.as_deref().unwrap_or("")));
    let expires_at = errors.check("expires_at", parse_expiry(body.expires_at.as_deref(), now));
    let blank = |v: &Option<String>| v.as_deref().is_some_and(str::is_empty);
    if blank(&body.project_id) {
        errors.add("project_id", BLANK);
    }
    if blank(&body.environment_id) {
        errors.add("environment_id", BLANK);
    }
    let reach = resolve_reach(
        state,
        principal,
        body.project_id.as_deref().filter(|s| !s.is_empty()),
        body.environment_id.as_deref().filter(|s| !s.is_empty()),
    )
    .await?;
    let scopes = resolve_scopes(principal, body.scopes.as_deref(), &mut errors)?;
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", BLANK))?;
    let expires_at = expires_at.flatten();

    let (user_id, via_key_id) = creator(principal);
    let (row, token) = issue::credential(
        state.prefixes(),
        CredentialSpec {
            kind,
            name: name.as_str(),
            reach: &reach,
            user_id,
            via_key_id,
            scopes,
            expires_at,
        },
    );
    state.store().create_credential(&row).await?;
    let record = state
        .store()
        .credential(kind, &row.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("credential {} vanished after insert", row.id))?;
    state
        .audit(
            principal,
            &format!("{}.created", kind.as_str()),
            (kind.as_str(), &row.id),
            &reach,
            meta,
        )
        .await?;
    let mut view = CredentialView::new(&record, now, None);
    view.token = Some(token.token.expose_secret().to_string());
    Ok(created(view))
}

/// The credential `id` of `kind`, if the caller may see it: same
/// organization, within the caller's reach, and for PATs the caller's own.
pub async fn find_visible(
    state: &AppState,
    principal: &Principal,
    kind: TokenKind,
    id: &str,
) -> ApiResult<CredentialRecord> {
    let record = state
        .store()
        .credential(kind, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let c = &record.credential;
    let own = kind == TokenKind::AccessKey || c.user_id == principal.user_id();
    if !own || !principal.reach.covers(&reach_of(&record)) {
        return Err(ApiError::NotFound);
    }
    Ok(record)
}

fn reach_of(record: &CredentialRecord) -> Reach {
    let c = &record.credential;
    Reach {
        organization_id: c.organization_id.clone(),
        project_id: c.project_id.clone(),
        environment_id: c.environment_id.clone(),
    }
}

pub fn view(state: &AppState, record: &CredentialRecord) -> CredentialView {
    CredentialView::new(
        record,
        now_ms(),
        state.usage().pending(&record.credential.id),
    )
}

pub async fn list(
    state: &AppState,
    principal: &Principal,
    kind: TokenKind,
    query: &QueryMap,
) -> ApiResult<List<CredentialView>> {
    let page = query.page()?;
    let active = query.boolean("active")?;
    let project_filter = query.string("project_id");
    let env_filter = query.string("environment_id");
    let narrowed = if project_filter.is_some() || env_filter.is_some() {
        // Visibility of the named project/environment (404 when hidden);
        // listing inside a visible one is allowed even if it is wider.
        let caller = &principal.reach;
        match env_filter.as_deref() {
            Some(env_id) => {
                let env = visible_environment(state, caller, env_id).await?;
                if project_filter
                    .as_deref()
                    .is_some_and(|p| p != env.project_id)
                {
                    return Err(ApiError::field(
                        "project_id",
                        "does not contain environment_id",
                    ));
                }
                (Some(env.project_id), Some(env.id))
            }
            None => {
                let id = project_filter.as_deref().unwrap_or_default();
                let project = visible_project(state, principal, id).await?;
                (Some(project.id), caller.environment_id.clone())
            }
        }
    } else {
        (
            principal.reach.project_id.clone(),
            principal.reach.environment_id.clone(),
        )
    };
    let filter = CredentialFilter {
        organization_id: principal.organization_id().to_string(),
        kind,
        user_id: (kind == TokenKind::PersonalAccessToken).then(|| principal.user_id().to_string()),
        project_id: narrowed.0,
        environment_id: narrowed.1,
        active,
        now: now_ms(),
    };
    let found = state.store().list_credentials(&filter, page).await?;
    Ok(List::new(found.map(|r| view(state, &r)), page))
}

pub async fn revoke(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    kind: TokenKind,
    id: &str,
) -> ApiResult<StatusCode> {
    let record = find_visible(state, principal, kind, id).await?;
    let now = now_ms();
    if state.store().revoke_credential(id, now).await? {
        state.forget_credential(&record.credential.token_hash).await;
        state
            .audit(
                principal,
                &format!("{}.revoked", kind.as_str()),
                (kind.as_str(), id),
                &reach_of(&record),
                meta,
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    kind: TokenKind,
    id: &str,
    body: RotateCredential,
) -> ApiResult<Response> {
    let old = find_visible(state, principal, kind, id).await?;
    let stored_scopes = ScopeSet::from_storage(&old.credential.scopes);
    let excess: Vec<&str> = stored_scopes
        .iter()
        .filter(|s| !principal.scopes.contains(*s))
        .map(Scope::as_str)
        .collect();
    if !excess.is_empty() {
        return Err(ApiError::forbidden(
            "scopes",
            format!(
                "rotating needs every scope of the key; the caller lacks: {}",
                excess.join(", ")
            ),
        ));
    }
    let grace = body.grace_period_seconds.unwrap_or(0);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::field(
            "grace_period_seconds",
            format!("must be a whole number from 0 to {MAX_GRACE_SECONDS}"),
        ));
    }
    let now = now_ms();
    let c = &old.credential;
    if c.revoked_at.is_some() || c.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::field(
            "id",
            "is revoked or expired and cannot be rotated",
        ));
    }
    let reach = reach_of(&old);
    let (user_id, via_key_id) = creator(principal);
    let (row, token) = issue::credential(
        state.prefixes(),
        CredentialSpec {
            kind,
            name: &c.name,
            reach: &reach,
            user_id,
            via_key_id,
            scopes: stored_scopes,
            expires_at: c.expires_at,
        },
    );
    state
        .store()
        .rotate_credential(id, now + grace * 1000, &row)
        .await?;
    state.forget_credential(&c.token_hash).await;
    let record = state
        .store()
        .credential(kind, &row.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("credential {} vanished after rotation", row.id))?;
    state
        .audit(
            principal,
            &format!("{}.rotated", kind.as_str()),
            (kind.as_str(), id),
            &reach,
            meta,
        )
        .await?;
    let mut view = CredentialView::new(&record, now, None);
    view.token = Some(token.token.expose_secret().to_string());
    Ok(created(view))
}
