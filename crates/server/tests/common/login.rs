//! The dashboard's sign-in form over plain HTTP (SPEC §7): fetch the form
//! for its CSRF cookie and field, then post it as a browser would.
#![allow(dead_code)]

use reqwest::{header, redirect::Policy, StatusCode};

/// An HTTP client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the `Set-Cookie` for `name`, and the whole header.
pub fn set_cookie(headers: &header::HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or_default().to_string();
            (pair, v.to_string())
        })
}

/// A form body.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `GET /login`: the form's CSRF cookie (`name=value`) and hidden field.
pub async fn login_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(r.headers(), "gh_login_csrf").expect("a login CSRF cookie");
    let html = r.text().await.unwrap();
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    let field = html[start..].split('"').next().unwrap().to_string();
    (cookie, field)
}

/// `POST /login` as a browser form would send it.
pub async fn post_login(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    http.post(format!("{base}/login"))
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(fields))
        .send()
        .await
        .unwrap()
}

/// One sign-in attempt with a fresh form: the answer (303 to `/` when it
/// worked).
pub async fn attempt(base: &str, email: &str, password: &str) -> reqwest::Response {
    let http = no_redirects();
    let (cookie, csrf) = login_form(&http, base).await;
    post_login(
        &http,
        base,
        &cookie,
        &[("email", email), ("password", password), ("csrf", &csrf)],
    )
    .await
}
