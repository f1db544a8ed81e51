//! `X-Forwarded-For` (SPEC §10): the client is the right-most address no
//! trusted proxy vouches past, so nothing a client writes on the left of
//! the chain can move it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gatehouse_core::forwarded::{client_ip, peer_is_trusted, TrustedProxies};
use proptest::prelude::*;

/// 10.0.0.0/8 and 2001:db8:1::/48 are the proxies in these properties.
fn trusted() -> TrustedProxies {
    TrustedProxies::parse(&["10.0.0.0/8", "2001:db8:1::/48"]).unwrap()
}

fn proxy_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
        any::<[u16; 5]>().prop_map(|s| IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 1, s[0], s[1], s[2], s[3], s[4]
        ))),
    ]
}

fn outside_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<Ipv4Addr>()
            .prop_filter("not 10/8", |ip| ip.octets()[0] != 10)
            .prop_map(IpAddr::V4),
        any::<Ipv6Addr>()
            .prop_filter("not a proxy", |ip| {
                let s = ip.segments();
                !(s[0] == 0x2001 && s[1] == 0xdb8 && s[2] == 1) && ip.to_ipv4_mapped().is_none()
            })
            .prop_map(IpAddr::V6),
    ]
}

/// How a proxy may write a hop: bare, bracketed, with a port.
fn spell(ip: IpAddr, style: u8, port: u16) -> String {
    match (ip, style % 3) {
        (IpAddr::V4(v4), 1) => format!("{v4}:{port}"),
        (IpAddr::V6(v6), 1) => format!("[{v6}]:{port}"),
        (IpAddr::V6(v6), 2) => format!("[{v6}]"),
        (ip, _) => ip.to_string(),
    }
}

/// Hops as header values: joined by `, ` and split over several headers.
fn headers(hops: &[String], split: usize) -> Vec<String> {
    if hops.is_empty() {
        return Vec::new();
    }
    let at = split % hops.len();
    let (a, b) = hops.split_at(at);
    [a, b]
        .into_iter()
        .filter(|h| !h.is_empty())
        .map(|h| h.join(", "))
        .collect()
}

/// One header value: hops that are proxies, other addresses or junk.
fn hop_list() -> impl Strategy<Value = String> {
    let hop = prop_oneof![
        crate::nasty_string(12),
        proxy_ip().prop_map(|ip| ip.to_string()),
        outside_ip().prop_map(|ip| ip.to_string()),
        (proxy_ip(), any::<u8>(), any::<u16>())
            .prop_map(|(ip, style, port)| spell(ip, style, port)),
    ];
    proptest::collection::vec(hop, 0..4).prop_map(|hops| hops.join(", "))
}

/// The address in a hop, read independently of the parser: bare,
/// `[v6]`, `[v6]:port` or `v4:port`; IPv4-mapped IPv6 as IPv4.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let inner = hop
        .strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .unwrap_or(hop);
    let ip = inner.parse::<IpAddr>().ok().or_else(|| {
        let (v4, port) = hop.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    })?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

proptest! {
    #![proptest_config(crate::config())]

    /// Whatever a client puts to the left of the real client's address,
    /// the answer is that address, however the proxies spelled their hops.
    #[test]
    fn forged_left_entries_never_move_the_client(
        forged in proptest::collection::vec(prop_oneof![crate::nasty_string(20), outside_ip().prop_map(|ip| ip.to_string())], 0..4),
        client in outside_ip(),
        proxies in proptest::collection::vec(proxy_ip(), 0..4),
        peer in proxy_ip(),
        styles in any::<[u8; 5]>(),
        port in any::<u16>(),
        split in any::<usize>(),
    ) {
        let forged: Vec<String> = forged.into_iter().map(|f| f.replace(',', "")).collect();
        let mut hops = forged;
        hops.push(spell(client, styles[0], port));
        for (i, p) in proxies.iter().enumerate() {
            hops.push(spell(*p, styles[1 + i % 4], port));
        }
        let values = headers(&hops, split);
        let got = client_ip(peer, values.iter().map(String::as_str), &trusted());
        prop_assert_eq!(got, client);
    }

    /// A peer that is not a trusted proxy is the client, whatever it sent.
    #[test]
    fn an_untrusted_peer_is_the_client(peer in outside_ip(), values in proptest::collection::vec(crate::nasty_string(40), 0..3)) {
        prop_assert!(!peer_is_trusted(peer, &trusted()));
        prop_assert_eq!(client_ip(peer, values.iter().map(String::as_str), &trusted()), peer);
    }

    /// With no trusted list only the peer is a proxy: the client is the
    /// right-most address written, or the peer when there is none.
    #[test]
    fn without_a_list_the_last_hop_is_the_client(
        peer in any::<IpAddr>(),
        hops in proptest::collection::vec(outside_ip(), 0..5),
        styles in any::<[u8; 5]>(),
        port in any::<u16>(),
    ) {
        let spelled: Vec<String> = hops.iter().enumerate().map(|(i, ip)| spell(*ip, styles[i % 5], port)).collect();
        let values = headers(&spelled, 1);
        let got = client_ip(peer, values.iter().map(String::as_str), &TrustedProxies::default());
        let expected = hops.last().copied().unwrap_or(match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        });
        prop_assert_eq!(got, expected);
    }

    /// Any header values: no panic, and the answer is the peer or an
    /// address that appears in them.
    #[test]
    fn the_client_is_the_peer_or_a_written_hop(peer in proxy_ip(), values in proptest::collection::vec(hop_list(), 0..3)) {
        let got = client_ip(peer, values.iter().map(String::as_str), &trusted());
        let written = values.iter().flat_map(|v| v.split(',')).any(|hop| hop_address(hop.trim()) == Some(got));
        prop_assert!(got == peer || written, "{got} from {values:?}");
    }

    /// Any list of entries: no panic; parsing either succeeds or names
    /// the entry that is wrong.
    #[test]
    fn proxy_lists_parse_or_name_the_culprit(items in proptest::collection::vec(crate::nasty_string(20), 0..4)) {
        if let Err(message) = TrustedProxies::parse(&items) {
            let named = items.iter().any(|i| message.contains(&format!("{:?}", i.trim())));
            prop_assert!(named, "{}", message);
        }
    }
}
