//! Property tests for every parser of client input in `gatehouse-core`:
//! token format and checksum, user ids, hostnames, hosts, redirect URLs
//! and origins, forwarded chains, ids, scopes, webhook targets,
//! requirements, timestamps and OAuth2 endpoints. Each property states
//! what the parser promises (round trips, what it must refuse, what its
//! output looks like), and every parser takes arbitrary input without
//! panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod forwarded;
mod misc;
mod redirect;
mod token;
mod user_id;
mod validate;
mod webhook;

use proptest::prelude::*;

/// The configuration of every property here: proptest's 256 cases (or
/// `PROPTEST_CASES`), enough to find the edges the strategies aim at and
/// quick; no regression files (a failure prints its minimal input, which
/// is then kept as a plain test).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any string, biased towards the characters parsers trip over: ASCII
/// punctuation, whitespace and controls, invisible format characters,
/// combining marks, non-ASCII letters and astral-plane characters.
pub fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(nasty_char(), 0..=max).prop_map(|cs| cs.into_iter().collect())
}

pub fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::sample::select(vec![
            '\0', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}',
            '\u{ad}', '\u{200b}', '\u{200d}', '\u{200e}', '\u{2028}', '\u{202e}', '\u{2066}',
            '\u{3000}', '\u{feff}', '\u{301}', '\u{e9}', '\u{130}', '\u{212a}', '\u{ff0e}',
            '\u{1f600}', '\u{e0001}', '\u{10ffff}', '\u{fffd}', '%', '@', '\\', '/', '#', '?',
            ':', '[', ']',
        ]),
        1 => any::<char>(),
    ]
}
