//! Who is calling: an authenticated management caller ([`Principal`]: an
//! access key, a personal access token or a dashboard session) or an end
//! user holding a connect token ([`ConnectPrincipal`]), and the bounded
//! caches that spare the database a lookup for callers seen recently.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::body::Bytes;

use gatehouse_core::{Reach, Role, ScopeSet, TokenKind};
use gatehouse_store::{apps::App, credentials::CredentialRecord, sessions::SessionRecord};

use crate::{crypto::jwt::ConnectClaims, service::limits::HeldSlot};

/// What kind of credential a management caller used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    AccessKey,
    PersonalAccessToken,
    /// A signed-in dashboard user (cookie), holding the whole of their role.
    Session,
}

impl CallerKind {
    /// `access_key`, `personal_access_token` or `session`: the audit actor
    /// kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccessKey => "access_key",
            Self::PersonalAccessToken => "personal_access_token",
            Self::Session => "session",
        }
    }

    /// Whether the caller acts as a user (a PAT or a session), not as a key.
    pub fn is_user(self) -> bool {
        self != Self::AccessKey
    }
}

impl From<TokenKind> for CallerKind {
    fn from(kind: TokenKind) -> Self {
        match kind {
            TokenKind::AccessKey => Self::AccessKey,
            TokenKind::PersonalAccessToken => Self::PersonalAccessToken,
        }
    }
}

/// An authenticated management caller: who, how far they reach, what they
/// may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: CallerKind,
    /// `key_…`, `pat_…` or `ses_…`.
    pub id: String,
    /// The user behind the credential (a PAT's or session's owner; a key's
    /// creator).
    pub user_id: String,
    /// That user's role now, if they are still a member.
    pub role: Option<Role>,
    pub reach: Reach,
    /// Effective scopes: a key's stored scopes; a PAT's stored scopes
    /// narrowed to its owner's role as it is now; a session's whole role.
    pub scopes: ScopeSet,
    /// The stored key or PAT (none for a session).
    pub credential: Option<CredentialRecord>,
    /// Work done once per cached caller instead of once per request.
    pub memo: Memo,
}

/// What is derived from a cached caller once and reused while it stays
/// cached: its rate-limiter key, and its `GET /v1/tokens/me` body around
/// the one field that changes per request.
#[derive(Debug, Clone, Default)]
pub struct Memo {
    /// The caller's `credential` rate-limit key (a digest of its id).
    pub limit_key: OnceLock<[u8; 16]>,
    /// That key's slot in the limiter's table.
    pub limit_slot: HeldSlot,
    /// Its environment's `environment` key, for an environment's key.
    pub environment_limit_key: OnceLock<[u8; 16]>,
    /// That key's slot in the limiter's table.
    pub environment_limit_slot: HeldSlot,
    /// The introspection JSON before and after the `last_used_at` value.
    pub introspection: OnceLock<Option<(Arc<str>, Arc<str>)>>,
    /// Set by the first `GET /v1/tokens/me`: the template is made by the
    /// second.
    pub introspected: OnceLock<()>,
    /// The last body made from that template, and the second of its
    /// `last_used_at` (the field is in whole seconds, so every request in
    /// that second answers the same bytes).
    pub introspection_body: SecondBody,
}

/// A response body kept for the second it was made in.
#[derive(Debug, Default)]
pub struct SecondBody(Mutex<Option<(i64, Bytes)>>);

impl SecondBody {
    /// The body kept for `second`, if that is the second it holds.
    pub fn get(&self, second: i64) -> Option<Bytes> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|(at, _)| *at == second)
            .map(|(_, body)| body.clone())
    }

    /// Keeps `body` as the one for `second`.
    pub fn set(&self, second: i64, body: Bytes) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((second, body));
    }
}

impl Clone for SecondBody {
    fn clone(&self) -> Self {
        Self(Mutex::new(
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ))
    }
}

impl Principal {
    /// The caller behind a stored access key or PAT.
    pub fn from_credential(record: CredentialRecord) -> Self {
        let c = &record.credential;
        let role = Some(record.user_role).filter(|_| record.user_deleted_at.is_none());
        let stored = ScopeSet::from_storage(&c.scopes);
        let scopes = match c.kind {
            TokenKind::AccessKey => stored,
            TokenKind::PersonalAccessToken => role
                .map(|r| stored.intersect(r.scopes()))
                .unwrap_or_default(),
        };
        Self {
            kind: c.kind.into(),
            id: c.id.clone(),
            user_id: c.user_id.clone(),
            role,
            reach: Reach {
                organization_id: c.organization_id.clone(),
                project_id: c.project_id.clone(),
                environment_id: c.environment_id.clone(),
            },
            scopes,
            credential: Some(record),
            memo: Memo::default(),
        }
    }

    /// The caller behind a live dashboard session: the user, organization
    /// wide, with every scope of their role.
    pub fn from_session(record: &SessionRecord) -> Self {
        let user = &record.user;
        Self {
            kind: CallerKind::Session,
            id: record.session.id.clone(),
            user_id: user.id.clone(),
            role: Some(user.role),
            reach: Reach::organization(&user.organization_id),
            scopes: user.role.scopes(),
            credential: None,
            memo: Memo::default(),
        }
    }

    pub fn organization_id(&self) -> &str {
        &self.reach.organization_id
    }

    /// Roughly the bytes this caller holds in a cache: the structures and
    /// every string, plus the cache's own per-entry cost.
    pub fn weight(&self) -> u32 {
        let strings = self.id.len()
            + self.user_id.len()
            + self.reach.organization_id.len()
            + self.reach.project_id.as_ref().map_or(0, String::len)
            + self.reach.environment_id.as_ref().map_or(0, String::len)
            + self.credential.as_ref().map_or(0, record_bytes);
        // A credential's `GET /v1/tokens/me` template (made after the
        // entry is weighed) is about twice its strings plus the field
        // names: counted up front.
        let template = self
            .credential
            .as_ref()
            .map_or(0, |r| 2 * record_bytes(r) + 400);
        let bytes = std::mem::size_of::<Self>() + strings + template + 32 + ENTRY_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// Why this caller's credential cannot be used at `now`, if it cannot.
    pub fn unusable(&self, now: i64) -> Option<&'static str> {
        let record = self.credential.as_ref()?;
        let c = &record.credential;
        if c.revoked_at.is_some() {
            Some("revoked")
        } else if c.expires_at.is_some_and(|e| e <= now) {
            Some("expired")
        } else if self.kind == CallerKind::PersonalAccessToken && self.role.is_none() {
            Some("user_removed")
        } else {
            None
        }
    }
}

/// The heap bytes of a stored credential's strings.
fn record_bytes(r: &CredentialRecord) -> usize {
    let c = &r.credential;
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    c.id.len()
        + c.name.len()
        + c.organization_id.len()
        + opt(&c.project_id)
        + opt(&c.environment_id)
        + c.user_id.len()
        + opt(&c.via_key_id)
        + c.scopes.len()
        + c.token_hash.len()
        + c.checksum.len()
        + c.preview.len()
        + r.user_email.len()
}

/// Recently seen credentials by token hash. Entries are dropped when this
/// node revokes or changes them, when another node announces it
/// (PostgreSQL `NOTIFY`), and in any case after [`CredentialCache::TTL`].
pub struct CredentialCache {
    cache: moka::sync::Cache<[u8; 32], Arc<Principal>>,
    /// Tokens with a valid checksum that name no credential, so guessing
    /// does not cost a database read per request. A token is secret and
    /// random, so none can become valid after it was seen unknown.
    unknown: moka::sync::Cache<[u8; 32], ()>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(Self::MAX_BYTES)
                .weigher(|_, p: &Arc<Principal>| p.weight())
                .time_to_live(Self::TTL)
                .build(),
            unknown: moka::sync::Cache::builder()
                .max_capacity(Self::MAX_UNKNOWN_BYTES)
                .weigher(|_, ()| (32 + ENTRY_OVERHEAD) as u32)
                .time_to_live(Self::TTL)
                .build(),
        }
    }
}

/// What moka keeps per entry besides the key and value (its node, the
/// entry's `Arc`, the timer wheel's and the frequency sketch's share),
/// measured roughly: what an entry's weight adds to its own bytes.
const ENTRY_OVERHEAD: usize = 160;

impl CredentialCache {
    pub const TTL: Duration = Duration::from_secs(60);
    /// The cached callers' estimated bytes (about 10,000 access keys):
    /// what bounds the server's memory however many keys are in use.
    pub const MAX_BYTES: u64 = 16 << 20;
    /// The remembered unknown tokens' estimated bytes (about 20,000).
    pub const MAX_UNKNOWN_BYTES: u64 = 4 << 20;

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<Principal>> {
        self.cache.get(hash)
    }

    pub fn insert(&self, hash: [u8; 32], principal: Arc<Principal>) {
        self.cache.insert(hash, principal);
    }

    /// Whether `hash` was looked up recently and named nothing.
    pub fn is_known_unknown(&self, hash: &[u8; 32]) -> bool {
        self.unknown.contains_key(hash)
    }

    pub fn insert_unknown(&self, hash: [u8; 32]) {
        self.unknown.insert(hash, ());
    }

    pub fn invalidate(&self, hash: &[u8]) {
        if let Ok(key) = <[u8; 32]>::try_from(hash) {
            self.cache.invalidate(&key);
        }
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// A verified connect token and the app it is for.
#[derive(Debug)]
pub struct ConnectPrincipal {
    pub claims: ConnectClaims,
    pub app: Arc<App>,
    /// SHA-256 of the token, its cache key.
    pub token_hash: [u8; 32],
    /// The end user's `credential` rate-limit key, derived once.
    pub limit_key: OnceLock<[u8; 16]>,
    /// That key's slot in the limiter's table.
    pub limit_slot: HeldSlot,
    /// The app's environment's `environment` key, derived once.
    pub environment_limit_key: OnceLock<[u8; 16]>,
    /// That key's slot in the limiter's table.
    pub environment_limit_slot: HeldSlot,
}

impl ConnectPrincipal {
    /// Roughly the bytes this token holds in a cache (claims, app, and the
    /// cache's own per-entry cost).
    pub fn weight(&self) -> u32 {
        let c = &self.claims;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let a = &self.app;
        let bytes = std::mem::size_of::<Self>()
            + std::mem::size_of::<App>()
            + c.user_id.len()
            + c.sub.len()
            + c.app_id.len()
            + c.environment_id.len()
            + c.iss.len()
            + c.aud.len()
            + c.jti.len()
            + opt(&c.redirect_url)
            + opt(&c.error_redirect_url)
            + c.allowed_origins
                .iter()
                .map(|o| o.len() + 24)
                .sum::<usize>()
            + opt(&c.minted_by)
            + a.id.len()
            + a.organization_id.len()
            + a.project_id.len()
            + a.environment_id.len()
            + a.name.len()
            + a.slug.len()
            + a.hostname.len()
            + opt(&a.deployed_version_id)
            + opt(&a.allowed_redirect_origins)
            + 32
            + ENTRY_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The audit actor id: the end user within the app.
    pub fn actor_id(&self) -> String {
        format!("{}:{}", self.app.id, self.claims.user_id)
    }

    /// The app's environment.
    pub fn reach(&self) -> Reach {
        app_reach(&self.app)
    }

    /// Whether the token may replace or delete an active connection: only
    /// one minted with an access key. Anyone can mint a public app's token
    /// for any user id, so such a token may only fill what is empty.
    pub fn may_replace(&self) -> bool {
        self.claims.minted_by.is_some()
    }

    /// The 403 of an add-only token touching an active connection.
    pub fn add_only_refusal() -> crate::error::ApiError {
        crate::error::ApiError::forbidden(
            "token",
            "this connect token was minted without an access key: it can connect a requirement that has no active connection, but replacing or deleting one needs a token minted with an access key",
        )
    }
}

/// The reach of an app: its environment.
pub fn app_reach(app: &App) -> Reach {
    Reach::environment(&app.organization_id, &app.project_id, &app.environment_id)
}

/// Recently verified connect tokens (bounded, never past `exp`).
pub struct ConnectTokenCache {
    cache: moka::sync::Cache<[u8; 32], Arc<ConnectPrincipal>>,
}

impl Default for ConnectTokenCache {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(Self::MAX_BYTES)
                .weigher(|_, p: &Arc<ConnectPrincipal>| p.weight())
                .time_to_live(Duration::from_secs(60))
                .support_invalidation_closures()
                .build(),
        }
    }
}

impl ConnectTokenCache {
    /// The cached tokens' estimated bytes.
    pub const MAX_BYTES: u64 = 16 << 20;

    pub fn get(&self, hash: &[u8; 32]) -> Option<Arc<ConnectPrincipal>> {
        self.cache.get(hash)
    }

    pub fn insert(&self, hash: [u8; 32], principal: Arc<ConnectPrincipal>) {
        self.cache.insert(hash, principal);
    }

    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.cache.invalidate(hash);
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// Drops every cached token of one end user.
    pub fn invalidate_user(&self, environment_id: &str, user_id: &str) {
        let (env, user) = (environment_id.to_string(), user_id.to_string());
        if let Err(err) = self.cache.invalidate_entries_if(move |_, p| {
            p.claims.environment_id == env && p.claims.user_id == user
        }) {
            // Only when closures are not enabled; drop everything instead.
            tracing::error!(error = %err, "could not drop one user's connect tokens");
            self.cache.invalidate_all();
        }
    }
}
