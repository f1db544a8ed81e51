//! What a platform's backend does on an app's own hostname (SPEC §6): mint
//! a connect token for one of its end users, and ask whether that user is
//! ready.

use std::sync::Arc;

use gatehouse_core::{
    requirement::Requirement,
    time::now_ms,
    validate::{parse_origin, whole_number, RedirectUrl, UserId, BLANK},
};
use gatehouse_store::apps::App;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::service::schema::UserIdText;

use super::{
    audit::{self, Actor, Origin},
    connect,
    limits::{self, Meter},
    principal::{app_reach, Principal},
    Services,
};
use crate::{
    crypto::jwt::{ConnectClaims, AUDIENCE, MAX_TOKEN_BYTES, MAX_TOKEN_TTL_SECS},
    error::{ApiError, ApiResult, FieldErrors},
};

/// Body of `POST /v1/connect/tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    /// The platform's id for its end user: 1–250 characters.
    #[schema(value_type = UserIdText, required = true)]
    pub user_id: Option<String>,
    /// 60–86400, default 86400.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 60, maximum = 86_400)]
    pub ttl_seconds: Option<i64>,
    /// Where the hosted page sends the user when all is set: absolute
    /// https (http only for localhost and *.localhost).
    pub redirect_url: Option<String>,
    /// The same as `redirect_url` (give one of the two).
    pub success_redirect_url: Option<String>,
    /// Where the hosted page sends the user when something failed.
    pub error_redirect_url: Option<String>,
    /// Origins (`https://host[:port]`; http only for localhost and
    /// *.localhost) whose pages may call the connect-token routes with this
    /// token (CORS) and receive the hosted page's completion message; at
    /// most 10.
    #[schema(max_items = 10)]
    pub allowed_origins: Option<Vec<String>>,
}

/// The most `allowed_origins` a connect token carries.
pub const MAX_ALLOWED_ORIGINS: usize = 10;
/// The longest redirect URL a token carries (characters).
const MAX_URL_CHARS: usize = 2048;
/// The longest origin: a scheme, a DNS name (at most 253) and a port.
const MAX_ORIGIN_CHARS: usize = 270;

/// A minted connect token (a secret: `Debug` leaves it out), the hosted
/// page's URL with it, and when it expires (Unix seconds).
pub struct Minted {
    pub token: SecretString,
    pub url: SecretString,
    pub expires_at: i64,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The caller on an app surface: the app, and the access key used (none
/// on a public app called anonymously).
pub struct AppCaller {
    pub app: Arc<App>,
    pub key: Option<Arc<Principal>>,
}

/// Mints a connect token for an end user of the app: once the input is
/// valid, charged to `connect_token_user` for (app, user_id) before the
/// token is signed.
#[tracing::instrument(skip_all, fields(app = %caller.app.id))]
pub async fn mint(
    svc: &Services,
    caller: &AppCaller,
    origin: &Origin,
    meter: &Meter,
    body: MintToken,
) -> ApiResult<Minted> {
    let mut errors = FieldErrors::new();
    let user_id = errors.check(
        "user_id",
        UserId::parse(body.user_id.as_deref().unwrap_or("")),
    );
    let ttl = body.ttl_seconds.unwrap_or(MAX_TOKEN_TTL_SECS);
    if !(60..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
        errors.add(
            "ttl_seconds",
            format!("must be a whole number from 60 to {MAX_TOKEN_TTL_SECS}"),
        );
    }
    if body.redirect_url.is_some() && body.success_redirect_url.is_some() {
        errors.add(
            "success_redirect_url",
            "give redirect_url or success_redirect_url, not both",
        );
    }
    let redirect_url = redirect(
        &mut errors,
        caller,
        "redirect_url",
        body.redirect_url.as_deref(),
    )
    .or(redirect(
        &mut errors,
        caller,
        "success_redirect_url",
        body.success_redirect_url.as_deref(),
    ));
    let error_redirect_url = redirect(
        &mut errors,
        caller,
        "error_redirect_url",
        body.error_redirect_url.as_deref(),
    );
    let allowed_origins = origins(
        &mut errors,
        body.allowed_origins.as_deref().unwrap_or_default(),
    );
    errors.finish()?;
    let user_id = user_id
        .ok_or_else(|| ApiError::field("user_id", BLANK))?
        .into_inner();
    let app = &caller.app;
    limits::end_user_tokens(svc, meter, &app.id, &user_id).await?;
    let now = now_ms() / 1000;
    let claims = ConnectClaims {
        sub: user_id.clone(),
        user_id: user_id.clone(),
        app_id: app.id.clone(),
        environment_id: app.environment_id.clone(),
        iss: svc.config().public_url.clone(),
        aud: AUDIENCE.to_string(),
        iat: now,
        nbf: now,
        exp: now + ttl,
        jti: ulid::Ulid::new().to_string().to_ascii_lowercase(),
        redirect_url: redirect_url.map(RedirectUrl::into_inner),
        error_redirect_url: error_redirect_url.map(RedirectUrl::into_inner),
        allowed_origins,
        minted_by: caller.key.as_ref().map(|k| k.id.clone()),
    };
    let token = svc.signing().sign(&claims)?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(too_long(&claims));
    }
    let actor = match &caller.key {
        Some(key) => Actor::from(key.as_ref()),
        None => Actor {
            kind: "public",
            id: "anonymous",
        },
    };
    let effects = audit::effects(
        actor,
        "connect_token.created",
        ("end_user", &user_id),
        &app_reach(app),
        origin,
    );
    svc.store()
        .touch_end_user(&app.environment_id, &user_id, &app.id, now * 1000, effects)
        .await?;
    let url = format!("{}/connect?token={token}", svc.config().public_url);
    Ok(Minted {
        token: token.into(),
        url: url.into(),
        expires_at: claims.exp,
    })
}

/// The refusal of a token longer than verification accepts
/// ([`MAX_TOKEN_BYTES`]): long redirect URLs, origins and user id together
/// can get there, and a token that could never be used is not handed out.
/// It names the longest of those fields.
fn too_long(claims: &ConnectClaims) -> ApiError {
    let longest = [
        (
            "redirect_url",
            claims.redirect_url.as_deref().map_or(0, str::len),
        ),
        (
            "error_redirect_url",
            claims.error_redirect_url.as_deref().map_or(0, str::len),
        ),
        (
            "allowed_origins",
            claims.allowed_origins.iter().map(String::len).sum(),
        ),
        ("user_id", claims.user_id.len()),
    ]
    .into_iter()
    .max_by_key(|(_, len)| *len)
    .map_or("user_id", |(field, _)| field);
    ApiError::field(
        longest,
        format!("is too long: the connect token would exceed {MAX_TOKEN_BYTES} bytes"),
    )
}

/// A redirect URL of the mint body, on one of the app's
/// `allowed_redirect_origins` when it has them.
fn redirect(
    errors: &mut FieldErrors,
    caller: &AppCaller,
    field: &str,
    raw: Option<&str>,
) -> Option<RedirectUrl> {
    let raw = raw?;
    if raw.chars().count() > MAX_URL_CHARS {
        errors.add(field, format!("must be at most {MAX_URL_CHARS} characters"));
        return None;
    }
    let url = errors.check(field, RedirectUrl::parse(raw))?;
    if let Some(allowed) = &caller.app.allowed_redirect_origins {
        let origin = url.origin();
        if !allowed.split_whitespace().any(|o| o == origin) {
            errors.add(
                field,
                format!("must be on one of the app's allowed_redirect_origins ({origin} is not)"),
            );
            return None;
        }
    }
    Some(url)
}

/// `allowed_origins`, each canonical and once.
fn origins(errors: &mut FieldErrors, raw: &[String]) -> Vec<String> {
    if raw.len() > MAX_ALLOWED_ORIGINS {
        errors.add(
            "allowed_origins",
            format!("must hold at most {MAX_ALLOWED_ORIGINS} origins"),
        );
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, origin) in raw.iter().enumerate() {
        let field = format!("allowed_origins.{i}");
        if origin.chars().count() > MAX_ORIGIN_CHARS {
            errors.add(
                &field,
                format!("must be at most {MAX_ORIGIN_CHARS} characters"),
            );
            continue;
        }
        if let Some(origin) = errors.check(&field, parse_origin(origin)) {
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
    }
    out
}

/// The requirements of the deployed version the end user has not
/// satisfied yet (empty: the user is ready).
pub async fn unsatisfied(svc: &Services, app: &App, user_id: &str) -> ApiResult<Vec<Requirement>> {
    let user_id = UserId::parse(user_id).map_err(|m| ApiError::field("user_id", m))?;
    let states = connect::requirement_states(svc, app, user_id.as_str()).await?;
    Ok(states
        .into_iter()
        .filter(|s| !s.satisfied())
        .map(|s| s.requirement)
        .collect())
}
