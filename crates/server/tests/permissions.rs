//! Scopes, reach and roles (SPEC §3–§4): a credential never does more than
//! it holds, and never sees outside its organization, project or
//! environment (404, not 403).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    scopes_gate_routes,
    keys_never_exceed_their_creator,
    environment_key_is_confined,
    project_key_is_confined,
    roles_are_enforced,
    demotion_narrows_existing_pats,
    removing_a_member_revokes_their_pats,
    projects_and_environments,
    members_cannot_be_used_to_escalate,
);

/// A key holds only its scopes: reads with `:read`, writes need `:write`.
async fn scopes_gate_routes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, reader) = s
        .create_key(
            s.key(),
            json!({"name": "reader", "scopes": ["keys:read", "projects:read"]}),
        )
        .await;
    assert_eq!(
        s.get("/v1/access-keys", &reader).await.status,
        StatusCode::OK
    );
    assert_eq!(s.get("/v1/projects", &reader).await.status, StatusCode::OK);
    let denied = s
        .post("/v1/access-keys", &reader, json!({"name": "x"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.detail("scope"),
        Some("requires the keys:write scope")
    );
    assert_eq!(
        s.get("/v1/audit-events", &reader).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/v1/projects", &reader, json!({"name": "p"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Introspection needs no scope.
    assert_eq!(s.get("/v1/tokens/me", &reader).await.status, StatusCode::OK);

    // Omitted scopes: everything the creator holds except connections:reveal.
    let (_, default) = s.create_key(s.key(), json!({"name": "default"})).await;
    let me = s.get("/v1/tokens/me", &default).await;
    let scopes = me.body["data"]["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 14);
    assert!(!scopes.contains(&json!("connections:reveal")));
}

/// A key cannot mint a key with a scope it lacks, or with a wider reach.
async fn keys_never_exceed_their_creator(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, limited) = s
        .create_key(
            s.key(),
            json!({"name": "limited", "scopes": ["keys:read", "keys:write"]}),
        )
        .await;
    let r = s
        .post(
            "/v1/access-keys",
            &limited,
            json!({"name": "wider", "scopes": ["keys:write", "apps:write"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.detail("scopes").unwrap().contains("apps:write"));
    // Omitted scopes are the creator's own: exactly keys:read and keys:write.
    let (_, child) = s.create_key(&limited, json!({"name": "child"})).await;
    let me = s.get("/v1/tokens/me", &child).await;
    assert_eq!(
        me.body["data"]["scopes"],
        json!(["keys:read", "keys:write"])
    );
    // created_by is the user behind the creating key, plus via_key_id.
    assert_eq!(
        me.body["data"]["created_by"]["email"],
        s.boot().owner_email.as_str()
    );

    let (_, env_key) = s
        .create_key(
            s.key(),
            json!({"name": "env", "environment_id": s.boot().sandbox_id, "scopes": ["keys:write"]}),
        )
        .await;
    let wider = s
        .post(
            "/v1/access-keys",
            &env_key,
            json!({"name": "org-wide", "project_id": s.boot().project_id}),
        )
        .await;
    assert_eq!(wider.status, StatusCode::FORBIDDEN, "{}", wider.text);
    // Omitted reach is the creator's own reach.
    let (_, same) = s.create_key(&env_key, json!({"name": "same reach"})).await;
    let me = s.get("/v1/tokens/me", &same).await;
    assert_eq!(
        me.body["data"]["environment_id"],
        s.boot().sandbox_id.as_str()
    );
    assert_eq!(me.body["data"]["project_id"], s.boot().project_id.as_str());
}

/// An environment-scoped key sees its environment and nothing beside it.
async fn environment_key_is_confined(backend: Backend) {
    let s = TestServer::start(backend).await;
    let b = s.boot().clone();
    let (_, live_key) = s
        .create_key(
            s.key(),
            json!({"name": "live only", "environment_id": b.live_id}),
        )
        .await;
    let (sandbox_key_id, _) = s
        .create_key(
            s.key(),
            json!({"name": "sandbox", "environment_id": b.sandbox_id}),
        )
        .await;

    assert_eq!(
        s.get(&format!("/v1/environments/{}", b.live_id), &live_key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/v1/environments/{}", b.sandbox_id), &live_key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/v1/access-keys/{sandbox_key_id}"), &live_key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/v1/access-keys/{}", b.key_id), &live_key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let revoke_other = s
        .delete(&format!("/v1/access-keys/{sandbox_key_id}"), &live_key)
        .await;
    assert_eq!(revoke_other.status, StatusCode::NOT_FOUND);
    let naming_other = s
        .post(
            "/v1/access-keys",
            &live_key,
            json!({"name": "x", "environment_id": b.sandbox_id}),
        )
        .await;
    assert_eq!(naming_other.status, StatusCode::NOT_FOUND);
    // Its key list holds only keys of its environment.
    let list = s.get("/v1/access-keys", &live_key).await;
    for k in list.body["data"].as_array().unwrap() {
        assert_eq!(k["environment_id"], b.live_id.as_str());
    }
    let filtered = s
        .get(
            &format!("/v1/access-keys?environment_id={}", b.sandbox_id),
            &live_key,
        )
        .await;
    assert_eq!(filtered.status, StatusCode::NOT_FOUND);
    // The project shows only the visible environment.
    let project = s
        .get(&format!("/v1/projects/{}", b.project_id), &live_key)
        .await;
    assert_eq!(
        project.body["data"]["environments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A project-scoped key cannot see another project, nor create projects.
async fn project_key_is_confined(backend: Backend) {
    let s = TestServer::start(backend).await;
    let other = s
        .post("/v1/projects", s.key(), json!({"name": "Other"}))
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let other_id = other.body["data"]["id"].as_str().unwrap().to_string();
    let other_env = other.body["data"]["environments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, pkey) = s
        .create_key(
            s.key(),
            json!({"name": "project", "project_id": s.boot().project_id}),
        )
        .await;
    assert_eq!(
        s.get(&format!("/v1/projects/{other_id}"), &pkey)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/v1/environments/{other_env}"), &pkey)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let listed = s.get("/v1/projects", &pkey).await;
    assert_eq!(listed.body["pagination"]["total_count"], 1);
    assert_eq!(listed.body["data"][0]["id"], s.boot().project_id.as_str());
    let create = s.post("/v1/projects", &pkey, json!({"name": "Nope"})).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    let members = s
        .post(
            "/v1/organization/members",
            &pkey,
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(members.status, StatusCode::FORBIDDEN);
}

/// Viewers only read; developers lack projects:write, reveal and member
/// management; admins manage members but cannot make owners.
async fn roles_are_enforced(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, viewer) = s.member_with_pat("viewer@example.com", "viewer").await;
    let (_, dev) = s.member_with_pat("dev@example.com", "developer").await;
    let (_, admin) = s.member_with_pat("admin@example.com", "admin").await;

    assert_eq!(s.get("/v1/projects", &viewer).await.status, StatusCode::OK);
    assert_eq!(
        s.get("/v1/access-keys", &viewer).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.post("/v1/access-keys", &viewer, json!({"name": "x"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        s.post("/v1/projects", &dev, json!({"name": "x"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let dev_key = s
        .post(
            "/v1/access-keys",
            &dev,
            json!({"name": "dev key", "scopes": ["connections:reveal"]}),
        )
        .await;
    assert_eq!(dev_key.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.post("/v1/access-keys", &dev, json!({"name": "dev key"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let dev_member = s
        .post(
            "/v1/organization/members",
            &dev,
            json!({"email": "y@example.com"}),
        )
        .await;
    assert_eq!(dev_member.status, StatusCode::FORBIDDEN);

    let added = s
        .post(
            "/v1/organization/members",
            &admin,
            json!({"email": "new@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["data"]["password"].as_str().unwrap().len(), 24);
    let owner = s
        .post(
            "/v1/organization/members",
            &admin,
            json!({"email": "boss@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(owner.status, StatusCode::FORBIDDEN);
    let demote_owner = s
        .patch(
            &format!("/v1/organization/members/{}", s.boot().owner_id),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(demote_owner.status, StatusCode::FORBIDDEN);
    // The last owner can be neither demoted nor removed, even by an owner.
    let pat = s.boot().pat.clone();
    let last = s
        .patch(
            &format!("/v1/organization/members/{}", s.boot().owner_id),
            &pat,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);
    let list = s.get("/v1/organization/members", &viewer).await;
    assert_eq!(list.body["pagination"]["total_count"], 5);
    assert!(!list.text.contains("password"));
}

/// Member management is for a user's own credential holding every scope of
/// the role it grants: an access key with `projects:write` cannot make an
/// owner (and through them a PAT with every scope), nor can a narrow PAT
/// of an owner; a full PAT of the owner can.
async fn members_cannot_be_used_to_escalate(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = s
        .create_key(
            s.key(),
            json!({"name": "projects only", "scopes": ["projects:read", "projects:write"]}),
        )
        .await;
    let owner = json!({"email": "mallory@example.com", "role": "owner", "password": "correct horse battery"});
    let by_key = s
        .post("/v1/organization/members", &key, owner.clone())
        .await;
    assert_eq!(by_key.status, StatusCode::FORBIDDEN, "{}", by_key.text);
    assert!(by_key.detail("credential").is_some(), "{}", by_key.text);
    // Not even the bootstrap key, which holds every scope.
    let by_full_key = s
        .post("/v1/organization/members", s.key(), owner.clone())
        .await;
    assert_eq!(by_full_key.status, StatusCode::FORBIDDEN);

    let narrow = s
        .post(
            "/v1/personal-access-tokens",
            &s.boot().pat,
            json!({"name": "narrow", "scopes": ["projects:read", "projects:write"]}),
        )
        .await;
    assert_eq!(narrow.status, StatusCode::CREATED, "{}", narrow.text);
    let narrow = narrow.body["data"]["token"].as_str().unwrap().to_string();
    let by_narrow = s
        .post("/v1/organization/members", &narrow, owner.clone())
        .await;
    assert_eq!(
        by_narrow.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_narrow.text
    );
    assert!(
        by_narrow.detail("role").unwrap().contains("keys:write"),
        "{}",
        by_narrow.text
    );

    let (dev_id, _) = s.member_with_pat("dev@example.com", "developer").await;
    for token in [&key, &narrow] {
        let promote = s
            .patch(
                &format!("/v1/organization/members/{dev_id}"),
                token,
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(promote.status, StatusCode::FORBIDDEN, "{}", promote.text);
        let remove = s
            .delete(&format!("/v1/organization/members/{dev_id}"), token)
            .await;
        assert_eq!(remove.status, StatusCode::FORBIDDEN, "{}", remove.text);
    }
    let members = s.get("/v1/organization/members", s.key()).await;
    assert_eq!(
        members.status,
        StatusCode::OK,
        "keys may still list members"
    );
    assert_eq!(members.body["pagination"]["total_count"], 2);

    let by_owner = s
        .post("/v1/organization/members", &s.boot().pat, owner)
        .await;
    assert_eq!(by_owner.status, StatusCode::CREATED, "{}", by_owner.text);
}

/// A PAT acts with its owner's role as it is now: demoting the owner of a
/// PAT narrows what the PAT can do on the next request.
async fn demotion_narrows_existing_pats(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (user, admin_pat) = s.member_with_pat("ada@example.com", "admin").await;
    assert_eq!(
        s.post("/v1/projects", &admin_pat, json!({"name": "A"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = s
        .patch(
            &format!("/v1/organization/members/{user}"),
            &s.boot().pat,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["role"], "viewer");
    assert_eq!(
        s.post("/v1/projects", &admin_pat, json!({"name": "B"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/projects", &admin_pat).await.status,
        StatusCode::OK
    );
}

/// Removing a member revokes their PATs at once; their access keys stay.
async fn removing_a_member_revokes_their_pats(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (user, pat) = s.member_with_pat("leaver@example.com", "developer").await;
    let (_, their_key) = s.create_key(&pat, json!({"name": "team key"})).await;
    assert_eq!(s.get("/v1/tokens/me", &pat).await.status, StatusCode::OK);
    let r = s
        .delete(&format!("/v1/organization/members/{user}"), &s.boot().pat)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/v1/tokens/me", &pat).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/v1/tokens/me", &their_key).await.status,
        StatusCode::OK
    );
    // Their email can be used again.
    let again = s
        .post(
            "/v1/organization/members",
            &s.boot().pat,
            json!({"email": "leaver@example.com"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
}

/// Projects come with sandbox and live; environments are added, renamed
/// projects keep them, and deleting a project revokes keys scoped to it.
async fn projects_and_environments(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s
        .post("/v1/projects", s.key(), json!({"name": "Payments"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("prj_"));
    let names: Vec<&str> = r.body["data"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["sandbox", "live"]);

    let env = s
        .post(
            &format!("/v1/projects/{id}/environments"),
            s.key(),
            json!({"name": "staging"}),
        )
        .await;
    assert_eq!(env.status, StatusCode::CREATED);
    assert!(env.body["data"]["id"].as_str().unwrap().starts_with("env_"));
    let bad = s
        .post(
            &format!("/v1/projects/{id}/environments"),
            s.key(),
            json!({"name": "Not A Slug"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.detail("name").is_some());
    let envs = s
        .get(&format!("/v1/projects/{id}/environments"), s.key())
        .await;
    assert_eq!(envs.body["pagination"]["total_count"], 3);

    let renamed = s
        .patch(
            &format!("/v1/projects/{id}"),
            s.key(),
            json!({"name": "Billing"}),
        )
        .await;
    assert_eq!(renamed.body["data"]["name"], "Billing");
    assert_eq!(
        renamed.body["data"]["environments"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let (_, pkey) = s
        .create_key(s.key(), json!({"name": "billing", "project_id": id}))
        .await;
    assert_eq!(s.get("/v1/tokens/me", &pkey).await.status, StatusCode::OK);
    assert_eq!(
        s.delete(&format!("/v1/projects/{id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v1/projects/{id}"), s.key()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/v1/tokens/me", &pkey).await.status,
        StatusCode::UNAUTHORIZED
    );
    let org = s.get("/v1/organization", s.key()).await;
    assert_eq!(org.body["data"]["id"], s.boot().organization_id.as_str());
}
