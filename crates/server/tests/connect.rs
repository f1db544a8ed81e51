//! Connect (SPEC §5–§6), end to end on SQLite and PostgreSQL: apps on their
//! own hostnames, versions and deployments, connect tokens, requirements,
//! credentials sealed at rest, reveal, revocation, erasure, environment
//! isolation, and the RFC 8725 attacks on connect tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use common::{Backend, Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    connect_walkthrough,
    app_surface_auth_rules,
    hosts_choose_the_surface,
    token_lifetime_and_input,
    connect_token_attacks,
    connect_token_revocation,
    erase_end_user,
    environment_isolation,
    redeploy_keeps_matching_connections,
    independent_verifier_with_jwks,
    secrets_sealed_at_rest,
    browser_origins_and_cors,
);

const OPENAI: &str = "dynamiq.connections.OpenAI";

fn two_requirements() -> Value {
    json!([
        {"name": "openai", "type": "connection", "title": "OpenAI key",
         "spec": {"type": "connection", "data": {"type": OPENAI}}},
        {"name": "mail", "type": "pipedream_account",
         "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}}
    ])
}

/// An app deployed with `requirements`: (app id, hostname).
async fn deployed_app(
    s: &TestServer,
    env_id: &str,
    name: &str,
    access: &str,
    requirements: Value,
) -> (String, String) {
    s.deploy_app(env_id, name, access, requirements).await
}

async fn mint(s: &TestServer, host: &str, key: Option<&str>, body: Value) -> Reply {
    s.call_host(host, Method::POST, "/v1/connect/tokens", key, Some(body))
        .await
}

async fn token_for(s: &TestServer, host: &str, user: &str) -> String {
    let r = mint(s, host, Some(s.key()), json!({"user_id": user})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// The README flow: app → version → deploy → mint → requirements →
/// credentials → complete → reveal, plus disconnect.
async fn connect_walkthrough(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (app_id, host) =
        deployed_app(&s, &sandbox, "Acme Agent", "private", two_requirements()).await;
    assert_eq!(host, "acme-agent-sandbox.apps.localhost");

    let minted = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "customer-7421"}),
    )
    .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let keys: Vec<&String> = minted.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec!["expires_at", "token", "url"],
        "bare {{token, url, expires_at}}"
    );
    let token = minted.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        minted.body["url"],
        format!("{}/connect?token={token}", s.state.config().public_url)
    );

    let session = s.get("/v1/connect/session", &token).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);
    assert_eq!(session.body["data"]["user_id"], "customer-7421");
    assert_eq!(
        session.body["data"]["app"],
        json!({"name": "Acme Agent", "hostname": host})
    );

    let reqs = s.get("/v1/connect/requirements", &token).await;
    assert_eq!(reqs.status, StatusCode::OK);
    let list = reqs.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|r| r["status"] == "pending"));
    let openai = list.iter().find(|r| r["name"] == "openai").unwrap();
    let openai_id = openai["id"].as_str().unwrap().to_string();
    assert!(openai_id.starts_with("req_"));
    assert_eq!(openai["connection_type"]["auth"], "credentials");
    assert!(openai["connection_type"]["secret_fields"]
        .as_array()
        .unwrap()
        .contains(&json!("api_key")));
    let mail = list.iter().find(|r| r["name"] == "mail").unwrap();
    assert_eq!(mail["type"], "action_connector_account");
    let mail_id = mail["id"].as_str().unwrap().to_string();

    let status = s
        .call_host(
            &host,
            Method::GET,
            "/v1/requirements/status?user_id=customer-7421",
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["status"], "incomplete");
    assert_eq!(status.body["unsatisfied"].as_array().unwrap().len(), 2);

    let path = format!("/v1/connect/requirements/{openai_id}/credentials");
    let missing = s
        .post(&path, &token, json!({"type": OPENAI, "config": {}}))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.detail("config.api_key"), Some("cannot be blank"));
    let wrong_type = s
        .post(
            &path,
            &token,
            json!({"type": "dynamiq.connections.Anthropic", "config": {"api_key": "x"}}),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(wrong_type.detail("type").is_some());
    let ok = s
        .post(
            &path,
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-test-123456"}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(ok.body, json!({"message": "created"}));

    let statuses = s.get("/v1/connect/requirements/status", &token).await;
    let by_name: Vec<(String, String)> = statuses.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(by_name.contains(&("openai".into(), "completed".into())));
    assert!(by_name.contains(&("mail".into(), "pending".into())));
    let status = s
        .call_host(
            &host,
            Method::GET,
            "/v1/requirements/status?user_id=customer-7421",
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(status.body["unsatisfied"][0]["name"], "mail");

    let reveal = s
        .get(
            &format!("/v1/apps/{app_id}/end-users/customer-7421/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(reveal.status, StatusCode::OK, "{}", reveal.text);
    assert_eq!(
        reveal.body["data"],
        json!([{"requirement_name": "openai", "type": OPENAI, "config": {"api_key": "sk-test-123456"}}])
    );
    let (_, no_reveal) = s.create_key(s.key(), json!({"name": "runtime"})).await;
    let denied = s
        .get(
            &format!("/v1/apps/{app_id}/end-users/customer-7421/credentials"),
            &no_reveal,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let user = s
        .get(
            &format!("/v1/end-users/customer-7421?environment_id={sandbox}"),
            s.key(),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    assert_eq!(
        user.body["data"]["connections"][0]["requirement_name"],
        "openai"
    );
    assert_eq!(user.body["data"]["connections"][0]["status"], "active");
    assert!(!user.text.contains("sk-test-123456"));
    let users = s
        .get(
            &format!("/v1/end-users?environment_id={sandbox}&app_id={app_id}"),
            s.key(),
        )
        .await;
    assert_eq!(users.body["data"][0]["user_id"], "customer-7421");

    let account = s
        .post(
            &format!("/v1/connect/requirements/{mail_id}/action-connector/authorize"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(account.status, StatusCode::BAD_REQUEST);
    assert!(account.detail("requirement").unwrap().contains("gmail"));

    let gone = s
        .delete(
            &format!("/v1/connect/requirements/{openai_id}/connection"),
            &token,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let after = s.get("/v1/connect/requirements/status", &token).await;
    assert!(after.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "pending"));

    let events = s.get("/v1/audit-events?page_size=200", s.key()).await;
    let actions: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "connect_token.created",
        "connection.created",
        "credentials.revealed",
        "connection.deleted",
        "app.deployed",
    ] {
        assert!(actions.contains(&a), "audit has {a}: {actions:?}");
    }
    assert!(!events.text.contains("sk-test-123456"));
}

/// SPEC §6 auth on the app surface and on connect-token routes.
async fn app_surface_auth_rules(backend: Backend) {
    let s = TestServer::start(backend).await;
    let b = s.boot().clone();
    let (_, private_host) = deployed_app(&s, &b.sandbox_id, "Private", "private", json!([])).await;
    let (_, public_host) = deployed_app(&s, &b.sandbox_id, "Public", "public", json!([])).await;
    let body = json!({"user_id": "u1"});

    assert_eq!(
        mint(&s, &private_host, None, body.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let garbage = mint(&s, &private_host, Some("dyn_nope"), body.clone()).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.headers["www-authenticate"], "Bearer");
    assert_eq!(
        mint(&s, &private_host, Some(&b.pat), body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (_, live_key) = s
        .create_key(
            s.key(),
            json!({"name": "live", "environment_id": b.live_id}),
        )
        .await;
    assert_eq!(
        mint(&s, &private_host, Some(&live_key), body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (_, no_scope) = s
        .create_key(s.key(), json!({"name": "ro", "scopes": ["apps:read"]}))
        .await;
    assert_eq!(
        mint(&s, &private_host, Some(&no_scope), body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (_, env_key) = s
        .create_key(
            s.key(),
            json!({"name": "mint", "environment_id": b.sandbox_id, "scopes": ["connect:write"]}),
        )
        .await;
    assert_eq!(
        mint(&s, &private_host, Some(&env_key), body.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    let (_, project_key) = s
        .create_key(
            s.key(),
            json!({"name": "prj", "project_id": b.project_id, "scopes": ["connect:write"]}),
        )
        .await;
    assert_eq!(
        mint(&s, &private_host, Some(&project_key), body.clone())
            .await
            .status,
        StatusCode::CREATED
    );

    let anon = mint(&s, &public_host, None, body.clone()).await;
    assert_eq!(anon.status, StatusCode::CREATED, "{}", anon.text);
    let token = anon.body["token"].as_str().unwrap().to_string();
    let revoked_key = {
        let (id, k) = s.create_key(s.key(), json!({"name": "old"})).await;
        s.delete(&format!("/v1/access-keys/{id}"), s.key()).await;
        k
    };
    assert_eq!(
        mint(&s, &public_host, Some(&revoked_key), body.clone())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mint(&s, &public_host, Some(&token), body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let status = s
        .call_host(
            &public_host,
            Method::GET,
            "/v1/requirements/status?user_id=u1",
            None,
            None,
        )
        .await;
    assert_eq!(
        status.body,
        json!({"status": "complete", "unsatisfied": []})
    );
    let no_user = s
        .call_host(
            &public_host,
            Method::GET,
            "/v1/requirements/status",
            None,
            None,
        )
        .await;
    assert_eq!(no_user.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_user.detail("user_id"), Some("cannot be blank"));

    // A connect token works only on connect-token routes; keys never do.
    assert_eq!(
        s.get("/v1/connect/session", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get("/v1/projects", &token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/tokens/me", &token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/connect/session", s.key()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/connect/session", &b.pat).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/connect/session", "eyJhbGciOiJub25lIn0.e30.")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call(Method::GET, "/v1/connect/session", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// Host decides the surface: app routes are 404 off app hosts and the
/// reverse; unknown hosts under apps_domain only serve ops routes.
async fn hosts_choose_the_surface(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, host) = deployed_app(&s, &s.boot().live_id.clone(), "Shop", "public", json!([])).await;
    assert_eq!(
        host, "shop.apps.localhost",
        "live apps get <slug>.<apps_domain>"
    );
    let upper = host.to_uppercase();
    assert_eq!(
        mint(&s, &format!("{upper}."), None, json!({"user_id": "u"}))
            .await
            .status,
        StatusCode::CREATED
    );

    let on_mgmt = s
        .call(
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": "u"})),
        )
        .await;
    assert_eq!(on_mgmt.status, StatusCode::NOT_FOUND);
    let mgmt_on_app = s
        .call_host(&host, Method::GET, "/v1/access-keys", Some(s.key()), None)
        .await;
    assert_eq!(mgmt_on_app.status, StatusCode::NOT_FOUND);
    assert_eq!(mgmt_on_app.error_code(), "not_found");

    let unknown = "nobody.apps.localhost";
    assert_eq!(
        s.call_host(
            unknown,
            Method::POST,
            "/v1/connect/tokens",
            None,
            Some(json!({"user_id": "u"}))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call_host(unknown, Method::GET, "/v1/projects", Some(s.key()), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call_host(unknown, Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK
    );
    let jwks = s
        .call_host(unknown, Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");

    // Hostname rules: no IP literal, no localhost, no duplicate.
    let env = s.boot().sandbox_id.clone();
    for bad in ["127.0.0.1", "localhost"] {
        let r = s
            .post(
                "/v1/apps",
                s.key(),
                json!({"name": "x", "environment_id": env, "hostname": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.detail("hostname").is_some());
    }
    let dup = s
        .post(
            "/v1/apps",
            s.key(),
            json!({"name": "y", "environment_id": env, "hostname": host}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.detail("hostname").is_some(), "{}", dup.text);
    let custom = s
        .post(
            "/v1/apps",
            s.key(),
            json!({"name": "z", "environment_id": env, "hostname": "Agents.Example.com"}),
        )
        .await;
    assert_eq!(custom.body["data"]["hostname"], "agents.example.com");
}

/// Tokens live 24 h by default with `expires_at` = `exp`; input is checked.
async fn token_lifetime_and_input(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (app_id, host) = deployed_app(
        &s,
        &s.boot().sandbox_id.clone(),
        "Life",
        "private",
        json!([]),
    )
    .await;
    let r = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u-1", "redirect_url": "https://example.com/back"}),
    )
    .await;
    let token = r.body["token"].as_str().unwrap();
    let header = header_of(token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].is_string());
    let c = claims_of(token);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(c["nbf"], c["iat"]);
    assert_eq!(c["sub"], "u-1");
    assert_eq!(c["user_id"], "u-1");
    assert_eq!(c["app_id"], app_id.as_str());
    assert_eq!(c["environment_id"], s.boot().sandbox_id.as_str());
    assert_eq!(c["aud"], "gatehouse:connect");
    assert_eq!(c["iss"], s.state.config().public_url.as_str());
    let expires =
        gatehouse_core::time::parse_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires / 1000, c["exp"].as_i64().unwrap());
    assert!(r.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let session = s.get("/v1/connect/session", token).await;
    assert_eq!(
        session.body["data"]["redirect_url"],
        "https://example.com/back"
    );
    assert_eq!(session.body["data"]["expires_at"], r.body["expires_at"]);

    let short = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u", "ttl_seconds": 120}),
    )
    .await;
    let c = claims_of(short.body["token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);

    for (body, field) in [
        (json!({"user_id": ""}), "user_id"),
        (json!({"user_id": "x".repeat(251)}), "user_id"),
        (json!({"user_id": "u", "ttl_seconds": 59}), "ttl_seconds"),
        (json!({"user_id": "u", "ttl_seconds": 86401}), "ttl_seconds"),
        (
            json!({"user_id": "u", "redirect_url": "http://example.com/"}),
            "redirect_url",
        ),
        (
            json!({"user_id": "u", "redirect_url": "javascript:alert(1)"}),
            "redirect_url",
        ),
    ] {
        let r = mint(&s, &host, Some(s.key()), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.detail(field).is_some(), "{body} → {}", r.text);
    }
    let localhost = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u", "redirect_url": "http://localhost:3000/x"}),
    )
    .await;
    assert_eq!(localhost.status, StatusCode::CREATED);
    let empty = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(empty.detail("input"), Some("cannot be blank"));
}

fn sign_rs256_with(key: &aws_lc_rs::rsa::KeyPair, header: &Value, claims: &Value) -> String {
    let msg = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{msg}.{}", B64.encode(sig))
}

/// RFC 8725: every forged or altered token is refused with 401.
async fn connect_token_attacks(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, host) = deployed_app(
        &s,
        &s.boot().sandbox_id.clone(),
        "Target",
        "private",
        json!([]),
    )
    .await;
    let good = token_for(&s, &host, "victim").await;
    assert_eq!(
        s.get("/v1/connect/session", &good).await.status,
        StatusCode::OK
    );
    let header = header_of(&good);
    let claims = claims_of(&good);
    let kid = header["kid"].as_str().unwrap().to_string();
    let parts: Vec<&str> = good.split('.').collect();

    let mut forged: Vec<(&str, String)> = Vec::new();
    // alg none, with and without a signature part.
    let none = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    forged.push(("alg none", format!("{none}.{}.", parts[1])));
    forged.push((
        "alg none + sig",
        format!("{none}.{}.{}", parts[1], parts[2]),
    ));
    // HS256 keyed with our public key (as JWKS n, and as JSON).
    let jwks = s.get("/.well-known/jwks.json", s.key()).await.body;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    for secret in [
        jwk["n"].as_str().unwrap().as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ] {
        let h = B64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
        let msg = format!("{h}.{}", parts[1]);
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
            msg.as_bytes(),
        );
        forged.push((
            "HS256 with public key",
            format!("{msg}.{}", B64.encode(tag.as_ref())),
        ));
    }
    // A foreign RSA key claiming our kid, also with the key embedded (jwk) or linked (jku).
    let foreign = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    forged.push((
        "foreign key, our kid",
        sign_rs256_with(&foreign, &header, &claims),
    ));
    let with_jwk = json!({"alg": "RS256", "typ": "JWT", "kid": kid, "jwk": jwk});
    forged.push((
        "embedded jwk",
        sign_rs256_with(&foreign, &with_jwk, &claims),
    ));
    let with_jku =
        json!({"alg": "RS256", "typ": "JWT", "kid": kid, "jku": "https://evil.example/jwks.json"});
    forged.push(("jku", sign_rs256_with(&foreign, &with_jku, &claims)));
    let unknown_kid = json!({"alg": "RS256", "typ": "JWT", "kid": "not-ours"});
    forged.push((
        "unknown kid",
        sign_rs256_with(&foreign, &unknown_kid, &claims),
    ));
    // Tampered payload with the original signature.
    let mut tampered = claims.clone();
    tampered["user_id"] = json!("attacker");
    tampered["sub"] = json!("attacker");
    forged.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(tampered.to_string()),
            parts[2]
        ),
    ));
    // Properly signed by us, but expired, not yet valid, or for another audience/issuer/app.
    let now = gatehouse_core::time::now_ms() / 1000;
    let variants = [
        (
            "expired",
            json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        ),
        (
            "not yet valid",
            json!({"nbf": now + 3600, "exp": now + 7200}),
        ),
        ("wrong audience", json!({"aud": "someone-else"})),
        ("wrong issuer", json!({"iss": "https://evil.example"})),
        (
            "unknown app",
            json!({"app_id": "app_01jxxxxxxxxxxxxxxxxxxxxxxx"}),
        ),
    ];
    for (name, patch) in variants {
        let mut c: gatehouse::crypto::jwt::ConnectClaims =
            serde_json::from_value(claims.clone()).unwrap();
        let mut v = serde_json::to_value(&c).unwrap();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        c = serde_json::from_value(v).unwrap();
        forged.push((name, s.state.signing().sign(&c).unwrap()));
    }
    for (name, token) in forged {
        let r = s.get("/v1/connect/session", &token).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name} must be refused: {}",
            r.text
        );
        assert_eq!(r.error_code(), "unauthorized");
    }
    // Within the 60 s leeway an expired token still passes; the good one too.
    let mut c: gatehouse::crypto::jwt::ConnectClaims =
        serde_json::from_value(claims.clone()).unwrap();
    c.exp = now - 30;
    c.jti = "leeway".into();
    assert_eq!(
        s.get("/v1/connect/session", &s.state.signing().sign(&c).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.get("/v1/connect/session", &good).await.status,
        StatusCode::OK
    );
}

/// A token revokes itself; revoking a user stops all their earlier tokens;
/// deleting the app stops its tokens.
async fn connect_token_revocation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (app_id, host) = deployed_app(&s, &sandbox, "Rev", "private", json!([])).await;
    let t1 = token_for(&s, &host, "u").await;
    assert_eq!(
        s.get("/v1/connect/session", &t1).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.delete("/v1/connect/session", &t1).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/v1/connect/session", &t1).await.status,
        StatusCode::UNAUTHORIZED
    );

    let t2 = token_for(&s, &host, "u").await;
    let t3 = token_for(&s, &host, "u").await;
    let other = token_for(&s, &host, "someone-else").await;
    assert_eq!(
        s.get("/v1/connect/session", &t2).await.status,
        StatusCode::OK
    );
    let r = s
        .post(
            &format!("/v1/end-users/u/connect-tokens/revoke?environment_id={sandbox}"),
            s.key(),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        s.get("/v1/connect/session", &t2).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/v1/connect/session", &t3).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/v1/connect/session", &other).await.status,
        StatusCode::OK
    );
    // Tokens issued after the revocation second work again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let t4 = token_for(&s, &host, "u").await;
    assert_eq!(
        s.get("/v1/connect/session", &t4).await.status,
        StatusCode::OK
    );

    assert_eq!(
        s.delete(&format!("/v1/apps/{app_id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/v1/connect/session", &t4).await.status,
        StatusCode::UNAUTHORIZED
    );
    let after = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": "u"})),
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::NOT_FOUND,
        "a deleted app's hostname answers nothing"
    );
}

/// Erasing a user deletes their connections and stops their tokens.
async fn erase_end_user(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let reqs = json!([{"name": "ai", "type": "connection", "spec": {"type": "connection", "data": {"type": OPENAI}}}]);
    let (_, host) = deployed_app(&s, &sandbox, "Erase", "private", reqs).await;
    let token = token_for(&s, &host, "gdpr@example.com").await;
    let req_id = s.get("/v1/connect/requirements", &token).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .post(
            &format!("/v1/connect/requirements/{req_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "k-1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = format!("/v1/end-users/gdpr%40example.com?environment_id={sandbox}");
    assert_eq!(s.get(&path, s.key()).await.status, StatusCode::OK);
    assert_eq!(
        s.delete(&path, s.key()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get(&path, s.key()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/v1/connect/session", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.delete(&path, s.key()).await.status, StatusCode::NOT_FOUND);
    let missing_env = s.get("/v1/end-users/someone", s.key()).await;
    assert_eq!(missing_env.status, StatusCode::BAD_REQUEST);
    assert!(missing_env.detail("environment_id").is_some());
}

/// The same user id in two environments shares nothing.
async fn environment_isolation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let b = s.boot().clone();
    let reqs = json!([{"name": "ai", "type": "connection", "spec": {"type": "connection", "data": {"type": OPENAI}}}]);
    let (sandbox_app, sandbox_host) =
        deployed_app(&s, &b.sandbox_id, "Iso", "private", reqs.clone()).await;
    let (_, live_host) = deployed_app(&s, &b.live_id, "Iso", "private", reqs).await;
    assert_ne!(sandbox_host, live_host);
    let st = token_for(&s, &sandbox_host, "same-user").await;
    let req_id = s.get("/v1/connect/requirements", &st).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        &format!("/v1/connect/requirements/{req_id}/credentials"),
        &st,
        json!({"type": OPENAI, "config": {"api_key": "sandbox-key"}}),
    )
    .await;
    let lt = token_for(&s, &live_host, "same-user").await;
    let live_status = s.get("/v1/connect/requirements/status", &lt).await;
    assert_eq!(live_status.body["data"][0]["status"], "pending");
    let sandbox_status = s.get("/v1/connect/requirements/status", &st).await;
    assert_eq!(sandbox_status.body["data"][0]["status"], "completed");
    let live_user = s
        .get(
            &format!("/v1/end-users/same-user?environment_id={}", b.live_id),
            s.key(),
        )
        .await;
    assert_eq!(live_user.body["data"]["connections"], json!([]));

    let (_, live_key) = s
        .create_key(s.key(), json!({"name": "live", "environment_id": b.live_id, "scopes": ["connections:reveal", "end_users:read"]}))
        .await;
    let reveal = s
        .get(
            &format!("/v1/apps/{sandbox_app}/end-users/same-user/credentials"),
            &live_key,
        )
        .await;
    assert_eq!(reveal.status, StatusCode::NOT_FOUND);
    let sandbox_user = s
        .get(
            &format!("/v1/end-users/same-user?environment_id={}", b.sandbox_id),
            &live_key,
        )
        .await;
    assert_eq!(sandbox_user.status, StatusCode::NOT_FOUND);
    // An environment-scoped key needs no environment_id.
    assert_eq!(
        s.get("/v1/end-users/same-user", &live_key).await.status,
        StatusCode::OK
    );
}

/// A connection keeps satisfying the same-named requirement after a
/// redeploy when the type matches, and not when it changes.
async fn redeploy_keeps_matching_connections(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let v1 = json!([{"name": "ai", "type": "connection", "spec": {"type": "connection", "data": {"type": OPENAI}}}]);
    let (app_id, host) = deployed_app(&s, &sandbox, "Redeploy", "private", v1.clone()).await;
    let token = token_for(&s, &host, "u").await;
    let req_id = s.get("/v1/connect/requirements", &token).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        &format!("/v1/connect/requirements/{req_id}/credentials"),
        &token,
        json!({"type": OPENAI, "config": {"api_key": "k"}}),
    )
    .await;
    let deploy = |reqs: Value| {
        let s = &s;
        let app_id = app_id.clone();
        async move {
            let v = s
                .post(
                    &format!("/v1/apps/{app_id}/versions"),
                    s.key(),
                    json!({"requirements": reqs}),
                )
                .await;
            let vid = v.body["data"]["id"].as_str().unwrap().to_string();
            s.post(
                &format!("/v1/apps/{app_id}/deployments"),
                s.key(),
                json!({"version_id": vid}),
            )
            .await;
        }
    };
    deploy(v1).await;
    let status = s
        .call_host(
            &host,
            Method::GET,
            "/v1/requirements/status?user_id=u",
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(status.body["status"], "complete");
    deploy(json!([{"name": "ai", "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.Anthropic"}}}])).await;
    let status = s
        .call_host(
            &host,
            Method::GET,
            "/v1/requirements/status?user_id=u",
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(status.body["status"], "incomplete");
    let bad = s
        .post(&format!("/v1/apps/{app_id}/versions"), s.key(), json!({"requirements": [{"name": "x", "type": "connection", "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}}]}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.detail("requirements.0.type"),
        Some("must equal spec.type")
    );
}

/// A verifier that shares no code with Gatehouse (RustCrypto `rsa`) checks
/// a minted token with nothing but the published JWKS.
async fn independent_verifier_with_jwks(backend: Backend) {
    use rsa::{
        pkcs1v15::{Signature, VerifyingKey},
        signature::Verifier,
        BigUint, RsaPublicKey,
    };
    let s = TestServer::start(backend).await;
    let (_, host) = deployed_app(
        &s,
        &s.boot().sandbox_id.clone(),
        "Verify",
        "public",
        json!([]),
    )
    .await;
    let token = mint(&s, &host, None, json!({"user_id": "v"})).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let kid = header_of(&token)["kid"].as_str().unwrap().to_string();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    assert_eq!(jwk["kty"], "RSA");
    let n = BigUint::from_bytes_be(&B64.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = BigUint::from_bytes_be(&B64.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::try_from(B64.decode(sig).unwrap().as_slice()).unwrap();
    key.verify(signed.as_bytes(), &sig)
        .expect("signature verifies with the JWKS key");
    let mut tampered = signed.to_string();
    tampered.push('x');
    assert!(key.verify(tampered.as_bytes(), &sig).is_err());
    assert_eq!(claims_of(&token)["user_id"], "v");
}

/// Submitted secrets are sealed: not in the database, nor in responses
/// other than reveal.
async fn secrets_sealed_at_rest(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let reqs = json!([{"name": "api", "type": "connection", "spec": {"type": "connection", "data": {"type": "dynamiq.connections.HttpApiKey"}}}]);
    let (_, host) = deployed_app(&s, &sandbox, "Seal", "private", reqs).await;
    let token = token_for(&s, &host, "u").await;
    let req_id = s.get("/v1/connect/requirements", &token).await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = "very-secret-api-key-9f8e7d";
    let r = s
        .post(&format!("/v1/connect/requirements/{req_id}/credentials"), &token,
              json!({"type": "dynamiq.connections.HttpApiKey", "config": {"url": "https://api.example.com", "api_key": secret}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let reqs = s.get("/v1/connect/requirements", &token).await;
    assert!(!reqs.text.contains(secret));
    let data = s.data.clone();
    s.stop().await;
    let dump = common::dump_database(&data).await;
    assert!(!dump.contains(secret), "the secret is sealed at rest");
    assert!(
        !dump.contains("api.example.com"),
        "the whole config is sealed"
    );
}

fn acao(r: &Reply) -> Option<&str> {
    r.headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

/// SPEC §11: `allowed_origins` and the success/error redirect URLs are
/// validated and carried by the token; preflights on connect-token routes
/// are answered for any origin without credentials; actual responses allow
/// only the token's origins; a refused token and the management routes
/// answer no CORS.
async fn browser_origins_and_cors(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (_, host) = deployed_app(&s, &sandbox, "Shop", "private", two_requirements()).await;

    for (body, field) in [
        (
            json!({"user_id": "u", "allowed_origins": ["ftp://shop.example.com"]}),
            "allowed_origins.0",
        ),
        (
            json!({"user_id": "u", "allowed_origins": ["https://shop.example.com/path"]}),
            "allowed_origins.0",
        ),
        (
            json!({"user_id": "u", "allowed_origins": ["http://shop.example.com"]}),
            "allowed_origins.0",
        ),
        (
            json!({"user_id": "u", "allowed_origins": (0..11).map(|i| format!("https://s{i}.example.com")).collect::<Vec<_>>()}),
            "allowed_origins",
        ),
        (
            json!({"user_id": "u", "redirect_url": "https://a.example.com/", "success_redirect_url": "https://a.example.com/"}),
            "success_redirect_url",
        ),
        (
            json!({"user_id": "u", "error_redirect_url": "javascript:alert(1)"}),
            "error_redirect_url",
        ),
    ] {
        let r = mint(&s, &host, Some(s.key()), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(r.detail(field).is_some(), "{body}: {}", r.text);
    }

    // Each origin and URL is bounded, and so is the token they make: one
    // that verification would refuse is never minted.
    let long_host = format!("https://{}.example.com", "a".repeat(300));
    let r = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u", "allowed_origins": [long_host]}),
    )
    .await;
    assert_eq!(
        r.detail("allowed_origins.0"),
        Some("must be at most 270 characters"),
        "{}",
        r.text
    );
    let long_url = format!("https://shop.example.com/{}", "p".repeat(2100));
    let r = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u", "redirect_url": long_url}),
    )
    .await;
    assert_eq!(
        r.detail("redirect_url"),
        Some("must be at most 2048 characters"),
        "{}",
        r.text
    );
    let label = "o".repeat(60);
    let wide: Vec<String> = (0..10)
        .map(|i| format!("https://{label}.{label}.{label}.{label}{i}.example.com"))
        .collect();
    let path = "p".repeat(2000);
    let r = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u".repeat(250), "allowed_origins": wide,
               "redirect_url": format!("https://shop.example.com/{path}"),
               "error_redirect_url": format!("https://shop.example.com/{path}")}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("the connect token would exceed 8192 bytes"),
        "{}",
        r.text
    );
    // Ten origins of a usual length fit, and the token verifies.
    let ten: Vec<String> = (0..10)
        .map(|i| format!("https://shop{i}.example.com"))
        .collect();
    let r = mint(
        &s,
        &host,
        Some(s.key()),
        json!({"user_id": "u", "allowed_origins": ten}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let session = s
        .get("/v1/connect/session", r.body["token"].as_str().unwrap())
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);

    let minted = mint(
        &s,
        &host,
        Some(s.key()),
        json!({
            "user_id": "shopper",
            "allowed_origins": ["https://shop.example.com", "http://app.localhost:3000", "https://shop.example.com"],
            "success_redirect_url": "https://shop.example.com/done",
            "error_redirect_url": "https://shop.example.com/failed"
        }),
    )
    .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    let session = s.get("/v1/connect/session", &token).await;
    assert_eq!(
        session.body["data"]["allowed_origins"],
        json!(["https://shop.example.com", "http://app.localhost:3000"])
    );
    assert_eq!(
        session.body["data"]["redirect_url"],
        "https://shop.example.com/done"
    );
    assert_eq!(
        session.body["data"]["success_redirect_url"],
        "https://shop.example.com/done"
    );
    assert_eq!(
        session.body["data"]["error_redirect_url"],
        "https://shop.example.com/failed"
    );

    let bearer = format!("Bearer {token}");
    // A preflight is answered for any origin, and grants no credentials.
    for origin in ["https://shop.example.com", "https://evil.example.com"] {
        let pre = s
            .raw(
                Method::OPTIONS,
                "/v1/connect/requirements",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
                Vec::new(),
            )
            .await;
        assert_eq!(pre.status, StatusCode::NO_CONTENT, "{}", pre.text);
        assert_eq!(acao(&pre), Some(origin));
        assert!(pre.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization"));
        assert!(pre
            .headers
            .get("access-control-allow-credentials")
            .is_none());
    }
    // The actual request: only the token's origins are allowed to read it.
    for (origin, allowed) in [
        ("https://shop.example.com", true),
        ("http://app.localhost:3000", true),
        ("https://evil.example.com", false),
        ("https://shop.example.com.evil.example", false),
    ] {
        let r = s
            .raw(
                Method::GET,
                "/v1/connect/requirements",
                &[("origin", origin), ("authorization", &bearer)],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(acao(&r), allowed.then_some(origin), "{origin}");
        assert!(r.headers.get("access-control-allow-credentials").is_none());
        assert!(r
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("origin")));
    }
    // A refused token, and a token minted without origins: no CORS.
    let refused = s
        .raw(
            Method::GET,
            "/v1/connect/requirements",
            &[
                ("origin", "https://shop.example.com"),
                ("authorization", "Bearer not.a.token"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(acao(&refused), None);
    let plain = token_for(&s, &host, "shopper").await;
    let r = s
        .raw(
            Method::GET,
            "/v1/connect/session",
            &[
                ("origin", "https://shop.example.com"),
                ("authorization", &format!("Bearer {plain}")),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(acao(&r), None);
    // Management routes never answer CORS, preflight or not.
    let key = format!("Bearer {}", s.key());
    let me = s
        .raw(
            Method::GET,
            "/v1/tokens/me",
            &[
                ("origin", "https://shop.example.com"),
                ("authorization", &key),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(acao(&me), None);
    let pre = s
        .raw(
            Method::OPTIONS,
            "/v1/tokens/me",
            &[
                ("origin", "https://shop.example.com"),
                ("access-control-request-method", "GET"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(acao(&pre), None);
}
