//! Where each policy is charged (SPEC §8), one function per kind of
//! request; docs/rate-limits.md has the table.

use std::{
    net::{IpAddr, SocketAddr},
    sync::OnceLock,
};

use gatehouse_store::apps::App;

use super::{HeldSlot, Key, Meter, Policy};
use crate::{
    error::ApiResult,
    service::{
        principal::{ConnectPrincipal, Principal},
        Services,
    },
};

/// The key of a client IP: IPv4 as is, IPv6 by its /64 (one host commonly
/// holds a whole /64, so per-address keys would not limit it), anything
/// unparseable as sent (it is hashed, never stored).
pub fn ip_key(ip: Option<&str>) -> String {
    let Some(raw) = ip.map(str::trim) else {
        return "unknown".into();
    };
    let parsed = raw
        .parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()));
    match parsed {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => raw.to_string(),
    }
}

/// An authenticated management caller (key, PAT or session): `credential`,
/// and `environment` when the credential is confined to one.
pub async fn caller(svc: &Services, meter: &Meter, p: &Principal) -> ApiResult<()> {
    let key = p
        .memo
        .limit_key
        .get_or_init(|| Key::of(Policy::Credential.name(), &[&p.id]).0);
    credential(svc, meter, *key, &p.memo.limit_slot).await?;
    if let Some(env) = p.reach.environment_id.as_deref() {
        let memo = (
            &p.memo.environment_limit_key,
            &p.memo.environment_limit_slot,
        );
        environment(svc, meter, env, Some(memo)).await?;
    }
    Ok(())
}

/// An end user's connect token: `credential` for (environment, app,
/// user_id), and the app's `environment`.
pub async fn connect_caller(svc: &Services, meter: &Meter, c: &ConnectPrincipal) -> ApiResult<()> {
    let claims = &c.claims;
    let key = c.limit_key.get_or_init(|| {
        Key::of(
            Policy::Credential.name(),
            &[
                "connect",
                &claims.environment_id,
                &claims.app_id,
                &claims.user_id,
            ],
        )
        .0
    });
    credential(svc, meter, *key, &c.limit_slot).await?;
    let memo = (&c.environment_limit_key, &c.environment_limit_slot);
    environment(svc, meter, &claims.environment_id, Some(memo)).await
}

/// Charges the `credential` policy to a caller's kept key and slot.
async fn credential(
    svc: &Services,
    meter: &Meter,
    key: [u8; 16],
    held: &HeldSlot,
) -> ApiResult<()> {
    let limits = svc.limits();
    limits
        .charge_key(
            meter,
            Policy::Credential,
            limits.rule(Policy::Credential, None),
            Key(key),
            Some(held),
        )
        .await
}

/// A request on an app's hostname: the app's `environment`.
pub async fn app(svc: &Services, meter: &Meter, app: &App) -> ApiResult<()> {
    environment(svc, meter, &app.environment_id, None).await
}

/// `memo` keeps the environment's key and slot for a caller that is
/// cached.
async fn environment(
    svc: &Services,
    meter: &Meter,
    environment_id: &str,
    memo: Option<(&OnceLock<[u8; 16]>, &HeldSlot)>,
) -> ApiResult<()> {
    let limits = svc.limits();
    let rule = limits.rule(Policy::Environment, Some(environment_id));
    let derive = || Key::of(Policy::Environment.name(), &[environment_id]).0;
    let (key, held) = match memo {
        Some((key, held)) => (*key.get_or_init(derive), Some(held)),
        None => (derive(), None),
    };
    limits
        .charge_key(meter, Policy::Environment, rule, Key(key), held)
        .await
}

/// A request without a valid credential (none needed, none sent, or one
/// that failed): `ip`.
pub async fn anonymous(svc: &Services, meter: &Meter, ip: Option<&str>) -> ApiResult<()> {
    let limits = svc.limits();
    limits
        .charge(
            meter,
            Policy::Ip,
            limits.rule(Policy::Ip, None),
            &[&ip_key(ip)],
        )
        .await
}

/// A sign-in attempt: `sign_in` for the client IP.
pub async fn sign_in(svc: &Services, meter: &Meter, ip: Option<&str>) -> ApiResult<()> {
    let limits = svc.limits();
    limits
        .charge(
            meter,
            Policy::SignIn,
            limits.rule(Policy::SignIn, None),
            &[&ip_key(ip)],
        )
        .await
}

/// Minting a connect token: `connect_token_user` for (app, user_id).
pub async fn end_user_tokens(
    svc: &Services,
    meter: &Meter,
    app_id: &str,
    user_id: &str,
) -> ApiResult<()> {
    let limits = svc.limits();
    limits
        .charge(
            meter,
            Policy::ConnectTokenUser,
            limits.rule(Policy::ConnectTokenUser, None),
            &[app_id, user_id],
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv6 clients are keyed by their /64; mapped IPv4 as IPv4.
    #[test]
    fn ip_keys() {
        assert_eq!(ip_key(Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(ip_key(Some("203.0.113.9:4431")), "203.0.113.9");
        assert_eq!(ip_key(Some("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(
            ip_key(Some("2001:db8:1:2:aaaa::1")),
            ip_key(Some("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            ip_key(Some("2001:db8:1:2::1")),
            ip_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(ip_key(None), "unknown");
    }
}
