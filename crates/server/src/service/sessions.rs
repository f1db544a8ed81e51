//! Dashboard sessions (SPEC §7). Signing in checks the password with
//! argon2id (the same work for an unknown email, so timing says nothing),
//! is limited per client IP (the `sign_in` rate limit), and starts a session: a random token for the
//! cookie, of which only the SHA-256 is stored. A session acts as its user
//! with the whole of their role.

use std::sync::Arc;

use gatehouse_core::{new_id, time::now_ms, token::TokenHash, validate::Email, IdKind, Reach};
use gatehouse_store::{members::User, sessions::SessionRow};
use secrecy::SecretString;
use tokio::sync::OnceCell;

use super::{
    audit::{self, Actor, Origin},
    limits::{self, Meter},
    principal::Principal,
    Services,
};
use crate::{
    crypto::{passwords, tokens::random_token},
    error::{ApiError, ApiResult},
};

/// Sessions end 12 hours after sign-in.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// How a sign-in attempt ended.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: the token for the session cookie.
    Started { token: SecretString },
    /// Wrong email or password (which one is not said).
    Refused,
    /// Too many attempts from this IP: wait this many seconds.
    Limited { retry_after: u64 },
    /// The form's CSRF token did not match its cookie (an old or forged
    /// form).
    FormExpired,
}

/// One sign-in attempt as the form sent it.
pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: SecretString,
    /// Whether the form's CSRF token matched the sign-in cookie.
    pub csrf_matches: bool,
}

/// A PHC string to verify against when the email is unknown, so both
/// failures cost the same argon2 work. Made once per process.
async fn dummy_hash() -> ApiResult<&'static str> {
    static DUMMY: OnceCell<String> = OnceCell::const_new();
    let phc = DUMMY
        .get_or_try_init(|| passwords::hash(SecretString::from("gatehouse-timing-equaliser")))
        .await?;
    Ok(phc)
}

/// The user whose password this is, if any. Always does one argon2 verify.
async fn check_password(
    svc: &Services,
    email: &str,
    password: SecretString,
) -> ApiResult<Option<User>> {
    let user = match Email::parse(email) {
        Ok(email) => svc.store().user_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let phc = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await?.to_string(),
    };
    let ok = passwords::verify(password, phc).await?;
    Ok(user.filter(|_| ok))
}

/// Signs a user in with email and password: limited per IP first (every
/// attempt counts, charged to `meter`), then the form's CSRF token, then
/// the password.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    svc: &Services,
    origin: &Origin,
    meter: &Meter,
    attempt: Attempt<'_>,
) -> ApiResult<SignIn> {
    match limits::sign_in(svc, meter, origin.ip.as_deref()).await {
        Err(ApiError::RateLimited { retry_after }) => {
            return Ok(SignIn::Limited { retry_after });
        }
        other => other?,
    }
    if !attempt.csrf_matches {
        return Ok(SignIn::FormExpired);
    }
    let Some(user) = check_password(svc, attempt.email, attempt.password).await? else {
        metrics::counter!("gatehouse_sign_in_failures_total").increment(1);
        // Audited without the password and without saying whether the
        // email belongs to anyone: the same event either way.
        if let Some(organization_id) = svc.store().installation().await? {
            audit::record(
                svc,
                Actor {
                    kind: "anonymous",
                    id: "sign_in",
                },
                "user.sign_in_failed",
                ("sign_in", "dashboard"),
                &Reach::organization(&organization_id),
                origin,
            )
            .await?;
        }
        return Ok(SignIn::Refused);
    };
    let token = random_token();
    let now = now_ms();
    let row = SessionRow {
        id: new_id(IdKind::Session),
        token_hash: TokenHash::of(&token).as_bytes().to_vec(),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
        revoked_at: None,
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
    };
    let effects = audit::effects(
        Actor {
            kind: "user",
            id: &user.id,
        },
        "user.signed_in",
        ("user", &user.id),
        &Reach::organization(&user.organization_id),
        origin,
    );
    svc.store().create_session(&row, &effects).await?;
    Ok(SignIn::Started {
        token: token.into(),
    })
}

/// The live session a cookie's token names, as a caller, with its user.
pub async fn lookup(svc: &Services, token: &str) -> ApiResult<Option<(Arc<Principal>, User)>> {
    let hash = TokenHash::of(token);
    let Some(record) = svc
        .store()
        .session_by_hash(hash.as_bytes(), now_ms())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        Arc::new(Principal::from_session(&record)),
        record.user,
    )))
}

/// Ends a session.
pub async fn sign_out(svc: &Services, session_id: &str) -> ApiResult<()> {
    svc.store().revoke_session(session_id, now_ms()).await?;
    Ok(())
}
