//! The rules of a webhook (SPEC §9): where it may point, what it may
//! subscribe to, and the Standard Webhooks secret format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Every event type a webhook may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "connection.created",
    "connection.deleted",
    "connection.failed",
    "connection.expired",
    "account.linked",
    "requirements.completed",
    "access_key.revoked",
];

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The longest target URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a target URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("must be an absolute http:// or https:// URL")]
    NotHttp,
    #[error("must be at most 2048 characters")]
    TooLong,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not contain a fragment")]
    Fragment,
    #[error(
        "points to a loopback or private address (set allow_private_webhook_targets to allow it)"
    )]
    Private,
}

/// A checked target: `http`/`https`, no credentials or fragment. The host
/// is an IP literal that must be public (unless private ones are allowed),
/// or a name that is checked again whenever it is resolved.
pub fn parse_target(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| TargetError::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(TargetError::Fragment);
    }
    let private = match url.host() {
        None => return Err(TargetError::NotHttp),
        Some(Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => is_local_name(name),
    };
    if private && !allow_private {
        return Err(TargetError::Private);
    }
    Ok(url)
}

/// `localhost` and names under it (RFC 6761), which always resolve to
/// loopback.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `ip` is a globally reachable unicast address: not loopback,
/// private (RFC 1918, unique local), link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation, benchmarking or
/// reserved. An IPv6 address that stands for an IPv4 one is judged as
/// that IPv4 address ([`embedded_v4`]).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address inside an IPv6 one: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated but still accepted in URLs),
/// the NAT64 well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052), which a
/// NAT64 gateway forwards to that IPv4 address, and 6to4
/// (`2002:aabb:ccdd::/48`, RFC 3056), which a 6to4 relay forwards to
/// `aa.bb.cc.dd`. `::` and `::1` come out as `0.0.0.0` and `0.0.0.1`,
/// which are not public either.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if ip.segments()[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    ip.to_ipv4()
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // 2001:db8::/32, documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // 2001::/32, Teredo: a relay forwards it to the IPv4 address it
        // hides (inverted) in its last 32 bits, whichever that is.
        || (first == 0x2001 && ip.segments()[1] == 0)
        // 64:ff9b:1::/48 local-use translation, 100::/64 discard.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1)
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]))
}

/// The subscribed event types, checked and without duplicates, in the
/// order of [`EVENT_TYPES`].
pub fn parse_events<S: AsRef<str>>(events: &[S]) -> Result<Vec<String>, String> {
    if events.is_empty() {
        return Err("must name at least one event type".into());
    }
    if let Some(bad) = events
        .iter()
        .map(AsRef::as_ref)
        .find(|e| !EVENT_TYPES.contains(e))
    {
        return Err(format!(
            "{bad:?} is not an event type; one of {}",
            EVENT_TYPES.join(", ")
        ));
    }
    Ok(EVENT_TYPES
        .iter()
        .filter(|t| events.iter().any(|e| e.as_ref() == **t))
        .map(|t| t.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            // 6to4 of 127.0.0.1, 10.0.0.1 and 169.254.169.254.
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:a9fe:a9fe::1",
            // Teredo (server 65.54.227.120, client 127.0.0.1 inverted).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            // 6to4 of 8.8.8.8.
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn targets() {
        assert!(parse_target("https://hooks.example.com/in", false).is_ok());
        assert_eq!(
            parse_target("ftp://example.com/", false),
            Err(TargetError::NotHttp)
        );
        assert_eq!(parse_target("not a url", false), Err(TargetError::NotHttp));
        assert_eq!(
            parse_target("https://u:p@example.com/", false),
            Err(TargetError::Credentials)
        );
        for private in [
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "http://localhost/",
            "http://api.localhost./",
            "http://10.0.0.5/",
            "http://0x7f000001/",
            "http://2130706433/",
        ] {
            assert_eq!(
                parse_target(private, false),
                Err(TargetError::Private),
                "{private}"
            );
            assert!(parse_target(private, true).is_ok(), "{private}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse_target(&long, false), Err(TargetError::TooLong));
    }

    #[test]
    fn events() {
        assert_eq!(
            parse_events(&[
                "access_key.revoked",
                "connection.created",
                "connection.created"
            ])
            .unwrap(),
            vec!["connection.created", "access_key.revoked"]
        );
        assert!(parse_events::<&str>(&[]).is_err());
        assert!(parse_events(&["connection.*"])
            .unwrap_err()
            .contains("connection.*"));
    }
}
