//! Requests Gatehouse makes to other servers (OAuth2 providers, webhook
//! targets): TLS through rustls with aws-lc-rs and the webpki roots, never
//! following redirects, always bounded in time.

use std::{sync::Arc, time::Duration};

/// Makes aws-lc-rs the process's TLS crypto for every HTTP client that
/// does not bring its own (Gatehouse's clients do). Idempotent.
pub fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one in between; either is fine.
        if rustls::crypto::aws_lc_rs::default_provider()
            .install_default()
            .is_err()
        {
            tracing::debug!("a TLS crypto provider was already installed");
        }
    }
}

/// A client builder with Gatehouse's TLS, no redirects, a 5 s connect
/// timeout and `timeout` for the whole call.
pub fn client_builder(timeout: Duration) -> anyhow::Result<reqwest::ClientBuilder> {
    install_tls_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION"))))
}
