//! The "Webhooks" tab of the dashboard shell: the empty list, the detail
//! with its delivery log, and the create dialog. `assets/dashboard-webhooks.js`
//! fills them from `/v1/webhooks`; the tab exists only for a user holding
//! `webhooks:read`, the write controls only for one holding
//! `webhooks:write`. A signing secret is never rendered here: the script
//! shows it once, from the create answer.

use gatehouse_core::webhook::EVENT_TYPES;
use maud::{html, Markup};

use super::form_error;

/// What each event type means, for the create form.
fn event_hint(event: &str) -> &'static str {
    match event {
        "connection.created" => "An end user connected a requirement",
        "connection.deleted" => "A connection was removed",
        "connection.failed" => "A connection attempt failed",
        "connection.expired" => "A connection's credentials expired",
        "account.linked" => "An end user linked an account",
        "requirements.completed" => "An end user met every requirement of an app",
        "access_key.revoked" => "An access key was revoked",
        _ => "",
    }
}

pub(super) fn panel(can_write: bool) -> Markup {
    html! {
        section.panel id="panel-webhooks" role="tabpanel" aria-labelledby="tab-webhooks" hidden
            data-can-write=[can_write.then_some("true")] {
            div.panel-head {
                div {
                    h2 id="webhooks-heading" tabindex="-1" { "Webhooks" }
                    p.hint { "Where Gatehouse sends the events of the selected environment, signed per Standard Webhooks. Pick one to see its deliveries." }
                }
                @if can_write {
                    button.btn.btn-primary type="button" id="create-webhook" { "Create webhook" }
                }
            }
            p.status id="webhooks-status" role="status" aria-live="polite" {}
            div.table-wrap {
                table.data id="webhooks" aria-labelledby="webhooks-heading" {
                    thead {
                        tr {
                            th scope="col" { "URL" }
                            th scope="col" { "Environment" }
                            th scope="col" { "Events" }
                            th scope="col" { "Status" }
                            th scope="col" { "Created" }
                            @if can_write { th scope="col" { span.visually-hidden { "Actions" } } }
                        }
                    }
                    tbody {}
                }
            }
            section.webhook-detail.card id="webhook-detail" aria-labelledby="webhook-detail-url" hidden {
                div.detail-head {
                    h3 id="webhook-detail-url" tabindex="-1" {}
                    p.hint id="webhook-detail-meta" {}
                }
                div.subhead {
                    h4 id="deliveries-heading" tabindex="-1" { "Recent deliveries" }
                    button.btn.btn-secondary.btn-small type="button" id="deliveries-refresh" { "Refresh" }
                }
                p.hint id="deliveries-status" role="status" aria-live="polite" {}
                div.table-wrap {
                    table.data id="deliveries" aria-labelledby="deliveries-heading" {
                        thead {
                            tr {
                                th scope="col" { "Time" }
                                th scope="col" { "Event type" }
                                th scope="col" { "Event ID" }
                                th scope="col" { "Attempt" }
                                th scope="col" { "Status" }
                                th scope="col" { "Latency" }
                                th scope="col" { "Error" }
                                @if can_write { th scope="col" { span.visually-hidden { "Actions" } } }
                            }
                        }
                        tbody {}
                    }
                }
            }
        }
    }
}

/// The "create a webhook" dialog, for a user holding `webhooks:write`.
pub(super) fn create_dialog() -> Markup {
    html! {
        dialog.dialog id="create-webhook-dialog" aria-labelledby="create-webhook-title" {
            form.dialog-body id="create-webhook-form" novalidate {
                h2 id="create-webhook-title" { "Create webhook" }
                p.hint id="create-webhook-where" {}
                (form_error("create-webhook-error"))
                div.field {
                    label for="webhook-url" { "Endpoint URL" }
                    input.input id="webhook-url" name="url" type="url" inputmode="url" maxlength="2048"
                        required autocomplete="off" spellcheck="false"
                        placeholder="https://example.com/hooks/gatehouse" aria-describedby="webhook-url-error";
                    p.field-error id="webhook-url-error" hidden {}
                }
                fieldset.events {
                    legend { "Events" }
                    ul.event-options {
                        @for event in EVENT_TYPES {
                            li {
                                label.scope-option {
                                    input type="checkbox" name="event" value=(event);
                                    span {
                                        code { (event) }
                                        span.where { (event_hint(event)) }
                                    }
                                }
                            }
                        }
                    }
                }
                p.field-error id="webhook-events-error" tabindex="-1" hidden {}
                div.field {
                    label for="webhook-description" {
                        "Description " span.optional { "(optional)" }
                    }
                    input.input id="webhook-description" name="description" type="text" maxlength="500"
                        autocomplete="off" aria-describedby="webhook-description-error";
                    p.field-error id="webhook-description-error" hidden {}
                }
                div.dialog-actions {
                    button.btn.btn-secondary type="button" data-close { "Cancel" }
                    button.btn.btn-primary type="submit" { "Create" }
                }
            }
        }
    }
}
