//! The authorization code flow (SPEC §6): `…/oauth2/authorize` and
//! `…/action-connector/authorize` record a pending flow and answer the
//! provider's authorize URL (with a random, single-use `state` and a PKCE
//! S256 challenge); the callback consumes the state atomically, checks the
//! issuer (RFC 9207), exchanges the code with the verifier, reads the
//! account's identity, and stores the tokens sealed — replacing what the
//! user had for the requirement only now that it worked.

use gatehouse_core::{
    new_id,
    oauth2::{account_label, next_refresh_at, CallbackProblem, ProviderTarget, FLOW_TTL_MS},
    requirement::{Requirement, RequirementType},
    time::now_ms,
    ConnectionKind, ConnectionStatus, IdKind,
};
use gatehouse_store::{
    connect::{ConnectionRow, Replace},
    oauth::{Consumed, FlowRow},
};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope};
use secrecy::ExposeSecret;

use super::{
    client::{oauth_client, redirect_uri},
    providers,
    tokens::TokenSet,
};
use crate::{
    catalog::AuthKind,
    crypto::tokens::{random_token, sha256},
    error::{ApiError, ApiResult},
    service::{
        apps::deployed_requirements,
        audit::{self, Actor, Origin},
        principal::{app_reach, ConnectPrincipal},
        webhooks::events,
        Services,
    },
};

/// Which authorize route was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `…/oauth2/authorize`: an OAuth2 connection type.
    OAuth2,
    /// `…/action-connector/authorize`: an action-connector account.
    ActionConnector,
}

/// The callback's query: `code` and `state`, or `error` and `state`; `iss`
/// when the provider sends it (RFC 9207).
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

/// A callback that worked: the requirement it satisfied.
#[derive(Debug, Clone)]
pub struct Linked {
    pub requirement_id: String,
    pub label: Option<String>,
}

/// A callback that did not: why, and the requirement when it is known.
#[derive(Debug, Clone)]
pub struct Failed {
    pub problem: CallbackProblem,
    pub requirement_id: Option<String>,
}

/// The requirement `id` of the deployed version, and what it needs.
async fn requirement_target(
    svc: &Services,
    c: &ConnectPrincipal,
    id: &str,
    route: Route,
) -> ApiResult<(Requirement, ProviderTarget)> {
    let requirement = deployed_requirements(svc, &c.app)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)?;
    let target = match (route, requirement.kind) {
        (Route::OAuth2, RequirementType::Connection) => {
            let ty = requirement
                .connection_type()
                .unwrap_or_default()
                .to_string();
            if svc
                .catalog()
                .get(&ty)
                .is_none_or(|t| t.auth() != AuthKind::OAuth2)
            {
                return Err(ApiError::field(
                    "requirement",
                    format!("{ty} takes credentials: use credentials"),
                ));
            }
            ProviderTarget::ConnectionType(ty)
        }
        (Route::OAuth2, RequirementType::ActionConnectorAccount) => {
            return Err(ApiError::field(
                "requirement",
                "is fulfilled by linking an account: use action-connector/authorize",
            ))
        }
        (Route::ActionConnector, RequirementType::ActionConnectorAccount) => {
            ProviderTarget::AppSlug(requirement.app_slug().unwrap_or_default().to_string())
        }
        (Route::ActionConnector, RequirementType::Connection) => {
            return Err(ApiError::field(
                "requirement",
                "is a connection: use credentials or oauth2/authorize",
            ))
        }
    };
    Ok((requirement, target))
}

/// Starts a flow: records it and returns the provider's authorize URL.
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn authorize(
    svc: &Services,
    c: &ConnectPrincipal,
    id: &str,
    route: Route,
) -> ApiResult<String> {
    let (requirement, target) = requirement_target(svc, c, id, route).await?;
    if !c.may_replace() && crate::service::connect::has_active(svc, c, &requirement.name).await? {
        return Err(crate::service::principal::ConnectPrincipal::add_only_refusal());
    }
    let provider = providers::for_target(svc, &c.app.environment_id, &target)
        .await?
        .ok_or_else(|| {
            ApiError::field(
                "requirement",
                format!(
                    "no OAuth2 provider is configured for {} in this environment",
                    target.as_str()
                ),
            )
        })?;
    let endpoints = svc
        .oauth2_http()
        .endpoints(&provider.settings)
        .await
        .map_err(|e| {
            ApiError::field(
                "requirement",
                format!("the OAuth2 provider cannot be used: {e}"),
            )
        })?;
    let client = oauth_client(&provider.settings, &endpoints, &redirect_uri(svc))
        .map_err(|e| ApiError::field("requirement", e.to_string()))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = random_token();
    let flow_id = new_id(IdKind::OAuth2Flow);
    let (master_key_id, verifier_sealed) = svc
        .keyring()
        .seal(verifier.secret().as_bytes(), flow_id.as_bytes())?;
    let now = now_ms();
    let flow = FlowRow {
        id: flow_id,
        state_hash: sha256(&state).to_vec(),
        environment_id: c.app.environment_id.clone(),
        app_id: c.app.id.clone(),
        user_id: c.claims.user_id.clone(),
        requirement_id: requirement.id.clone(),
        requirement_name: requirement.name.clone(),
        kind: match route {
            Route::OAuth2 => ConnectionKind::Connection,
            Route::ActionConnector => ConnectionKind::Account,
        }
        .to_string(),
        target: target.as_str().to_string(),
        provider_ref: provider.reference(),
        verifier_sealed,
        master_key_id,
        created_at: now,
        expires_at: now + FLOW_TTL_MS,
        consumed_at: None,
        add_only: !c.may_replace(),
    };
    svc.store().create_flow(&flow).await?;
    let mut request = client
        .authorize_url(|| CsrfToken::new(state))
        .set_pkce_challenge(challenge);
    for scope in &provider.settings.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    for (k, v) in &provider.settings.extra_authorize_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, _) = request.url();
    metrics::counter!("gatehouse_oauth2_flows_started_total").increment(1);
    Ok(url.to_string())
}

/// Completes a flow from the provider's redirect.
#[tracing::instrument(skip_all)]
pub async fn callback(
    svc: &Services,
    query: CallbackQuery,
    origin: &Origin,
) -> Result<Linked, Failed> {
    let started = std::time::Instant::now();
    let result = complete(svc, query, origin).await;
    let outcome = match &result {
        Ok(_) => "linked",
        Err(f) => f.problem.reason(),
    };
    metrics::counter!("gatehouse_oauth2_callbacks_total", "outcome" => outcome).increment(1);
    metrics::histogram!("gatehouse_oauth2_callback_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    result
}

async fn complete(svc: &Services, query: CallbackQuery, origin: &Origin) -> Result<Linked, Failed> {
    let fail = |problem: CallbackProblem, requirement_id: Option<&str>| Failed {
        problem,
        requirement_id: requirement_id.map(str::to_string),
    };
    let internal = |err: ApiError| {
        tracing::error!(error = %err, "OAuth2 callback failed");
        fail(CallbackProblem::ExchangeFailed, None)
    };
    let Some(state) = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return Err(fail(CallbackProblem::MissingState, None));
    };
    let now = now_ms();
    let flow = match svc.store().consume_flow(&sha256(state), now).await {
        Ok(Consumed::Flow(flow)) => *flow,
        Ok(Consumed::Replayed) => return Err(fail(CallbackProblem::ReplayedState, None)),
        Ok(Consumed::Unknown) => return Err(fail(CallbackProblem::UnknownState, None)),
        Err(e) => return Err(internal(e.into())),
    };
    let req_id = Some(flow.requirement_id.as_str());
    if flow.expires_at <= now {
        return Err(fail(CallbackProblem::ExpiredState, req_id));
    }
    let app = match svc.store().app(&flow.app_id).await {
        Ok(Some(app)) if app.environment_id == flow.environment_id => app,
        Ok(_) => return Err(fail(CallbackProblem::UnknownState, req_id)),
        Err(e) => return Err(internal(e.into())),
    };
    let actor_id = format!("{}:{}", app.id, flow.user_id);
    let actor = Actor {
        kind: "end_user",
        id: &actor_id,
    };
    let failed = |problem: CallbackProblem| async {
        let effects = audit::effects(
            actor,
            "connection.failed",
            ("requirement", &flow.requirement_id),
            &app_reach(&app),
            origin,
        )
        .announce(events::event(
            "connection.failed",
            &flow.environment_id,
            serde_json::json!({
                "app_id": flow.app_id,
                "user_id": flow.user_id,
                "requirement_name": flow.requirement_name,
                "connection_id": null,
            }),
        ));
        if let Err(err) = svc.store().record(&effects).await {
            tracing::error!(error = %err, "could not record a failed OAuth2 callback");
        }
        fail(problem, req_id)
    };
    if let Some(error) = query.error.as_deref() {
        return Err(failed(CallbackProblem::from_provider(error)).await);
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(failed(CallbackProblem::MissingCode).await);
    };
    let provider =
        match providers::by_reference(svc, &flow.provider_ref, &flow.environment_id).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(failed(CallbackProblem::ExchangeFailed).await),
            Err(e) => return Err(internal(e)),
        };
    let endpoints = match svc.oauth2_http().endpoints(&provider.settings).await {
        Ok(e) => e,
        Err(_) => return Err(failed(CallbackProblem::ExchangeFailed).await),
    };
    if let (Some(expected), Some(got)) = (endpoints.issuer.as_deref(), query.iss.as_deref()) {
        if expected != got {
            return Err(failed(CallbackProblem::WrongIssuer).await);
        }
    }
    let verifier = match svc.keyring().open(
        &flow.master_key_id,
        &flow.verifier_sealed,
        flow.id.as_bytes(),
    ) {
        Ok(v) => String::from_utf8(v.to_vec()).unwrap_or_default(),
        Err(e) => return Err(internal(e.into())),
    };
    let client = match oauth_client(&provider.settings, &endpoints, &redirect_uri(svc)) {
        Ok(c) => c,
        Err(_) => return Err(failed(CallbackProblem::ExchangeFailed).await),
    };
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(svc.oauth2_http().http())
        .await;
    let response = match response {
        Ok(r) => r,
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            let code = e.error().as_ref().to_string();
            return Err(failed(CallbackProblem::from_provider(&code)).await);
        }
        Err(_) => return Err(failed(CallbackProblem::ExchangeFailed).await),
    };
    let tokens = TokenSet::from_response(&response, now, None);
    let label = identity_label(
        svc,
        &endpoints,
        &tokens,
        response.extra_fields().id_token.as_deref(),
    )
    .await;
    let kind = if flow.kind == ConnectionKind::Account.as_str() {
        ConnectionKind::Account
    } else {
        ConnectionKind::Connection
    };
    let row_id = new_id(match kind {
        ConnectionKind::Account => IdKind::Account,
        ConnectionKind::Connection => IdKind::Connection,
    });
    let (master_key_id, sealed) = match tokens.seal(svc, &row_id) {
        Ok(s) => s,
        Err(e) => return Err(internal(e)),
    };
    let row = ConnectionRow {
        id: row_id.clone(),
        kind,
        environment_id: flow.environment_id.clone(),
        app_id: flow.app_id.clone(),
        user_id: flow.user_id.clone(),
        requirement_name: flow.requirement_name.clone(),
        r#type: flow.target.clone(),
        status: ConnectionStatus::Active,
        label: label.clone(),
        sealed_config: Some(sealed),
        master_key_id: Some(master_key_id),
        created_at: now,
        updated_at: now,
        provider_ref: Some(provider.reference()),
        access_expires_at: tokens.expires_at,
        has_refresh_token: tokens.refresh_token.is_some(),
        next_refresh_at: next_refresh_at(now, tokens.expires_at),
        refresh_failures: 0,
        last_error: None,
    };
    let (action, target) = match kind {
        ConnectionKind::Account => ("account.linked", "account"),
        ConnectionKind::Connection => ("connection.created", "connection"),
    };
    let mut effects = audit::effects(actor, action, (target, &row_id), &app_reach(&app), origin)
        .announce(events::of_connection(action, &row));
    match crate::service::connect::completion(svc, &app, &row).await {
        Ok(done) => effects.outbox.extend(done),
        Err(e) => return Err(internal(e)),
    }
    let replace = if flow.add_only {
        Replace::NotActive
    } else {
        Replace::Any
    };
    match svc
        .store()
        .replace_connection(&row, replace, &effects)
        .await
    {
        Ok(_) => {}
        Err(gatehouse_store::StoreError::Conflict { .. }) if flow.add_only => {
            return Err(failed(CallbackProblem::AlreadyConnected).await);
        }
        Err(e) => return Err(internal(e.into())),
    }
    Ok(Linked {
        requirement_id: flow.requirement_id,
        label,
    })
}

/// The account's label: email, else name, else subject, from the userinfo
/// endpoint or else the id_token's claims.
async fn identity_label(
    svc: &Services,
    endpoints: &super::client::Endpoints,
    tokens: &TokenSet,
    id_token: Option<&str>,
) -> Option<String> {
    let claims = match endpoints.userinfo_url.as_deref() {
        Some(url) => svc
            .oauth2_http()
            .userinfo(url, tokens.access_token.expose_secret())
            .await
            .ok(),
        None => None,
    }
    .or_else(|| id_token.and_then(jwt_claims));
    let claims = claims?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str());
    let subject = claims.get("sub").or_else(|| claims.get("id")).map(|v| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    });
    account_label(
        text("email"),
        text("name").or(text("login")),
        subject.as_deref(),
    )
}

/// The claims of a JWT received straight from the token endpoint over TLS
/// (OpenID Connect Core §3.1.3.7: the channel vouches for it); used only
/// to name the account.
fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
