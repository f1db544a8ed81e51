//! Timestamps: stored as Unix milliseconds, shown as RFC 3339 UTC with `Z`.

use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 UTC, whole seconds, `Z` suffix: `2026-11-23T11:19:37Z`.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .replace_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (any offset) into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// An optional expiry as a client sends it: RFC 3339, strictly after `now`
/// (Unix ms).
pub fn parse_expiry(raw: Option<&str>, now: i64) -> Result<Option<i64>, String> {
    match raw {
        None => Ok(None),
        Some(text) => match parse_rfc3339(text) {
            Some(at) if at > now => Ok(Some(at)),
            Some(_) => Err("must be in the future".into()),
            None => Err("must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formatting drops sub-second precision and always ends in `Z`.
    #[test]
    fn formats_whole_seconds_utc() {
        assert_eq!(format_ms(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    /// An expiry must be a timestamp after the given now.
    #[test]
    fn expiries() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_expiry(None, now), Ok(None));
        assert_eq!(
            parse_expiry(Some("2023-11-14T22:13:21Z"), now),
            Ok(Some(1_700_000_001_000))
        );
        assert_eq!(
            parse_expiry(Some("2023-11-14T22:13:20Z"), now),
            Err("must be in the future".into())
        );
        assert!(parse_expiry(Some("soon"), now).is_err());
    }
}
