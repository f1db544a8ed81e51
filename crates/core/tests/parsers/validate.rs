//! Names, slugs, emails, app hostnames and `Host` values: what each
//! accepts is already in its stored form, and the limits hold for every
//! spelling.

use gatehouse_core::validate::{normalize_host, Email, Hostname, Name, Slug, BLANK};
use proptest::prelude::*;

/// A DNS label: 1–63 of `[a-z0-9-]`, no `-` at either end, with a letter
/// somewhere so a dotted quad never comes out.
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?".prop_filter("has a letter", |l| {
        l.bytes().any(|b| b.is_ascii_lowercase())
    })
}

/// A valid app hostname: two or more labels, at most 253 characters.
fn hostname() -> impl Strategy<Value = String> {
    proptest::collection::vec(label(), 2..6)
        .prop_map(|labels| labels.join("."))
        .prop_filter("at most 253", |h| h.len() <= 253 && h != "localhost")
}

/// `s` with each ASCII letter upper-cased or not, as `mask` says.
fn recase(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #![proptest_config(crate::config())]

    /// A name is what was sent, trimmed: 1–100 characters, no controls,
    /// and it parses to itself.
    #[test]
    fn names_are_trimmed_fixed_points(raw in crate::nasty_string(120)) {
        match Name::parse(&raw) {
            Ok(name) => {
                let s = name.as_str();
                prop_assert_eq!(s, raw.trim());
                prop_assert!((1..=100).contains(&s.chars().count()));
                prop_assert!(!s.chars().any(char::is_control));
                prop_assert_eq!(Name::parse(s), Ok(name.clone()));
            }
            Err(m) => prop_assert!(m != BLANK || raw.trim().is_empty()),
        }
    }

    /// A slug is `[a-z0-9-]{1,63}` without `-` at either end, exactly.
    #[test]
    fn slugs_match_their_pattern(raw in prop_oneof!["[a-z0-9-]{0,70}", crate::nasty_string(70)]) {
        let expected = (1..=63).contains(&raw.len())
            && raw.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        prop_assert_eq!(Slug::parse(&raw).is_ok(), expected, "{:?}", raw);
    }

    /// A slug derived from any name is a valid slug, and a valid slug
    /// derives itself.
    #[test]
    fn derived_slugs_are_valid(name in crate::nasty_string(100), slug in "[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?") {
        if let Some(derived) = Slug::from_name(&name) {
            prop_assert!(Slug::parse(derived.as_str()).is_ok());
        }
        let collapsed = !slug.contains("--");
        if collapsed {
            prop_assert_eq!(Slug::from_name(&slug).map(Slug::into_inner), Some(slug));
        }
    }

    /// An accepted email is lower-cased, has one `@` and no whitespace or
    /// controls, and parses to itself.
    #[test]
    fn emails_are_lowercase_fixed_points(raw in prop_oneof![
        "[A-Za-z0-9.+_-]{1,20}@[A-Za-z0-9-]{1,20}\\.[A-Za-z]{2,6}",
        crate::nasty_string(60),
    ]) {
        if let Ok(email) = Email::parse(&raw) {
            let s = email.as_str();
            prop_assert_eq!(s.to_ascii_lowercase(), s);
            prop_assert_eq!(s.matches('@').count(), 1);
            prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert!(s.len() <= 254);
            prop_assert_eq!(Email::parse(s), Ok(email.clone()));
        }
    }

    /// A valid hostname is accepted in any case, with a trailing dot and
    /// surrounding spaces, as its lower-case form; that form parses to
    /// itself.
    #[test]
    fn hostnames_are_stored_lowercase(
        host in hostname(),
        mask in proptest::collection::vec(any::<bool>(), 1..8),
        dot in any::<bool>(),
    ) {
        let sent = format!(" {}{} ", recase(&host, &mask), if dot { "." } else { "" });
        let parsed = Hostname::parse(&sent).map(Hostname::into_inner);
        prop_assert_eq!(parsed.as_deref(), Ok(host.as_str()));
        prop_assert_eq!(Hostname::parse(&host).map(Hostname::into_inner), Ok(host.clone()));
    }

    /// Past 253 characters a hostname is refused, however valid its labels.
    #[test]
    fn hostnames_over_253_characters_are_refused(labels in proptest::collection::vec(label(), 4..12)) {
        let mut host = labels.join(".");
        while host.len() <= 253 {
            host = format!("{host}.{host}");
        }
        prop_assert!(Hostname::parse(&host).is_err());
    }

    /// Whatever is accepted is lower-case ASCII DNS: `[a-z0-9.-]`, labels
    /// of 1–63, two or more of them, not all digits, at most 253 in all.
    #[test]
    fn accepted_hostnames_are_dns_names(raw in prop_oneof![
        "[a-zA-Z0-9.-]{0,80}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        crate::nasty_string(80),
    ]) {
        if let Ok(host) = Hostname::parse(&raw) {
            let s = host.as_str();
            prop_assert!(s.len() <= 253);
            prop_assert!(s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-')));
            let labels: Vec<&str> = s.split('.').collect();
            prop_assert!(labels.len() >= 2);
            prop_assert!(labels.iter().all(|l| (1..=63).contains(&l.len())));
            prop_assert!(!labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())));
            prop_assert!(s.parse::<std::net::IpAddr>().is_err());
        }
    }

    /// A `Host` value compares as its lower-case name, without the port
    /// and one trailing dot.
    #[test]
    fn host_headers_normalise_to_the_name(
        host in hostname(),
        mask in proptest::collection::vec(any::<bool>(), 1..8),
        dot in any::<bool>(),
        port in proptest::option::of(any::<u16>()),
    ) {
        let mut sent = recase(&host, &mask);
        if dot {
            sent.push('.');
        }
        if let Some(port) = port {
            sent = format!("{sent}:{port}");
        }
        prop_assert_eq!(normalize_host(&sent), Some(host));
    }

    /// IPv6 literals keep their brackets and lose the port.
    #[test]
    fn bracketed_ipv6_hosts_lose_the_port(ip in any::<std::net::Ipv6Addr>(), port in proptest::option::of(any::<u16>())) {
        let sent = match port {
            Some(port) => format!("[{ip}]:{port}"),
            None => format!("[{ip}]"),
        };
        prop_assert_eq!(normalize_host(&sent), Some(format!("[{ip}]")));
    }

    /// Any `Host` value: no panic; what comes out is non-empty and has no
    /// upper-case ASCII.
    #[test]
    fn any_host_value_normalises_safely(raw in crate::nasty_string(80)) {
        if let Some(host) = normalize_host(&raw) {
            prop_assert!(!host.is_empty());
            prop_assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
        }
    }
}
