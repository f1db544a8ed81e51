//! The "Audit log" tab of the dashboard shell: the filters, the empty
//! table and "Load more". `assets/dashboard-audit.js` fills them from
//! `GET /v1/audit-events`; the tab exists only for a user holding
//! `audit:read`.

use maud::{html, Markup};

/// Actions Gatehouse records (SPEC §9), offered as suggestions: the field
/// takes any action, so one added later is still searchable.
const ACTIONS: &[&str] = &[
    "access_key.created",
    "access_key.rotated",
    "access_key.revoked",
    "personal_access_token.created",
    "personal_access_token.revoked",
    "app.created",
    "app.updated",
    "app.deleted",
    "app.deployed",
    "app_version.created",
    "connect_token.created",
    "connect_token.revoked",
    "connection.created",
    "connection.deleted",
    "connection.expired",
    "connection.failed",
    "connection.refresh_failed",
    "account.linked",
    "credentials.revealed",
    "end_user.erased",
    "member.created",
    "member.updated",
    "member.removed",
    "oauth2_provider.created",
    "oauth2_provider.updated",
    "oauth2_provider.deleted",
    "organization.initialised",
    "project.created",
    "project.updated",
    "project.deleted",
    "environment.created",
    "user.signed_in",
    "user.sign_in_failed",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.disabled",
    "webhook.secret_rotated",
    "webhook_delivery.retried",
];

pub(super) fn panel() -> Markup {
    html! {
        section.panel id="panel-audit" role="tabpanel" aria-labelledby="tab-audit" hidden {
            div.panel-head {
                div {
                    h2 id="audit-heading" tabindex="-1" { "Audit log" }
                    p.hint {
                        "Every change in the organization, newest first: who made it, to what, and from where. "
                        "It covers every project and environment."
                    }
                }
            }
            form.filters id="audit-filters" role="search" aria-label="Filter the audit log" novalidate {
                div.field {
                    label for="audit-action" { "Action" }
                    input.input id="audit-action" name="action" type="search" list="audit-actions"
                        autocomplete="off" spellcheck="false" placeholder="All actions";
                    datalist id="audit-actions" {
                        @for action in ACTIONS { option value=(action) {} }
                    }
                }
                div.field {
                    label for="audit-actor" { "Actor ID" }
                    input.input id="audit-actor" name="actor_id" type="search" autocomplete="off"
                        spellcheck="false" placeholder="All actors" aria-describedby="audit-actor-hint";
                    p.hint id="audit-actor-hint" { "A key, token, user or session id, or pick an actor in the table." }
                }
                div.filter-actions {
                    button.btn.btn-primary type="submit" { "Filter" }
                    button.btn.btn-secondary type="button" id="audit-clear" { "Clear" }
                }
            }
            p.status id="audit-status" role="status" aria-live="polite" {}
            div.table-wrap {
                table.data id="audit" aria-labelledby="audit-heading" {
                    thead {
                        tr {
                            th scope="col" { "Time" }
                            th scope="col" { "Actor" }
                            th scope="col" { "Action" }
                            th scope="col" { "Target" }
                            th scope="col" { "IP" }
                        }
                    }
                    tbody {}
                }
            }
            div.load-more {
                button.btn.btn-secondary type="button" id="audit-more" hidden { "Load more" }
            }
        }
    }
}
