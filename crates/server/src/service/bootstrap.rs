//! First start: an organization, a project with `sandbox` and `live`, an
//! owner with a generated password and a personal access token, and an
//! organization-wide access key holding every scope. Written in one
//! transaction; a second bootstrap changes nothing.

use gatehouse_core::{
    new_id, time::now_ms, validate::Email, IdKind, Reach, Role, ScopeSet, TokenKind,
};
use gatehouse_store::{
    members::User,
    tenancy::{Bootstrap, Organization, Project},
    Store, StoreError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{
    audit::{self, Origin, SYSTEM},
    credentials::{issue, CredentialSpec},
    tenancy::default_environments,
};
use crate::{config::Config, crypto::passwords};

/// The one-time output of a bootstrap. Holds secrets: print it once.
pub struct InitOutput {
    pub organization_id: String,
    pub project_id: String,
    pub sandbox_id: String,
    pub live_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub password: SecretString,
    pub personal_access_token: SecretString,
    pub access_key_id: String,
    pub access_key: SecretString,
}

impl std::fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutput")
            .field("organization_id", &self.organization_id)
            .field("owner_email", &self.owner_email)
            .finish_non_exhaustive()
    }
}

impl InitOutput {
    /// The SPEC §10 `init --json` object.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "organization_id": self.organization_id,
            "project_id": self.project_id,
            "environments": {"sandbox": self.sandbox_id, "live": self.live_id},
            "owner": {
                "id": self.owner_id,
                "email": self.owner_email,
                "password": self.password.expose_secret(),
                "personal_access_token": self.personal_access_token.expose_secret(),
            },
            "access_key": {"id": self.access_key_id, "token": self.access_key.expose_secret()},
        })
    }

    /// The human banner `serve` prints on first start.
    pub fn banner(&self, public_url: &str) -> String {
        format!(
            "\n  Gatehouse is initialised. These secrets are shown once; store them now.\n\n  \
             owner email     {}\n  owner password  {}\n  owner PAT       {}\n  \
             access key      {}\n  (organization-wide, every scope; id {})\n\n  \
             Try it:  curl -H \"Authorization: Bearer {}\" {}/v1/tokens/me\n",
            self.owner_email,
            self.password.expose_secret(),
            self.personal_access_token.expose_secret(),
            self.access_key.expose_secret(),
            self.access_key_id,
            self.access_key.expose_secret(),
            public_url,
        )
    }
}

/// Why a bootstrap did not happen.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("this database is already initialised; nothing was changed")]
    AlreadyInitialised,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Bootstraps an empty database.
pub async fn init(
    store: &Store,
    config: &Config,
    owner_email: &Email,
) -> Result<InitOutput, InitError> {
    if store
        .installation()
        .await
        .map_err(anyhow::Error::from)?
        .is_some()
    {
        return Err(InitError::AlreadyInitialised);
    }
    let now = now_ms();
    let organization = Organization {
        id: new_id(IdKind::Organization),
        name: "Default organization".into(),
        created_at: now,
    };
    let project = Project {
        id: new_id(IdKind::Project),
        organization_id: organization.id.clone(),
        name: "Default project".into(),
        created_at: now,
        deleted_at: None,
    };
    let environments = default_environments(&project);
    let password = passwords::generate();
    let owner = User {
        id: new_id(IdKind::User),
        organization_id: organization.id.clone(),
        email: owner_email.as_str().to_string(),
        password_hash: passwords::hash(password.clone()).await?,
        role: Role::Owner,
        created_at: now,
        deleted_at: None,
    };
    let reach = Reach::organization(&organization.id);
    let prefixes = config.token_prefixes();
    let (pat_row, pat) = issue(
        &prefixes,
        CredentialSpec {
            kind: TokenKind::PersonalAccessToken,
            name: "Bootstrap token",
            reach: &reach,
            user_id: &owner.id,
            via_key_id: None,
            scopes: ScopeSet::all(),
            expires_at: None,
        },
    );
    let (key_row, key) = issue(
        &prefixes,
        CredentialSpec {
            kind: TokenKind::AccessKey,
            name: "Bootstrap key",
            reach: &reach,
            user_id: &owner.id,
            via_key_id: None,
            scopes: ScopeSet::all(),
            expires_at: None,
        },
    );
    let origin = Origin::default();
    let mut events = vec![audit::event(
        SYSTEM,
        "organization.initialised",
        ("organization", &organization.id),
        &reach,
        &origin,
        now,
    )];
    for (kind, id) in [
        (TokenKind::PersonalAccessToken, &pat_row.id),
        (TokenKind::AccessKey, &key_row.id),
    ] {
        events.push(audit::event(
            SYSTEM,
            &format!("{kind}.created"),
            (kind.as_str(), id),
            &reach,
            &origin,
            now,
        ));
    }
    let output = InitOutput {
        organization_id: organization.id.clone(),
        project_id: project.id.clone(),
        sandbox_id: environments[0].id.clone(),
        live_id: environments[1].id.clone(),
        owner_id: owner.id.clone(),
        owner_email: owner.email.clone(),
        password,
        personal_access_token: pat.token,
        access_key_id: key_row.id.clone(),
        access_key: key.token,
    };
    let records = Bootstrap {
        organization,
        project,
        environments,
        owner,
        credentials: vec![pat_row, key_row],
        events,
    };
    match store.bootstrap(&records).await {
        Ok(()) => Ok(output),
        Err(StoreError::AlreadyInitialised) => Err(InitError::AlreadyInitialised),
        Err(other) => Err(InitError::Other(other.into())),
    }
}
