//! Workflow tasks: committing a task's commands (each handed to its kind's file), holding a task
//! whose replay does not match, and the one-commit step (an activity's outcome and the workflow's
//! next task committed together).

use super::activity::{self, ActivityResolution, ClaimedActivity, Finish};
use super::facts::{AttemptFacts, TaskState, WorkflowFacts};
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use super::{close, marker, timer};
use crate::error::Result;
use crate::history::{format, EventKind};
use serde_json::Value;
use std::collections::HashMap;

/// A workflow task a worker has taken.
#[derive(Clone, Debug)]
pub(crate) struct ClaimedWorkflowTask {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub token: i64,
}

/// What a workflow task produced.
#[derive(Clone, Debug)]
pub(crate) struct WorkflowTaskCommit {
    pub workflow_id: String,
    pub token: i64,
    /// The last history event the task had seen.
    pub processed_through: u64,
    /// The task's clock, recorded in the `WorkflowTaskCompleted` marker.
    pub task_time_ms: i64,
    /// Command events, in order.
    pub commands: Vec<EventKind>,
    /// Take up to this many of the new activity tasks for this worker in the same transaction.
    pub eager: Option<EagerClaim>,
    /// The workflow has local activities this worker runs: keep its task leased to the worker
    /// instead of completing it (see [`LocalLease`]).
    pub local_lease: Option<LocalLease>,
}

/// A workflow task kept leased while its worker runs the workflow's local activities: they are
/// recorded nowhere until they end, so the lease is what brings the workflow back (replayed by
/// any worker, its local activities started again from attempt 1) should that worker stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalLease {
    /// The worker that runs the local activities.
    pub worker_id: String,
    /// The lease ends here unless renewed.
    pub until_ms: i64,
}

/// Claim new activity tasks in the commit that creates them (this worker runs those types).
#[derive(Clone, Debug)]
pub(crate) struct EagerClaim {
    pub worker_id: String,
    pub activity_types: Vec<String>,
    pub queues: Vec<String>,
    pub max: usize,
}

/// The result of a workflow task commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CommitOutcome {
    /// New events arrived meanwhile: the workflow task was put back as pending.
    pub rerun: bool,
    /// The commit would have closed the workflow, but events arrived that its code had not seen
    /// (a signal, an update, a cancel request, an outcome): nothing of it was written and the task
    /// was put back, for the code to run again with them (Temporal's "unhandled command"). The
    /// worker's instance computed the dropped commands: it must not be kept.
    pub discarded: bool,
    /// Activity tasks claimed for this worker in the same transaction.
    pub eager: Vec<ClaimedActivity>,
    /// The sequence number of the `WorkflowTaskCompleted` marker this commit appended: every command
    /// event up to it is this task's own.
    pub marker_seq: u64,
    /// The commit's followups wrote to other workflows (see [`Plan::woke_others`]).
    pub woke_others: bool,
}

/// The next workflow task, computed in memory by the worker that ran an activity, to commit with the
/// activity's outcome when its instance saw everything else.
#[derive(Clone, Debug)]
pub(crate) struct Continuation {
    /// The commit; its `token` is unused and its `processed_through` is set to the new event's seq.
    pub commit: WorkflowTaskCommit,
    /// The last event the instance had seen.
    pub delivered_through: u64,
    /// The instance's own last marker.
    pub own_marker_seq: u64,
}

/// What `finish_activity_and_continue` did.
#[derive(Clone, Debug)]
pub(crate) struct FinishOutcome {
    /// False when the attempt's token no longer matched: nothing was written.
    pub recorded: bool,
    /// The continuation was committed: the activity event's seq (the task's `processed_through`)
    /// and the commit's outcome. `None`: a workflow task was enqueued instead.
    pub continued: Option<(u64, CommitOutcome)>,
}

/// The working state of one commit while its commands are planned.
pub(crate) struct CommitState<'a> {
    pub facts: &'a WorkflowFacts,
    pub plan: Plan,
    /// The activity tasks as they stand at this point of the commit.
    pub activities: HashMap<u64, (TaskState, Option<Value>)>,
    /// The workflow must run again: something it has not seen happened.
    pub rerun: bool,
    /// Events appended after the task's marker (a child's start, or its refusal).
    pub after_marker: Vec<EventKind>,
    /// The ids of the children this commit starts.
    pub children_started: Vec<String>,
}

/// The activity seqs whose task state a commit of `commands` needs in its facts.
pub(crate) fn cancel_targets(commands: &[EventKind]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|cmd| match cmd {
            EventKind::ActivityCancelRequested { activity_seq } => Some(*activity_seq),
            _ => None,
        })
        .collect()
}

/// Whether the worker's commit may go ahead: its token still holds the running task.
pub(crate) fn may_commit(facts: &WorkflowFacts, token: i64) -> bool {
    facts.running() && facts.wft_token == token && facts.task == Some(TaskState::Running)
}

/// Plans a workflow task's commit: the `lead` events (a continuation's activity outcome), the
/// commands in order (each handed to its kind's file), the marker, the eager claims' starts, and
/// the workflow task ended, or put back when the workflow must run again. `None`: the task's token
/// no longer holds it (nothing is written).
pub(crate) fn commit(
    facts: &WorkflowFacts,
    c: &WorkflowTaskCommit,
    lead: Vec<EventKind>,
    now: i64,
) -> Option<(Plan, CommitOutcome)> {
    if !may_commit(facts, c.token) {
        return None;
    }
    Some(plan_commit(facts, c, lead, false, now))
}

fn plan_commit(
    facts: &WorkflowFacts,
    c: &WorkflowTaskCommit,
    lead: Vec<EventKind>,
    continuation: bool,
    now: i64,
) -> (Plan, CommitOutcome) {
    let guard = Guard {
        next_event_seq: Some(facts.next_event_seq),
        wft_token: (!continuation).then_some(c.token),
        running: true,
    };
    let closes = c.commands.iter().any(close::is_close);
    let unseen = !continuation && facts.last_seq() > c.processed_through;
    if closes && unseen {
        // A close computed without the newest events would lose them (a signal the caller was
        // told is recorded, an accepted update): the code runs again with them first.
        let mut plan = Plan::new(&c.workflow_id, guard, now);
        plan.effects.push(Effect::ClearHeld);
        plan.effects
            .push(Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                at_ms: now,
            }));
        plan.wake = true;
        let outcome = CommitOutcome {
            rerun: true,
            discarded: true,
            ..CommitOutcome::default()
        };
        return (plan, outcome);
    }
    let mut st = CommitState {
        facts,
        plan: Plan::new(&c.workflow_id, guard, now),
        activities: facts.activities.clone(),
        rerun: unseen,
        after_marker: Vec::new(),
        children_started: Vec::new(),
    };
    for e in lead {
        st.plan.append(e);
    }
    if continuation {
        st.plan.effects.push(Effect::BumpWorkflowTaskToken);
    }
    let cancelled = cancel_targets(&c.commands);
    // New tasks of a commit that closes the workflow are withdrawn by the close: none is claimed.
    let eager = c.eager.as_ref().filter(|_| !closes);
    for cmd in &c.commands {
        st.plan.append(cmd.clone());
        match cmd {
            EventKind::ActivityScheduled { activity_seq, .. } => {
                let cancelled_too = cancelled.contains(activity_seq);
                activity::schedule(&mut st, cmd, eager, cancelled_too)
            }
            EventKind::ActivityCancelRequested { activity_seq } => {
                activity::request_cancel(&mut st, *activity_seq)
            }
            EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => timer::start(&mut st, *timer_seq, *fire_at_ms),
            EventKind::TimerCancelled { timer_seq } => timer::cancel(&mut st, *timer_seq),
            EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled {} => close::command(&mut st, cmd),
            EventKind::PatchMarker { .. } | EventKind::SideEffectMarker { .. } => {
                marker::record(&mut st, cmd)
            }
            EventKind::UpdateCompleted { .. } => super::update::complete(&mut st),
            EventKind::WorkflowContinuedAsNew { .. } => {
                super::continue_as_new::command(&mut st, cmd)
            }
            EventKind::ChildWorkflowInitiated { .. } => super::child::start(&mut st, cmd),
            EventKind::ChildWorkflowCancelRequested {
                child_seq,
                workflow_id,
            } => super::child::request_cancel(&mut st, *child_seq, workflow_id),
            _ => {}
        }
    }
    let marker_seq = st
        .plan
        .append(EventKind::WorkflowTaskCompleted {
            processed_through: c.processed_through,
            task_time_ms: c.task_time_ms,
        })
        .unwrap_or_default();
    if let Some(e) = eager {
        let started: Vec<EventKind> = st
            .plan
            .claimed
            .iter()
            .map(|t| EventKind::ActivityStarted {
                activity_seq: t.activity_seq,
                attempt: t.attempt,
                worker: e.worker_id.clone(),
            })
            .collect();
        for s in started {
            st.plan.append(s);
        }
    }
    for e in std::mem::take(&mut st.after_marker) {
        st.plan.append(e);
    }
    let closed = st.plan.closes().is_some();
    let mut outcome = CommitOutcome {
        marker_seq,
        ..CommitOutcome::default()
    };
    if !closed {
        st.plan.effects.push(Effect::ClearHeld);
        if st.rerun {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                    at_ms: now,
                }));
            st.plan.wake = true;
            outcome.rerun = true;
        } else if let Some(lease) = &c.local_lease {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                    owner: lease.worker_id.clone(),
                    until_ms: lease.until_ms,
                }));
        } else {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Complete));
        }
    }
    outcome.eager = st.plan.claimed.clone();
    (st.plan, outcome)
}

/// Puts a workflow task back because its replay does not match the history (or its stored data
/// cannot be read): held with `reason`, retried at `retry_at_ms`. `None` if the token no longer
/// holds the task.
pub(crate) fn hold(
    facts: &WorkflowFacts,
    token: i64,
    reason: &str,
    retry_at_ms: i64,
    now: i64,
) -> Option<Plan> {
    if facts.wft_token != token {
        return None;
    }
    let mut plan = Plan::new(
        &facts.workflow_id,
        Guard {
            next_event_seq: None,
            wft_token: Some(token),
            running: false,
        },
        now,
    );
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Hold {
            reason: reason.to_string(),
            retry_at_ms,
        }));
    plan.wake = true;
    Some(plan)
}

/// What ending an attempt with a continuation decided.
#[derive(Debug)]
pub(crate) enum ContinueDecision {
    /// The token no longer matches: nothing is written.
    Fenced,
    /// The outcome is recorded the ordinary way (a workflow task is enqueued, if the workflow
    /// runs): the continuation does not apply.
    Recorded(Plan),
    /// The outcome and the continuation's commit, in one plan; the outcome event's seq.
    Continued {
        plan: Plan,
        event_seq: u64,
        outcome: CommitOutcome,
    },
}

impl CommitOutcome {
    /// The outcome once `plan` is applied: its claimed attempts, now with the task ids the store
    /// gave them, are this worker's.
    pub(crate) fn applied(mut self, plan: Plan) -> CommitOutcome {
        self.eager = plan.claimed;
        self.woke_others = plan.woke_others;
        self
    }
}

impl ContinueDecision {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            ContinueDecision::Fenced => None,
            ContinueDecision::Recorded(plan) | ContinueDecision::Continued { plan, .. } => {
                Some(plan)
            }
        }
    }

    /// What the worker hears, once the plan is applied.
    pub(crate) fn outcome(self) -> FinishOutcome {
        match self {
            ContinueDecision::Fenced => FinishOutcome {
                recorded: false,
                continued: None,
            },
            ContinueDecision::Recorded(_) => FinishOutcome {
                recorded: true,
                continued: None,
            },
            ContinueDecision::Continued {
                plan,
                event_seq,
                outcome,
            } => FinishOutcome {
                recorded: true,
                continued: Some((event_seq, outcome.applied(plan))),
            },
        }
    }
}

/// Whether a worker's instance that has seen the history up to `delivered_through` and wrote
/// everything up to `own_marker_seq` saw every event of the history: its commands, computed with
/// the new event, can then be the workflow's next task. An attempt's start is not delivered to
/// workflow code, so it does not count.
pub(crate) fn saw_everything(facts: &WorkflowFacts, cont: &Continuation) -> bool {
    facts.task.is_none()
        && facts.unseen.iter().all(|(seq, name)| {
            (*seq <= cont.own_marker_seq && format::is_command_or_marker_name(name))
                || name == format::names::ACTIVITY_STARTED
                || name == format::names::CHILD_WORKFLOW_STARTED
        })
}

/// The one-commit step: ends an attempt and, when the worker's instance saw every other event,
/// commits its next task (with the token bumped, fencing out any claim in flight) in the same
/// plan; else records the outcome and enqueues a workflow task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_and_continue(
    task: &AttemptFacts,
    workflow: Option<&WorkflowFacts>,
    token: i64,
    resolution: ActivityResolution,
    heartbeat_details: Option<Value>,
    cont: &Continuation,
    now: i64,
) -> Result<ContinueDecision> {
    // A continuation is computed with the attempt's outcome: a retry has none (even when it
    // becomes a cancellation here, the instance did not see that).
    let retry = matches!(resolution, ActivityResolution::Retry { .. });
    let eligible = workflow.filter(|w| {
        !retry
            && w.running()
            && task.workflow_id == cont.commit.workflow_id
            && saw_everything(w, cont)
    });
    let Some(facts) = eligible else {
        return Ok(
            match activity::finish(
                task,
                token,
                resolution,
                heartbeat_details,
                workflow,
                true,
                now,
            )? {
                Finish::Fenced => ContinueDecision::Fenced,
                Finish::Recorded { plan, .. } => ContinueDecision::Recorded(plan),
            },
        );
    };
    let (finished, event) = match activity::finish(
        task,
        token,
        resolution,
        heartbeat_details,
        Some(facts),
        false,
        now,
    )? {
        Finish::Fenced => return Ok(ContinueDecision::Fenced),
        Finish::Recorded {
            plan,
            event: Some(event),
        } => (plan, event),
        // A retry has no outcome event for the instance to see: the ordinary way.
        Finish::Recorded { plan, event: None } => return Ok(ContinueDecision::Recorded(plan)),
    };
    let event_seq = facts.next_event_seq;
    let mut facts = facts.clone();
    // The finished attempt's task is deleted by this plan.
    facts.activities.remove(&task.activity_seq);
    let mut commit = cont.commit.clone();
    commit.processed_through = event_seq;
    let (mut plan, outcome) = plan_commit(&facts, &commit, vec![event], true, now);
    let mut effects = finished.effects;
    effects.append(&mut plan.effects);
    plan.effects = effects;
    Ok(ContinueDecision::Continued {
        plan,
        event_seq,
        outcome,
    })
}

#[cfg(test)]
#[path = "workflow_task_tests.rs"]
mod tests;
