//! SPEC §2 over real HTTP on SQLite and PostgreSQL: every error path, its envelope, the order of checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Reply, TestServer};
use gatehouse_core::{token, TokenKind};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

on_both_backends!(
    unknown_route_is_404,
    wrong_method_is_405_with_allow,
    body_over_limit_is_413,
    streamed_body_over_limit_is_413,
    non_json_body_is_415,
    request_without_body_is_never_415,
    json_with_charset_is_json,
    bad_credentials_are_401,
    missing_permission_is_403,
    bad_input_is_400_with_details,
    nul_characters_are_never_500,
    page_size_out_of_range_is_400,
    empty_typed_query_values_are_400,
    whole_numbers_may_carry_a_zero_fraction,
    unique_clash_is_409,
    oversized_headers_are_431,
    checks_run_in_spec_order,
    all_optional_routes_accept_empty_body,
    request_id_is_echoed_or_replaced,
    resource_out_of_reach_is_404,
    ops_endpoints,
);

/// Request headers as `TestServer::raw` takes them.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// The default body limit (SPEC §2: 64 KiB).
const BODY_LIMIT: usize = 64 * 1024;

/// Asserts status, `error.code`, `error.message` and a JSON content type.
fn assert_error(r: &Reply, status: StatusCode, code: &str, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error_code(), code, "{}", r.text);
    assert_eq!(r.body["error"]["message"], message, "{}", r.text);
    let content_type = r.headers.get("content-type").map(|v| v.to_str().unwrap());
    assert!(
        content_type.is_some_and(|v| v.starts_with("application/json")),
        "error without a JSON content type: {content_type:?}"
    );
}

/// A 401 as SPEC §2 wants it, with `WWW-Authenticate: Bearer`.
fn assert_unauthorized(r: &Reply, case: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{case}: {}", r.text);
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer"),
        "{case}: 401 without WWW-Authenticate: Bearer"
    );
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A syntactically valid JSON object of exactly `len` bytes.
fn json_of_len(len: usize) -> Vec<u8> {
    let mut body = br#"{"name": "padded"}"#.to_vec();
    assert!(len >= body.len());
    body.resize(len, b' ');
    body
}

/// `token` with one character of its random part changed (still
/// alphanumeric, so only the checksum can notice).
fn corrupt_one_char(token: &str, prefix_len: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = prefix_len + 10;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// `POST /v1/access-keys` with raw `body` bytes and an optional content type.
async fn post_access_key(
    s: &TestServer,
    auth: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Reply {
    let mut headers = vec![("authorization", auth)];
    if let Some(ct) = content_type {
        headers.push(("content-type", ct));
    }
    s.raw(Method::POST, "/v1/access-keys", &headers, body.to_vec())
        .await
}

/// Sends `method path` with an oversized JSON body, then an ordinary
/// request, 20 times over the harness's pooled client. A rejection sent
/// without reading the body must not leave the connection looking
/// reusable, or the next request on it fails (the harness panics on a
/// send error).
async fn rejection_keeps_client_usable(
    s: &TestServer,
    method: Method,
    path: &str,
    expected: StatusCode,
) {
    let auth = bearer(s.key());
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    for _ in 0..20 {
        let r = s
            .raw(method.clone(), path, &headers, json_of_len(BODY_LIMIT + 1))
            .await;
        assert_eq!(r.status, expected, "{method} {path}: {}", r.text);
        let r = s
            .raw(Method::GET, "/v1/tokens/me", &headers[..1], vec![])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

/// How many access keys the bootstrap key can see.
async fn key_count(s: &TestServer) -> i64 {
    let r = s.get("/v1/access-keys", s.key()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["pagination"]["total_count"].as_i64().unwrap()
}

/// How many projects the bootstrap key can see.
async fn project_count(s: &TestServer) -> i64 {
    let r = s.get("/v1/projects", s.key()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["pagination"]["total_count"].as_i64().unwrap()
}

/// Unknown routes are 404 in the envelope, whatever credential (or none)
/// comes with them, and before the body is looked at.
async fn unknown_route_is_404(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let cases: Vec<(Method, &str, Headers, Vec<u8>)> = vec![
        (Method::GET, "/v1/nothing-here", vec![], vec![]),
        (
            Method::GET,
            "/v1/nothing-here",
            vec![("authorization", auth.as_str())],
            vec![],
        ),
        (
            Method::GET,
            "/v1/nothing-here",
            vec![("authorization", "Bearer dyn_garbage")],
            vec![],
        ),
        (
            Method::POST,
            "/v1/access-keys/key_x/unknown",
            vec![("authorization", auth.as_str())],
            vec![],
        ),
        (Method::GET, "/v1", vec![], vec![]),
        (Method::DELETE, "/v2/access-keys", vec![], vec![]),
        // Route comes before body size and content type.
        (
            Method::POST,
            "/v1/nothing-here",
            vec![("content-type", "text/plain")],
            vec![b'x'; BODY_LIMIT + 1],
        ),
    ];
    for (method, path, headers, body) in cases {
        let r = s.raw(method.clone(), path, &headers, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.text
        );
        assert_error(&r, StatusCode::NOT_FOUND, "not_found", "Not Found");
        assert!(
            r.headers.get("x-request-id").is_some(),
            "{method} {path}: no x-request-id"
        );
    }

    rejection_keeps_client_usable(&s, Method::POST, "/v1/nothing-here", StatusCode::NOT_FOUND)
        .await;

    // An unknown id on a known route is the same 404.
    let r = s
        .get("/v1/access-keys/key_01J00000000000000000000000", s.key())
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", "Not Found");
}

/// A known path with a method it does not serve is 405 with `Allow`
/// listing the methods it does serve, before credential, size or type.
async fn wrong_method_is_405_with_allow(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let allow_of = |r: &Reply| -> Vec<String> {
        let allow = r.headers.get("allow").expect("405 without an Allow header");
        let mut methods: Vec<String> = allow
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        methods.sort();
        methods
    };

    let r = s
        .raw(
            Method::PUT,
            "/v1/access-keys",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    let allow = allow_of(&r);
    assert!(
        allow.contains(&"GET".to_string()) && allow.contains(&"POST".to_string()),
        "{allow:?}"
    );
    assert!(!allow.contains(&"PUT".to_string()), "{allow:?}");

    let r = s.raw(Method::POST, "/v1/tokens/me", &[], vec![]).await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    assert!(allow_of(&r).contains(&"GET".to_string()));
    assert!(!allow_of(&r).contains(&"POST".to_string()));

    let r = s
        .raw(
            Method::PATCH,
            "/v1/access-keys/key_x",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    let allow = allow_of(&r);
    assert!(
        allow.contains(&"GET".to_string()) && allow.contains(&"DELETE".to_string()),
        "{allow:?}"
    );

    // 405 comes before the credential...
    let r = s
        .raw(
            Method::DELETE,
            "/v1/projects",
            &[("authorization", "Bearer nope")],
            vec![],
        )
        .await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    assert!(r.headers.get("allow").is_some());
    // ...and before the body's size and content type.
    let r = s
        .raw(
            Method::PUT,
            "/v1/access-keys",
            &[("content-type", "application/json")],
            json_of_len(BODY_LIMIT + 1),
        )
        .await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    assert!(r.headers.get("allow").is_some());
    let r = s
        .raw(
            Method::PUT,
            "/v1/access-keys",
            &[("content-type", "text/plain")],
            b"hello".to_vec(),
        )
        .await;
    assert_error(
        &r,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    );
    assert!(r.headers.get("allow").is_some());

    rejection_keeps_client_usable(
        &s,
        Method::PUT,
        "/v1/access-keys",
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

/// A body over 64 KiB is 413 and creates nothing; exactly 64 KiB is fine.
async fn body_over_limit_is_413(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let before = key_count(&s).await;
    let json = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];

    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &json,
            json_of_len(BODY_LIMIT + 1),
        )
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    );
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &json,
            json_of_len(4 * BODY_LIMIT),
        )
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    );
    assert_eq!(
        key_count(&s).await,
        before,
        "an oversized request created a key"
    );

    rejection_keeps_client_usable(
        &s,
        Method::POST,
        "/v1/access-keys",
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &json,
            json_of_len(BODY_LIMIT),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a body of exactly the limit must pass: {}",
        r.text
    );
    assert_eq!(r.body["data"]["name"], "padded");
}

/// A chunked body without `Content-Length` that grows past 64 KiB is 413 too.
async fn streamed_body_over_limit_is_413(backend: Backend) {
    let s = TestServer::start(backend).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let key = s.key().to_string();
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        stream.set_write_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST /v1/access-keys HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b' '; 8192];
        // The server may answer and stop reading before the last chunk.
        for _ in 0..(BODY_LIMIT / 8192 + 2) {
            let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = stream.write_all(&chunk);
            let _ = stream.write_all(b"\r\n");
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    let status_line = response.lines().next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.1 413"),
        "expected 413, got {response:?}"
    );
    assert!(
        response.contains(r#""code":"payload_too_large""#),
        "{response}"
    );
}

/// A body that is not `application/json` is 415, whatever it contains,
/// and creates nothing.
async fn non_json_body_is_415(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let before = key_count(&s).await;
    let body = br#"{"name": "sneaky"}"#.to_vec();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("text/json"),
        None,
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let r = s
            .raw(Method::POST, "/v1/access-keys", &headers, body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {}",
            r.text
        );
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported Media Type",
        );
    }
    assert_eq!(
        key_count(&s).await,
        before,
        "a non-JSON request created a key"
    );
}

/// A request with no body is never 415, whatever its `Content-Type` says.
async fn request_without_body_is_never_415(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let text = [
        ("authorization", auth.as_str()),
        ("content-type", "text/plain"),
    ];

    let r = s.raw(Method::GET, "/v1/tokens/me", &text, vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let (id, _) = s.create_key(s.key(), json!({"name": "to rotate"})).await;
    let r = s
        .raw(
            Method::POST,
            &format!("/v1/access-keys/{id}/rotate"),
            &text,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let (id, _) = s.create_key(s.key(), json!({"name": "to revoke"})).await;
    let r = s
        .raw(
            Method::DELETE,
            &format!("/v1/access-keys/{id}"),
            &text,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // A route that needs a body says so with a 400, not a 415.
    let r = s.raw(Method::POST, "/v1/access-keys", &text, vec![]).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
    assert_eq!(r.detail("input"), Some("cannot be blank"));
}

/// `application/json` with parameters (and in any case) is JSON.
async fn json_with_charset_is_json(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    ] {
        let r = s
            .raw(
                Method::POST,
                "/v1/access-keys",
                &[("authorization", &auth), ("content-type", content_type)],
                br#"{"name": "charset"}"#.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{content_type}: {}", r.text);
        assert_eq!(r.body["data"]["name"], "charset");
    }
}

/// Missing, malformed, mis-prefixed, corrupted, unknown and revoked
/// credentials are all 401 with `WWW-Authenticate: Bearer`.
async fn bad_credentials_are_401(backend: Backend) {
    let s = TestServer::start(backend).await;
    let prefixes = s.state.prefixes().clone();
    let key = s.key().to_string();
    let pat = s.boot().pat.clone();
    let key_prefix = prefixes.access_key.len();
    let pat_prefix = prefixes.pat.len();
    // Controls: the genuine credentials work, with either spelling of the scheme.
    assert_eq!(s.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    assert_eq!(s.get("/v1/tokens/me", &pat).await.status, StatusCode::OK);
    let lower = s
        .raw(
            Method::GET,
            "/v1/tokens/me",
            &[("authorization", &format!("bearer {key}"))],
            vec![],
        )
        .await;
    assert_eq!(
        lower.status,
        StatusCode::OK,
        "the auth scheme is case-insensitive: {}",
        lower.text
    );

    let unknown_key = token::generate(&prefixes, TokenKind::AccessKey);
    let unknown_pat = token::generate(&prefixes, TokenKind::PersonalAccessToken);
    let corrupted_key = corrupt_one_char(&key, key_prefix);
    let corrupted_pat = corrupt_one_char(&pat, pat_prefix);
    assert_ne!(corrupted_key, key);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing Authorization", None),
        ("Basic scheme", Some("Basic dXNlcjpwYXNzd29yZA==".into())),
        (
            "Token scheme with a valid key",
            Some(format!("Token {key}")),
        ),
        ("no scheme", Some(key.clone())),
        ("Bearer without a token", Some("Bearer".into())),
        (
            "wrong prefix",
            Some(bearer(&format!("xyz_{}", &key[key_prefix..]))),
        ),
        (
            "key body under the PAT prefix",
            Some(bearer(&format!("{}{}", prefixes.pat, &key[key_prefix..]))),
        ),
        ("too short", Some(bearer(&key[..key.len() - 1]))),
        ("too long", Some(bearer(&format!("{key}0")))),
        (
            "non-alphanumeric body",
            Some(bearer(&format!("{}-", &key[..key.len() - 1]))),
        ),
        ("bad checksum (key)", Some(bearer(&corrupted_key))),
        ("bad checksum (PAT)", Some(bearer(&corrupted_pat))),
        (
            "unknown key",
            Some(bearer(unknown_key.token.expose_secret())),
        ),
        (
            "unknown PAT",
            Some(bearer(unknown_pat.token.expose_secret())),
        ),
    ];
    for (case, authorization) in &cases {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("authorization", a.as_str()))
            .collect();
        let r = s.raw(Method::GET, "/v1/tokens/me", &headers, vec![]).await;
        assert_unauthorized(&r, case);
        // The same on a route that needs a scope.
        let r = s
            .raw(Method::GET, "/v1/access-keys", &headers, vec![])
            .await;
        assert_unauthorized(&r, case);
    }

    // Revoked: works, is revoked, fails.
    let (id, revoked) = s.create_key(&key, json!({"name": "soon revoked"})).await;
    assert_eq!(
        s.get("/v1/tokens/me", &revoked).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{id}"), &key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_unauthorized(&s.get("/v1/tokens/me", &revoked).await, "revoked key");
    assert_unauthorized(
        &s.post("/v1/projects", &revoked, json!({"name": "x"})).await,
        "revoked key writing",
    );
}

/// A valid credential without the route's scope, or a viewer writing, is
/// 403 and changes nothing.
async fn missing_permission_is_403(backend: Backend) {
    let s = TestServer::start(backend).await;
    let before = project_count(&s).await;

    let (_, reader) = s
        .create_key(s.key(), json!({"name": "reader", "scopes": ["keys:read"]}))
        .await;
    assert_eq!(
        s.get("/v1/access-keys", &reader).await.status,
        StatusCode::OK,
        "control: the key works"
    );
    let r = s
        .post("/v1/projects", &reader, json!({"name": "not allowed"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s.get("/v1/projects", &reader).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .post("/v1/access-keys", &reader, json!({"name": "escalate"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");

    let (_, viewer) = s.member_with_pat("viewer@example.com", "viewer").await;
    assert_eq!(
        s.get("/v1/projects", &viewer).await.status,
        StatusCode::OK,
        "control: viewers read"
    );
    let r = s
        .post("/v1/projects", &viewer, json!({"name": "viewer project"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .post("/v1/access-keys", &viewer, json!({"name": "viewer key"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .delete(&format!("/v1/access-keys/{}", s.boot().key_id), &viewer)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .post(
            &format!("/v1/projects/{}/environments", s.boot().project_id),
            &viewer,
            json!({"name": "qa"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");

    assert_eq!(
        project_count(&s).await,
        before,
        "a forbidden request created a project"
    );
    assert_eq!(
        s.get("/v1/tokens/me", s.key()).await.status,
        StatusCode::OK,
        "the bootstrap key was revoked"
    );
}

/// Malformed and invalid input is 400 with field-level details.
async fn bad_input_is_400_with_details(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let before = key_count(&s).await;
    let send = |body: &'static [u8], content_type: Option<&'static str>| {
        post_access_key(&s, &auth, body, content_type)
    };
    let bad = |r: &Reply| assert_error(r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");

    // Empty or missing body.
    for r in [
        send(b"", None).await,
        send(b"", Some("application/json")).await,
    ] {
        bad(&r);
        assert_eq!(
            r.body["error"]["details"],
            json!({"input": "cannot be blank"}),
            "{}",
            r.text
        );
    }

    // A blank or missing required field.
    for body in [&br#"{"name": ""}"#[..], br#"{"name": "   "}"#, b"{}"] {
        let r = send(body, Some("application/json")).await;
        bad(&r);
        assert_eq!(
            r.body["error"]["details"],
            json!({"name": "cannot be blank"}),
            "{}",
            r.text
        );
    }

    // Invalid JSON: `input` says what is wrong.
    for body in [
        &br#"{"name": "x""#[..],
        br#"{"name": }"#,
        b"not json",
        br#"{"name": "x"} trailing"#,
    ] {
        let r = send(body, Some("application/json")).await;
        bad(&r);
        let message = r
            .detail("input")
            .unwrap_or_else(|| panic!("no details.input: {}", r.text));
        assert_ne!(message, "cannot be blank");
        assert!(
            message.to_ascii_lowercase().contains("json"),
            "details.input should name the JSON problem: {message}"
        );
    }

    // A value of the wrong type names its field.
    let r = send(br#"{"name": 5}"#, Some("application/json")).await;
    bad(&r);
    assert!(
        r.detail("name").is_some(),
        "details should name `name`: {}",
        r.text
    );
    assert!(r.detail("input").is_none(), "{}", r.text);
    let r = send(
        br#"{"name": "x", "scopes": "keys:read"}"#,
        Some("application/json"),
    )
    .await;
    bad(&r);
    assert!(
        r.detail("scopes").is_some(),
        "details should name `scopes`: {}",
        r.text
    );

    // An unknown scope name.
    let r = send(
        br#"{"name": "x", "scopes": ["keys:read", "nope:read"]}"#,
        Some("application/json"),
    )
    .await;
    bad(&r);
    let scopes = r
        .detail("scopes")
        .unwrap_or_else(|| panic!("no details.scopes: {}", r.text));
    assert!(
        scopes.contains("nope:read"),
        "details.scopes should name the unknown scope: {scopes}"
    );

    // A body that is valid JSON but not an object, also an array of the
    // fields in order (which serde alone reads as the struct, and which
    // created this key before).
    for body in [
        &b"[]"[..],
        br#"["ci", null, null, ["keys:read"], null]"#,
        br#""ci""#,
        b"5",
        b" null",
    ] {
        let r = send(body, Some("application/json")).await;
        bad(&r);
        assert_eq!(
            r.detail("input"),
            Some("must be a JSON object"),
            "{}",
            r.text
        );
    }

    assert_eq!(key_count(&s).await, before, "a bad request created a key");
}

/// A NUL character (U+0000) in a path id, a query parameter or a body
/// field is never a 500: PostgreSQL, which cannot store one, answers 400
/// on `input` (these cases were 500 there); SQLite takes them as any
/// other character.
async fn nul_characters_are_never_500(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key().to_string();
    let sandbox = s.boot().sandbox_id.clone();
    let provider = s
        .post(
            "/v1/oauth2-providers",
            &key,
            json!({"name": "google", "environment_id": sandbox, "preset": "google",
                   "connection_type": "dynamiq.connections.GoogleOAuth2",
                   "client_id": "nul-client", "client_secret": "nul-client-secret"}),
        )
        .await;
    assert_eq!(provider.status, StatusCode::CREATED, "{}", provider.text);
    let provider = provider.body["data"]["id"].as_str().unwrap().to_string();
    let refused = [
        s.post("/v1/access-keys", &key, json!({"environment_id": "\u{0}"}))
            .await,
        s.post(
            "/v1/apps",
            &key,
            json!({"name": "Nul", "environment_id": "\u{0}"}),
        )
        .await,
        s.patch(
            &format!("/v1/oauth2-providers/{provider}"),
            &key,
            json!({"client_id": "\u{0}"}),
        )
        .await,
        s.get("/v1/webhooks/%00", &key).await,
        s.delete("/v1/projects/%00", &key).await,
    ];
    for r in &refused {
        assert!(!r.status.is_server_error(), "{}", r.text);
        if backend == Backend::Postgres {
            assert_error(r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
            assert_eq!(
                r.detail("input"),
                Some("must not contain NUL characters"),
                "{}",
                r.text
            );
        }
    }
    let query = s
        .get("/v1/access-keys?environment_id=%00&project_id=%00", &key)
        .await;
    assert!(!query.status.is_server_error(), "{}", query.text);
}

/// `page_size` outside 1–200 (or not a number) is 400 naming it.
async fn page_size_out_of_range_is_400(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in [
        "/v1/access-keys",
        "/v1/projects",
        "/v1/organization/members",
    ] {
        for bad in ["0", "201", "-1", "abc", "1.5", ""] {
            let r = s.get(&format!("{path}?page_size={bad}"), s.key()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
            assert!(
                r.detail("page_size").is_some(),
                "{path}?page_size={bad}: {}",
                r.text
            );
        }
        for good in [1, 200] {
            let r = s.get(&format!("{path}?page_size={good}"), s.key()).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{path}?page_size={good}: {}",
                r.text
            );
            assert_eq!(r.body["pagination"]["page_size"], good);
        }
    }
}

/// A typed query parameter that is present but empty (`?page=`,
/// `?active=`, `?since=`) is not a value of its type: 400 naming it, as
/// the OpenAPI document says, not silently the default. An empty id
/// filter (`?environment_id=`) is no filter.
async fn empty_typed_query_values_are_400(backend: Backend) {
    let s = TestServer::start(backend).await;
    for (path, field) in [
        ("/v1/access-keys?page=", "page"),
        ("/v1/projects?page=&page_size=10", "page"),
        ("/v1/access-keys?active=", "active"),
        ("/v1/personal-access-tokens?active=", "active"),
        ("/v1/audit-events?since=", "since"),
        ("/v1/audit-events?until=", "until"),
    ] {
        let token = if path.contains("personal") {
            &s.boot().pat
        } else {
            s.key()
        };
        let r = s.get(path, token).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
        assert!(r.detail(field).is_some(), "{path}: {}", r.text);
    }
    let r = s
        .get("/v1/access-keys?environment_id=&active=true", s.key())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.body["data"].as_array().unwrap().is_empty(), "{}", r.text);
}

/// JSON Schema's `integer` (which the document uses) takes `60.0` as 60,
/// so the API does too; a real fraction is still 400 naming the field.
async fn whole_numbers_may_carry_a_zero_fraction(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, _) = s.create_key(s.key(), json!({"name": "rotated"})).await;
    let rotate = format!("/v1/access-keys/{id}/rotate");
    let r = s
        .post(&rotate, s.key(), json!({"grace_period_seconds": 1.5}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
    assert!(r.detail("grace_period_seconds").is_some(), "{}", r.text);
    let r = s
        .post(&rotate, s.key(), json!({"grace_period_seconds": 3600.0}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let env = format!("/v1/environments/{}", s.boot().sandbox_id);
    let limit = json!({"rate_limit": {"limit": 600.0, "window_seconds": 60}});
    let r = s.patch(&env, s.key(), limit).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["data"]["rate_limit"],
        json!({"limit": 600, "window_seconds": 60})
    );
    let r = s
        .patch(
            &env,
            s.key(),
            json!({"rate_limit": {"limit": 1e30, "window_seconds": 60}}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
    assert!(r.detail("rate_limit.limit").is_some(), "{}", r.text);
}

/// Unique clashes are 409 naming the field: an environment name within a
/// project, a member's email (case-insensitively).
async fn unique_clash_is_409(backend: Backend) {
    let s = TestServer::start(backend).await;
    let environments = format!("/v1/projects/{}/environments", s.boot().project_id);
    let first = s
        .post(&environments, s.key(), json!({"name": "staging"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    for name in ["staging", "sandbox", "live"] {
        let r = s.post(&environments, s.key(), json!({"name": name})).await;
        assert_error(&r, StatusCode::CONFLICT, "conflict", "Conflict");
        assert!(
            r.detail("name").is_some(),
            "409 should name `name`: {}",
            r.text
        );
    }
    let list = s.get(&environments, s.key()).await;
    assert_eq!(list.body["pagination"]["total_count"], 3, "{}", list.text);

    s.member_with_pat("dev@example.com", "developer").await;
    let members = s.get("/v1/organization/members", &s.boot().pat).await;
    let count = members.body["pagination"]["total_count"].clone();
    for email in [
        "dev@example.com",
        "DEV@Example.com",
        s.boot().owner_email.as_str(),
    ] {
        let r = s
            .post(
                "/v1/organization/members",
                &s.boot().pat,
                json!({"email": email, "role": "viewer"}),
            )
            .await;
        assert_error(&r, StatusCode::CONFLICT, "conflict", "Conflict");
        assert!(
            r.detail("email").is_some(),
            "409 for {email} should name `email`: {}",
            r.text
        );
    }
    let members = s.get("/v1/organization/members", &s.boot().pat).await;
    assert_eq!(members.body["pagination"]["total_count"], count);
}

/// Headers over 16 KiB in total are 431, whether in one header or many.
async fn oversized_headers_are_431(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());

    let big = "a".repeat(17 * 1024);
    let r = s
        .raw(
            Method::GET,
            "/v1/tokens/me",
            &[("authorization", &auth), ("x-filler", &big)],
            vec![],
        )
        .await;
    assert_error(
        &r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header_too_large",
        "Request Header Fields Too Large",
    );
    assert!(r.headers.get("x-request-id").is_some());

    let chunk = "b".repeat(1000);
    let names: Vec<String> = (0..20).map(|i| format!("x-filler-{i}")).collect();
    let mut headers: Vec<(&str, &str)> =
        names.iter().map(|n| (n.as_str(), chunk.as_str())).collect();
    headers.push(("authorization", &auth));
    let r = s.raw(Method::GET, "/v1/tokens/me", &headers, vec![]).await;
    assert_error(
        &r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header_too_large",
        "Request Header Fields Too Large",
    );

    // Even an unknown route or a missing credential: headers come first.
    let r = s
        .raw(
            Method::GET,
            "/v1/nothing-here",
            &[("x-filler", &big)],
            vec![],
        )
        .await;
    assert_error(
        &r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header_too_large",
        "Request Header Fields Too Large",
    );

    // Control: generous but within the limit.
    let fine = "c".repeat(12 * 1024);
    let r = s
        .raw(
            Method::GET,
            "/v1/tokens/me",
            &[("authorization", &auth), ("x-filler", &fine)],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// SPEC §2 order: route (404/405) → size (413) → type (415) → credential
/// (401) → permission (403) → input (400).
async fn checks_run_in_spec_order(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, viewer) = s.member_with_pat("viewer@example.com", "viewer").await;
    let viewer = bearer(&viewer);
    let (_, reader) = s
        .create_key(s.key(), json!({"name": "reader", "scopes": ["keys:read"]}))
        .await;
    let reader = bearer(&reader);
    let json_ct = ("content-type", "application/json");
    let huge = json_of_len(BODY_LIMIT + 1);
    let invalid = br#"{"name": "#.to_vec();

    // 413 before 415 and before 401.
    let r = s
        .raw(Method::POST, "/v1/access-keys", &[json_ct], huge.clone())
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    );
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[("authorization", "Bearer nope"), json_ct],
            huge.clone(),
        )
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    );
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[("content-type", "text/plain")],
            vec![b'x'; BODY_LIMIT + 1],
        )
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload Too Large",
    );

    // 415 before 401.
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[("content-type", "text/plain")],
            b"hello".to_vec(),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Unsupported Media Type",
    );
    let r = s
        .raw(
            Method::POST,
            "/v1/projects",
            &[
                ("authorization", "Bearer nope"),
                ("content-type", "text/plain"),
            ],
            b"x".to_vec(),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Unsupported Media Type",
    );

    // 401 before 400.
    let r = s
        .raw(Method::POST, "/v1/access-keys", &[json_ct], invalid.clone())
        .await;
    assert_unauthorized(&r, "no credential, invalid JSON");
    let r = s
        .raw(Method::POST, "/v1/access-keys", &[json_ct], vec![])
        .await;
    assert_unauthorized(&r, "no credential, empty body");
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[("authorization", "Bearer nope"), json_ct],
            invalid.clone(),
        )
        .await;
    assert_unauthorized(&r, "bad credential, invalid JSON");

    // 403 before 400.
    let r = s
        .raw(
            Method::POST,
            "/v1/projects",
            &[("authorization", &viewer), json_ct],
            invalid.clone(),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .raw(
            Method::POST,
            "/v1/projects",
            &[("authorization", &reader), json_ct],
            vec![],
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");
    let r = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[("authorization", &viewer), json_ct],
            br#"{"name": 5}"#.to_vec(),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "Forbidden");

    // And with everything else right, the input is what fails.
    let owner = bearer(s.key());
    let r = s
        .raw(
            Method::POST,
            "/v1/projects",
            &[("authorization", &owner), json_ct],
            invalid,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request", "Bad Request");
}

/// Routes whose fields are all optional accept an empty body.
async fn all_optional_routes_accept_empty_body(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let (id, old) = s.create_key(s.key(), json!({"name": "rotate me"})).await;

    let r = s
        .raw(
            Method::POST,
            &format!("/v1/access-keys/{id}/rotate"),
            &[("authorization", &auth)],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["data"]["name"], "rotate me");
    let new = r.body["data"]["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_unauthorized(
        &s.get("/v1/tokens/me", &old).await,
        "rotated with the default grace of 0",
    );

    let new_id = r.body["data"]["id"].as_str().unwrap();
    let r = s
        .raw(
            Method::POST,
            &format!("/v1/access-keys/{new_id}/rotate"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let project = format!("/v1/projects/{}", s.boot().project_id);
    let r = s
        .raw(Method::PATCH, &project, &[("authorization", &auth)], vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["id"], s.boot().project_id.as_str());
}

/// `x-request-id` is on every response: the client's when it matches
/// `[A-Za-z0-9._:-]{1,128}`, otherwise a fresh `rid_…`.
async fn request_id_is_echoed_or_replaced(backend: Backend) {
    let s = TestServer::start(backend).await;
    let auth = bearer(s.key());
    let id_of = |r: &Reply| -> String {
        r.headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {} response", r.status))
            .to_str()
            .unwrap()
            .to_string()
    };
    let requests: Vec<(Method, &str, Headers, Vec<u8>, StatusCode)> = vec![
        (
            Method::GET,
            "/v1/tokens/me",
            vec![("authorization", &auth)],
            vec![],
            StatusCode::OK,
        ),
        (Method::GET, "/healthz", vec![], vec![], StatusCode::OK),
        (
            Method::GET,
            "/v1/nothing-here",
            vec![],
            vec![],
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/v1/tokens/me",
            vec![],
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/v1/tokens/me",
            vec![],
            vec![],
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::POST,
            "/v1/access-keys",
            vec![("authorization", &auth)],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/access-keys",
            vec![("content-type", "text/plain")],
            b"x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/v1/access-keys",
            vec![],
            vec![b'x'; BODY_LIMIT + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    let longest = "a".repeat(128);
    let too_long = "a".repeat(129);
    let kept = ["req-1", "Abc.def_ghi:jkl-0123", longest.as_str()];
    let replaced = [
        "has space",
        "slash/no",
        "semi;colon",
        "quote\"d",
        too_long.as_str(),
        "",
    ];
    for (method, path, headers, body, status) in &requests {
        for id in kept {
            let mut with_id = headers.clone();
            with_id.push(("x-request-id", id));
            let r = s.raw(method.clone(), path, &with_id, body.clone()).await;
            assert_eq!(r.status, *status, "{method} {path}: {}", r.text);
            assert_eq!(
                id_of(&r),
                id,
                "{method} {path}: a valid request id must be echoed"
            );
        }
        let mut seen = Vec::new();
        for id in replaced {
            let mut with_id = headers.clone();
            with_id.push(("x-request-id", id));
            let r = s.raw(method.clone(), path, &with_id, body.clone()).await;
            assert_eq!(r.status, *status, "{method} {path}: {}", r.text);
            let got = id_of(&r);
            assert_ne!(
                got, id,
                "{method} {path}: an invalid request id {id:?} was echoed"
            );
            assert!(
                got.starts_with("rid_") && got.len() > 4,
                "{method} {path}: {got}"
            );
            seen.push(got);
        }
        let r = s.raw(method.clone(), path, headers, body.clone()).await;
        let got = id_of(&r);
        assert!(
            got.starts_with("rid_") && got.len() > 4,
            "{method} {path}: {got}"
        );
        seen.push(got);
        let before = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            before,
            "{method} {path}: generated request ids must be fresh"
        );
    }
}

/// A resource outside the caller's reach is 404, indistinguishable from
/// one that does not exist; never 403.
async fn resource_out_of_reach_is_404(backend: Backend) {
    let s = TestServer::start(backend).await;
    let b = s.boot().clone();
    let (_, sandbox_key) = s
        .create_key(
            s.key(),
            json!({"name": "x", "environment_id": b.sandbox_id}),
        )
        .await;

    let own = s
        .get(&format!("/v1/environments/{}", b.sandbox_id), &sandbox_key)
        .await;
    assert_eq!(
        own.status,
        StatusCode::OK,
        "control: its own environment: {}",
        own.text
    );

    let hidden = s
        .get(&format!("/v1/environments/{}", b.live_id), &sandbox_key)
        .await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found", "Not Found");
    let missing = s
        .get(
            "/v1/environments/env_01J00000000000000000000000",
            &sandbox_key,
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found", "Not Found");
    assert_eq!(hidden.body, missing.body, "existence must not be revealed");
    assert_eq!(
        s.get(&format!("/v1/environments/{}", b.live_id), s.key())
            .await
            .status,
        StatusCode::OK
    );

    // An organization-wide key is out of an environment key's reach too.
    let r = s
        .get(&format!("/v1/access-keys/{}", b.key_id), &sandbox_key)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", "Not Found");
    let r = s
        .delete(&format!("/v1/access-keys/{}", b.key_id), &sandbox_key)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", "Not Found");
    assert_eq!(s.get("/v1/tokens/me", s.key()).await.status, StatusCode::OK);

    // Naming an environment outside its reach when creating is 404 as well.
    let r = s
        .post(
            "/v1/access-keys",
            &sandbox_key,
            json!({"name": "y", "environment_id": b.live_id}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found", "Not Found");
}

/// `/healthz`, `/readyz`, `/openapi.json` and `/metrics` answer as SPEC §10 says.
async fn ops_endpoints(backend: Backend) {
    let s = TestServer::start(backend).await;
    let get = |path: &'static str| s.raw(Method::GET, path, &[], vec![]);

    assert_eq!(get("/healthz").await.status, StatusCode::OK);
    assert_eq!(get("/readyz").await.status, StatusCode::OK);

    let doc = get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let version = doc.body["openapi"]
        .as_str()
        .unwrap_or_else(|| panic!("not OpenAPI: {}", doc.text));
    assert!(version.starts_with("3.1"), "OpenAPI {version}");
    let paths = doc.body["paths"].as_object().expect("paths");
    for path in ["/v1/access-keys", "/v1/tokens/me"] {
        assert!(paths.contains_key(path), "{path} missing from openapi.json");
    }

    // Some traffic, including a 401, then the counters are exported.
    assert_eq!(s.get("/v1/tokens/me", s.key()).await.status, StatusCode::OK);
    assert_unauthorized(
        &s.raw(Method::GET, "/v1/tokens/me", &[], vec![]).await,
        "no credential",
    );
    assert_eq!(get("/v1/nothing-here").await.status, StatusCode::NOT_FOUND);
    let metrics = get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.body == Value::Null, "metrics are text, not JSON");
    for name in [
        "gatehouse_http_requests_total",
        "gatehouse_auth_failures_total",
    ] {
        assert!(metrics.text.contains(name), "{name} missing from /metrics");
    }
}
