//! Redirect URLs and allowed origins (SPEC §6): https anywhere, http only
//! on `localhost` and `*.localhost`, never credentials; an app's
//! `allowed_redirect_origins` (compared as `parse_origin` stores them with
//! `RedirectUrl::origin`) match exactly the URLs of the same scheme, host
//! and port.

use gatehouse_core::validate::{parse_origin, RedirectUrl};
use proptest::prelude::*;

/// The parts of a URL, so what a URL should do is known without parsing
/// it.
#[derive(Debug, Clone)]
struct Parts {
    scheme: String,
    userinfo: Option<String>,
    host: String,
    port: Option<u16>,
    tail: String,
}

impl Parts {
    fn url(&self) -> String {
        let userinfo = self
            .userinfo
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{userinfo}{}{port}{}",
            self.scheme, self.host, self.tail
        )
    }

    fn scheme(&self) -> String {
        self.scheme.to_ascii_lowercase()
    }

    fn host(&self) -> String {
        self.host.to_ascii_lowercase()
    }

    fn local(&self) -> bool {
        let host = self.host();
        host == "localhost" || host.ends_with(".localhost")
    }

    /// The port a browser would connect to.
    fn effective_port(&self) -> Option<u16> {
        self.port.or(match self.scheme().as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })
    }

    /// What SPEC §6 accepts as a `redirect_url`.
    fn allowed(&self) -> bool {
        let scheme_ok = self.scheme() == "https" || (self.scheme() == "http" && self.local());
        scheme_ok && self.userinfo.is_none()
    }

    fn same_origin(&self, other: &Parts) -> bool {
        self.scheme() == other.scheme()
            && self.host() == other.host()
            && self.effective_port() == other.effective_port()
    }
}

fn scheme() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("https".to_string()),
        2 => Just("http".to_string()),
        1 => proptest::sample::select(vec!["HTTPS", "Https", "HTTP", "ftp", "javascript", "data", "file", "ws", "wss", "blob"]).prop_map(str::to_string),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "app.example.com",
            "App.Example.COM",
            "example.com",
            "evil.example",
            "localhost",
            "LOCALHOST",
            "acme.localhost",
            "a.b.localhost",
            "localhost.example.com",
            "example.localhost.com",
            "xn--bcher-kva.example",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,10}\\.(com|net|localhost)",
    ]
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        scheme(),
        proptest::option::weighted(0.1, prop_oneof!["[a-z]{1,5}", "[a-z]{1,5}:[a-z]{0,5}"]),
        host(),
        proptest::option::weighted(
            0.4,
            prop_oneof![Just(443u16), Just(80u16), Just(8443u16), any::<u16>()],
        ),
        prop_oneof!["", "/", "/[a-z/]{0,12}", "/done\\?x=[0-9]{1,3}", "/p#frag"],
    )
        .prop_map(|(scheme, userinfo, host, port, tail)| Parts {
            scheme,
            userinfo,
            host,
            port,
            tail,
        })
}

/// An origin as an operator writes it: scheme, host and maybe a port,
/// perhaps with a trailing `/`.
fn origin_parts() -> impl Strategy<Value = Parts> {
    (parts(), any::<bool>()).prop_map(|(mut p, slash)| {
        p.userinfo = None;
        p.tail = if slash { "/".into() } else { String::new() };
        p
    })
}

proptest! {
    #![proptest_config(crate::config())]

    /// A redirect URL is accepted exactly when it is https, or http on a
    /// localhost name, and carries no credentials; it is kept as sent.
    #[test]
    fn redirect_urls_are_https_or_local_http(p in parts()) {
        let url = p.url();
        let parsed = RedirectUrl::parse(&url);
        prop_assert_eq!(parsed.is_ok(), p.allowed(), "{}", url);
        if let Ok(r) = parsed {
            prop_assert_eq!(r.as_str(), url.as_str());
        }
    }

    /// An origin is accepted when its scheme and host would be, and is
    /// stored canonically: parsing the stored form gives it back.
    #[test]
    fn origins_are_stored_canonically(p in origin_parts()) {
        let sent = p.url();
        match parse_origin(&sent) {
            Ok(origin) => {
                prop_assert!(p.allowed(), "{} accepted", sent);
                prop_assert_eq!(parse_origin(&origin), Ok(origin.clone()));
                prop_assert!(!origin.ends_with('/'));
                prop_assert_eq!(origin.to_ascii_lowercase(), origin);
            }
            Err(_) => prop_assert!(!p.allowed(), "{} refused", sent),
        }
    }

    /// The allowed-origins check matches a redirect URL to an origin
    /// exactly when scheme, host and effective port are the same: a
    /// default port written out or left off, and the host's case, make no
    /// difference; anything else does.
    #[test]
    fn an_origin_matches_only_its_own_urls(url in parts(), origin in origin_parts()) {
        let (Ok(redirect), Ok(allowed)) = (RedirectUrl::parse(&url.url()), parse_origin(&origin.url())) else {
            return Ok(());
        };
        prop_assert_eq!(
            redirect.origin() == allowed,
            url.same_origin(&origin),
            "{} against {}", url.url(), origin.url()
        );
    }

    /// Any string: no panic; whatever is accepted parses as an absolute
    /// URL with an allowed scheme and host and no credentials, and its
    /// origin is one `parse_origin` accepts.
    #[test]
    fn arbitrary_redirects_are_safe(raw in prop_oneof![
        crate::nasty_string(60),
        crate::nasty_string(30).prop_map(|s| format!("https://{s}")),
        crate::nasty_string(30).prop_map(|s| format!("http://localhost{s}")),
    ]) {
        if let Ok(r) = RedirectUrl::parse(&raw) {
            let url = url::Url::parse(r.as_str()).unwrap();
            let host = url.host_str().unwrap().to_ascii_lowercase();
            let local = host == "localhost" || host.ends_with(".localhost");
            prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && local));
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert_eq!(parse_origin(&r.origin()), Ok(r.origin()));
        }
        if let Ok(origin) = parse_origin(&raw) {
            prop_assert_eq!(parse_origin(&origin), Ok(origin.clone()));
        }
    }
}
