//! `/v1/connect/requirements…`: the app's requirements and the end user's
//! status for each, submitting credentials, starting an OAuth2 or
//! action-connector link, and disconnecting (SPEC §6). Connect token only.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_core::{
    requirement::{status_word, Requirement},
    time::format_ms,
};
use gatehouse_store::connect::ConnectionRow;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult},
    http::{
        auth::ConnectAuth,
        extract::ApiJson,
        openapi::ErrorEnvelope,
        response::{json_text, ok, Data},
    },
    service::{
        apps::{self, Parsed},
        audit::Origin,
        connect::{self, SubmitCredentials},
        oauth2::flow::{self, Route},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(requirements))
        .routes(routes!(requirements_status))
        .routes(routes!(submit_credentials))
        .routes(routes!(oauth2_authorize))
        .routes(routes!(action_connector_authorize))
        .routes(routes!(disconnect))
}

/// A requirement with the end user's status for it (the documented shape:
/// the handler writes it from [`Parsed::rendered`] and [`UserFields`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectRequirementView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub requirement: Requirement,
    /// `completed` or `pending`.
    pub status: &'static str,
    /// When it was satisfied.
    pub connected_at: Option<String>,
    /// For connection requirements: the connection type (title, `auth`,
    /// JSON Schema of `config`, which fields are secret), to build a form.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<crate::catalog::PublicView>,
    /// The account an OAuth2 connection or linked account signed in as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountLabel>,
    /// The state of what the user holds for it, when they hold something:
    /// `active`, or `expired` (connect again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<String>,
}

/// `{label}` of a signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLabel {
    pub label: Option<String>,
}

/// `{id, name, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementStatusView {
    pub id: String,
    pub name: String,
    pub status: &'static str,
}

/// The end user's own fields of a requirement in
/// [`ConnectRequirementView`], which follow the requirement as
/// [`Parsed::rendered`] has it.
#[derive(Serialize)]
struct UserFields<'a> {
    status: &'static str,
    connected_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_status: Option<&'a str>,
}

impl<'a> UserFields<'a> {
    fn of(requirement: &Requirement, held: Option<&'a ConnectionRow>) -> Self {
        let satisfied = held.filter(|h| requirement.satisfied_by(*h));
        Self {
            status: status_word(satisfied.is_some()),
            connected_at: satisfied.map(|h| format_ms(h.updated_at)),
            account: satisfied
                .filter(|h| h.provider_ref.is_some())
                .map(|h| AccountLabel {
                    label: h.label.clone(),
                }),
            connection_status: held.map(|h| h.status.as_str()),
        }
    }
}

/// `{"data": [ConnectRequirementView…]}` from the deployed version's
/// rendered requirements and what the user holds of this app (matched by
/// requirement name).
fn requirements_body(
    parsed: &Parsed,
    held: &[ConnectionRow],
    app_id: &str,
) -> serde_json::Result<String> {
    let mut body = String::with_capacity(
        16 + parsed
            .rendered()
            .iter()
            .map(|r| r.len() + 128)
            .sum::<usize>(),
    );
    body.push_str(r#"{"data":["#);
    for (i, (requirement, rendered)) in parsed
        .requirements()
        .iter()
        .zip(parsed.rendered())
        .enumerate()
    {
        let held = held
            .iter()
            .find(|h| h.app_id == app_id && h.requirement_name == requirement.name);
        if i > 0 {
            body.push(',');
        }
        body.push_str(rendered);
        body.push(',');
        match held {
            // What UserFields writes when nothing is held.
            None => body.push_str(r#""status":"pending","connected_at":null}"#),
            Some(_) => {
                // The fields' object without its opening brace.
                let fields = serde_json::to_string(&UserFields::of(requirement, held))?;
                body.push_str(&fields[1..]);
            }
        }
    }
    body.push_str("]}");
    Ok(body)
}

/// The app's requirements and the end user's status for each. The
/// requirements (with their connection types' schemas) are rendered once
/// per deployed version, and only the user's fields per request.
#[utoipa::path(get, path = "/v1/connect/requirements", tag = "connect",
    responses((status = 200, body = Data<Vec<ConnectRequirementView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn requirements(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Response> {
    let parsed = apps::deployed(&svc, &c.app).await?;
    let held = if parsed.requirements().is_empty() {
        Arc::default()
    } else {
        svc.store()
            .connections_of_user(&c.app.environment_id, &c.claims.user_id)
            .await?
    };
    let body = requirements_body(&parsed, &held, &c.app.id)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("requirements body: {e}")))?;
    Ok(json_text(body))
}

/// Just the status of each requirement.
#[utoipa::path(get, path = "/v1/connect/requirements/status", tag = "connect",
    responses((status = 200, body = Data<Vec<RequirementStatusView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn requirements_status(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Data<Vec<RequirementStatusView>>> {
    let states = connect::requirement_states(&svc, &c.app, &c.claims.user_id).await?;
    Ok(ok(states
        .iter()
        .map(|s| RequirementStatusView {
            id: s.requirement.id.clone(),
            name: s.requirement.name.clone(),
            status: s.status_word(),
        })
        .collect()))
}

/// Submit credentials for a connection requirement; replaces any previous
/// connection for it. Answers `{"message": "created"}`.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/credentials", tag = "connect", params(("id" = String, Path)),
    request_body = SubmitCredentials,
    responses((status = 201, description = "`{\"message\": \"created\"}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn submit_credentials(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SubmitCredentials>,
) -> ApiResult<Response> {
    connect::submit_credentials(&svc, &c, &origin, &id, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"message": "created"}))).into_response())
}

/// Start an OAuth2 connection: the provider's authorize URL, with a
/// single-use `state` (ten minutes) and a PKCE S256 challenge. Needs an
/// OAuth2 provider for the connection type in this environment.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/oauth2/authorize", tag = "connect", params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn oauth2_authorize(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Data<Value>> {
    let url = flow::authorize(&svc, &c, &id, Route::OAuth2).await?;
    Ok(ok(json!({ "url": url })))
}

/// Start linking an action-connector account: as OAuth2, with the
/// provider configured for the connector's app slug.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/action-connector/authorize", tag = "connect",
    params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn action_connector_authorize(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Data<Value>> {
    let url = flow::authorize(&svc, &c, &id, Route::ActionConnector).await?;
    Ok(ok(json!({ "url": url })))
}

/// The end user disconnects a requirement: 204, also when nothing was connected.
#[utoipa::path(delete, path = "/v1/connect/requirements/{id}/connection", tag = "connect", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn disconnect(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    connect::disconnect(&svc, &c, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gatehouse_core::{
        connection::{ConnectionKind, ConnectionStatus},
        requirement::parse_requirements,
    };

    use super::*;
    use crate::catalog::Catalog;

    fn row(app_id: &str, name: &str, kind: &str, status: ConnectionStatus) -> ConnectionRow {
        ConnectionRow {
            id: "con_1".into(),
            kind: ConnectionKind::Connection,
            environment_id: "env_1".into(),
            app_id: app_id.into(),
            user_id: "u".into(),
            requirement_name: name.into(),
            r#type: kind.into(),
            status,
            label: None,
            sealed_config: None,
            master_key_id: None,
            created_at: 1_000,
            updated_at: 1_700_000_000_000,
            provider_ref: None,
            access_expires_at: None,
            has_refresh_token: false,
            next_refresh_at: None,
            refresh_failures: 0,
            last_error: None,
        }
    }

    /// The body written from the rendered parts is the documented
    /// [`ConnectRequirementView`] list, as serde writes it, for a held
    /// active connection, an expired one, another app's, and none.
    #[test]
    fn spliced_body_is_the_documented_view() {
        let catalog = Catalog::with_additions(Vec::new()).unwrap();
        let requirements = parse_requirements(&json!([
            {"name": "openai", "type": "connection",
             "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}},
            {"name": "api", "type": "connection", "title": "An \"API\" key",
             "spec": {"type": "connection", "data": {"type": "dynamiq.connections.HttpApiKey"}}},
            {"name": "mail", "type": "pipedream_account",
             "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}}
        ]), |t| catalog.get(t).map(|ct| ct.title().to_string()))
        .unwrap();
        let stored = serde_json::to_string(&requirements).unwrap();
        let parsed = Parsed::new(requirements.clone(), stored.len(), &catalog).unwrap();
        let held_sets = [
            vec![],
            vec![
                row(
                    "app_1",
                    "openai",
                    "dynamiq.connections.OpenAI",
                    ConnectionStatus::Active,
                ),
                row(
                    "app_1",
                    "api",
                    "dynamiq.connections.HttpApiKey",
                    ConnectionStatus::Expired,
                ),
                row("app_2", "mail", "gmail", ConnectionStatus::Active),
            ],
        ];
        for held in held_sets {
            let body: Value =
                serde_json::from_str(&requirements_body(&parsed, &held, "app_1").unwrap()).unwrap();
            let expected: Vec<ConnectRequirementView> = requirements
                .iter()
                .map(|r| {
                    let mine = held
                        .iter()
                        .find(|h| h.app_id == "app_1" && h.requirement_name == r.name);
                    let fields = UserFields::of(r, mine);
                    ConnectRequirementView {
                        requirement: r.clone(),
                        status: fields.status,
                        connected_at: fields.connected_at,
                        connection_type: r
                            .connection_type()
                            .and_then(|t| catalog.get(t))
                            .map(|t| t.public_view()),
                        account: fields.account,
                        connection_status: fields.connection_status.map(str::to_string),
                    }
                })
                .collect();
            assert_eq!(body, json!({ "data": expected }));
        }
        let first = serde_json::from_str::<Value>(
            &requirements_body(&parsed, &held_sets_active(), "app_1").unwrap(),
        )
        .unwrap();
        assert_eq!(first["data"][0]["status"], "completed");
        assert_eq!(first["data"][0]["connection_status"], "active");
        assert_eq!(first["data"][1]["status"], "pending");
        assert_eq!(first["data"][1]["title"], "An \"API\" key");
        assert!(first["data"][2].get("connection_status").is_none());
    }

    fn held_sets_active() -> Vec<ConnectionRow> {
        vec![row(
            "app_1",
            "openai",
            "dynamiq.connections.OpenAI",
            ConnectionStatus::Active,
        )]
    }
}
