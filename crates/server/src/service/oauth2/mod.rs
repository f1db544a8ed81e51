//! OAuth2 connections and linked action-connector accounts (SPEC §5.1, §6):
//! the providers that sign end users in ([`providers`]), the authorization
//! code flow with PKCE and a single-use state ([`flow`]), the provider's
//! endpoints and HTTP calls ([`client`]), and keeping the tokens fresh —
//! on reveal and in the background, one node at a time per connection
//! ([`tokens`]).

pub mod client;
pub mod flow;
pub mod providers;
pub mod tokens;
