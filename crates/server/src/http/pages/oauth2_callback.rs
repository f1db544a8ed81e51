//! `GET /v1/connect/oauth2/callback`: where every OAuth2 provider sends the
//! end user back (SPEC §6). It needs no credential: the `state` names the
//! pending flow. The answer is a small page — "connected" (200), or what
//! went wrong (400) — whose script (`assets/oauth2-callback.js`) posts
//! `{type: "gatehouse:oauth2", status, requirement_id}` to the hosted page
//! that opened it, at `public_url`'s origin only, and closes the popup.
//! Like every request without a credential it is limited per client IP
//! (`ip`); a used-up limit answers the JSON 429 of every API route.

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use gatehouse_core::oauth2::CallbackProblem;
use maud::{html, Markup, DOCTYPE};

use crate::{
    service::{
        audit::Origin,
        limits::{self, Meter},
        oauth2::flow::{self, CallbackQuery},
        Services,
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/connect/oauth2/callback", get(callback))
}

/// The provider's redirect: completes the flow and says how it went.
#[tracing::instrument(skip_all)]
async fn callback(
    State(svc): State<Services>,
    origin: Origin,
    meter: Meter,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(limited) = limits::anonymous(&svc, &meter, origin.ip.as_deref()).await {
        return limited.into_response();
    }
    let mut params = CallbackQuery::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "code" => params.code = v,
            "state" => params.state = v,
            "error" => params.error = v,
            "iss" => params.iss = v,
            _ => {}
        }
    }
    let opener = opener_origin(&svc);
    match flow::callback(&svc, params, &origin).await {
        Ok(linked) => page(
            StatusCode::OK,
            "connected",
            Some(&linked.requirement_id),
            &opener,
            "Connected",
            &match &linked.label {
                Some(label) => format!("Signed in as {label}. You can close this window."),
                None => "You can close this window.".to_string(),
            },
        ),
        Err(failed) => {
            let status = if failed.problem == CallbackProblem::ConsentDenied {
                "denied"
            } else {
                "error"
            };
            page(
                StatusCode::BAD_REQUEST,
                status,
                failed.requirement_id.as_deref(),
                &opener,
                "Not connected",
                &failed.problem.to_string(),
            )
        }
    }
}

/// The origin of `public_url`: the only window the result is posted to.
fn opener_origin(svc: &Services) -> String {
    url::Url::parse(&svc.config().public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

fn page(
    status: StatusCode,
    outcome: &str,
    requirement_id: Option<&str>,
    opener: &str,
    title: &str,
    message: &str,
) -> Response {
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · Gatehouse" }
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/base.css";
                link rel="stylesheet" href="/assets/connect.css";
                script type="module" src="/assets/oauth2-callback.js" {}
            }
            body data-page="oauth2-callback" data-status=(outcome)
                data-requirement-id=[requirement_id] data-opener-origin=(opener) {
                div.shell {
                    main.card.notice #notice {
                        span.notice-icon aria-hidden="true" {}
                        h1 id="oauth2-title" { (title) }
                        p id="oauth2-message" { (message) }
                    }
                }
            }
        }
    };
    (status, markup).into_response()
}
