//! Issuing credentials and recording audit events: the pieces shared by
//! the bootstrap and the key, PAT and member handlers.

use gatehouse_core::{
    new_id,
    time::now_ms,
    token::{self, NewToken},
    IdKind, Reach, ScopeSet, TokenKind, TokenPrefixes,
};
use gatehouse_store::{audit::AuditEvent, credentials::Credential};

use crate::{auth::Principal, http::extract::RequestMeta, state::AppState};

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
pub fn credential(prefixes: &TokenPrefixes, spec: CredentialSpec<'_>) -> (Credential, NewToken) {
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

/// Who did something, for an audit event.
pub struct Actor<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

impl<'a> From<&'a Principal> for Actor<'a> {
    fn from(p: &'a Principal) -> Self {
        Actor {
            kind: p.actor_kind(),
            id: p.id(),
        }
    }
}

/// An audit event of `action` on `target` within `reach`.
pub fn event(
    actor: Actor<'_>,
    action: &str,
    target: (&str, &str),
    reach: &Reach,
    meta: &RequestMeta,
) -> AuditEvent {
    AuditEvent {
        id: new_id(IdKind::Event),
        organization_id: reach.organization_id.clone(),
        project_id: reach.project_id.clone(),
        environment_id: reach.environment_id.clone(),
        actor_kind: actor.kind.to_string(),
        actor_id: actor.id.to_string(),
        action: action.to_string(),
        target_type: target.0.to_string(),
        target_id: target.1.to_string(),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        at: now_ms(),
    }
}

impl AppState {
    /// Records an audit event by `principal`.
    pub async fn audit(
        &self,
        principal: &Principal,
        action: &str,
        target: (&str, &str),
        reach: &Reach,
        meta: &RequestMeta,
    ) -> anyhow::Result<()> {
        self.audit_as(principal.into(), action, target, reach, meta)
            .await
    }

    /// Records an audit event by any actor (an end user, a public caller).
    pub async fn audit_as(
        &self,
        actor: Actor<'_>,
        action: &str,
        target: (&str, &str),
        reach: &Reach,
        meta: &RequestMeta,
    ) -> anyhow::Result<()> {
        let event = event(actor, action, target, reach, meta);
        self.store().record_event(&event).await?;
        Ok(())
    }
}
