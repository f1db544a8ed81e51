//! Who the client is behind proxies (SPEC §10): `X-Forwarded-For` is a
//! chain of addresses, each appended by the hop that saw the one before.
//! Only hops Gatehouse trusts can vouch for what they appended, so the
//! client is the right-most address that is not a trusted proxy; anything
//! to its left was written by the client and is ignored.

use std::net::IpAddr;

/// Networks whose forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// CIDRs (`10.0.0.0/8`) or single addresses (`192.0.2.7`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|raw| {
                let raw = raw.as_ref().trim();
                raw.parse::<ipnet::IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{raw:?} is not a CIDR such as 10.0.0.0/8 or an address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy. With no list, only the direct peer
    /// is trusted (one proxy in front): see [`client_ip`].
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped IPv6 as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether the direct peer's forwarded headers are believed at all.
pub fn peer_is_trusted(peer: IpAddr, trusted: &TrustedProxies) -> bool {
    trusted.is_empty() || trusted.contains(peer)
}

/// The client behind `peer`, given the `X-Forwarded-For` values sent (in
/// order): walking from the right, past the peer and every trusted proxy,
/// the first address that is not one. With no trusted list, the peer is
/// the one trusted proxy and the client is the right-most forwarded
/// address. An entry that is not an address stops the walk at the last
/// trusted hop, which is then taken as the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical(peer);
    if !peer_is_trusted(peer, trusted) {
        return peer;
    }
    let chain: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut last_trusted = peer;
    for raw in chain.iter().rev() {
        let Some(ip) = parse_hop(raw) else {
            return last_trusted;
        };
        if trusted.is_empty() || !trusted.contains(ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// An address as proxies write it: bare, `[v6]`, `v4:port` or `[v6]:port`.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end].parse::<IpAddr>().ok().map(canonical);
    }
    let (host, port) = raw.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7"]).unwrap();
        // A client that forges the left of the chain gains nothing.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["6.6.6.6, 203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        // Several trusted hops are walked past.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["198.51.100.4, 192.0.2.7", "10.1.1.1"],
                &trusted
            ),
            ip("198.51.100.4")
        );
        // An untrusted peer's headers are not believed.
        assert_eq!(
            client_ip(ip("203.0.113.50"), ["1.2.3.4"], &trusted),
            ip("203.0.113.50")
        );
        // Garbage stops at the last trusted hop.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["1.2.3.4, not-an-ip"], &trusted),
            ip("10.0.0.2")
        );
        // All trusted: the left-most trusted hop.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["10.0.0.9"], &trusted),
            ip("10.0.0.9")
        );
        // Ports and brackets, and IPv4-mapped peers.
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.2"),
                ["[2001:db8::1]:443, 203.0.113.1:5000"],
                &trusted
            ),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn no_list_trusts_the_peer_alone() {
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["6.6.6.6, 203.0.113.9"], &none),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), [], &none), ip("127.0.0.1"));
    }

    #[test]
    fn parse_errors_name_the_entry() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"])
            .unwrap_err()
            .contains("10.0.0.0/33"));
        assert!(TrustedProxies::parse(&["::1", "fd00::/8"]).is_ok());
    }
}
