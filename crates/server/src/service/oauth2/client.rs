//! Talking to OAuth2 providers: one HTTP client (TLS through rustls with
//! aws-lc-rs, no redirects followed, every call bounded in time), the
//! `oauth2` crate's client for a provider, OpenID discovery (cached), and
//! the userinfo call that names a linked account.

use std::{sync::Arc, time::Duration};

use gatehouse_core::oauth2::{check_endpoint, ClientAuth};
use oauth2::{
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    },
    AuthType, AuthUrl, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, RedirectUrl, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::{config::ProviderSettings, service::outbound};

/// How long one call to a provider may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long discovery documents are kept.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The extra field of a token response that Gatehouse reads: an OpenID
/// Connect `id_token`, for the account's label when there is no userinfo
/// endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

/// A token endpoint's answer.
pub type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// An `oauth2` client with its authorization and token endpoints set.
pub type ProviderClient = Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A provider's endpoints, once the discovery document (if any) filled
/// the ones the settings left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
}

/// The parts of an OpenID discovery document Gatehouse uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
}

/// Why a provider call failed, without anything the provider sent that
/// might hold a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("the provider could not be reached ({0})")]
    Unreachable(String),
    #[error("the provider answered {0}")]
    Status(u16),
    #[error("the provider's answer could not be read")]
    Unreadable,
    #[error("{0}")]
    Misconfigured(String),
}

/// The HTTP client for providers, with the OAuth2 crate's parameters
/// (never follow redirects: that would let a provider's answer send the
/// client secret elsewhere).
#[derive(Clone)]
pub struct ProviderHttp {
    http: reqwest::Client,
    discovery: moka::sync::Cache<String, Arc<Discovery>>,
}

pub use crate::service::outbound::install_tls_provider;

impl ProviderHttp {
    pub fn new() -> anyhow::Result<Self> {
        let http = outbound::client_builder(CALL_TIMEOUT)?.build()?;
        Ok(Self {
            http,
            discovery: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(DISCOVERY_TTL)
                .build(),
        })
    }

    /// The client the `oauth2` crate sends requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The endpoints of a provider: its settings, with anything missing
    /// taken from its discovery document.
    pub async fn endpoints(&self, settings: &ProviderSettings) -> Result<Endpoints, CallError> {
        let discovered = match &settings.discovery_url {
            Some(url) if needs_discovery(settings) => Some(self.discover(url).await?),
            _ => None,
        };
        let from = |own: &Option<String>, found: Option<&Option<String>>| {
            own.clone()
                .or_else(|| found.cloned().flatten())
                .filter(|u| check_endpoint(u).is_ok())
        };
        let d = discovered.as_deref();
        let authorize_url = from(
            &settings.authorize_url,
            d.map(|d| &d.authorization_endpoint),
        )
        .ok_or_else(|| {
            CallError::Misconfigured("the provider has no usable authorization endpoint".into())
        })?;
        let token_url =
            from(&settings.token_url, d.map(|d| &d.token_endpoint)).ok_or_else(|| {
                CallError::Misconfigured("the provider has no usable token endpoint".into())
            })?;
        Ok(Endpoints {
            authorize_url,
            token_url,
            userinfo_url: from(&settings.userinfo_url, d.map(|d| &d.userinfo_endpoint)),
            issuer: settings
                .issuer
                .clone()
                .or_else(|| d.and_then(|d| d.issuer.clone())),
        })
    }

    async fn discover(&self, url: &str) -> Result<Arc<Discovery>, CallError> {
        if let Some(found) = self.discovery.get(url) {
            return Ok(found);
        }
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CallError::Unreachable(short(&e)))?;
        if !response.status().is_success() {
            return Err(CallError::Status(response.status().as_u16()));
        }
        let document: Discovery = response.json().await.map_err(|_| CallError::Unreadable)?;
        let document = Arc::new(document);
        self.discovery.insert(url.to_string(), document.clone());
        Ok(document)
    }

    /// The signed-in account's claims from the userinfo endpoint.
    pub async fn userinfo(
        &self,
        url: &str,
        access_token: &str,
    ) -> Result<serde_json::Value, CallError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CallError::Unreachable(short(&e)))?;
        if !response.status().is_success() {
            return Err(CallError::Status(response.status().as_u16()));
        }
        response.json().await.map_err(|_| CallError::Unreadable)
    }
}

/// Whether the settings leave an endpoint or the issuer to discovery.
fn needs_discovery(s: &ProviderSettings) -> bool {
    s.authorize_url.is_none()
        || s.token_url.is_none()
        || s.userinfo_url.is_none()
        || s.issuer.is_none()
}

/// `<public_url>/v1/connect/oauth2/callback`, the redirect URI registered
/// with every provider.
pub fn redirect_uri(svc: &crate::service::Services) -> String {
    format!("{}/v1/connect/oauth2/callback", svc.config().public_url)
}

/// The `oauth2` client for a provider, redirecting to `redirect_uri`.
pub fn oauth_client(
    settings: &ProviderSettings,
    endpoints: &Endpoints,
    redirect_uri: &str,
) -> Result<ProviderClient, CallError> {
    let bad =
        |what: &str| CallError::Misconfigured(format!("the provider's {what} is not a valid URL"));
    Ok(Client::new(ClientId::new(settings.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            settings.client_secret.expose_secret().to_string(),
        ))
        .set_auth_type(match settings.client_auth {
            ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
            ClientAuth::ClientSecretPost => AuthType::RequestBody,
        })
        .set_auth_uri(
            AuthUrl::new(endpoints.authorize_url.clone())
                .map_err(|_| bad("authorization endpoint"))?,
        )
        .set_token_uri(
            TokenUrl::new(endpoints.token_url.clone()).map_err(|_| bad("token endpoint"))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_string()).map_err(|_| bad("redirect URI"))?,
        ))
}

/// A transport error in a few words, without URLs or bodies.
pub fn short(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "connection refused or failed".into()
    } else {
        "request failed".into()
    }
}
