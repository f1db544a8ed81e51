//! Gatehouse: a self-hosted credentials service. This crate is the HTTP
//! server and CLI; the domain lives in `gatehouse-core` and storage in
//! `gatehouse-store`.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod connect_auth;
pub mod crypto;
pub mod error;
pub mod http;
pub mod issue;
pub mod master_key;
pub mod passwords;
pub mod session;
pub mod signing;
pub mod state;
pub mod telemetry;
pub mod usage;

pub use app::App;
pub use config::Config;
pub use http::router;
