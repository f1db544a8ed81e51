//! The "API tokens" and "Personal access tokens" tabs of the dashboard
//! shell: the lists, and the create dialogs with their scope matrix.
//! `assets/dashboard-tokens.js` fills and drives them; a new token is shown
//! by the script, once, never rendered here.

use gatehouse_core::{Scope, ScopeSet};
use maud::{html, Markup};

use super::form_error;

/// The scope matrix's rows: a resource, its read scope and its write scope.
const SCOPE_ROWS: &[(&str, Option<Scope>, Option<Scope>)] = &[
    ("Access keys", Some(Scope::KeysRead), Some(Scope::KeysWrite)),
    ("Apps", Some(Scope::AppsRead), Some(Scope::AppsWrite)),
    (
        "Connections",
        Some(Scope::ConnectionsRead),
        Some(Scope::ConnectionsWrite),
    ),
    (
        "Decrypted credentials",
        None,
        Some(Scope::ConnectionsReveal),
    ),
    ("Connect tokens", None, Some(Scope::ConnectWrite)),
    (
        "End users",
        Some(Scope::EndUsersRead),
        Some(Scope::EndUsersWrite),
    ),
    ("Audit log", Some(Scope::AuditRead), None),
    (
        "Webhooks",
        Some(Scope::WebhooksRead),
        Some(Scope::WebhooksWrite),
    ),
    (
        "Projects",
        Some(Scope::ProjectsRead),
        Some(Scope::ProjectsWrite),
    ),
];

/// One checkbox of the scope matrix: those beyond the user's role are
/// disabled; the API's default (all held but `connections:reveal`) is
/// pre-checked.
fn scope_cell(scope: Option<Scope>, held: ScopeSet) -> Markup {
    html! {
        td {
            @if let Some(scope) = scope {
                @let has = held.contains(scope);
                label.scope-option.disabled[!has] title=[(!has).then_some("Not in your role")] {
                    input type="checkbox" name="scope" value=(scope.as_str())
                        checked[has && scope != Scope::ConnectionsReveal] disabled[!has];
                    code { (scope.as_str()) }
                }
            } @else {
                span.none aria-hidden="true" { "—" }
            }
        }
    }
}

/// Every scope of SPEC §3 as a resource × read/write matrix.
fn scope_fieldset(held: ScopeSet) -> Markup {
    html! {
        fieldset.scopes {
            legend { "Scopes" }
            table.scope-matrix {
                thead {
                    tr {
                        th scope="col" { "Resource" }
                        th scope="col" { "Read" }
                        th scope="col" { "Write" }
                    }
                }
                tbody {
                    @for (resource, read, write) in SCOPE_ROWS {
                        tr {
                            th scope="row" { (resource) }
                            (scope_cell(*read, held))
                            (scope_cell(*write, held))
                        }
                    }
                }
            }
            p.hint {
                code { "connections:reveal" } " reads decrypted credentials: give it only to the runtime that needs them. "
                "A token can never do more than your role allows."
            }
        }
    }
}

/// A `<select>` of expiry choices; the script turns the days into a time.
fn expiry_field(id: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { "Expires" }
            select.input id=(id) {
                option value="" { "Never" }
                option value="7" { "In 7 days" }
                option value="30" { "In 30 days" }
                option value="90" selected { "In 90 days" }
                option value="365" { "In 1 year" }
            }
        }
    }
}

/// The "create a token" dialog of one tab.
pub(super) fn create_dialog(kind: &str, held: ScopeSet) -> Markup {
    let is_key = kind == "token";
    let title = if is_key {
        "Create API token"
    } else {
        "Create personal access token"
    };
    html! {
        dialog.dialog id={ "create-" (kind) "-dialog" } aria-labelledby={ "create-" (kind) "-title" } {
            form.dialog-body id={ "create-" (kind) "-form" } novalidate {
                h2 id={ "create-" (kind) "-title" } { (title) }
                @if is_key {
                    p.hint id="create-token-where" {}
                } @else {
                    p.hint { "Acts as you, with your role, on every project. For scripts and the CLI." }
                }
                (form_error(&format!("create-{kind}-error")))
                div.field {
                    label for={ (kind) "-name" } { "Name" }
                    input.input id={ (kind) "-name" } name="name" type="text" maxlength="100"
                        required autocomplete="off" placeholder=(if is_key { "e.g. Production backend" } else { "e.g. My laptop" })
                        aria-describedby={ (kind) "-name-error" };
                    p.field-error id={ (kind) "-name-error" } hidden {}
                }
                div.field-row {
                    @if is_key {
                        div.field {
                            label for="token-reach" { "Access" }
                            select.input id="token-reach" name="reach" {
                                option value="environment" id="reach-environment" selected { "This environment" }
                                option value="project" id="reach-project" { "Every environment of the project" }
                                option value="organization" { "Organization: every project" }
                            }
                        }
                    }
                    (expiry_field(&format!("{kind}-expiry")))
                }
                (scope_fieldset(held))
                p.field-error id={ (kind) "-scopes-error" } tabindex="-1" hidden {}
                div.dialog-actions {
                    button.btn.btn-secondary type="button" data-close { "Cancel" }
                    button.btn.btn-primary type="submit" { "Create" }
                }
            }
        }
    }
}

/// One tab's list of tokens.
pub(super) fn panel(
    kind: &str,
    table_id: &str,
    title: &str,
    lede: &str,
    can_write: bool,
) -> Markup {
    let is_key = kind == "token";
    html! {
        section.panel id={ "panel-" (table_id) } role="tabpanel" aria-labelledby={ "tab-" (table_id) }
            hidden[!is_key] {
            div.panel-head {
                div {
                    h2 id={ (table_id) "-heading" } tabindex="-1" { (title) }
                    p.hint { (lede) }
                }
                @if can_write {
                    button.btn.btn-primary type="button" id={ "create-" (kind) } { "Create token" }
                }
            }
            p.status id={ (table_id) "-status" } role="status" aria-live="polite" {}
            div.table-wrap {
                table.data id=(table_id) aria-labelledby={ (table_id) "-heading" } {
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Token" }
                            th scope="col" { "Scope" }
                            @if is_key { th scope="col" { "Created by" } }
                            th scope="col" { "Created" }
                            th scope="col" { "Last used" }
                            th scope="col" { "Status" }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        }
                    }
                    tbody {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scope is offered, and `connections:reveal` is never pre-checked.
    #[test]
    fn scope_fieldset_offers_every_scope() {
        let html = scope_fieldset(ScopeSet::all()).into_string();
        for scope in Scope::ALL {
            assert_eq!(
                html.matches(&format!("value=\"{}\"", scope.as_str()))
                    .count(),
                1,
                "{scope}"
            );
        }
        let reveal = html
            .split("<label")
            .find(|l| l.contains("connections:reveal"))
            .unwrap_or_default();
        assert!(!reveal.contains("checked"));
    }
}
