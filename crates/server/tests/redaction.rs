//! Every value that carries a plaintext secret prints without it: request
//! bodies, the one-time responses, and the service results behind them.
#![allow(clippy::unwrap_used)]

use gatehouse::{
    http::{
        api::{connect::tokens::MintedToken, end_users::RevealedCredential},
        views::{CreatedBy, CredentialView, MemberView, Sensitive},
    },
    service::{
        connect::SubmitCredentials, connect_tokens::Minted, end_users::Revealed, members::NewMember,
    },
};
use secrecy::SecretString;
use serde_json::json;

const SECRET: &str = "s3cr3t-plaintext-value";

fn assert_redacted(what: &str, debug: String) {
    assert!(!debug.contains(SECRET), "{what} leaks: {debug}");
    assert!(debug.contains("REDACTED"), "{what} says nothing: {debug}");
}

/// Request bodies with passwords or credentials.
#[test]
fn request_bodies_redact() {
    let member: NewMember = serde_json::from_value(json!({
        "email": "dev@example.com", "role": "developer", "password": SECRET,
    }))
    .unwrap();
    assert_redacted("NewMember", format!("{member:?}"));
    let submit: SubmitCredentials = serde_json::from_value(json!({
        "type": "dynamiq.connections.OpenAI", "config": {"api_key": SECRET},
    }))
    .unwrap();
    assert_redacted("SubmitCredentials", format!("{submit:?}"));
}

/// The one-time responses serialize the secret but never print it.
#[test]
fn one_time_responses_redact() {
    let view = CredentialView {
        id: "key_1".into(),
        name: "ci".into(),
        organization_id: "org_1".into(),
        project_id: None,
        environment_id: None,
        scopes: vec!["keys:read".into()],
        checksum: "abc123".into(),
        preview: "dyn_AbC…abc123".into(),
        created_by: CreatedBy {
            id: "usr_1".into(),
            email: "owner@example.com".into(),
            via_key_id: None,
        },
        created_at: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        active: true,
        token: Some(Sensitive(SECRET.to_string())),
    };
    assert_redacted("CredentialView", format!("{view:?}"));
    assert!(serde_json::to_string(&view).unwrap().contains(SECRET));

    let member = MemberView {
        id: "usr_2".into(),
        email: "dev@example.com".into(),
        role: "developer".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        password: Some(Sensitive(SECRET.to_string())),
    };
    assert_redacted("MemberView", format!("{member:?}"));

    let minted = MintedToken {
        token: Sensitive(SECRET.to_string()),
        url: Sensitive(format!("https://gh.example.com/connect?token={SECRET}")),
        expires_at: "2026-01-01T00:00:00Z".into(),
    };
    assert_redacted("MintedToken", format!("{minted:?}"));

    let revealed = RevealedCredential {
        requirement_name: "openai".into(),
        kind: "dynamiq.connections.OpenAI".into(),
        config: Sensitive(json!({"api_key": SECRET})),
    };
    assert_redacted("RevealedCredential", format!("{revealed:?}"));
}

/// The service results behind those responses.
#[test]
fn service_results_redact() {
    let minted = Minted {
        token: SecretString::from(SECRET),
        url: SecretString::from(format!("https://gh.example.com/connect?token={SECRET}")),
        expires_at: 1,
    };
    assert_redacted("Minted", format!("{minted:?}"));
    let revealed = Revealed {
        requirement_name: "openai".into(),
        kind: "dynamiq.connections.OpenAI".into(),
        config: json!({"api_key": SECRET}),
    };
    assert_redacted("Revealed", format!("{revealed:?}"));
}
