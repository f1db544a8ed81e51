//! Where a webhook may deliver: a public address, unless
//! `allow_private_webhook_targets`. Names are checked when a webhook is
//! saved and again at every connection (the client's resolver drops
//! private addresses), so a name that later resolves to an internal
//! address (DNS rebinding) still reaches nothing inside.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use gatehouse_core::webhook::{is_public, TargetError};
use url::{Host, Url};

/// How long the check on save waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The addresses `host:port` resolves to.
async fn lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// Refuses a URL whose name resolves to any private address now. A name
/// that does not resolve (yet) is accepted: delivery checks again.
pub async fn check_resolved(url: &Url) -> Result<(), TargetError> {
    let Some(Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup(name, port)).await {
        Ok(Ok(addrs)) if addrs.iter().any(|a| !is_public(a.ip())) => Err(TargetError::Private),
        _ => Ok(()),
    }
}

/// Refuses an IP-literal URL with a private address (the resolver never
/// sees those).
pub fn check_literal(url: &Url) -> Result<(), TargetError> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(TargetError::Private)
    }
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs = lookup(name.as_str(), 0).await?;
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(TargetError::Private) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client deliveries are sent with: `timeout` per attempt, and only
/// public addresses unless `allow_private`.
pub fn client(timeout: Duration, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let builder = crate::service::outbound::client_builder(timeout)?;
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    Ok(builder.build()?)
}
