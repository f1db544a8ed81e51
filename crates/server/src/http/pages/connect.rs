//! `GET /connect?token=…`: the hosted page where an end user fulfils an
//! app's requirements (SPEC §7).
//!
//! The server verifies the token and renders only the shell: the app's name,
//! who the page is for, and an empty `#requirements` region.
//! `assets/connect.js` then moves the token out of the address bar and drives
//! the connect-token API (`http/api/connect/`). A missing or invalid token gets
//! a friendly page, never JSON. No inline script or style: the CSP forbids
//! both.

use axum::{
    extract::{RawQuery, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use maud::{html, Markup, DOCTYPE};

use crate::{
    error::ApiError,
    http::{
        error::{AuthFailure, InternalFailure},
        middleware::security,
    },
    service::{
        authenticate::{self, looks_like_jwt},
        principal::ConnectPrincipal,
        Services,
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/connect", get(page))
}

/// Why the page cannot be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// No `token` in the URL (400).
    Missing,
    /// Malformed, expired, revoked, or its app is gone (401).
    Invalid,
    /// Our fault (500); logged by the request middleware.
    Internal,
}

/// The page shell, or a page explaining why there is none.
#[tracing::instrument(skip_all)]
async fn page(State(svc): State<Services>, RawQuery(query): RawQuery) -> Response {
    let token = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    match token.as_deref().map(str::trim) {
        None | Some("") => problem_page(Problem::Missing),
        Some(token) if !looks_like_jwt(token) => {
            let mut response = problem_page(Problem::Invalid);
            response.extensions_mut().insert(AuthFailure("malformed"));
            response
        }
        Some(token) => match authenticate::connect_token(&svc, token).await {
            Ok(principal) => {
                let mut response = shell(&principal).into_response();
                if let Some(policy) = security::framable_by(&principal.claims.allowed_origins) {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, policy);
                }
                response
            }
            Err(ApiError::Unauthorized(reason)) => {
                let mut response = problem_page(Problem::Invalid);
                response.extensions_mut().insert(AuthFailure(reason));
                response
            }
            Err(err) => {
                let mut response = problem_page(Problem::Internal);
                let err = match err {
                    ApiError::Internal(err) => err,
                    other => anyhow::anyhow!("verifying a connect token: {other}"),
                };
                response
                    .extensions_mut()
                    .insert(InternalFailure(std::sync::Arc::new(err)));
                response
            }
        },
    }
}

/// `<head>` shared by both pages.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            meta name="robots" content="noindex, nofollow";
            meta name="color-scheme" content="light";
            title { (title) }
            link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
            link rel="stylesheet" href="/assets/base.css";
            link rel="stylesheet" href="/assets/connect.css";
            script type="module" src="/assets/connect.js" {}
        }
    }
}

/// The brand line above each page.
fn brand() -> Markup {
    html! {
        p.brand {
            span.brand-mark aria-hidden="true" {}
            "Secure connection"
        }
    }
}

/// The valid-token page: filled in by `connect.js`.
fn shell(p: &ConnectPrincipal) -> Markup {
    let app = p.app.name.as_str();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("Connect your accounts to {app}")))
            body data-page="connect" {
                div.shell {
                    header.masthead {
                        (brand())
                        h1 { "Connect your accounts to " span.app-name { (app) } }
                        p.lede {
                            (app) " needs access to the services below to work for you. "
                            "What you enter is encrypted and never shown again."
                        }
                        p.who {
                            "Connecting for " strong.user-id { (p.claims.user_id) }
                        }
                    }
                    main #requirements aria-live="polite" aria-busy="true" {
                        p.loading { "Loading your connections…" }
                    }
                    noscript {
                        p.notice-inline {
                            "This page needs JavaScript to connect your accounts. "
                            "Turn it on, then reload the page."
                        }
                    }
                    footer.footer {
                        p { "Only connect accounts you own. You can disconnect at any time." }
                    }
                }
            }
        }
    }
}

/// The page for a missing, invalid or unverifiable link.
fn problem_page(problem: Problem) -> Response {
    let (status, title, lines): (StatusCode, &str, &[&str]) = match problem {
        Problem::Missing => (
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            &[
                "The address you opened is missing the part that identifies you.",
                "Go back to the app you came from and ask for a new link.",
            ],
        ),
        Problem::Invalid => (
            StatusCode::UNAUTHORIZED,
            "This link has expired or is no longer valid",
            &[
                "For your security, connect links work only for a limited time.",
                "Go back to the app you came from and ask for a new link.",
            ],
        ),
        Problem::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side",
            &["Nothing was changed. Please try again in a moment."],
        ),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-page="connect-error" {
                div.shell {
                    header.masthead { (brand()) }
                    main.card.notice #notice {
                        span.notice-icon aria-hidden="true" {}
                        h1 { (title) }
                        @for line in lines { p { (line) } }
                    }
                }
            }
        }
    };
    (status, markup).into_response()
}
