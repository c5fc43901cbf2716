//! Duration literals (`"250ms"`, `"30s"`, `"1m30s"`) and their serde forms.

use std::time::Duration;

/// Parses a duration written as one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`:
/// `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"1m30s"`. The macros parse the same form at compile time.
///
/// The value is computed by the `humantime` crate; this function first checks the text against the
/// narrower grammar above (no spaces, no months or years, whose lengths vary), so that a mistake is
/// told in words that say what to write instead.
///
/// ```
/// use duraflow::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("30").unwrap_err().contains("without a unit"));
/// assert!(parse_duration("1y").unwrap_err().contains("unknown unit `y`"));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    check_grammar(text, s)?;
    let too_large = || format!("`{text}`: duration too large");
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_large(),
        other => format!("`{text}` is not a duration ({other}); write e.g. \"30s\" or \"1m30s\""),
    })?;
    // Durations are stored and compared in whole milliseconds (u64), and the macros refuse more at
    // compile time: so does this (the fuzzer found `1844674409551615h...` accepted here only).
    if d.as_millis() > u128::from(u64::MAX) {
        return Err(too_large());
    }
    Ok(d)
}

/// Checks `s` (the trimmed `text`) is `<number><unit>` parts with our units: the messages users see.
fn check_grammar(text: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty duration; write e.g. \"30s\", \"250ms\", \"5m\" or \"1m30s\"".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "`{text}` is not a duration: expected a number at `{}`; write e.g. \"30s\", \"250ms\" or \"1m30s\"",
                &s[start..]
            ));
        }
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        match &s[ustart..i] {
            "ms" | "s" | "m" | "h" | "d" => {}
            "" => {
                return Err(format!(
                "`{text}` has a number without a unit; add one of ms, s, m, h, d (e.g. \"{}s\")",
                &s[start..i]
            ))
            }
            other => {
                return Err(format!(
                    "`{text}` has unknown unit `{other}`; use ms, s, m, h or d"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn grammar_and_values() {
        let ms = |n| Ok(Duration::from_millis(n));
        assert_eq!(parse_duration("250ms"), ms(250));
        assert_eq!(parse_duration(" 30s "), ms(30_000));
        assert_eq!(parse_duration("1d2h3m4s5ms"), ms(93_784_005));
        assert!(parse_duration("")
            .unwrap_err()
            .starts_with("empty duration"));
        assert!(parse_duration("30").unwrap_err().contains("e.g. \"30s\""));
        assert!(parse_duration("5 minutes")
            .unwrap_err()
            .contains("without a unit"));
        assert!(parse_duration("2M")
            .unwrap_err()
            .contains("unknown unit `M`"));
        assert!(parse_duration("s")
            .unwrap_err()
            .contains("expected a number at `s`"));
        assert!(parse_duration("99999999999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }
}

pub(crate) mod serde_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(crate) mod serde_opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// `at_ms` plus `d` in whole milliseconds, saturating: a duration too long for an `i64` of
/// milliseconds (a stored or configured `u64::MAX` ms, `Duration::MAX`) means "never", not a time
/// wrapped into the past.
pub(crate) fn after_ms(at_ms: i64, d: Duration) -> i64 {
    at_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod after_tests {
    use super::*;

    #[test]
    fn after_ms_saturates() {
        assert_eq!(after_ms(10, Duration::from_millis(5)), 15);
        assert_eq!(after_ms(10, Duration::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(after_ms(10, Duration::MAX), i64::MAX);
        assert_eq!(
            after_ms(-10, Duration::from_millis(u64::MAX)),
            i64::MAX - 10
        );
    }
}
