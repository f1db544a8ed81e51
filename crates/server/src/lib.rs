//! Gatehouse: a self-hosted credentials service. This crate is the HTTP
//! server and CLI; the domain lives in `gatehouse-core` and storage in
//! `gatehouse-store`.
//!
//! Dependencies point one way: [`config`], [`catalog`] and [`crypto`] are
//! the supporting pieces; [`service`] holds the use cases over them;
//! [`http`] parses requests, calls one use case and renders; [`startup`]
//! builds and runs it all, and `main` is the command line ([`cli`]).

pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod http;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use config::Config;
pub use http::router;
pub use startup::App;
