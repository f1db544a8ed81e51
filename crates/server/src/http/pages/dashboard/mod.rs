//! `GET /`: the developer dashboard (SPEC §7).
//!
//! The server renders the shell only: who is signed in, the session's CSRF
//! token (in `<meta name="csrf-token">`), the tabs and write controls the
//! user's scopes allow, empty tables and the dialogs. `assets/dashboard.js`
//! (an ES module importing `common.js`, the helpers it shares with the
//! hosted page, and `dashboard-core.js`, `dashboard-tokens.js`,
//! `dashboard-apps.js`, `dashboard-audit.js` and `dashboard-webhooks.js`)
//! fills them from the management API with the session cookie, exactly as a
//! client holding a PAT would; the server never renders a token,
//! credential, signing secret or end-user secret into the page. The token
//! tabs are in `tokens.rs`, the audit tab in `audit.rs`, the webhook tab in
//! `webhooks.rs`; the apps tab and the shared dialogs are here.
//! No inline script or style: the CSP of
//! [`crate::http::middleware::security`] forbids both.

use axum::{routing::get, Router};
use gatehouse_core::Scope;
use maud::{html, Markup, DOCTYPE};

use crate::{http::auth::SignedIn, state::AppState};

mod audit;
mod tokens;
mod webhooks;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page))
}

/// The dashboard shell; a signed-out browser is sent to `/login` by
/// [`SignedIn`].
#[tracing::instrument(skip_all)]
async fn page(signed_in: SignedIn) -> Markup {
    shell(&signed_in)
}

/// A form-level error region, filled by the script from `error.details`.
fn form_error(id: &str) -> Markup {
    html! { p.form-error id=(id) role="alert" tabindex="-1" hidden {} }
}

fn apps_panel(can_write: bool) -> Markup {
    html! {
        section.panel id="panel-apps" role="tabpanel" aria-labelledby="tab-apps" hidden {
            div.panel-head {
                div {
                    h2 id="apps-heading" tabindex="-1" { "Apps" }
                    p.hint { "Apps of the selected environment: their requirements, the OAuth2 providers that serve them, and their end users." }
                }
                @if can_write {
                    button.btn.btn-primary type="button" id="create-app" { "Create app" }
                }
            }
            p.status id="apps-status" role="status" aria-live="polite" {}
            div.table-wrap {
                table.data id="apps" aria-labelledby="apps-heading" {
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Hostname" }
                            th scope="col" { "Access" }
                            th scope="col" { "Deployed version" }
                        }
                    }
                    tbody {}
                }
            }
            section.app-detail.card id="app-detail" aria-labelledby="app-detail-name" hidden {
                div.detail-head {
                    h3 id="app-detail-name" tabindex="-1" {}
                    p.hint id="app-detail-meta" {}
                }
                h4 { "Requirements" }
                p.hint id="requirements-status" role="status" {}
                ul.requirements id="requirements" {}
                h4 { "OAuth2 providers" }
                p.hint id="providers-status" role="status" {}
                div.table-wrap {
                    table.data id="oauth2-providers" aria-label="OAuth2 providers" {
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Serves" }
                                th scope="col" { "Source" }
                                th scope="col" { "Client ID" }
                                th scope="col" { "Redirect URI" }
                            }
                        }
                        tbody {}
                    }
                }
                h4 { "End users" }
                p.hint id="end-users-status" role="status" aria-live="polite" {}
                div.table-wrap {
                    table.data id="end-users" aria-label="End users" {
                        thead {
                            tr {
                                th scope="col" { "User ID" }
                                th scope="col" { "Connections" }
                                th scope="col" { "Since" }
                                th scope="col" { span.visually-hidden { "Actions" } }
                            }
                        }
                        tbody {}
                    }
                }
            }
        }
    }
}

/// Dialogs shared by the tabs: the one-time token, and confirmations.
fn shared_dialogs() -> Markup {
    html! {
        dialog.dialog id="token-modal" aria-labelledby="token-modal-title" aria-describedby="token-warning" {
            div.dialog-body {
                h2 id="token-modal-title" { "Your new token" }
                p.callout id="token-warning" {
                    strong id="token-warning-title" { "This token will not be shown again." }
                    " Copy it now and keep it somewhere safe, such as a secrets manager."
                }
                div.field {
                    label for="new-token" id="new-token-label" { "Token" }
                    div.copy-row id="new-token-slot" {
                        button.btn.btn-secondary type="button" id="copy-token" { "Copy" }
                    }
                }
                div.dialog-actions {
                    button.btn.btn-primary type="button" id="token-done" data-close { "Done" }
                }
            }
        }
        dialog.dialog.dialog-narrow id="confirm-revoke" aria-labelledby="confirm-revoke-title" {
            div.dialog-body {
                h2 id="confirm-revoke-title" { "Revoke token?" }
                p {
                    strong id="confirm-revoke-name" {}
                    " stops working immediately: requests made with it get 401 Unauthorized. This cannot be undone."
                }
                (form_error("confirm-revoke-error"))
                div.dialog-actions {
                    button.btn.btn-secondary type="button" data-close { "Cancel" }
                    button.btn.btn-danger-solid type="button" id="confirm-revoke-submit" { "Revoke" }
                }
            }
        }
        dialog.dialog.dialog-narrow id="confirm-erase" aria-labelledby="confirm-erase-title" {
            div.dialog-body {
                h2 id="confirm-erase-title" { "Erase end user?" }
                p {
                    "Every connection, linked account and connect token of "
                    code id="confirm-erase-name" {}
                    " in this environment is deleted. This cannot be undone."
                }
                (form_error("confirm-erase-error"))
                div.dialog-actions {
                    button.btn.btn-secondary type="button" data-close { "Cancel" }
                    button.btn.btn-danger-solid type="button" id="confirm-erase-submit" { "Erase" }
                }
            }
        }
        dialog.dialog.dialog-narrow id="create-app-dialog" aria-labelledby="create-app-title" {
            form.dialog-body id="create-app-form" novalidate {
                h2 id="create-app-title" { "Create app" }
                p.hint id="create-app-where" {}
                (form_error("create-app-error"))
                div.field {
                    label for="app-name" { "Name" }
                    input.input id="app-name" name="name" type="text" maxlength="100" required
                        autocomplete="off" placeholder="e.g. Support agent" aria-describedby="app-name-error";
                    p.field-error id="app-name-error" hidden {}
                }
                div.field {
                    label for="app-access" { "Access" }
                    select.input id="app-access" name="access_type" aria-describedby="app-access-hint" {
                        option value="private" selected { "Private: callers need an access key" }
                        option value="public" { "Public: anyone can mint connect tokens" }
                    }
                                        p.hint id="app-access-hint" {
                        "Who may call the app's hostname. On a public app anyone can mint a connect token for any user id: "
                        "such a token can connect a requirement that is not connected yet, but cannot replace or delete a "
                        "user's connection (that needs a token your backend mints with an access key). Make an app public only "
                        "when its users' ids are not secret-worthy and a stranger adding a first connection for one is harmless."
                    }
                }
                div.dialog-actions {
                    button.btn.btn-secondary type="button" data-close { "Cancel" }
                    button.btn.btn-primary type="submit" { "Create" }
                }
            }
        }
    }
}

fn shell(s: &SignedIn) -> Markup {
    let held = s.principal.scopes;
    let can_write_keys = held.contains(Scope::KeysWrite);
    let can_write_apps = held.contains(Scope::AppsWrite);
    let can_read_audit = held.contains(Scope::AuditRead);
    let can_read_webhooks = held.contains(Scope::WebhooksRead);
    let can_write_webhooks = can_read_webhooks && held.contains(Scope::WebhooksWrite);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(s.csrf);
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                meta name="color-scheme" content="light";
                title { "Developer · Gatehouse" }
                link rel="icon" type="image/svg+xml" href="/assets/favicon.svg";
                link rel="stylesheet" href="/assets/dashboard.css";
                script type="module" src="/assets/dashboard.js" {}
            }
            body data-page="dashboard" data-role=(s.user.role) {
                a.skip-link href="#main" { "Skip to content" }
                header.topbar {
                    div.topbar-inner {
                        a.logo href="/" {
                            span.logo-mark aria-hidden="true" {}
                            span { "Gatehouse" }
                        }
                        div.switchers {
                            div.switcher {
                                label for="project-switcher" { "Project" }
                                select.input id="project-switcher" disabled {
                                    option { "Loading…" }
                                }
                            }
                            div.switcher {
                                label for="environment-switcher" { "Environment" }
                                select.input id="environment-switcher" disabled {
                                    option { "Loading…" }
                                }
                            }
                        }
                        div.account {
                            div.who {
                                span.who-email id="user-email" title=(s.user.email) { (s.user.email) }
                                span.role-badge id="user-role" { (s.user.role) }
                            }
                            form.sign-out method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.btn.btn-secondary.btn-small type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main.page id="main" tabindex="-1" {
                    div.page-head {
                        h1 { "Developer" }
                        p.hint { "Tokens for your servers and scripts, the apps your end users connect to, the audit log and webhooks." }
                    }
                    p.form-error id="page-error" role="alert" hidden {}
                    div.tabs role="tablist" aria-label="Developer" {
                        button.tab type="button" role="tab" id="tab-tokens" aria-controls="panel-tokens" aria-selected="true" { "API tokens" }
                        button.tab type="button" role="tab" id="tab-pats" aria-controls="panel-pats" aria-selected="false" tabindex="-1" {
                            span.wide-only { "Personal access tokens" }
                            span.narrow-only { "Personal tokens" }
                        }
                        button.tab type="button" role="tab" id="tab-apps" aria-controls="panel-apps" aria-selected="false" tabindex="-1" { "Apps" }
                        @if can_read_audit {
                            button.tab type="button" role="tab" id="tab-audit" aria-controls="panel-audit" aria-selected="false" tabindex="-1" { "Audit log" }
                        }
                        @if can_read_webhooks {
                            button.tab type="button" role="tab" id="tab-webhooks" aria-controls="panel-webhooks" aria-selected="false" tabindex="-1" { "Webhooks" }
                        }
                    }
                    (tokens::panel("token", "tokens", "API tokens",
                        "Access keys for servers and scripts, limited to an environment, a project or the organization.",
                        can_write_keys))
                    (tokens::panel("pat", "pats", "Personal access tokens",
                        "Your own tokens. They act as you, with your role.", can_write_keys))
                    (apps_panel(can_write_apps))
                    @if can_read_audit { (audit::panel()) }
                    @if can_read_webhooks { (webhooks::panel(can_write_webhooks)) }
                }
                @if can_write_keys { (tokens::create_dialog("token", held)) }
                @if can_write_keys { (tokens::create_dialog("pat", held)) }
                @if can_write_webhooks { (webhooks::create_dialog()) }
                (shared_dialogs())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gatehouse_core::{Reach, Role, ScopeSet};
    use gatehouse_store::members::User;

    use super::*;
    use crate::service::principal::{CallerKind, Principal};

    /// The shell of a session holding `scopes`.
    fn shell_for(scopes: ScopeSet) -> String {
        let principal = Principal {
            kind: CallerKind::Session,
            id: "ses_test".into(),
            user_id: "usr_test".into(),
            role: Some(Role::Viewer),
            reach: Reach::organization("org_test"),
            scopes,
            credential: None,
            memo: Default::default(),
        };
        let user = User {
            id: "usr_test".into(),
            organization_id: "org_test".into(),
            email: "viewer@example.com".into(),
            password_hash: String::new(),
            role: Role::Viewer,
            created_at: 0,
            deleted_at: None,
        };
        shell(&SignedIn {
            principal: Arc::new(principal),
            user,
            csrf: "csrf".into(),
        })
        .into_string()
    }

    /// The audit and webhook tabs follow the session's scopes: no tab
    /// without the read scope, no write controls without the write scope.
    #[test]
    fn tabs_follow_the_scopes() {
        let all = shell_for(ScopeSet::all());
        for id in [
            "tab-audit",
            "panel-audit",
            "tab-webhooks",
            "panel-webhooks",
            "create-webhook",
            "create-webhook-dialog",
        ] {
            assert!(all.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(all.contains("data-can-write=\"true\""));

        let read_only = shell_for(Role::Viewer.scopes());
        assert!(read_only.contains("id=\"tab-audit\""));
        assert!(read_only.contains("id=\"tab-webhooks\""));
        assert!(!read_only.contains("create-webhook"));
        assert!(!read_only.contains("data-can-write"));

        let neither = shell_for(
            ScopeSet::all()
                .without(Scope::AuditRead)
                .without(Scope::WebhooksRead),
        );
        for id in ["audit", "webhooks"] {
            assert!(!neither.contains(&format!("id=\"tab-{id}\"")), "{id}");
            assert!(!neither.contains(&format!("id=\"panel-{id}\"")), "{id}");
        }
        assert!(neither.contains("id=\"tab-apps\""));
    }
}
