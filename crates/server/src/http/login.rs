//! Signing in and out of the dashboard (SPEC §7): `GET /login` shows the
//! form, `POST /login` (form fields `email`, `password`, `csrf`) starts a
//! session, `POST /logout` ends it; `GET /v1/session` tells the dashboard
//! who is signed in and its CSRF token. Unknown emails and wrong passwords
//! get the same answer after the same argon2 work, and sign-in attempts are
//! limited per IP.

use std::{num::NonZeroU32, sync::OnceLock};

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Json, Router,
};
use gatehouse_core::{time::now_ms, validate::Email, Reach};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use maud::{html, Markup, DOCTYPE};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::{
    error::{ApiError, ApiResult},
    http::{extract::RequestMeta, openapi::ErrorEnvelope},
    issue::Actor,
    passwords,
    session::{self, SignedIn, COOKIE, LOGIN_CSRF_COOKIE},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(form).post(sign_in))
        .route("/logout", post(sign_out))
        .route("/v1/session", get(current))
}

/// Sign-in attempts per IP per minute (SPEC §8 default).
pub const SIGN_INS_PER_MINUTE: u32 = 10;

/// Per-IP sign-in limiter.
pub struct SignInLimiter(DefaultKeyedRateLimiter<String>);

impl Default for SignInLimiter {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(SIGN_INS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_minute(per_minute)))
    }
}

impl SignInLimiter {
    /// `Err(seconds to wait)` when `ip` has used up its attempts.
    pub fn check(&self, ip: &str) -> Result<(), u64> {
        self.0.check_key(&ip.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            wait.as_secs().max(1)
        })
    }
}

/// A PHC string to verify against when the email is unknown, so both
/// failures cost the same argon2 work.
async fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return h;
    }
    let h = passwords::hash(SecretString::from("gatehouse-timing-equaliser"))
        .await
        .unwrap_or_default();
    DUMMY.get_or_init(|| h)
}

/// The page around the sign-in form.
fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gatehouse" }
                link rel="stylesheet" href="/assets/dashboard.css";
            }
            body data-page="login" { (body) }
        }
    }
}

fn login_markup(csrf: &str, email: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        html! {
            main class="login" {
                p.logo { span.logo-mark aria-hidden="true" {} span { "Gatehouse" } }
                h1 { "Sign in to Gatehouse" }
                p.lede { "Manage API tokens, apps and end users." }
                @if let Some(e) = error {
                    p class="form-error" role="alert" id="login-error" { (e) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="username" required value=(email);
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// Security headers for every dashboard page (no inline script or style).
pub fn secure_page(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    response
}

fn login_response(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let csrf = session::random_token();
    let mut response = (status, login_markup(&csrf, email, error)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, 3600, "Strict"),
    );
    secure_page(response)
}

/// `GET /login`: the sign-in form (signed-in users go to the dashboard).
pub async fn form(State(state): State<AppState>, signed_in: Option<SignedIn>) -> Response {
    if signed_in.is_some() {
        return Redirect::to("/").into_response();
    }
    login_response(&state, StatusCode::OK, "", None)
}

#[derive(Debug, Default, Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

fn parse_form<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> T {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map)).unwrap_or_default()
}

/// `POST /login`.
pub async fn sign_in(State(state): State<AppState>, meta: RequestMeta, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let cookie_csrf = session::cookie(&parts, LOGIN_CSRF_COOKIE).map(str::to_string);
    let Ok(bytes) = axum::body::to_bytes(body, state.config().max_body_bytes).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let form: SignInForm = parse_form(&bytes);
    let ip = meta.ip.clone().unwrap_or_else(|| "unknown".into());
    if let Err(wait) = state.sign_in_limiter().check(&ip) {
        metrics::counter!("gatehouse_sign_in_rate_limited_total").increment(1);
        let mut r = login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &form.email,
            Some("Too many sign-in attempts. Wait a minute and try again."),
        );
        if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    if cookie_csrf
        .as_deref()
        .is_none_or(|c| form.csrf.is_empty() || !session::same(c, &form.csrf))
    {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("Your sign-in form expired. Please try again."),
        );
    }
    match check_password(&state, &form.email, &form.password).await {
        Ok(Some(user)) => match session::start(&state, &user, &meta).await {
            Ok(token) => {
                let reach = Reach::organization(&user.organization_id);
                let _ = state
                    .audit_as(
                        Actor {
                            kind: "user",
                            id: &user.id,
                        },
                        "user.signed_in",
                        ("user", &user.id),
                        &reach,
                        &meta,
                    )
                    .await;
                let mut r = Redirect::to("/").into_response();
                let h = r.headers_mut();
                h.append(
                    header::SET_COOKIE,
                    session::set_cookie(
                        &state,
                        COOKIE,
                        &token,
                        session::SESSION_TTL_MS / 1000,
                        "Lax",
                    ),
                );
                h.append(
                    header::SET_COOKIE,
                    session::set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0, "Strict"),
                );
                r
            }
            Err(err) => err.into_response(),
        },
        Ok(None) => {
            metrics::counter!("gatehouse_sign_in_failures_total").increment(1);
            login_response(
                &state,
                StatusCode::UNAUTHORIZED,
                &form.email,
                Some("Incorrect email or password."),
            )
        }
        Err(err) => err.into_response(),
    }
}

/// The user whose password this is, if any. Always does one argon2 verify.
async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
) -> ApiResult<Option<gatehouse_store::members::User>> {
    let user = match Email::parse(email) {
        Ok(email) => state.store().user_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let phc = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await.to_string(),
    };
    let ok = passwords::verify(SecretString::from(password.to_string()), phc).await?;
    Ok(user.filter(|_| ok))
}

#[derive(Debug, Default, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout` (form field `csrf`): ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), state.config().max_body_bytes).await
    else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let form: SignOutForm = parse_form(&bytes);
    let sent = headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or(form.csrf);
    if !session::same(&sent, &signed_in.csrf) {
        return ApiError::forbidden("csrf", "missing or wrong CSRF token").into_response();
    }
    if let Err(err) = state
        .store()
        .revoke_session(signed_in.principal.id(), now_ms())
        .await
    {
        return ApiError::from(err).into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state, COOKIE, "", 0, "Lax"),
    );
    r
}

/// Who is signed in, and the CSRF token for writes (dashboard sessions only).
#[utoipa::path(get, path = "/v1/session", tag = "dashboard",
    responses((status = 200, description = "`{\"data\": {\"user\", \"organization_id\", \"csrf_token\"}}`"), (status = 401, body = ErrorEnvelope)))]
pub async fn current(signed_in: Option<SignedIn>) -> ApiResult<Response> {
    let s = signed_in.ok_or(ApiError::Unauthorized("session"))?;
    Ok(Json(json!({"data": {
        "user": {"id": s.user.id, "email": s.user.email, "role": s.user.role.as_str()},
        "organization_id": s.user.organization_id,
        "csrf_token": s.csrf,
    }}))
    .into_response())
}
