//! Webhooks (SPEC §9): signed deliveries of what happened in an
//! environment. Events are written to an outbox in the transaction of the
//! change they report ([`events`]); a worker fans them out to the
//! environment's webhooks and delivers them with retries.

pub mod events;
