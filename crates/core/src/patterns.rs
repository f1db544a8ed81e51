//! The regular expressions the OpenAPI document gives as `pattern` for the
//! text fields that [`crate::validate`] checks, written so that a string
//! matches exactly when `parse` accepts it. They use only what Python's
//! `re`, the Rust `regex` crate and ECMAScript share (`\uXXXX` escapes;
//! `\UXXXXXXXX` above the BMP, which ECMAScript lacks), so API fuzzers
//! and validators read them alike.

use std::{fmt::Write, sync::OnceLock};

use unicode_general_category::{get_general_category, GeneralCategory};

/// `char::is_whitespace` (Unicode `White_Space`), what `str::trim` removes.
const WHITESPACE: &str =
    r"\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// `char::is_control` (category Cc).
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// [`crate::validate::Name`]: after trimming whitespace, 1–100 characters
/// without control characters.
pub fn name() -> String {
    let edge = format!("[^{CONTROL}{WHITESPACE}]");
    format!("^[{WHITESPACE}]*{edge}([^{CONTROL}]{{0,98}}{edge})?[{WHITESPACE}]*$")
}

/// [`crate::validate::Slug`]: `[a-z0-9-]{1,63}`, not starting or ending
/// with `-`.
pub const SLUG: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/// [`crate::validate::UserId`] (without its length, which is a
/// `maxLength` of 250): not blank, no leading or trailing whitespace, no
/// control, format, line- or paragraph-separator characters.
pub fn user_id() -> &'static str {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let invisible = format!("{CONTROL}{}", class_of(is_invisible));
        let edge = format!("[^{invisible}{WHITESPACE}]");
        format!("^{edge}([^{invisible}]*{edge})?$")
    })
}

fn is_invisible(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The inside of a character class holding every character for which
/// `pick` is true, as ranges of escapes.
fn class_of(pick: fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut run: Option<(char, char)> = None;
    let flush = |out: &mut String, (lo, hi): (char, char)| {
        escape(out, lo);
        if hi != lo {
            out.push('-');
            escape(out, hi);
        }
    };
    for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
        if !pick(c) {
            continue;
        }
        run = match run {
            Some((lo, hi)) if u32::from(hi) + 1 == u32::from(c) => Some((lo, c)),
            Some(done) => {
                flush(&mut out, done);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some(done) = run {
        flush(&mut out, done);
    }
    out
}

fn escape(out: &mut String, c: char) {
    let n = u32::from(c);
    let _ = if n <= 0xFFFF {
        write!(out, "\\u{n:04X}")
    } else {
        write!(out, "\\U{n:08X}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated classes name the characters the validators refuse.
    #[test]
    fn classes_hold_what_they_say() {
        let invisible = class_of(is_invisible);
        for c in [
            "\\u200B-\\u200F",
            "\\u2028-\\u202E",
            "\\uFEFF",
            "\\U000E0001",
        ] {
            assert!(invisible.contains(c), "{c} missing from {invisible}");
        }
        assert!(!invisible.contains("\\u0041"));
        assert!(user_id().starts_with("^[^\\u0000-\\u001F"));
        assert!(name().contains("{0,98}"));
    }
}
