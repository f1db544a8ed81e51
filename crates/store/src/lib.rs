//! Gatehouse persistence.
//!
//! One [`Store`] fronts either SQLite (the zero-configuration default) or
//! PostgreSQL (for several nodes). Each backend has its own migrations
//! (`migrations/sqlite`, `migrations/postgres`); the queries themselves are
//! written once in portable SQL (`$1` placeholders, which SQLite also reads)
//! and compiled for both pools by [`on_pool!`], so the two backends cannot
//! drift apart query by query. Capabilities live in their own modules:
//! [`tenancy`], [`members`], [`credentials`], [`audit`].

pub mod apps;
pub mod audit;
mod batch;
mod cached;
pub mod connect;
pub mod credentials;
pub mod effects;
pub mod error;
pub mod members;
pub mod notify;
pub mod oauth;
pub mod page;
mod pool;
pub mod sealed;
pub mod sessions;
pub mod signing_keys;
pub mod tenancy;
pub mod webhooks;

pub use error::StoreError;
pub use page::{Page, PageRequest};
pub use pool::{Backend, Store};
