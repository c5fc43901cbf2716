//! A plan: what one decision writes, for a store to apply in one transaction.

use super::activity::ClaimedActivity;
use crate::definition::ActivityOptions;
use crate::error::{TimeoutKind, WorkflowError};
use crate::history::EventKind;
use serde_json::Value;

/// What a store checks before it applies a plan, in the same transaction: if a guard fails, the
/// plan is dropped whole and nothing is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Guard {
    /// The workflow's next event number must still be this (no event was appended since the facts
    /// were read): the plan's events are numbered from it. `None`: the events are appended at the
    /// end, whatever it is (an activity attempt's start, a timer's firing).
    pub next_event_seq: Option<u64>,
    /// The workflow task's fencing token must still be this.
    pub wft_token: Option<i64>,
    /// The workflow must still be running.
    pub running: bool,
}

impl Guard {
    /// Events appended at the end of the history, whatever the workflow's state.
    pub(crate) fn append() -> Guard {
        Guard {
            next_event_seq: None,
            wft_token: None,
            running: false,
        }
    }

    /// Events appended at the end of the history of a workflow that must still be running.
    pub(crate) fn append_while_running() -> Guard {
        Guard {
            running: true,
            ..Guard::append()
        }
    }
}

/// How a workflow ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ClosedAs {
    /// Returned a result.
    Completed(Value),
    /// Returned an error (or ran out of time).
    Failed(WorkflowError),
    /// Ended cancelled.
    Cancelled,
    /// Continued as a new run (its id), which the same plan starts.
    ContinuedAsNew(String),
}

impl ClosedAs {
    pub(crate) fn status(&self) -> super::WorkflowStatus {
        match self {
            ClosedAs::Completed(_) => super::WorkflowStatus::Completed,
            ClosedAs::Failed(_) => super::WorkflowStatus::Failed,
            ClosedAs::Cancelled => super::WorkflowStatus::Cancelled,
            ClosedAs::ContinuedAsNew(_) => super::WorkflowStatus::ContinuedAsNew,
        }
    }
}

/// What happens to the workflow's task row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkflowTaskEffect {
    /// Create a pending task due at this time, unless the workflow already has one.
    Enqueue { at_ms: i64 },
    /// Put the task back as pending (creating it if there is none), due at this time.
    Requeue { at_ms: i64 },
    /// The task is done: delete it.
    Complete,
    /// Hold it: pending again at `retry_at_ms`, with the reason shown by `describe`.
    Hold { reason: String, retry_at_ms: i64 },
    /// Keep (or put) the task running, leased by `owner` until `until_ms`: the owner runs the
    /// workflow's local activities. Should the owner stop, the lease expires and any worker takes
    /// the task and replays the workflow, which starts its local activities again.
    Lease { owner: String, until_ms: i64 },
}

/// A new activity task row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewActivityTask {
    /// The workflow's run.
    pub run_id: String,
    pub activity_seq: u64,
    pub activity_type: String,
    pub task_queue: String,
    pub input: Value,
    pub options: ActivityOptions,
    pub scheduled_ms: i64,
    /// Until it starts: when it times out waiting, if it does.
    pub pending_deadline: Option<(i64, TimeoutKind)>,
    /// Claimed by this worker in the same transaction (eager claim): inserted running, its first
    /// attempt started, with this deadline. The plan's `claimed` has its attempt, in order.
    pub claimed_by: Option<(String, (i64, TimeoutKind))>,
}

/// One effect on the rows other than the history and the workflow row.
// A plan's effects live as long as one transition: a new task inline is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// Insert an activity task.
    InsertActivityTask(NewActivityTask),
    /// Delete the activity task of this seq (withdrawn before it started).
    DeleteActivityTask { activity_seq: u64 },
    /// Flag the activity task of this seq: its running attempt hears the cancel at its next
    /// heartbeat.
    FlagActivityCancel { activity_seq: u64 },
    /// Start an attempt of a pending task: running, owned by `worker`, with its attempt number,
    /// token and deadline.
    StartAttempt {
        task_id: i64,
        attempt: u32,
        token: i64,
        started_ms: i64,
        deadline: (i64, TimeoutKind),
        worker: String,
    },
    /// An attempt ended and the activity will be retried: the task is pending again at
    /// `visible_at_ms`, with the details and the deadline it has while it waits.
    RetryActivityTask {
        task_id: i64,
        visible_at_ms: i64,
        heartbeat_details: Option<Value>,
        pending_deadline: Option<(i64, TimeoutKind)>,
        /// Why the attempt failed, kept for `describe` (none: interrupted by a shutdown).
        last_failure: Option<crate::error::ActivityError>,
    },
    /// An attempt ended for good: delete its task.
    EndActivityTask { task_id: i64 },
    /// Create (or move) a timer.
    UpsertTimer { timer_seq: u64, fire_at_ms: i64 },
    /// Delete a timer.
    DeleteTimer { timer_seq: u64 },
    /// The workflow ended: set its status and result, delete its workflow task, its timers and its
    /// pending activity tasks, and flag its running attempts to cancel.
    Close(ClosedAs),
    /// Record that a client asked to cancel the workflow.
    SetCancelRequested,
    /// Clear the workflow's held reason (a task committed: it runs again).
    ClearHeld,
    /// Bump the workflow task token: a claim still in flight is fenced out.
    BumpWorkflowTaskToken,
    /// The workflow task row.
    WorkflowTask(WorkflowTaskEffect),
    /// The workflow's current run has ended and another run of the same id follows in this
    /// transaction: copy its row (status, result, times) and its history into the archive of
    /// earlier runs (`runs`, `run_history`), then delete its history and whatever activity tasks
    /// it still had (their late results are fenced: nothing of an old run reaches the new one).
    ArchiveRun {
        /// The run that follows it.
        next_run_id: String,
    },
    /// The workflow row now holds a new run: running, no events yet (numbered from 1 again), no
    /// cancel request, not held; the workflow task token keeps counting (a claim of the old run
    /// in flight is fenced).
    ReplaceRun(NextRun),
    /// Start a child workflow: its row, its link to this parent, and the plan of its start
    /// (`engine::start`), written as if by `create_workflow`. The engine checked that its id was
    /// free ([`super::WorkflowFacts::existing_ids`]).
    StartChild(Box<super::child::NewChild>),
}

/// The run that replaces a workflow's current one ([`Effect::ReplaceRun`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NextRun {
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Value,
}

/// Everything one decision writes about one workflow, to be applied atomically.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The workflow it concerns.
    pub workflow_id: String,
    /// Checked first, in the transaction.
    pub guard: Guard,
    /// The time the events are recorded at.
    pub time_ms: i64,
    /// The events to append, in order (numbered from `guard.next_event_seq` when it is set).
    pub events: Vec<EventKind>,
    /// The effects, applied in order after the events.
    pub effects: Vec<Effect>,
    /// Attempts this plan starts for the committing worker (eager claims), in the order of their
    /// claimed [`Effect::InsertActivityTask`]s: the store fills in each `task_id`.
    pub claimed: Vec<ClaimedActivity>,
    /// Other workers (in other processes too) have something new to do, or a client waits for an
    /// end: a store with cross-process wake-ups sends one.
    pub wake: bool,
    /// A plan to apply right after this one, in the same transaction (the first plan of the
    /// workflow's next run, whose events are numbered from 1 again).
    pub then: Option<Box<Plan>>,
    /// What follows on other workflows, in the same transaction (see `engine::child`; a plan
    /// that closes its workflow has [`super::child::Followup::Closed`] on top of these).
    pub followups: Vec<super::child::Followup>,
    /// Set by the store once applied: a followup wrote to another workflow (woke a parent, asked
    /// a child to cancel), so this process's workers have something new to claim.
    pub woke_others: bool,
    /// The workflow this plan closes is a child or has children: its end is followed by
    /// [`super::child::Followup::Closed`]. (Unlinked workflows, most of them, skip the read of
    /// their links.)
    pub linked: bool,
}

impl super::facts::WorkflowFacts {
    /// The facts as `plan` leaves them once applied, for the next decision on the same workflow
    /// in the same transaction (a store firing several of its due timers at once).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn advance(&mut self, plan: &Plan) {
        use super::facts::TaskState;
        self.next_event_seq += plan.events.len() as u64;
        for effect in &plan.effects {
            match effect {
                Effect::Close(c) => {
                    self.status = c.status();
                    self.task = None;
                }
                Effect::BumpWorkflowTaskToken => self.wft_token += 1,
                Effect::SetCancelRequested => self.cancel_requested = true,
                Effect::WorkflowTask(WorkflowTaskEffect::Complete) => self.task = None,
                Effect::WorkflowTask(WorkflowTaskEffect::Enqueue { .. })
                    if self.running() && self.task.is_none() =>
                {
                    self.task = Some(TaskState::Pending)
                }
                Effect::WorkflowTask(WorkflowTaskEffect::Requeue { .. }) => {
                    self.task = Some(TaskState::Pending)
                }
                Effect::WorkflowTask(WorkflowTaskEffect::Hold { .. }) if self.task.is_some() => {
                    self.task = Some(TaskState::Pending)
                }
                Effect::WorkflowTask(WorkflowTaskEffect::Lease { .. }) => {
                    self.task = Some(TaskState::Running)
                }
                _ => {}
            }
        }
    }
}

impl Plan {
    /// An empty plan for `workflow_id`, guarded by `guard`.
    pub(crate) fn new(workflow_id: &str, guard: Guard, time_ms: i64) -> Plan {
        Plan {
            workflow_id: workflow_id.to_string(),
            guard,
            time_ms,
            events: Vec::new(),
            effects: Vec::new(),
            claimed: Vec::new(),
            wake: false,
            then: None,
            followups: Vec::new(),
            woke_others: false,
            linked: false,
        }
    }

    /// Appends an event; returns its number when the plan's numbering is known.
    pub(crate) fn append(&mut self, event: EventKind) -> Option<u64> {
        self.events.push(event);
        self.guard
            .next_event_seq
            .map(|first| first + self.events.len() as u64 - 1)
    }

    /// Folds plans that only append to the same workflow (each guarded by [`Guard::append`] and
    /// waking nobody differently) into one plan per run of such plans, in order: a store applying
    /// many attempt starts of one workflow then updates its row once instead of once per start.
    pub(crate) fn merge_appends(plans: Vec<Plan>) -> Vec<Plan> {
        let mut out: Vec<Plan> = Vec::with_capacity(plans.len());
        for plan in plans {
            match out.last_mut() {
                Some(last)
                    if last.workflow_id == plan.workflow_id
                        && last.guard == Guard::append()
                        && plan.guard == Guard::append()
                        && last.time_ms == plan.time_ms
                        && last.claimed.is_empty()
                        && plan.claimed.is_empty() =>
                {
                    last.events.extend(plan.events);
                    last.effects.extend(plan.effects);
                    last.wake |= plan.wake;
                    last.followups.extend(plan.followups);
                    last.linked |= plan.linked;
                }
                _ => out.push(plan),
            }
        }
        out
    }

    /// Whether the plan ends the workflow.
    pub(crate) fn closes(&self) -> Option<&ClosedAs> {
        self.effects.iter().find_map(|e| match e {
            Effect::Close(c) => Some(c),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{claimed, NOW};

    #[test]
    fn starts_of_one_workflow_fold_into_one_plan_in_order() {
        let plans: Vec<Plan> = [1, 2, 3]
            .iter()
            .map(|&seq| crate::engine::activity::start_attempt(&claimed(seq), "w", NOW).1)
            .collect();
        let mut other = plans[0].clone();
        other.workflow_id = "other".into();
        let mut all = plans.clone();
        all.push(other);
        let merged = Plan::merge_appends(all);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].events,
            plans
                .iter()
                .flat_map(|p| p.events.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(merged[0].effects.len(), 3);
        assert_eq!(merged[1].workflow_id, "other");
        // A guarded plan is never folded.
        let mut guarded = plans[0].clone();
        guarded.guard.next_event_seq = Some(9);
        assert_eq!(
            Plan::merge_appends(vec![plans[0].clone(), guarded]).len(),
            2
        );
    }

    #[test]
    fn facts_advance_as_a_plan_leaves_them() {
        use crate::engine::facts::TaskState;
        use crate::engine::testkit::facts_running;
        let mut f = facts_running(5, 1);
        f.task = None;
        let fired = crate::engine::timer::fire("wf", Some(&f), 2, NOW);
        f.advance(&fired);
        assert_eq!((f.next_event_seq, f.task), (6, Some(TaskState::Pending)));
        let timeout = crate::engine::close::execution_timeout(&f, NOW);
        f.advance(&timeout);
        assert_eq!(f.next_event_seq, 7);
        assert!(!f.running());
        assert_eq!(f.task, None);
        // A timer of the ended workflow now only removes its row.
        let late = crate::engine::timer::fire("wf", Some(&f), 3, NOW);
        assert!(late.events.is_empty());
    }
}
