//! What the commands print: tables, times, shortened payloads.

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// A table with these column headers, in the CLI's plain style.
pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_string()));
    t
}

/// Prints a table without trailing spaces on its lines.
pub(crate) fn print_table(t: &Table) {
    for line in t.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// A time in ms since the epoch, as `2026-12-01T14:00:00Z` (UTC).
pub(crate) fn time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_RFC3339_MS) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z): a stored time past it
/// (a damaged or hostile file) is shown as that, not a crash.
const MAX_RFC3339_MS: i64 = 253_402_300_799_999;

/// A time in ms since the epoch, with milliseconds: `2026-12-01T14:00:00.123Z`.
pub(crate) fn time_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_RFC3339_MS) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A duration in ms, short: `850ms`, `3.2s`, `4m 5s`, `2h 3m`, `3d 4h`.
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        _ if ms < 1000 => format!("{ms}ms"),
        _ if s < 60 => format!("{}.{}s", s, (ms % 1000) / 100),
        _ if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        _ if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// JSON on one line, cut to `max` characters (with `…`) unless `max` is `None`.
pub(crate) fn short_json(v: &Value, max: Option<usize>) -> String {
    let s = v.to_string();
    match max {
        Some(max) => shorten(&s, max),
        None => s,
    }
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The fields of an event (as `history_json` has it) but `seq`, `time_ms` and `event`, as
/// `key=value` pairs, each value cut to `max` characters.
pub(crate) fn event_details(event: &Value, max: Option<usize>) -> String {
    let Some(fields) = event.as_object() else {
        return short_json(event, max);
    };
    fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "seq" | "time_ms" | "event"))
        .map(|(k, v)| format!("{k}={}", short_json(v, max)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints `v` as pretty JSON.
pub(crate) fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_times_past_year_9999_or_before_1970_are_shown_not_a_crash() {
        assert_eq!(time(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(time_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(time(i64::MIN), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("héllo wörld", 5), "héll…");
        assert_eq!(shorten("short", 5), "short");
        assert_eq!(
            short_json(&json!({"a": "xxxxxxxx"}), Some(8)),
            "{\"a\":\"x…"
        );
        assert_eq!(short_json(&json!([1, 2]), None), "[1,2]");
    }

    #[test]
    fn formats_times_and_durations() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time_ms(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(3_250), "3.2s");
        assert_eq!(duration(245_000), "4m 5s");
        assert_eq!(duration(7_380_000), "2h 3m");
        assert_eq!(duration(-5), "0ms");
    }

    #[test]
    fn event_details_leave_out_the_common_fields() {
        let e = json!({"seq": 3, "time_ms": 1, "event": "activity_completed", "activity_seq": 1, "result": "done"});
        assert_eq!(
            event_details(&e, Some(40)),
            "activity_seq=1 result=\"done\""
        );
    }
}
