//! Access keys and personal access tokens (SPEC §3): issuing one within
//! the caller's reach and scopes, finding one the caller may see, listing,
//! rotating with a grace period, and revoking. Both kinds share every rule;
//! a PAT additionally belongs to one user.

use gatehouse_core::{
    new_id,
    time::{now_ms, parse_expiry},
    token::{self, NewToken},
    validate::{whole_number, Name, BLANK},
    IdKind, Reach, Scope, ScopeSet, TokenKind, TokenPrefixes,
};
use gatehouse_store::{
    credentials::{Credential, CredentialFilter, CredentialRecord},
    Page, PageRequest,
};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    audit::{self, Origin},
    principal::{CallerKind, Principal},
    schema::{NameText, ScopeName},
    visibility,
    webhooks::events as webhook_events,
    Services,
};
use crate::error::{ApiError, ApiResult, FieldErrors};

/// Body of `POST /v1/access-keys` and `POST /v1/personal-access-tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// 1–100 characters.
    #[schema(value_type = NameText, required = true)]
    pub name: Option<String>,
    /// Narrow to a project (default: the caller's own reach).
    #[schema(min_length = 1)]
    pub project_id: Option<String>,
    /// Narrow to an environment; `project_id` is derived from it.
    #[schema(min_length = 1)]
    pub environment_id: Option<String>,
    /// Default: every scope the caller holds except `connections:reveal`.
    #[schema(value_type = Option<Vec<ScopeName>>, min_items = 1)]
    pub scopes: Option<Vec<String>>,
    /// RFC 3339; must be in the future.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// Body of the rotate routes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    /// How long the old token keeps working: 0–604800 seconds, default 0.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 604_800)]
    pub grace_period_seconds: Option<i64>,
}

/// The longest rotation grace period: seven days.
pub const MAX_GRACE_SECONDS: i64 = 604_800;

/// What a new credential is for.
pub struct CredentialSpec<'a> {
    pub kind: TokenKind,
    pub name: &'a str,
    pub reach: &'a Reach,
    pub user_id: &'a str,
    pub via_key_id: Option<&'a str>,
    pub scopes: ScopeSet,
    pub expires_at: Option<i64>,
}

/// A new credential row and its one-time plaintext.
pub fn issue(prefixes: &TokenPrefixes, spec: CredentialSpec<'_>) -> (Credential, NewToken) {
    let new = token::generate(prefixes, spec.kind);
    let id_kind = match spec.kind {
        TokenKind::AccessKey => IdKind::AccessKey,
        TokenKind::PersonalAccessToken => IdKind::PersonalAccessToken,
    };
    let row = Credential {
        id: new_id(id_kind),
        kind: spec.kind,
        name: spec.name.to_string(),
        organization_id: spec.reach.organization_id.clone(),
        project_id: spec.reach.project_id.clone(),
        environment_id: spec.reach.environment_id.clone(),
        user_id: spec.user_id.to_string(),
        via_key_id: spec.via_key_id.map(str::to_string),
        scopes: spec.scopes.to_storage(),
        token_hash: new.hash.as_bytes().to_vec(),
        checksum: new.checksum.clone(),
        preview: new.preview.clone(),
        created_at: now_ms(),
        expires_at: spec.expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    (row, new)
}

/// Adds `count` organization-wide access keys (every scope but
/// `connections:reveal`) attributed to the installation's first owner, in
/// batches of one transaction each, without audit events, handing each
/// batch's tokens to `sink` once it is stored. For seeding benchmarks.
pub async fn seed_access_keys(
    store: &gatehouse_store::Store,
    prefixes: &TokenPrefixes,
    count: u64,
    mut sink: impl FnMut(&[NewToken]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const BATCH: u64 = 50_000;
    let org = store.installation().await?.ok_or_else(|| {
        anyhow::anyhow!("the database is not initialised: run `gatehouse init` or `serve` first")
    })?;
    let owner = store
        .list_users(&org, PageRequest { page: 1, size: 1 })
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the organization has no user"))?;
    let reach = Reach::organization(org);
    let scopes = ScopeSet::all().without(Scope::ConnectionsReveal);
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let (rows, tokens): (Vec<_>, Vec<_>) = (0..n)
            .map(|i| {
                let name = format!("bench-{}", done + i);
                issue(
                    prefixes,
                    CredentialSpec {
                        kind: TokenKind::AccessKey,
                        name: &name,
                        reach: &reach,
                        user_id: &owner.id,
                        via_key_id: None,
                        scopes,
                        expires_at: None,
                    },
                )
            })
            .unzip();
        store.create_credentials_unaudited(&rows).await?;
        sink(&tokens)?;
        done += n;
    }
    Ok(())
}

/// A credential just created or rotated, with its token: the only time
/// the token exists outside the client.
pub struct Issued {
    pub record: CredentialRecord,
    pub token: SecretString,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("id", &self.record.credential.id)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// Filters of a credential listing.
#[derive(Debug, Clone, Default)]
pub struct ListCredentials {
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    /// `Some(true)`: only usable ones; `Some(false)`: only revoked or expired.
    pub active: Option<bool>,
}

/// The reach named by `project_id`/`environment_id`, or the caller's own.
/// A project or environment the caller cannot see is 404; one it can see
/// but not wholly cover is 403.
async fn resolve_reach(
    svc: &Services,
    caller: &Principal,
    project_id: Option<&str>,
    environment_id: Option<&str>,
) -> ApiResult<Reach> {
    let wanted = match (project_id, environment_id) {
        (project, Some(env_id)) => {
            let env = visibility::environment(svc, &caller.reach, env_id).await?;
            if project.is_some_and(|p| p != env.project_id) {
                return Err(ApiError::field(
                    "project_id",
                    "does not contain environment_id",
                ));
            }
            visibility::environment_reach(&env)
        }
        (Some(project_id), None) => {
            visibility::project_reach(&visibility::project(svc, caller, project_id).await?)
        }
        (None, None) => caller.reach.clone(),
    };
    Ok(caller.reach.grant(wanted)?)
}

/// The user and key a new credential is attributed to (SPEC §3
/// `created_by`): the caller's user, plus `via_key_id` when a key acts.
fn creator(caller: &Principal) -> (&str, Option<&str>) {
    let via = (caller.kind == CallerKind::AccessKey).then_some(caller.id.as_str());
    (caller.user_id.as_str(), via)
}

/// Reads back a credential just written.
async fn reread(svc: &Services, kind: TokenKind, id: &str) -> ApiResult<CredentialRecord> {
    svc.store()
        .credential(kind, id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("credential {id} vanished after write")))
}

/// Creates an access key or PAT within the caller's reach and scopes.
#[tracing::instrument(skip_all, fields(caller = %caller.id, kind = %kind))]
pub async fn create(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    kind: TokenKind,
    body: CreateCredential,
) -> ApiResult<Issued> {
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
        svc,
        caller,
        body.project_id.as_deref().filter(|s| !s.is_empty()),
        body.environment_id.as_deref().filter(|s| !s.is_empty()),
    )
    .await?;
    let scopes = match ScopeSet::grant(caller.scopes, body.scopes.as_deref()) {
        Ok(scopes) => scopes,
        Err(err @ gatehouse_core::scope::GrantError::Exceeds(_)) => return Err(err.into()),
        Err(err) => {
            errors.add("scopes", err.to_string());
            ScopeSet::EMPTY
        }
    };
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", BLANK))?;

    let (user_id, via_key_id) = creator(caller);
    let (row, token) = issue(
        svc.prefixes(),
        CredentialSpec {
            kind,
            name: name.as_str(),
            reach: &reach,
            user_id,
            via_key_id,
            scopes,
            expires_at: expires_at.flatten(),
        },
    );
    let effects = audit::effects(
        caller.into(),
        &format!("{kind}.created"),
        (kind.as_str(), &row.id),
        &reach,
        origin,
    );
    svc.store().create_credential(&row, &effects).await?;
    let record = reread(svc, kind, &row.id).await?;
    Ok(Issued {
        record,
        token: token.token,
    })
}

/// The credential `id` of `kind`, if the caller may see it: same
/// organization, within the caller's reach, and for PATs the caller's own.
pub async fn find_visible(
    svc: &Services,
    caller: &Principal,
    kind: TokenKind,
    id: &str,
) -> ApiResult<CredentialRecord> {
    let record = svc
        .store()
        .credential(kind, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let own = kind == TokenKind::AccessKey || record.credential.user_id == caller.user_id;
    if !own || !caller.reach.covers(&reach_of(&record)) {
        return Err(ApiError::NotFound);
    }
    Ok(record)
}

pub fn reach_of(record: &CredentialRecord) -> Reach {
    let c = &record.credential;
    Reach {
        organization_id: c.organization_id.clone(),
        project_id: c.project_id.clone(),
        environment_id: c.environment_id.clone(),
    }
}

/// Credentials of `kind` the caller can see, newest first.
#[tracing::instrument(skip_all, fields(caller = %caller.id, kind = %kind))]
pub async fn list(
    svc: &Services,
    caller: &Principal,
    kind: TokenKind,
    query: ListCredentials,
    page: PageRequest,
) -> ApiResult<Page<CredentialRecord>> {
    let (project_id, environment_id) = match (query.project_id, query.environment_id) {
        // Visibility of the named project/environment (404 when hidden);
        // listing inside a visible one is allowed even if it is wider.
        (project, Some(env_id)) => {
            let env = visibility::environment(svc, &caller.reach, &env_id).await?;
            if project.is_some_and(|p| p != env.project_id) {
                return Err(ApiError::field(
                    "project_id",
                    "does not contain environment_id",
                ));
            }
            (Some(env.project_id), Some(env.id))
        }
        (Some(project_id), None) => {
            let project = visibility::project(svc, caller, &project_id).await?;
            (Some(project.id), caller.reach.environment_id.clone())
        }
        (None, None) => (
            caller.reach.project_id.clone(),
            caller.reach.environment_id.clone(),
        ),
    };
    let filter = CredentialFilter {
        organization_id: caller.organization_id().to_string(),
        kind,
        user_id: (kind == TokenKind::PersonalAccessToken).then(|| caller.user_id.clone()),
        project_id,
        environment_id,
        active: query.active,
        now: now_ms(),
    };
    Ok(svc.store().list_credentials(&filter, page).await?)
}

/// Revokes a credential: it fails from the next request on, on every node.
#[tracing::instrument(skip_all, fields(caller = %caller.id, credential = %id))]
pub async fn revoke(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    kind: TokenKind,
    id: &str,
) -> ApiResult<()> {
    let record = find_visible(svc, caller, kind, id).await?;
    let reach = reach_of(&record);
    let mut effects = audit::effects(
        caller.into(),
        &format!("{kind}.revoked"),
        (kind.as_str(), id),
        &reach,
        origin,
    );
    if kind == TokenKind::AccessKey {
        effects
            .outbox
            .extend(webhook_events::access_key_revoked(svc, &reach, id, "revoked").await?);
    }
    if svc
        .store()
        .revoke_credential(id, now_ms(), &effects)
        .await?
    {
        svc.forget_credential(&record.credential.token_hash).await;
        if kind == TokenKind::AccessKey {
            // The connect tokens the key minted die with it.
            svc.forget_all_connect_tokens().await;
        }
    }
    Ok(())
}

/// Rotates a credential: a new one with the same name, scopes and reach;
/// the old one keeps working for the grace period.
#[tracing::instrument(skip_all, fields(caller = %caller.id, credential = %id))]
pub async fn rotate(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    kind: TokenKind,
    id: &str,
    body: RotateCredential,
) -> ApiResult<Issued> {
    let old = find_visible(svc, caller, kind, id).await?;
    let stored_scopes = ScopeSet::from_storage(&old.credential.scopes);
    let excess = stored_scopes.excess_over(caller.scopes);
    if excess != ScopeSet::EMPTY {
        return Err(ApiError::forbidden(
            "scopes",
            format!(
                "rotating needs every scope of the key; the caller lacks: {}",
                excess
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
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
    let (user_id, via_key_id) = creator(caller);
    let (row, token) = issue(
        svc.prefixes(),
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
    let effects = audit::effects(
        caller.into(),
        &format!("{kind}.rotated"),
        (kind.as_str(), id),
        &reach,
        origin,
    );
    let rotated = svc
        .store()
        .rotate_credential(id, now, now + grace * 1000, &row, &effects)
        .await?;
    if !rotated {
        // Revoked or expired since it was read.
        return Err(ApiError::field(
            "id",
            "is revoked or expired and cannot be rotated",
        ));
    }
    svc.forget_credential(&c.token_hash).await;
    let record = reread(svc, kind, &row.id).await?;
    Ok(Issued {
        record,
        token: token.token,
    })
}
