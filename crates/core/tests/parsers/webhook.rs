//! Webhook targets and event lists (SPEC §9): a target is an http(s) URL
//! without credentials or fragment, and a private address is refused in
//! every spelling a URL can give it.

use std::net::Ipv4Addr;

use gatehouse_core::webhook::{parse_events, parse_target, TargetError, EVENT_TYPES, MAX_URL_LEN};
use proptest::prelude::*;

/// An IPv4 address no webhook may reach: loopback, RFC 1918, link-local
/// (cloud metadata), shared (CGNAT), "this network".
fn private_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(127, a, b, c)),
        any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(10, a, b, c)),
        (16u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(172, b, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(192, 168, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(169, 254, c, d)),
        (64u8..128, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(100, b, c, d)),
        any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(0, a, b, c)),
    ]
}

/// The ways a URL host can spell an IPv4 address: dotted, one decimal
/// number, hex, octal, IPv4-mapped, IPv4-compatible and NAT64 (RFC 6052)
/// IPv6.
fn spell_v4(ip: Ipv4Addr, style: u8) -> String {
    let n = u32::from(ip);
    let [a, b, c, d] = ip.octets();
    match style % 7 {
        0 => ip.to_string(),
        1 => n.to_string(),
        2 => format!("0x{n:x}"),
        3 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        4 => format!("[::ffff:{ip}]"),
        5 => format!("[::{ip}]"),
        _ => format!("[64:ff9b::{ip}]"),
    }
}

proptest! {
    #![proptest_config(crate::config())]

    /// A private IPv4 address is refused however the URL spells it, and
    /// allowed when private targets are.
    #[test]
    fn private_addresses_are_refused_in_every_spelling(
        ip in private_v4(),
        style in any::<u8>(),
        scheme in prop_oneof![Just("http"), Just("https")],
        port in proptest::option::of(any::<u16>()),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{}{port}/hook", spell_v4(ip, style));
        prop_assert_eq!(parse_target(&url, false), Err(TargetError::Private), "{}", url);
        prop_assert!(parse_target(&url, true).is_ok(), "{}", url);
    }

    /// Whatever is accepted is http(s), at most 2048 characters, without
    /// credentials or fragment, with a host; with private targets refused,
    /// an address host is public and a name is not under `localhost`.
    #[test]
    fn accepted_targets_are_plain_http_urls(raw in prop_oneof![
        crate::nasty_string(60),
        crate::nasty_string(40).prop_map(|s| format!("https://{s}")),
        crate::nasty_string(40).prop_map(|s| format!("http://{s}/in")),
    ], allow_private in any::<bool>()) {
        if let Ok(url) = parse_target(&raw, allow_private) {
            prop_assert!(raw.len() <= MAX_URL_LEN);
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert!(url.fragment().is_none());
            let host = url.host().unwrap();
            if !allow_private {
                match host {
                    url::Host::Ipv4(ip) => prop_assert!(gatehouse_core::webhook::is_public(ip.into())),
                    url::Host::Ipv6(ip) => prop_assert!(gatehouse_core::webhook::is_public(ip.into())),
                    url::Host::Domain(d) => {
                        let d = d.trim_end_matches('.');
                        prop_assert!(d != "localhost" && !d.ends_with(".localhost"));
                    }
                }
            }
        }
    }

    /// The event list comes back deduplicated, in SPEC order, and only
    /// ever holds known event types; one unknown name refuses the list.
    #[test]
    fn event_lists_are_known_and_ordered(picks in proptest::collection::vec(prop_oneof![
        4 => proptest::sample::select(EVENT_TYPES.to_vec()).prop_map(str::to_string),
        1 => crate::nasty_string(20),
    ], 0..10)) {
        match parse_events(&picks) {
            Ok(events) => {
                prop_assert!(!events.is_empty());
                let order: Vec<usize> = events.iter().map(|e| EVENT_TYPES.iter().position(|t| t == e).unwrap()).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(picks.iter().all(|p| events.contains(p)));
            }
            Err(_) => prop_assert!(picks.is_empty() || picks.iter().any(|p| !EVENT_TYPES.contains(&p.as_str()))),
        }
    }
}
