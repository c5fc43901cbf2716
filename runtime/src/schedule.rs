//! Schedules: when a workflow starts by itself (a cron expression or a fixed interval), what
//! happens when a start is due while the previous run still runs ([`OverlapPolicy`]), and which
//! missed starts are made up after downtime (the catch-up window). The decisions live in
//! `engine::schedule`; the client's calls are [`crate::Client::create_schedule`] and the
//! `*_schedule` methods beside it.

use crate::error::{Error, Result};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// When a schedule's starts are due: a cron expression in a time zone, or a fixed interval.
///
/// Cron expressions are parsed by the [`croner`](https://docs.rs/croner) crate: five fields
/// (`minute hour day-of-month month day-of-week`), or six with seconds first; lists, ranges,
/// steps, month and weekday names, `L` (last), `#` (nth weekday), `W` (nearest weekday) and the
/// `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` nicknames. Times are in UTC unless
/// [`ScheduleSpec::in_time_zone`] names an IANA zone; a local time skipped by a daylight-saving
/// change fires at the first time after it, and one that occurs twice fires once.
///
/// An interval is aligned to the Unix epoch (plus an optional offset), as Temporal's are: every
/// hour fires on the hour, whenever the schedule was created.
///
/// ```
/// use duraflow::ScheduleSpec;
/// use std::time::Duration;
/// # fn main() -> Result<(), duraflow::Error> {
/// let nightly = ScheduleSpec::cron("0 3 * * *")?.in_time_zone("Europe/Paris")?;
/// let quarter_past = ScheduleSpec::every(Duration::from_secs(3600))?.offset(Duration::from_secs(900))?;
/// assert!(ScheduleSpec::cron("61 * * * *").is_err());
/// assert!(ScheduleSpec::cron("0 3 * * *")?.in_time_zone("Mars/Olympus").is_err());
/// # let _ = (nightly, quarter_past); Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec(Spec);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Spec {
    Cron {
        expression: String,
        time_zone: String,
    },
    Interval {
        every_ms: u64,
        offset_ms: u64,
    },
}

fn parse_cron(expression: &str) -> Result<croner::Cron> {
    croner::parser::CronParser::new()
        .parse(expression)
        .map_err(|e| {
            Error::InvalidOption(format!(
                "cron expression `{expression}`: {e}; write five fields \
                 (`minute hour day-of-month month day-of-week`, e.g. `0 3 * * *`), six with \
                 seconds first, or a nickname such as `@daily`"
            ))
        })
}

fn parse_zone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        Error::InvalidOption(format!(
            "time zone `{name}` is unknown; give an IANA name such as `UTC`, `Europe/Paris` or \
             `America/New_York`"
        ))
    })
}

/// Past this time (ms since the epoch, year 9999) a schedule fires no more.
const LAST_MS: i64 = 253_402_300_799_000;

impl ScheduleSpec {
    /// A cron expression, in UTC. Refused with [`Error::InvalidOption`] when it does not parse.
    pub fn cron(expression: &str) -> Result<ScheduleSpec> {
        parse_cron(expression)?;
        Ok(ScheduleSpec(Spec::Cron {
            expression: expression.trim().to_string(),
            time_zone: "UTC".into(),
        }))
    }

    /// Every `every`, aligned to the Unix epoch. Refused when shorter than one millisecond.
    pub fn every(every: Duration) -> Result<ScheduleSpec> {
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        if every_ms == 0 || every_ms > LAST_MS as u64 {
            return Err(Error::InvalidOption(format!(
                "a schedule interval of {every:?} cannot work; give one of at least 1 ms (and under 8,000 years)"
            )));
        }
        Ok(ScheduleSpec(Spec::Interval {
            every_ms,
            offset_ms: 0,
        }))
    }

    /// The cron expression's time zone, an IANA name (`Europe/Paris`). Refused for an unknown
    /// name, or on an interval (which has no time zone).
    pub fn in_time_zone(self, zone: &str) -> Result<ScheduleSpec> {
        match self.0 {
            Spec::Cron { expression, .. } => {
                let tz = parse_zone(zone)?;
                Ok(ScheduleSpec(Spec::Cron {
                    expression,
                    time_zone: tz.name().to_string(),
                }))
            }
            Spec::Interval { .. } => Err(Error::InvalidOption(
                "an interval has no time zone; use a cron expression for local times".into(),
            )),
        }
    }

    /// Shifts an interval's ticks by `offset` from the epoch's alignment (every hour at a
    /// quarter past: `every(1h)?.offset(15m)?`). Refused on a cron expression, or when not
    /// shorter than the interval.
    pub fn offset(self, offset: Duration) -> Result<ScheduleSpec> {
        match self.0 {
            Spec::Interval { every_ms, .. } => {
                let offset_ms = u64::try_from(offset.as_millis()).unwrap_or(u64::MAX);
                if offset_ms >= every_ms {
                    return Err(Error::InvalidOption(format!(
                        "a schedule offset ({offset:?}) must be shorter than its interval ({:?})",
                        Duration::from_millis(every_ms)
                    )));
                }
                Ok(ScheduleSpec(Spec::Interval {
                    every_ms,
                    offset_ms,
                }))
            }
            Spec::Cron { .. } => Err(Error::InvalidOption(
                "a cron expression has no offset; write the minute or second into it".into(),
            )),
        }
    }

    /// The first tick strictly after `after_ms` (ms since the epoch), or `None` when there is
    /// none (a cron expression that never matches again, or past year 9999).
    pub(crate) fn next_after(&self, after_ms: i64) -> Result<Option<i64>> {
        let next = match &self.0 {
            Spec::Interval {
                every_ms,
                offset_ms,
            } => {
                let (every, offset) = (*every_ms as i128, *offset_ms as i128);
                let k = (after_ms as i128 - offset).div_euclid(every) + 1;
                let t = k * every + offset;
                (t <= LAST_MS as i128).then_some(t as i64)
            }
            Spec::Cron {
                expression,
                time_zone,
            } => {
                // Stored values were checked when the schedule was created; a damaged one is an error.
                let cron = parse_cron(expression)?;
                let tz = parse_zone(time_zone)?;
                let Some(from) = Utc.timestamp_millis_opt(after_ms).single() else {
                    return Ok(None);
                };
                // Cron has second granularity: from the start of `after_ms`'s second, exclusive.
                let from = from.with_timezone(&tz);
                match cron.find_next_occurrence(&from, false) {
                    Ok(t) => Some(t.with_timezone(&Utc).timestamp_millis()),
                    Err(_) => None,
                }
                .filter(|t| *t > after_ms && *t <= LAST_MS)
            }
        };
        Ok(next)
    }

    /// Checks a spec read back from a store (its expression and zone still parse).
    pub(crate) fn check(&self) -> Result<()> {
        if let Spec::Cron {
            expression,
            time_zone,
        } = &self.0
        {
            parse_cron(expression)?;
            parse_zone(time_zone)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Spec::Cron {
                expression,
                time_zone,
            } => write!(f, "cron `{expression}` ({time_zone})"),
            Spec::Interval {
                every_ms,
                offset_ms,
            } => {
                write!(
                    f,
                    "every {}",
                    humantime::format_duration(Duration::from_millis(*every_ms))
                )?;
                if *offset_ms > 0 {
                    write!(
                        f,
                        " offset {}",
                        humantime::format_duration(Duration::from_millis(*offset_ms))
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// What a schedule does when a start is due while the run it started last is still running.
/// Temporal's policies of the same names; the default is [`OverlapPolicy::Skip`], as there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverlapPolicy {
    /// The due start is dropped (counted in [`ScheduleDescription::skipped`]).
    #[default]
    Skip,
    /// The due start waits until the running one ends, then starts; at most one waits, and
    /// further due starts are dropped while one waits.
    BufferOne,
    /// Every due start starts, running beside the others.
    AllowAll,
}

impl OverlapPolicy {
    /// `skip`, `buffer_one` or `allow_all`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OverlapPolicy::Skip => "skip",
            OverlapPolicy::BufferOne => "buffer_one",
            OverlapPolicy::AllowAll => "allow_all",
        }
    }
}

impl std::str::FromStr for OverlapPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "skip" => Ok(OverlapPolicy::Skip),
            "buffer_one" | "buffer-one" => Ok(OverlapPolicy::BufferOne),
            "allow_all" | "allow-all" => Ok(OverlapPolicy::AllowAll),
            other => Err(Error::InvalidOption(format!(
                "overlap policy `{other}` is unknown; use `skip`, `buffer_one` or `allow_all`"
            ))),
        }
    }
}

/// The default catch-up window: one year, Temporal's default.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(365 * 86_400);

/// A schedule to create: when ([`ScheduleSpec`]), and its policies. The workflow it starts is
/// given to [`crate::Client::create_schedule`].
///
/// ```
/// use duraflow::{OverlapPolicy, Schedule, ScheduleSpec};
/// use std::time::Duration;
/// # fn main() -> Result<(), duraflow::Error> {
/// let schedule = Schedule::new(ScheduleSpec::cron("0 3 * * *")?)
///     .overlap(OverlapPolicy::BufferOne)
///     .catchup_window(Duration::from_secs(6 * 3600))   // after downtime, make up 6 hours
///     .paused("waiting for the data migration");       // created paused, with a note
/// # let _ = schedule; Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Schedule {
    pub(crate) spec: ScheduleSpec,
    pub(crate) overlap: OverlapPolicy,
    pub(crate) catchup_window: Duration,
    pub(crate) paused: Option<String>,
    pub(crate) task_queue: Option<String>,
    pub(crate) execution_timeout: Option<Duration>,
}

impl Schedule {
    /// A schedule on `spec`: [`OverlapPolicy::Skip`], a catch-up window of one year, not paused.
    pub fn new(spec: ScheduleSpec) -> Schedule {
        Schedule {
            spec,
            overlap: OverlapPolicy::default(),
            catchup_window: DEFAULT_CATCHUP_WINDOW,
            paused: None,
            task_queue: None,
            execution_timeout: None,
        }
    }

    /// What a due start does while the last run still runs.
    pub fn overlap(mut self, policy: OverlapPolicy) -> Schedule {
        self.overlap = policy;
        self
    }

    /// After downtime (no worker ran), the missed starts scheduled within this window before now
    /// are made up, in order (and each goes through the overlap policy); older ones are dropped
    /// and counted in [`ScheduleDescription::missed`]. Default: one year.
    pub fn catchup_window(mut self, window: Duration) -> Schedule {
        self.catchup_window = window;
        self
    }

    /// Created paused, with a note saying why.
    pub fn paused(mut self, note: impl Into<String>) -> Schedule {
        self.paused = Some(note.into());
        self
    }

    /// The started workflows' task queue (default: the definition's, else `default`).
    pub fn task_queue(mut self, queue: impl Into<String>) -> Schedule {
        self.task_queue = Some(queue.into());
        self
    }

    /// Each started workflow's execution timeout (default: the definition's).
    pub fn execution_timeout(mut self, timeout: Duration) -> Schedule {
        self.execution_timeout = Some(timeout);
        self
    }
}

/// One start a schedule made, in [`ScheduleDescription::recent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduledStart {
    /// The tick's time (ms since the epoch); for a trigger, when it was triggered.
    pub scheduled_ms: i64,
    /// When the workflow was started (ms since the epoch): later than `scheduled_ms` after
    /// downtime or a buffered overlap.
    pub started_ms: i64,
    /// The started workflow's id: `{schedule_id}-{scheduled time, RFC 3339 UTC}`.
    pub workflow_id: String,
}

/// A schedule as [`crate::Client::describe_schedule`] and [`crate::Client::list_schedules`] show
/// it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduleDescription {
    /// The schedule's id.
    pub schedule_id: String,
    /// When it fires.
    pub spec: ScheduleSpec,
    /// The workflow it starts (registered name).
    pub workflow_type: String,
    /// The started workflows' task queue.
    pub task_queue: String,
    /// The started workflows' input.
    pub input: Value,
    /// The started workflows' execution timeout, in ms.
    pub execution_timeout_ms: Option<u64>,
    /// Its overlap policy.
    pub overlap: OverlapPolicy,
    /// Its catch-up window, in ms.
    pub catchup_window_ms: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// The note of the last pause or resume.
    pub note: Option<String>,
    /// The next tick not yet acted on (ms since the epoch); `None` when the spec has no more.
    pub next_fire_ms: Option<i64>,
    /// A start waiting for the running one to end ([`OverlapPolicy::BufferOne`]): its tick.
    pub buffered_ms: Option<i64>,
    /// The workflow it started last.
    pub last_workflow_id: Option<String>,
    /// Workflows started, in all.
    pub started: u64,
    /// Due starts dropped by the overlap policy.
    pub skipped: u64,
    /// Ticks older than the catch-up window when acted on, dropped.
    pub missed: u64,
    /// The last starts, newest last (at most 10).
    pub recent: Vec<ScheduledStart>,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it last changed (ms since the epoch).
    pub updated_ms: i64,
}

impl ScheduleDescription {
    /// The next `n` ticks after `after_ms` (ms since the epoch), for display; a paused schedule
    /// starts none of them until resumed.
    pub fn upcoming(&self, after_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut t = after_ms;
        while out.len() < n {
            match self.spec.next_after(t) {
                Ok(Some(next)) => {
                    out.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// What [`crate::Client::trigger_schedule`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Triggered {
    /// A workflow started, with this id.
    Started {
        /// The started workflow's id.
        workflow_id: String,
    },
    /// The last run still runs and the policy is [`OverlapPolicy::BufferOne`]: this start waits
    /// for it (or was dropped if another start already waited).
    Buffered,
    /// The last run still runs and the policy is [`OverlapPolicy::Skip`]: nothing started.
    Skipped,
}

/// The id of the workflow a schedule starts for a tick: `{schedule_id}-{time}`, the time in
/// RFC 3339 UTC (milliseconds shown when not zero), as Temporal appends it. One tick, one id:
/// a start made twice for the same tick is made once.
pub(crate) fn workflow_id_for(schedule_id: &str, scheduled_ms: i64) -> String {
    let t: DateTime<Utc> = Utc
        .timestamp_millis_opt(scheduled_ms)
        .single()
        .unwrap_or_default();
    let time = if scheduled_ms.rem_euclid(1000) == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ")
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    };
    format!("{schedule_id}-{time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    // 2026-03-29 00:00:00 UTC: the night Europe/Paris moves from +1 to +2.
    const DST_DAY: i64 = 1_774_742_400_000;

    #[test]
    fn an_interval_is_aligned_to_the_epoch_with_its_offset() {
        let s = ScheduleSpec::every(Duration::from_secs(3600)).unwrap();
        assert_eq!(s.next_after(DST_DAY).unwrap(), Some(DST_DAY + H));
        assert_eq!(s.next_after(DST_DAY - 1).unwrap(), Some(DST_DAY));
        let s = s.offset(Duration::from_secs(900)).unwrap();
        assert_eq!(s.next_after(DST_DAY).unwrap(), Some(DST_DAY + H / 4));
        assert!(ScheduleSpec::every(Duration::ZERO).is_err());
        assert!(ScheduleSpec::every(Duration::from_secs(60))
            .unwrap()
            .offset(Duration::from_secs(60))
            .is_err());
    }

    #[test]
    fn cron_in_utc_and_in_a_named_zone_across_a_dst_change() {
        let utc = ScheduleSpec::cron("30 2 * * *").unwrap();
        assert_eq!(
            utc.next_after(DST_DAY).unwrap(),
            Some(DST_DAY + 2 * H + H / 2)
        );
        // 02:30 does not exist in Paris that night: it fires at the first time after the gap.
        let paris = utc.clone().in_time_zone("Europe/Paris").unwrap();
        let t = paris.next_after(DST_DAY).unwrap().unwrap();
        assert!(t > DST_DAY, "{t}");
        // The next day 02:30 Paris is 00:30 UTC (summer time).
        assert_eq!(
            paris.next_after(DST_DAY + 24 * H).unwrap(),
            Some(DST_DAY + 24 * H + H / 2)
        );
        assert_eq!(paris.to_string(), "cron `30 2 * * *` (Europe/Paris)");
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        let e = ScheduleSpec::cron("every day").unwrap_err().to_string();
        assert!(e.contains("five fields"), "{e}");
        let e = ScheduleSpec::cron("0 3 * * *")
            .unwrap()
            .in_time_zone("Europe/Pariss")
            .unwrap_err()
            .to_string();
        assert!(e.contains("IANA"), "{e}");
        assert!(ScheduleSpec::every(Duration::from_secs(1))
            .unwrap()
            .in_time_zone("UTC")
            .is_err());
        assert!("sometimes".parse::<OverlapPolicy>().is_err());
        assert_eq!(
            "buffer_one".parse::<OverlapPolicy>().unwrap(),
            OverlapPolicy::BufferOne
        );
    }

    #[test]
    fn workflow_ids_name_the_tick() {
        assert_eq!(
            workflow_id_for("nightly", DST_DAY),
            "nightly-2026-03-29T00:00:00Z"
        );
        assert_eq!(
            workflow_id_for("fast", DST_DAY + 250),
            "fast-2026-03-29T00:00:00.250Z"
        );
    }

    #[test]
    fn upcoming_lists_the_next_ticks() {
        let d = ScheduleSpec::cron("@daily").unwrap();
        let desc_ticks: Vec<i64> = (1..=3).map(|k| DST_DAY + k * 24 * H).collect();
        let mut t = DST_DAY;
        let mut got = Vec::new();
        for _ in 0..3 {
            t = d.next_after(t).unwrap().unwrap();
            got.push(t);
        }
        assert_eq!(got, desc_ticks);
    }
}
