//! Gatehouse's domain: token formats, ids, scopes, roles, reach, the
//! rate-limit arithmetic and the validated value types the rest of the
//! service works with. Nothing here performs I/O.

pub mod app;
pub mod connection;
pub mod forwarded;
pub mod gcra;
pub mod id;
pub mod members;
pub mod oauth2;
pub mod patterns;
pub mod reach;
pub mod requirement;
pub mod scope;
pub mod tenancy;
pub mod text;
pub mod time;
pub mod token;
pub mod validate;
pub mod webhook;

pub use app::AccessType;
pub use connection::{ConnectionKind, ConnectionStatus};
pub use id::{new_id, IdKind};
pub use reach::Reach;
pub use scope::{Role, Scope, ScopeSet};
pub use token::{TokenError, TokenKind, TokenPrefixes};
