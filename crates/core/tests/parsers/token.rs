//! Access keys and PATs (SPEC §3): what is minted always parses as its
//! kind, its checksum is zlib's CRC32 in base62, and no single-character
//! change to a token survives the check.

use gatehouse_core::{
    token::{self, TokenHash, BODY_LEN, CHECKSUM_LEN, RANDOM_LEN},
    TokenError, TokenKind, TokenPrefixes,
};
use proptest::prelude::*;
use secrecy::ExposeSecret;

/// Prefixes as configuration accepts them: 1–16 of `[a-z0-9_]`, the two
/// different. Half the time one extends the other by letters and digits,
/// the one arrangement where a token's body could pass for the rest of
/// the longer prefix.
fn prefixes() -> impl Strategy<Value = TokenPrefixes> {
    let any_pair = ("[a-z0-9_]{1,16}", "[a-z0-9_]{1,16}")
        .prop_filter("prefixes differ", |(a, b)| a != b)
        .prop_map(|(access_key, pat)| TokenPrefixes { access_key, pat });
    let nested = ("[a-z0-9_]{1,8}", "[a-z0-9]{1,8}", any::<bool>()).prop_map(
        |(base, extension, key_is_shorter)| {
            let longer = format!("{base}{extension}");
            if key_is_shorter {
                TokenPrefixes {
                    access_key: base,
                    pat: longer,
                }
            } else {
                TokenPrefixes {
                    access_key: longer,
                    pat: base,
                }
            }
        },
    );
    prop_oneof![Just(TokenPrefixes::default()), any_pair, nested]
}

fn kind() -> impl Strategy<Value = TokenKind> {
    prop_oneof![
        Just(TokenKind::AccessKey),
        Just(TokenKind::PersonalAccessToken)
    ]
}

/// The other kind's prefix minus this kind's, when the other one extends
/// this one: what a random part may start with by chance.
fn confusable_head(prefixes: &TokenPrefixes, kind: TokenKind) -> String {
    let own = prefixes.prefix(kind);
    let other = match kind {
        TokenKind::AccessKey => &prefixes.pat,
        TokenKind::PersonalAccessToken => &prefixes.access_key,
    };
    other.strip_prefix(own).unwrap_or("").to_string()
}

/// (prefixes, kind, a well-formed token of that kind). The random part
/// starts with the confusable head half the time it has one.
fn minted() -> impl Strategy<Value = (TokenPrefixes, TokenKind, String)> {
    (prefixes(), kind(), "[A-Za-z0-9]{50}", any::<bool>()).prop_map(
        |(prefixes, kind, filler, lead)| {
            let head = confusable_head(&prefixes, kind);
            let head = if lead && head.bytes().all(|b| b.is_ascii_alphanumeric()) {
                head
            } else {
                String::new()
            };
            let random: String = format!("{head}{filler}").chars().take(RANDOM_LEN).collect();
            let prefix = prefixes.prefix(kind).to_string();
            let sum = token::checksum(&prefix, &random);
            let raw = format!("{prefix}{random}{sum}");
            (prefixes, kind, raw)
        },
    )
}

/// Base62 (`0-9A-Za-z`, most significant first), decoded by hand.
fn base62_decode(s: &str) -> u64 {
    s.bytes().fold(0u64, |n, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => panic!("not base62: {s:?}"),
        };
        n * 62 + u64::from(digit)
    })
}

proptest! {
    #![proptest_config(crate::config())]

    /// A token built by the SPEC §3 recipe parses as its own kind, with
    /// the SHA-256 of the whole string, for every valid pair of prefixes.
    #[test]
    fn a_well_formed_token_parses_as_its_kind((prefixes, kind, raw) in minted()) {
        let parsed = token::parse(&prefixes, &raw);
        prop_assert_eq!(parsed.map(|p| (p.kind, p.hash)), Ok((kind, TokenHash::of(&raw))));
    }

    /// What `generate` mints always parses, and its preview shows only
    /// the prefix, three characters and the checksum.
    #[test]
    fn a_minted_token_parses_and_verifies(prefixes in prefixes(), kind in kind()) {
        let new = token::generate(&prefixes, kind);
        let raw = new.token.expose_secret();
        let prefix = prefixes.prefix(kind);
        prop_assert_eq!(raw.len(), prefix.len() + BODY_LEN);
        let parsed = token::parse(&prefixes, raw).map(|p| (p.kind, p.hash));
        prop_assert_eq!(parsed, Ok((kind, new.hash)));
        let body = &raw[prefix.len()..];
        prop_assert_eq!(&new.checksum, &body[RANDOM_LEN..]);
        prop_assert_eq!(new.preview, format!("{prefix}{}…{}", &body[..3], new.checksum));
    }

    /// The checksum is six base62 characters whose value is the CRC32 of
    /// the prefix and random part (zlib's), left-padded with `0`.
    #[test]
    fn the_checksum_is_the_crc32_in_base62(prefix in "[a-z0-9_]{1,16}", random in "[A-Za-z0-9]{50}") {
        let sum = token::checksum(&prefix, &random);
        prop_assert_eq!(sum.len(), CHECKSUM_LEN);
        prop_assert!(sum.bytes().all(|b| b.is_ascii_alphanumeric()));
        let crc = crc32fast::hash(format!("{prefix}{random}").as_bytes());
        prop_assert_eq!(base62_decode(&sum), u64::from(crc));
    }

    /// Changing any one character of a valid token, to anything else,
    /// breaks its format or its checksum.
    #[test]
    fn one_changed_character_is_refused(
        (prefixes, _kind, raw) in minted(),
        at in any::<prop::sample::Index>(),
        with in crate::nasty_char(),
    ) {
        let mut chars: Vec<char> = raw.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        chars[i] = with;
        let tampered: String = chars.into_iter().collect();
        prop_assert!(token::parse(&prefixes, &tampered).is_err(), "{tampered:?} parsed");
    }

    /// Dropping or adding one character is refused too (the length is
    /// part of the format).
    #[test]
    fn one_character_more_or_less_is_refused(
        (prefixes, _kind, raw) in minted(),
        at in any::<prop::sample::Index>(),
        extra in "[A-Za-z0-9]",
    ) {
        let i = at.index(raw.len());
        let shorter = format!("{}{}", &raw[..i], &raw[i + 1..]);
        let longer = format!("{}{extra}{}", &raw[..i], &raw[i..]);
        prop_assert!(token::parse(&prefixes, &shorter).is_err());
        prop_assert!(token::parse(&prefixes, &longer).is_err());
    }

    /// Any string: no panic, and `Ok` only for a prefix, 50 random and 6
    /// checksum alphanumerics that agree; a string with neither prefix is
    /// a prefix error.
    #[test]
    fn arbitrary_strings_never_pass_by_accident(prefixes in prefixes(), raw in crate::nasty_string(80)) {
        let result = token::parse(&prefixes, &raw);
        let well_formed = |prefix: &str| {
            raw.strip_prefix(prefix).is_some_and(|body| {
                body.len() == BODY_LEN
                    && body.bytes().all(|b| b.is_ascii_alphanumeric())
                    && token::checksum(prefix, &body[..RANDOM_LEN]) == body[RANDOM_LEN..]
            })
        };
        match result {
            Ok(parsed) => prop_assert!(well_formed(prefixes.prefix(parsed.kind))),
            Err(TokenError::Prefix) => prop_assert!(
                !raw.starts_with(&prefixes.access_key) && !raw.starts_with(&prefixes.pat)
            ),
            Err(_) => {}
        }
    }
}
