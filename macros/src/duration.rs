//! Compile-time parsing of duration literals, the grammar of `duraflow::parse_duration` (a proc-macro
//! crate cannot depend on the runtime, so this small grammar check is duplicated here; both leave the
//! arithmetic to `humantime`).

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"1m30s"`: one or more `<number><unit>` parts.
/// Returns whole milliseconds, or a lowercase message that says what to write instead. The value is
/// `humantime`'s; the grammar check in front of it (our units only: no spaces, months or years)
/// gives the messages.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    const EXAMPLES: &str = "write e.g. \"250ms\", \"30s\", \"5m\", \"2h\", \"1d\" or \"1m30s\"";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {EXAMPLES}"));
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
                "`{text}` is not a duration: expected a number at `{}`; {EXAMPLES}",
                &s[start..]
            ));
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        match &s[unit_start..i] {
            "ms" | "s" | "m" | "h" | "d" => {}
            "" => {
                return Err(format!(
                    "`{text}` has a number without a unit; add one of `ms`, `s`, `m`, `h`, `d`, e.g. \"{}s\"",
                    &s[start..i]
                ))
            }
            other => {
                return Err(format!(
                    "`{text}` has unknown unit `{other}`; use `ms`, `s`, `m`, `h` or `d`, e.g. \"30s\""
                ))
            }
        }
    }
    let too_large = || format!("`{text}` is too large a duration");
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_large(),
        other => format!("`{text}` is not a duration ({other}); {EXAMPLES}"),
    })?;
    // At most u64::MAX nanoseconds (584 years), as `duraflow::parse_duration` accepts.
    u64::try_from(d.as_nanos()).map_err(|_| too_large())?;
    Ok(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn grammar() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("2h"), Ok(7_200_000));
        assert_eq!(parse_millis("1d"), Ok(86_400_000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert!(parse_millis("30").is_err());
        assert!(parse_millis("30sec").is_err());
        assert!(parse_millis("").is_err());
        assert!(parse_millis("s").is_err());
        assert!(parse_millis("99999999999999999999999d").is_err());
    }

    /// What the macros accept at compile time, `duraflow::parse_duration` accepts at run time, with
    /// the same value, and the other way round (but for durations past `u64` milliseconds, which
    /// only the runtime's `Duration` holds): fuzzed from the `duration` corpus.
    fn agrees_with_the_runtime(data: &[u8]) -> String {
        let text = String::from_utf8_lossy(data);
        let compile_time = parse_millis(&text);
        let run_time = duraflow_runtime::parse_duration(&text);
        match (&compile_time, &run_time) {
            (Ok(ms), Ok(d)) => assert_eq!(
                u128::from(*ms),
                d.as_millis(),
                "`{text}`: the macros and the runtime parse different values"
            ),
            (Err(_), Ok(d)) if d.as_millis() > u128::from(u64::MAX) => {}
            (Err(m), Err(_)) => assert!(m.contains("duration") || m.contains(text.as_ref())),
            _ => panic!("`{text}`: the macros say {compile_time:?}, the runtime says {run_time:?}"),
        }
        match compile_time {
            Ok(_) => "ok".into(),
            Err(m) => format!("err:{}", m.split('`').nth(2).unwrap_or("").trim()),
        }
    }

    #[test]
    fn fuzz_agrees_with_the_runtime() {
        let report = duraflow_runtime::fuzz::campaign_of(&duraflow_runtime::fuzz::Target {
            name: "duration",
            run: agrees_with_the_runtime,
            ci_iterations: 20_000,
        });
        assert!(report.executions > report.seeds as u64);
    }
}
