//! Activities: the `ActivityScheduled` and `ActivityCancelRequested` commands, attempts, their
//! outcomes, retries, timeouts and deadlines.

use super::facts::{AttemptFacts, TaskState, WorkflowFacts};
use super::plan::{Effect, Guard, NewActivityTask, Plan};
use super::workflow_task::{CommitState, EagerClaim};
use crate::definition::{ActivityOptions, DEFAULT_START_TO_CLOSE_TIMEOUT};
use crate::error::{ActivityError, Result, TimeoutKind};
use crate::history::EventKind;
use serde_json::Value;

/// An activity attempt a worker has taken.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClaimedActivity {
    pub task_id: i64,
    pub workflow_id: String,
    pub run_id: String,
    pub activity_seq: u64,
    pub activity_type: String,
    pub task_queue: String,
    pub input: Value,
    pub options: ActivityOptions,
    pub attempt: u32,
    pub token: i64,
    pub scheduled_ms: i64,
    pub started_ms: i64,
    pub deadline_ms: Option<i64>,
    pub heartbeat_details: Option<Value>,
    pub cancel_requested: bool,
}

/// An activity task whose deadline passed: [`resolve_timeout`] decides retry or failure.
#[derive(Clone, Debug)]
pub(crate) struct ExpiredActivity {
    pub task: ClaimedActivity,
    pub kind: TimeoutKind,
}

/// How an activity attempt ended, as the worker reports it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActivityResolution {
    Completed(Value),
    Cancelled {
        details: Option<Value>,
    },
    Failed(ActivityError),
    TimedOut(ActivityError),
    /// Retried at `retry_at_ms`; `last_failure` is why the attempt failed (none when its worker's
    /// shutdown interrupted it): kept on the task for `describe` until the next attempt ends.
    Retry {
        retry_at_ms: i64,
        last_failure: Option<ActivityError>,
    },
}

impl ActivityResolution {
    /// The history event this resolution appends for activity `activity_seq` (none for a retry).
    pub(crate) fn event(self, activity_seq: u64) -> Option<EventKind> {
        Some(match self {
            ActivityResolution::Retry { .. } => return None,
            ActivityResolution::Completed(result) => EventKind::ActivityCompleted {
                activity_seq,
                result,
            },
            ActivityResolution::Cancelled { details } => EventKind::ActivityCancelled {
                activity_seq,
                details,
            },
            ActivityResolution::Failed(error) => EventKind::ActivityFailed {
                activity_seq,
                error,
            },
            ActivityResolution::TimedOut(error) => EventKind::ActivityTimedOut {
                activity_seq,
                error,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Deadlines

/// Where an attempt started at `started_ms` times out, and which timeout it is.
pub(crate) fn attempt_deadline(
    options: &ActivityOptions,
    scheduled_ms: i64,
    started_ms: i64,
    last_heartbeat_ms: i64,
) -> (i64, TimeoutKind) {
    let stc = options
        .start_to_close_timeout
        .or(if options.schedule_to_close_timeout.is_some() {
            None
        } else {
            Some(DEFAULT_START_TO_CLOSE_TIMEOUT)
        });
    let mut best = (i64::MAX, TimeoutKind::StartToClose);
    if let Some(d) = stc {
        best = (
            crate::duration::after_ms(started_ms, d),
            TimeoutKind::StartToClose,
        );
    }
    if let Some(d) = options.heartbeat_timeout {
        let t = crate::duration::after_ms(last_heartbeat_ms, d);
        if t < best.0 {
            best = (t, TimeoutKind::Heartbeat);
        }
    }
    if let Some(d) = options.schedule_to_close_timeout {
        let t = crate::duration::after_ms(scheduled_ms, d);
        if t < best.0 {
            best = (t, TimeoutKind::ScheduleToClose);
        }
    }
    best
}

/// Where a not-yet-started activity task (visible from `visible_ms`) times out, if it does.
pub(crate) fn pending_deadline(
    options: &ActivityOptions,
    scheduled_ms: i64,
    visible_ms: i64,
    first_attempt: bool,
) -> Option<(i64, TimeoutKind)> {
    let s2s = if first_attempt {
        options.schedule_to_start_timeout.map(|d| {
            (
                crate::duration::after_ms(visible_ms, d),
                TimeoutKind::ScheduleToStart,
            )
        })
    } else {
        None
    };
    let s2c = options.schedule_to_close_timeout.map(|d| {
        (
            crate::duration::after_ms(scheduled_ms, d),
            TimeoutKind::ScheduleToClose,
        )
    });
    match (s2s, s2c) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// How long the timeout reaper owns an expired task before another reaper may take it.
pub(crate) const REAPER_LEASE_MS: i64 = 30_000;

// ---------------------------------------------------------------------------------------------
// Commands

/// `ActivityScheduled`: a task for a worker (none for a local activity: the workflow's own worker
/// runs it), claimed at once by the committing worker when it runs that type on that queue.
pub(crate) fn schedule(
    st: &mut CommitState<'_>,
    cmd: &EventKind,
    eager: Option<&EagerClaim>,
    cancelled_in_same_commit: bool,
) {
    let EventKind::ActivityScheduled {
        activity_seq,
        activity_type,
        input,
        options,
        task_queue,
        local: false,
        ..
    } = cmd
    else {
        return;
    };
    let now = st.plan.time_ms;
    let claim = eager.filter(|e| {
        st.plan.claimed.len() < e.max
            && !cancelled_in_same_commit
            && e.activity_types.contains(activity_type)
            && e.queues.contains(task_queue)
    });
    let mut task = NewActivityTask {
        run_id: st.facts.run_id.clone(),
        activity_seq: *activity_seq,
        activity_type: activity_type.clone(),
        task_queue: task_queue.clone(),
        input: input.clone(),
        options: options.clone(),
        scheduled_ms: now,
        pending_deadline: None,
        claimed_by: None,
    };
    match claim {
        Some(e) => {
            let deadline = attempt_deadline(options, now, now, now);
            task.claimed_by = Some((e.worker_id.clone(), deadline));
            st.plan.claimed.push(ClaimedActivity {
                task_id: 0,
                workflow_id: st.facts.workflow_id.clone(),
                run_id: st.facts.run_id.clone(),
                activity_seq: *activity_seq,
                activity_type: activity_type.clone(),
                task_queue: task_queue.clone(),
                input: input.clone(),
                options: options.clone(),
                attempt: 1,
                token: 1,
                scheduled_ms: now,
                started_ms: now,
                deadline_ms: Some(deadline.0),
                heartbeat_details: None,
                cancel_requested: false,
            });
        }
        None => {
            task.pending_deadline = pending_deadline(options, now, now, true);
            // A task scheduled in this very commit is pending (and withdrawn if the commit also
            // cancels it).
            st.activities
                .insert(*activity_seq, (TaskState::Pending, None));
            if !cancelled_in_same_commit {
                st.plan.wake = true;
            }
        }
    }
    st.plan.effects.push(Effect::InsertActivityTask(task));
}

/// `ActivityCancelRequested`: a task not started yet is withdrawn and the activity ends cancelled
/// now (the workflow runs again to see it); a running attempt is flagged and hears the cancel at
/// its next heartbeat (in this process at once: the worker tells it).
pub(crate) fn request_cancel(st: &mut CommitState<'_>, activity_seq: u64) {
    match st.activities.remove(&activity_seq) {
        Some((TaskState::Pending, details)) => {
            st.plan
                .effects
                .push(Effect::DeleteActivityTask { activity_seq });
            st.plan.append(EventKind::ActivityCancelled {
                activity_seq,
                details,
            });
            st.rerun = true;
        }
        Some((TaskState::Running, details)) => {
            st.plan
                .effects
                .push(Effect::FlagActivityCancel { activity_seq });
            st.activities
                .insert(activity_seq, (TaskState::Running, details));
        }
        // Already ended (its outcome is in the history, or on its way to the workflow).
        None => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Attempts

/// A worker takes a due task: the next attempt, a new token, its deadline, and `ActivityStarted`.
pub(crate) fn start_attempt(
    task: &ClaimedActivity,
    worker_id: &str,
    now: i64,
) -> (ClaimedActivity, Plan) {
    let mut next = task.clone();
    next.attempt += 1;
    next.token += 1;
    next.started_ms = now;
    let deadline = attempt_deadline(&task.options, task.scheduled_ms, now, now);
    next.deadline_ms = Some(deadline.0);
    let mut plan = Plan::new(&task.workflow_id, Guard::append(), now);
    plan.append(EventKind::ActivityStarted {
        activity_seq: task.activity_seq,
        attempt: next.attempt,
        worker: worker_id.to_string(),
    });
    plan.effects.push(Effect::StartAttempt {
        task_id: task.task_id,
        attempt: next.attempt,
        token: next.token,
        started_ms: now,
        deadline,
        worker: worker_id.to_string(),
    });
    (next, plan)
}

/// What ending an attempt decided.
// A decision lives as long as one transition: its plan inline is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Finish {
    /// The attempt's token no longer matches: nothing is written.
    Fenced,
    /// The plan to apply; `event` is the outcome event it appends (none for a retry, or when the
    /// workflow already ended).
    Recorded {
        plan: Plan,
        event: Option<EventKind>,
    },
}

impl Finish {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            Finish::Fenced => None,
            Finish::Recorded { plan, .. } => Some(plan),
        }
    }

    /// Whether the outcome was recorded (false: the attempt's token no longer held).
    pub(crate) fn recorded(&self) -> bool {
        matches!(self, Finish::Recorded { .. })
    }
}

/// Ends an attempt of `task` with `resolution`. A retry of an activity whose cancel was requested
/// becomes its cancellation: a cancelled activity is never started again. With `enqueue`, the
/// workflow gets a task to see the outcome.
pub(crate) fn finish(
    task: &AttemptFacts,
    token: i64,
    resolution: ActivityResolution,
    heartbeat_details: Option<Value>,
    workflow: Option<&WorkflowFacts>,
    enqueue: bool,
    now: i64,
) -> Result<Finish> {
    let workflow_running = workflow.is_some_and(WorkflowFacts::running);
    if task.token != token {
        return Ok(Finish::Fenced);
    }
    let details = heartbeat_details.or_else(|| task.heartbeat_details.clone());
    let resolution = match resolution {
        ActivityResolution::Retry { .. } if task.cancel_requested => {
            ActivityResolution::Cancelled {
                details: details.clone(),
            }
        }
        other => other,
    };
    let mut plan = Plan::new(&task.workflow_id, Guard::append(), now);
    if let ActivityResolution::Retry {
        retry_at_ms,
        last_failure,
    } = resolution
    {
        let options = task.options.get()?;
        plan.effects.push(Effect::RetryActivityTask {
            task_id: task.task_id,
            visible_at_ms: retry_at_ms,
            heartbeat_details: details,
            last_failure,
            pending_deadline: pending_deadline(&options, task.scheduled_ms, retry_at_ms, false),
        });
        plan.wake = true;
        return Ok(Finish::Recorded { plan, event: None });
    }
    let event = resolution.event(task.activity_seq);
    plan.effects.push(Effect::EndActivityTask {
        task_id: task.task_id,
    });
    if !workflow_running {
        return Ok(Finish::Recorded { plan, event: None });
    }
    if let Some(e) = &event {
        plan.append(e.clone());
        if enqueue {
            plan.effects.push(Effect::WorkflowTask(
                super::plan::WorkflowTaskEffect::Enqueue { at_ms: now },
            ));
            plan.wake = true;
        }
    }
    Ok(Finish::Recorded { plan, event })
}

/// Retry or give up after a failed attempt, by the retry policy and the schedule-to-close budget.
pub(crate) fn resolve_failure(
    options: &ActivityOptions,
    activity_type: &str,
    attempt: u32,
    scheduled_ms: i64,
    error: ActivityError,
    details: Option<Value>,
    now: i64,
) -> ActivityResolution {
    let (etype, non_retryable) = match error.cause() {
        ActivityError::Application {
            error_type,
            non_retryable,
            ..
        } => (error_type.clone(), *non_retryable),
        other => (other.error_type().to_string(), false),
    };
    let policy = &options.retry_policy;
    if policy.should_retry(attempt, &etype, non_retryable) {
        let at = crate::duration::after_ms(now, policy.backoff(attempt));
        let within = options
            .schedule_to_close_timeout
            .map(|d| at < crate::duration::after_ms(scheduled_ms, d))
            .unwrap_or(true);
        if within {
            return ActivityResolution::Retry {
                retry_at_ms: at,
                last_failure: Some(error),
            };
        }
    }
    let is_timeout = matches!(error, ActivityError::Timeout { .. });
    let error = match error {
        ActivityError::Timeout { kind, details: d } => ActivityError::Timeout {
            kind,
            details: d.or(details),
        },
        e => e,
    };
    let failed = ActivityError::Failed {
        activity_type: activity_type.to_string(),
        attempts: attempt,
        cause: Box::new(error),
    };
    if is_timeout {
        ActivityResolution::TimedOut(failed)
    } else {
        ActivityResolution::Failed(failed)
    }
}

/// What an attempt's own result means: completed, cancelled (only if the code returned the
/// cancellation), timed out for good (schedule-to-close), interrupted by its worker's shutdown (a
/// retry at once, whatever the policy says), or a failure for the retry policy.
pub(crate) fn resolve_result(
    task: &ClaimedActivity,
    result: std::result::Result<Value, ActivityError>,
    last_details: Option<Value>,
    now: i64,
) -> ActivityResolution {
    match result {
        Ok(v) => ActivityResolution::Completed(v),
        // Interrupted by its worker's shutdown: not a failure, handed to another worker at once.
        Err(ActivityError::WorkerShutdown) => ActivityResolution::Retry {
            retry_at_ms: now,
            last_failure: None,
        },
        Err(ActivityError::Cancelled { details }) => ActivityResolution::Cancelled {
            details: details.or(last_details),
        },
        Err(ActivityError::Timeout {
            kind: TimeoutKind::ScheduleToClose,
            details,
        }) => ActivityResolution::TimedOut(ActivityError::Failed {
            activity_type: task.activity_type.clone(),
            attempts: task.attempt,
            cause: Box::new(ActivityError::Timeout {
                kind: TimeoutKind::ScheduleToClose,
                details,
            }),
        }),
        Err(e) => resolve_failure(
            &task.options,
            &task.activity_type,
            task.attempt,
            task.scheduled_ms,
            e,
            last_details,
            now,
        ),
    }
}

/// What a passed deadline means: waiting too long to start or running past schedule-to-close ends
/// the activity; an attempt's own start-to-close or heartbeat timeout is retried by the policy.
pub(crate) fn resolve_timeout(expired: &ExpiredActivity, now: i64) -> ActivityResolution {
    let task = &expired.task;
    let error = ActivityError::Timeout {
        kind: expired.kind,
        details: task.heartbeat_details.clone(),
    };
    match expired.kind {
        TimeoutKind::ScheduleToStart | TimeoutKind::ScheduleToClose => {
            ActivityResolution::TimedOut(ActivityError::Failed {
                activity_type: task.activity_type.clone(),
                attempts: task.attempt,
                cause: Box::new(error),
            })
        }
        TimeoutKind::StartToClose | TimeoutKind::Heartbeat => resolve_failure(
            &task.options,
            &task.activity_type,
            task.attempt,
            task.scheduled_ms,
            error,
            task.heartbeat_details.clone(),
            now,
        ),
    }
}

#[cfg(test)]
#[path = "activity_tests.rs"]
mod tests;
