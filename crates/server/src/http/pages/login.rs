//! Signing in and out of the dashboard (SPEC §7): `GET /login` shows the
//! form, `POST /login` (form fields `email`, `password`, `csrf`) starts a
//! session, `POST /logout` ends it. Unknown emails and wrong passwords get
//! the same answer after the same argon2 work, and sign-in attempts are
//! limited per IP (the `sign_in` rate limit: a 429 page with `Retry-After`
//! and the `RateLimit` headers). The form carries a double-submit CSRF
//! token, checked against its cookie.

use axum::{
    extract::{rejection::FormRejection, FromRequest, Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use cookie::SameSite;
use maud::{html, Markup, DOCTYPE};
use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    crypto::tokens::{random_token, same},
    error::ApiError,
    http::auth::{
        clear_cookie, cookie, set_cookie, SignedIn, COOKIE, CSRF_HEADER, LOGIN_CSRF_COOKIE,
    },
    service::{
        audit::Origin,
        limits::{self, Meter},
        sessions::{self, Attempt, SignIn, SESSION_TTL_MS},
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(form).post(sign_in))
        .route("/logout", post(sign_out))
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

fn login_response(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let csrf = random_token();
    let mut response = (status, login_markup(&csrf, email, error)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, 3600, SameSite::Strict),
    );
    response
}

/// `GET /login`: the sign-in form (signed-in users go to the dashboard).
#[tracing::instrument(skip_all)]
async fn form(State(state): State<AppState>, signed_in: Option<SignedIn>) -> Response {
    if signed_in.is_some() {
        return Redirect::to("/").into_response();
    }
    login_response(&state, StatusCode::OK, "", None)
}

/// The sign-in form's fields; a missing field is empty.
#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default = "empty_secret")]
    password: SecretString,
    #[serde(default)]
    csrf: String,
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("email", &self.email)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// `POST /login`.
#[tracing::instrument(skip_all)]
async fn sign_in(
    State(state): State<AppState>,
    origin: Origin,
    meter: Meter,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        // Counted like any attempt, so junk cannot probe around the limit.
        if let Err(ApiError::RateLimited { retry_after }) =
            limits::sign_in(&state, &meter, origin.ip.as_deref()).await
        {
            return limited(&state, "", retry_after);
        }
        return login_response(
            &state,
            StatusCode::BAD_REQUEST,
            "",
            Some("The sign-in form could not be read. Please try again."),
        );
    };
    let csrf_matches = cookie(&headers, LOGIN_CSRF_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && same(c, &form.csrf));
    let attempt = Attempt {
        email: &form.email,
        password: form.password,
        csrf_matches,
    };
    match sessions::sign_in(&state, &origin, &meter, attempt).await {
        Ok(SignIn::Started { token }) => {
            use secrecy::ExposeSecret;
            let mut r = Redirect::to("/").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    COOKIE,
                    token.expose_secret(),
                    SESSION_TTL_MS / 1000,
                    SameSite::Lax,
                ),
            );
            h.append(
                header::SET_COOKIE,
                clear_cookie(&state, LOGIN_CSRF_COOKIE, SameSite::Strict),
            );
            r
        }
        Ok(SignIn::Refused) => login_response(
            &state,
            StatusCode::UNAUTHORIZED,
            &form.email,
            Some("Incorrect email or password."),
        ),
        Ok(SignIn::FormExpired) => login_response(
            &state,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("Your sign-in form expired. Please try again."),
        ),
        Ok(SignIn::Limited { retry_after }) => limited(&state, &form.email, retry_after),
        Err(err) => err.into_response(),
    }
}

/// The sign-in page again, 429 with `Retry-After`.
fn limited(state: &AppState, email: &str, retry_after: u64) -> Response {
    let mut r = login_response(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        email,
        Some(&format!(
            "Too many sign-in attempts. Try again in {}.",
            wait_in_words(retry_after)
        )),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    r
}

/// "1 second", "40 seconds", "3 minutes".
fn wait_in_words(seconds: u64) -> String {
    match seconds {
        1 => "1 second".into(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout` (form field `csrf`, or the `X-CSRF-Token` header): ends
/// the session.
#[tracing::instrument(skip_all)]
async fn sign_out(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    let form = match Form::<SignOutForm>::from_request(req, &state).await {
        Ok(Form(form)) => form,
        // No body, or not a form: the header may still carry the token.
        Err(_) => SignOutForm::default(),
    };
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or(form.csrf);
    if !same(&sent, &signed_in.csrf) {
        return ApiError::forbidden("csrf", "missing or wrong CSRF token").into_response();
    }
    if let Err(err) = sessions::sign_out(&state, &signed_in.principal.id).await {
        return err.into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        clear_cookie(&state, COOKIE, SameSite::Lax),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sign-in form never prints its password.
    #[test]
    fn sign_in_form_redacts_the_password() {
        let form: SignInForm =
            serde_urlencoded_form("email=a%40example.com&password=hunter2-secret&csrf=x");
        let shown = format!("{form:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("a@example.com") && shown.contains("REDACTED"));
    }

    fn serde_urlencoded_form(body: &str) -> SignInForm {
        let pairs: serde_json::Map<String, serde_json::Value> =
            form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                .collect();
        serde_json::from_value(serde_json::Value::Object(pairs)).expect("a form")
    }
}
