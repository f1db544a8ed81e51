//! End-user ids (SPEC §6): no control or invisible format characters,
//! no whitespace at either edge, 1–250 characters, stored in NFC.

use gatehouse_core::validate::{UserId, BLANK};
use proptest::prelude::*;
use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::{is_nfc, UnicodeNormalization};

fn invisible(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Characters an honest id is made of: ASCII letters, digits and
/// punctuation, inner spaces, accented letters (composed or not), CJK and
/// emoji.
fn id_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('!', '~'),
        1 => Just(' '),
        1 => proptest::sample::select(vec!['é', 'ß', 'ø', 'İ', 'Å', '\u{301}', '\u{308}', '\u{323}', '漢', '字', '😀', 'ﬁ', 'Ω', '\u{2126}', '\u{212b}']),
    ]
}

fn clean_id() -> impl Strategy<Value = String> {
    proptest::collection::vec(id_char(), 1..=250)
        .prop_map(|cs| cs.into_iter().collect::<String>())
        .prop_filter("no whitespace at the edges", |s| {
            !s.trim().is_empty() && s.trim() == s
        })
}

/// Every character a user id must never hold: controls (C0, DEL, C1),
/// format characters (bidi controls, zero-width, BOM, soft hyphen, tag
/// characters) and the line and paragraph separators.
fn forbidden_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('\0', '\u{1f}'),
        proptest::char::range('\u{7f}', '\u{9f}'),
        proptest::sample::select(vec![
            '\u{ad}',
            '\u{61c}',
            '\u{180e}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{fff9}',
            '\u{e0001}',
            '\u{e007f}',
        ]),
        any::<char>().prop_filter("control or format", |c| c.is_control() || invisible(*c)),
    ]
}

proptest! {
    #![proptest_config(crate::config())]

    /// A clean id is accepted, as its NFC form.
    #[test]
    fn clean_ids_are_kept_in_nfc(raw in clean_id()) {
        let nfc: String = raw.nfc().collect();
        prop_assume!(nfc.chars().count() <= 250);
        prop_assert_eq!(UserId::parse(&raw).map(UserId::into_inner), Ok(nfc));
    }

    /// A control or format character anywhere makes the id invalid.
    #[test]
    fn hidden_characters_are_refused(
        raw in clean_id(),
        at in any::<prop::sample::Index>(),
        bad in forbidden_char(),
    ) {
        let mut chars: Vec<char> = raw.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let id: String = chars.into_iter().collect();
        prop_assert!(UserId::parse(&id).is_err(), "{id:?} accepted");
    }

    /// Whitespace of any kind at either edge makes the id invalid.
    #[test]
    fn whitespace_at_an_edge_is_refused(
        raw in clean_id(),
        space in any::<char>().prop_filter("whitespace", |c| c.is_whitespace()),
        leading in any::<bool>(),
    ) {
        let id = if leading { format!("{space}{raw}") } else { format!("{raw}{space}") };
        prop_assert!(UserId::parse(&id).is_err(), "{id:?} accepted");
    }

    /// Whatever is accepted is NFC, 1–250 characters, free of controls,
    /// format characters and edge whitespace, and parses to itself: the
    /// stored form is a fixed point (NFC is idempotent here).
    #[test]
    fn accepted_ids_are_fixed_points(raw in crate::nasty_string(300)) {
        match UserId::parse(&raw) {
            Ok(id) => {
                let s = id.as_str();
                prop_assert!(is_nfc(s));
                prop_assert!((1..=250).contains(&s.chars().count()));
                prop_assert!(!s.chars().any(|c| c.is_control() || invisible(c)));
                prop_assert_eq!(s.trim(), s);
                prop_assert_eq!(UserId::parse(s), Ok(id.clone()));
            }
            Err(message) => {
                prop_assert!(!message.is_empty());
                if raw.trim().is_empty() {
                    prop_assert_eq!(message, BLANK);
                }
            }
        }
    }

    /// The limit counts characters after NFC: 251 of them never pass.
    #[test]
    fn more_than_250_characters_are_refused(c in id_char().prop_filter("visible, composes alone", |c| !c.is_whitespace() && !('\u{300}'..='\u{36f}').contains(c)), extra in 1usize..40) {
        let long: String = std::iter::repeat_n(c, 250 + extra).collect();
        prop_assume!(long.nfc().count() > 250);
        prop_assert!(UserId::parse(&long).is_err());
    }
}
