//! Schedules: which ticks are due, what the overlap policy makes of each, what to start, and the
//! next time to look; pause, resume, trigger, delete. Pure: each decision takes the schedule's
//! row as read in the transaction ([`ScheduleFacts`]) and `now`, and returns a [`SchedulePlan`]
//! that the store applies in the same transaction: the row (guarded by its revision, so two
//! workers cannot both act on one tick) and the workflow starts, each created unless its id
//! exists (a tick's id is `{schedule_id}-{time}`: made twice, it starts once).

use super::start::NewWorkflow;
use crate::error::Result;
use crate::schedule::{
    workflow_id_for, OverlapPolicy, Schedule, ScheduleDescription, ScheduledStart, Triggered,
};
use serde_json::Value;

/// Starts made in one transaction at most; the rest follow in the next (due at once).
pub(crate) const MAX_STARTS: usize = 100;
/// Ticks looked at in one transaction at most (a long downtime of a short interval).
pub(crate) const MAX_TICKS: usize = 10_000;
/// While a buffered start waits for the running workflow to end, the schedule is looked at again
/// this often.
pub(crate) const BUFFER_RECHECK_MS: i64 = 1_000;
/// How many starts `describe` keeps.
pub(crate) const RECENT: usize = 10;

/// What a store reads before a schedule decision.
#[derive(Clone, Debug)]
pub(crate) struct ScheduleFacts {
    /// The schedule's row.
    pub record: ScheduleDescription,
    /// Its revision: bumped by every write, checked by the next.
    pub revision: i64,
    /// Whether the workflow it started last is still running.
    pub last_running: bool,
}

/// The schedule's row after a decision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ScheduleWrite {
    /// A new row (refused if the id exists), at revision 0.
    Insert {
        record: ScheduleDescription,
        due_ms: Option<i64>,
    },
    /// The row, if its revision is still `revision`; bumped.
    Update {
        revision: i64,
        record: ScheduleDescription,
        due_ms: Option<i64>,
    },
    /// Remove the row, if its revision is still `revision`.
    Delete { revision: i64 },
}

/// What one schedule decision writes, in one transaction.
#[derive(Clone, Debug)]
pub(crate) struct SchedulePlan {
    pub schedule_id: String,
    pub write: ScheduleWrite,
    /// Workflows to start, each unless its id exists.
    pub starts: Vec<NewWorkflow>,
}

/// A client's change to a schedule.
#[derive(Clone, Debug)]
pub(crate) enum ScheduleChange {
    Pause(Option<String>),
    Resume(Option<String>),
    Trigger,
    Delete,
}

/// The workflow a schedule starts.
#[derive(Clone, Debug)]
pub(crate) struct ScheduleAction {
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Value,
    pub execution_timeout_ms: Option<u64>,
}

/// A new schedule: its first tick is the first after `now` (nothing before its creation is made
/// up). Paused if asked, with the note.
pub(crate) fn create(
    schedule_id: &str,
    schedule: &Schedule,
    action: ScheduleAction,
    now: i64,
) -> Result<SchedulePlan> {
    let record = ScheduleDescription {
        schedule_id: schedule_id.to_string(),
        spec: schedule.spec.clone(),
        workflow_type: action.workflow_type,
        task_queue: action.task_queue,
        input: action.input,
        execution_timeout_ms: action.execution_timeout_ms,
        overlap: schedule.overlap,
        catchup_window_ms: u64::try_from(schedule.catchup_window.as_millis()).unwrap_or(u64::MAX),
        paused: schedule.paused.is_some(),
        note: schedule.paused.clone(),
        next_fire_ms: schedule.spec.next_after(now)?,
        buffered_ms: None,
        last_workflow_id: None,
        started: 0,
        skipped: 0,
        missed: 0,
        recent: Vec::new(),
        created_ms: now,
        updated_ms: now,
    };
    let due_ms = due(&record, false, now);
    Ok(SchedulePlan {
        schedule_id: schedule_id.to_string(),
        write: ScheduleWrite::Insert { record, due_ms },
        starts: Vec::new(),
    })
}

/// When the schedule must be looked at next: never while paused; else its next tick, or soon
/// while a buffered start waits for a running workflow.
fn due(r: &ScheduleDescription, running: bool, now: i64) -> Option<i64> {
    if r.paused {
        return None;
    }
    let recheck = r.buffered_ms.map(|_| {
        if running {
            now + BUFFER_RECHECK_MS
        } else {
            now
        }
    });
    match (r.next_fire_ms, recheck) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct Decision<'a> {
    r: ScheduleDescription,
    running: bool,
    now: i64,
    starts: Vec<NewWorkflow>,
    new_run_id: &'a mut dyn FnMut() -> String,
}

impl Decision<'_> {
    fn start(&mut self, scheduled_ms: i64) -> String {
        let workflow_id = workflow_id_for(&self.r.schedule_id, scheduled_ms);
        self.starts.push(NewWorkflow {
            workflow_id: workflow_id.clone(),
            run_id: (self.new_run_id)(),
            workflow_type: self.r.workflow_type.clone(),
            task_queue: self.r.task_queue.clone(),
            input: self.r.input.clone(),
            execution_deadline_ms: self.r.execution_timeout_ms.map(|t| {
                self.now
                    .saturating_add(i64::try_from(t).unwrap_or(i64::MAX))
            }),
        });
        self.r.started += 1;
        self.r.last_workflow_id = Some(workflow_id.clone());
        self.r.recent.push(ScheduledStart {
            scheduled_ms,
            started_ms: self.now,
            workflow_id: workflow_id.clone(),
        });
        if self.r.recent.len() > RECENT {
            let extra = self.r.recent.len() - RECENT;
            self.r.recent.drain(..extra);
        }
        self.running = true;
        workflow_id
    }

    /// One due start through the overlap policy.
    fn offer(&mut self, scheduled_ms: i64) -> Triggered {
        match (self.r.overlap, self.running) {
            (_, false) | (OverlapPolicy::AllowAll, true) => Triggered::Started {
                workflow_id: self.start(scheduled_ms),
            },
            (OverlapPolicy::Skip, true) => {
                self.r.skipped += 1;
                Triggered::Skipped
            }
            (OverlapPolicy::BufferOne, true) => {
                if self.r.buffered_ms.is_none() {
                    self.r.buffered_ms = Some(scheduled_ms);
                } else {
                    self.r.skipped += 1;
                }
                Triggered::Buffered
            }
        }
    }

    /// A buffered start whose blocker ended starts now.
    fn release_buffered(&mut self) {
        if let Some(b) = self.r.buffered_ms {
            if !self.running && !self.r.paused {
                self.r.buffered_ms = None;
                self.start(b);
            }
        }
    }

    fn plan(mut self, revision: i64) -> SchedulePlan {
        self.r.updated_ms = self.now;
        let due_ms = due(&self.r, self.running, self.now);
        SchedulePlan {
            schedule_id: self.r.schedule_id.clone(),
            write: ScheduleWrite::Update {
                revision,
                record: self.r,
                due_ms,
            },
            starts: self.starts,
        }
    }
}

fn decision<'a>(
    f: &ScheduleFacts,
    now: i64,
    new_run_id: &'a mut dyn FnMut() -> String,
) -> Decision<'a> {
    Decision {
        r: f.record.clone(),
        running: f.last_running,
        now,
        starts: Vec::new(),
        new_run_id,
    }
}

/// The schedule's due ticks at `now`: a buffered start whose blocker ended, then each tick up to
/// `now` in order: older than the catch-up window, dropped (`missed`); else through the overlap
/// policy. At most [`MAX_STARTS`] starts and [`MAX_TICKS`] ticks; the rest are due at once.
pub(crate) fn fire(
    f: &ScheduleFacts,
    now: i64,
    new_run_id: &mut dyn FnMut() -> String,
) -> Result<SchedulePlan> {
    let mut d = decision(f, now, new_run_id);
    if d.r.paused {
        return Ok(d.plan(f.revision));
    }
    d.release_buffered();
    let window_start = now.saturating_sub(i64::try_from(d.r.catchup_window_ms).unwrap_or(i64::MAX));
    let mut looked = 0;
    while let Some(t) = d.r.next_fire_ms {
        if t > now || d.starts.len() >= MAX_STARTS || looked >= MAX_TICKS {
            break;
        }
        looked += 1;
        if t < window_start {
            d.r.missed += 1;
        } else {
            d.offer(t);
        }
        d.r.next_fire_ms = d.r.spec.next_after(t)?;
    }
    Ok(d.plan(f.revision))
}

/// A client's change: pause or resume (with a note), trigger now, delete. A trigger works on a
/// paused schedule too (as Temporal's does) and goes through the overlap policy; its tick is
/// `now`. A resume does not make up the ticks that passed while paused: the next is the first
/// after `now`.
pub(crate) fn change(
    f: &ScheduleFacts,
    change: &ScheduleChange,
    now: i64,
    new_run_id: &mut dyn FnMut() -> String,
) -> Result<(SchedulePlan, Option<Triggered>)> {
    let mut d = decision(f, now, new_run_id);
    let mut triggered = None;
    match change {
        ScheduleChange::Pause(note) => {
            d.r.paused = true;
            d.r.note = note.clone();
        }
        ScheduleChange::Resume(note) => {
            if d.r.paused {
                d.r.next_fire_ms = d.r.spec.next_after(now)?;
            }
            d.r.paused = false;
            d.r.note = note.clone();
            d.release_buffered();
        }
        ScheduleChange::Trigger => {
            d.release_buffered();
            triggered = Some(d.offer(now));
        }
        ScheduleChange::Delete => {
            return Ok((
                SchedulePlan {
                    schedule_id: f.record.schedule_id.clone(),
                    write: ScheduleWrite::Delete {
                        revision: f.revision,
                    },
                    starts: Vec::new(),
                },
                None,
            ));
        }
    }
    Ok((d.plan(f.revision), triggered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleSpec;
    use std::time::Duration;

    const H: i64 = 3_600_000;
    const DAY: i64 = 24 * H;
    // 2026-01-01T00:00:00Z
    const T0: i64 = 1_767_225_600_000;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("run-{n}")
        }
    }

    fn facts(schedule: Schedule, created: i64) -> ScheduleFacts {
        let action = ScheduleAction {
            workflow_type: "report".into(),
            task_queue: "default".into(),
            input: serde_json::json!(7),
            execution_timeout_ms: Some(60_000),
        };
        let plan = create("nightly", &schedule, action, created).unwrap();
        let ScheduleWrite::Insert { record, .. } = plan.write else {
            panic!("a create inserts")
        };
        ScheduleFacts {
            record,
            revision: 0,
            last_running: false,
        }
    }

    /// Applies a plan to the facts as a store would; the last start runs on unless `ended`.
    fn advance(f: &mut ScheduleFacts, plan: &SchedulePlan, ended: bool) -> Option<i64> {
        let ScheduleWrite::Update {
            revision,
            record,
            due_ms,
        } = &plan.write
        else {
            panic!("an update")
        };
        assert_eq!(*revision, f.revision, "guarded by the revision read");
        f.record = record.clone();
        f.revision += 1;
        if !plan.starts.is_empty() {
            f.last_running = true;
        }
        if ended {
            f.last_running = false;
        }
        *due_ms
    }

    fn daily() -> Schedule {
        Schedule::new(ScheduleSpec::cron("0 3 * * *").unwrap())
    }

    #[test]
    fn a_new_schedule_is_due_at_its_first_tick_after_creation() {
        let f = facts(daily(), T0 + 5 * H);
        assert_eq!(f.record.next_fire_ms, Some(T0 + DAY + 3 * H));
        let paused = facts(daily().paused("not yet"), T0);
        let plan = create(
            "p",
            &daily().paused("not yet"),
            ScheduleAction {
                workflow_type: "w".into(),
                task_queue: "q".into(),
                input: Value::Null,
                execution_timeout_ms: None,
            },
            T0,
        )
        .unwrap();
        assert!(matches!(
            plan.write,
            ScheduleWrite::Insert { due_ms: None, .. }
        ));
        assert!(paused.record.paused);
        assert_eq!(paused.record.note.as_deref(), Some("not yet"));
    }

    #[test]
    fn a_due_tick_starts_once_with_the_tick_in_its_id_and_moves_on() {
        let mut f = facts(daily(), T0);
        let tick = T0 + 3 * H;
        let early = fire(&f, tick - 1, &mut ids()).unwrap();
        assert!(early.starts.is_empty(), "not due yet");
        let plan = fire(&f, tick + 10, &mut ids()).unwrap();
        assert_eq!(plan.starts.len(), 1);
        let s = &plan.starts[0];
        assert_eq!(s.workflow_id, "nightly-2026-01-01T03:00:00Z");
        assert_eq!(s.workflow_type, "report");
        assert_eq!(s.input, serde_json::json!(7));
        assert_eq!(s.execution_deadline_ms, Some(tick + 10 + 60_000));
        let due = advance(&mut f, &plan, true);
        assert_eq!(due, Some(tick + DAY));
        assert_eq!(f.record.started, 1);
        assert_eq!(f.record.recent[0].scheduled_ms, tick);
        assert_eq!(f.record.recent[0].started_ms, tick + 10);
        // Looking again at the same time starts nothing more.
        assert!(fire(&f, tick + 20, &mut ids()).unwrap().starts.is_empty());
    }

    #[test]
    fn skip_drops_a_tick_while_the_last_run_runs() {
        let mut f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap()),
            T0,
        );
        let p = fire(&f, T0 + H, &mut ids()).unwrap();
        advance(&mut f, &p, false);
        let p = fire(&f, T0 + 2 * H, &mut ids()).unwrap();
        assert!(p.starts.is_empty());
        advance(&mut f, &p, true);
        assert_eq!(f.record.skipped, 1);
        let p = fire(&f, T0 + 3 * H, &mut ids()).unwrap();
        assert_eq!(p.starts[0].workflow_id, "nightly-2026-01-01T03:00:00Z");
    }

    #[test]
    fn buffer_one_keeps_one_start_until_the_run_ends() {
        let mut f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap())
                .overlap(OverlapPolicy::BufferOne),
            T0,
        );
        let p = fire(&f, T0 + H, &mut ids()).unwrap();
        advance(&mut f, &p, false);
        let p = fire(&f, T0 + 2 * H, &mut ids()).unwrap();
        assert!(p.starts.is_empty());
        let due = advance(&mut f, &p, false);
        assert_eq!(f.record.buffered_ms, Some(T0 + 2 * H));
        assert_eq!(
            due,
            Some(T0 + 2 * H + BUFFER_RECHECK_MS),
            "looked at again soon"
        );
        // A third tick while one waits is dropped.
        let p = fire(&f, T0 + 3 * H, &mut ids()).unwrap();
        advance(&mut f, &p, true);
        assert_eq!(
            (f.record.skipped, f.record.buffered_ms),
            (1, Some(T0 + 2 * H))
        );
        // The run ended: the buffered start goes, with its own tick in its id.
        let p = fire(&f, T0 + 3 * H + 5, &mut ids()).unwrap();
        assert_eq!(p.starts.len(), 1);
        assert_eq!(p.starts[0].workflow_id, "nightly-2026-01-01T02:00:00Z");
        advance(&mut f, &p, false);
        assert_eq!(f.record.buffered_ms, None);
    }

    #[test]
    fn allow_all_starts_every_tick() {
        let mut f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap())
                .overlap(OverlapPolicy::AllowAll),
            T0,
        );
        for k in 1..=3 {
            let p = fire(&f, T0 + k * H, &mut ids()).unwrap();
            assert_eq!(p.starts.len(), 1);
            advance(&mut f, &p, false);
        }
        assert_eq!((f.record.started, f.record.skipped), (3, 0));
    }

    #[test]
    fn after_downtime_the_ticks_in_the_catchup_window_are_made_up_in_order() {
        let mut f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap())
                .overlap(OverlapPolicy::AllowAll)
                .catchup_window(Duration::from_secs(3 * 3600)),
            T0,
        );
        // Down for 10 hours: ticks 1..=10 passed; 7, 8, 9, 10 are within 3 h of now (+10h 30m).
        let now = T0 + 10 * H + H / 2;
        let p = fire(&f, now, &mut ids()).unwrap();
        let started: Vec<&str> = p.starts.iter().map(|s| s.workflow_id.as_str()).collect();
        assert_eq!(
            started,
            [
                "nightly-2026-01-01T08:00:00Z",
                "nightly-2026-01-01T09:00:00Z",
                "nightly-2026-01-01T10:00:00Z"
            ]
        );
        let due = advance(&mut f, &p, false);
        assert_eq!(f.record.missed, 7);
        assert_eq!(due, Some(T0 + 11 * H));
    }

    #[test]
    fn skip_during_catchup_starts_the_first_missed_tick_only() {
        let f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(3600)).unwrap()),
            T0,
        );
        let p = fire(&f, T0 + 5 * H, &mut ids()).unwrap();
        assert_eq!(p.starts.len(), 1);
        let ScheduleWrite::Update { record, .. } = &p.write else {
            panic!()
        };
        assert_eq!((record.started, record.skipped), (1, 4));
    }

    #[test]
    fn a_long_downtime_is_worked_through_in_bounded_steps() {
        let mut f = facts(
            Schedule::new(ScheduleSpec::every(Duration::from_secs(1)).unwrap())
                .overlap(OverlapPolicy::AllowAll),
            T0,
        );
        let now = T0 + DAY;
        let p = fire(&f, now, &mut ids()).unwrap();
        assert_eq!(p.starts.len(), MAX_STARTS);
        let due = advance(&mut f, &p, false);
        assert!(due.unwrap() <= now, "the rest is due at once");
        let mut steps = 1;
        loop {
            let p = fire(&f, now, &mut ids()).unwrap();
            let d = advance(&mut f, &p, false);
            steps += 1;
            if d.unwrap() > now {
                break;
            }
            assert!(steps < 2_000);
        }
        // Every tick of the day is either started or missed (window: one year, so started).
        assert_eq!(f.record.started + f.record.missed, 86_400);
    }

    #[test]
    fn pause_stops_ticks_resume_does_not_make_up_the_paused_ones() {
        let mut f = facts(daily(), T0);
        let (p, t) = change(
            &f,
            &ScheduleChange::Pause(Some("maint".into())),
            T0,
            &mut ids(),
        )
        .unwrap();
        assert_eq!(t, None);
        assert_eq!(advance(&mut f, &p, false), None, "never due while paused");
        assert!(fire(&f, T0 + 5 * DAY, &mut ids())
            .unwrap()
            .starts
            .is_empty());
        let now = T0 + 5 * DAY + H;
        let (p, _) = change(&f, &ScheduleChange::Resume(None), now, &mut ids()).unwrap();
        let due = advance(&mut f, &p, false);
        assert_eq!(due, Some(T0 + 5 * DAY + 3 * H));
        assert!(!f.record.paused);
        assert_eq!(f.record.started, 0);
    }

    #[test]
    fn trigger_starts_now_even_when_paused_and_obeys_the_overlap_policy() {
        let mut f = facts(daily().paused("p"), T0);
        let (p, t) = change(&f, &ScheduleChange::Trigger, T0 + 42_000, &mut ids()).unwrap();
        assert_eq!(
            t,
            Some(Triggered::Started {
                workflow_id: "nightly-2026-01-01T00:00:42Z".into()
            })
        );
        assert_eq!(advance(&mut f, &p, false), None, "still paused");
        let (p, t) = change(&f, &ScheduleChange::Trigger, T0 + 43_000, &mut ids()).unwrap();
        assert_eq!(t, Some(Triggered::Skipped));
        assert!(p.starts.is_empty());
        advance(&mut f, &p, true);
        let (p, t) = change(&f, &ScheduleChange::Trigger, T0 + 44_000, &mut ids()).unwrap();
        assert!(matches!(t, Some(Triggered::Started { .. })));
        assert_eq!(p.starts.len(), 1);
    }

    #[test]
    fn delete_is_guarded_by_the_revision() {
        let f = facts(daily(), T0);
        let (p, _) = change(&f, &ScheduleChange::Delete, T0, &mut ids()).unwrap();
        assert_eq!(p.write, ScheduleWrite::Delete { revision: 0 });
    }
}
