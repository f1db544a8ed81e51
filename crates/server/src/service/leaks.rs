//! Leaked-token revocation (SPEC §11), as GitHub's credential revocation
//! API: anyone who finds an access key or PAT of this deployment (a secret
//! scanner, a partner program, a user who sees one in a public repository)
//! can kill it without an account. The answer never says which tokens
//! existed: holding a token already tells its holder whether it works,
//! and nothing else is learned from a report.

use gatehouse_core::{
    time::now_ms,
    token::{self, TokenKind},
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::service::schema::LeakedToken;

use super::{
    audit::{self, Actor, Origin},
    credentials::reach_of,
    webhooks::events as webhook_events,
    Services,
};
use crate::error::{ApiError, ApiResult};

/// The most tokens one report may hold.
pub const MAX_TOKENS: usize = 100;
/// Longer strings cannot be tokens and are refused as input.
const MAX_TOKEN_LEN: usize = 256;

/// Body of `POST /v1/credentials/revoke`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// 1–100 tokens found in the open, each at most 256 characters.
    #[schema(value_type = Vec<LeakedToken>, required = true, min_items = 1, max_items = 100)]
    pub tokens: Option<Vec<String>>,
}

impl std::fmt::Debug for LeakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakReport")
            .field("tokens", &self.tokens.as_ref().map(Vec::len))
            .finish()
    }
}

/// Who reports a leak, in the audit trail.
const REPORTER: Actor<'static> = Actor {
    kind: "leak_report",
    id: "anonymous",
};

/// Revokes every active access key and PAT of this deployment among the
/// report's tokens; returns how many strings were received.
#[tracing::instrument(skip_all)]
pub async fn revoke(svc: &Services, origin: &Origin, report: LeakReport) -> ApiResult<usize> {
    let tokens = report.tokens.unwrap_or_default();
    if tokens.is_empty() || tokens.len() > MAX_TOKENS {
        return Err(ApiError::field(
            "tokens",
            format!("must hold 1 to {MAX_TOKENS} tokens"),
        ));
    }
    if tokens.iter().any(|t| t.chars().count() > MAX_TOKEN_LEN) {
        return Err(ApiError::field(
            "tokens",
            format!("each token must be at most {MAX_TOKEN_LEN} characters"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for raw in &tokens {
        // The checksum rules out typos and made-up strings without storage.
        let Ok(parsed) = token::parse(svc.prefixes(), raw.trim()) else {
            continue;
        };
        if !seen.insert(parsed.hash.0) {
            continue;
        }
        let Some(record) = svc
            .store()
            .credential_by_hash(parsed.hash.as_bytes())
            .await?
        else {
            continue;
        };
        let c = &record.credential;
        let now = now_ms();
        if c.revoked_at.is_some() || c.expires_at.is_some_and(|at| at <= now) {
            continue;
        }
        let kind = c.kind;
        let reach = reach_of(&record);
        let mut effects = audit::effects(
            REPORTER,
            &format!("{kind}.revoked"),
            (kind.as_str(), &c.id),
            &reach,
            origin,
        );
        if kind == TokenKind::AccessKey {
            effects
                .outbox
                .extend(webhook_events::access_key_revoked(svc, &reach, &c.id, "leaked").await?);
        }
        if svc.store().revoke_credential(&c.id, now, &effects).await? {
            metrics::counter!("gatehouse_leaked_tokens_revoked_total").increment(1);
            svc.forget_credential(&c.token_hash).await;
            if kind == TokenKind::AccessKey {
                svc.forget_all_connect_tokens().await;
            }
        }
    }
    Ok(tokens.len())
}
