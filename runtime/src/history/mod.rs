//! The event history of a workflow run: append-only, the source of truth that replay reads.
//!
//! The serde forms of the public types here are what `Client::history_json` shows. The stores do not
//! write them: what a database holds is the versioned stored format of [`format`], converted to and
//! from these types, so a change to a public type cannot break a stored history.

use crate::definition::ActivityOptions;
use crate::error::{ActivityError, WorkflowError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) mod format;

/// How a workflow's cancel of an activity behaves. Default [`CancellationType::TryCancel`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationType {
    /// Send the cancel and resolve the handle `Cancelled` at once; a late result is dropped.
    #[default]
    TryCancel,
    /// Send the cancel and resolve the handle with the activity's real outcome: cancelled, or its result
    /// if it swallowed the cancel.
    WaitCancellationCompleted,
    /// Send nothing; resolve the handle `Cancelled` at once and let the activity run on.
    Abandon,
}

/// What happens to a child workflow when its parent ends (completes, fails, is cancelled or
/// terminated) while the child still runs. Default [`ParentClosePolicy::RequestCancel`], as in
/// Temporal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentClosePolicy {
    /// The child is asked to cancel (its code sees the request and decides what cancelling means).
    #[default]
    RequestCancel,
    /// The child ends at once, failed `Terminated`, with no cleanup.
    Terminate,
    /// The child runs on, on its own.
    Abandon,
}

impl ParentClosePolicy {
    /// The policy as stored: `request_cancel`, `terminate` or `abandon`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentClosePolicy::RequestCancel => "request_cancel",
            ParentClosePolicy::Terminate => "terminate",
            ParentClosePolicy::Abandon => "abandon",
        }
    }

    /// A stored policy; `None` for a name this build does not know.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "request_cancel" => ParentClosePolicy::RequestCancel,
            "terminate" => ParentClosePolicy::Terminate,
            "abandon" => ParentClosePolicy::Abandon,
            _ => return None,
        })
    }
}

/// One event of a workflow run's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Position in the history, from 1.
    pub seq: u64,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Events the workflow's code caused (commands) are told apart from events that reach
/// it from outside by [`EventKind::is_command`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run began.
    WorkflowStarted {
        /// The registered workflow name.
        workflow_type: String,
        /// The input, as JSON.
        input: Value,
        /// The task queue.
        task_queue: String,
        /// The run id.
        run_id: String,
    },
    /// A workflow task ended: the commands before this marker were produced from the events up to
    /// `processed_through`.
    WorkflowTaskCompleted {
        /// The last event the task had seen.
        processed_through: u64,
        /// The workflow's clock (`ctx.now()`) during the task, in ms since the epoch.
        task_time_ms: i64,
    },
    /// The workflow asked for an activity.
    ActivityScheduled {
        /// The activity's command number within the run (activities, timers and side effects share one
        /// sequence, in program order).
        activity_seq: u64,
        /// The registered activity name.
        activity_type: String,
        /// The input, as JSON.
        input: Value,
        /// The resolved options.
        options: ActivityOptions,
        /// The task queue.
        task_queue: String,
        /// Whether it runs as a local activity.
        local: bool,
        /// How a cancel behaves.
        cancellation_type: CancellationType,
    },
    /// An attempt began on a worker.
    ActivityStarted {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The attempt, from 1.
        attempt: u32,
        /// The worker that took it.
        worker: String,
    },
    /// The activity returned a result.
    ActivityCompleted {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The result, as JSON.
        result: Value,
    },
    /// The activity failed for good.
    ActivityFailed {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The failure, with its cause and attempt count.
        error: ActivityError,
    },
    /// The activity ran out of time for good.
    ActivityTimedOut {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The timeout, with its kind and the last heartbeat details.
        error: ActivityError,
    },
    /// The workflow asked to cancel the activity.
    ActivityCancelRequested {
        /// The activity's command number within the run.
        activity_seq: u64,
    },
    /// The activity ended cancelled.
    ActivityCancelled {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The last heartbeat details.
        details: Option<Value>,
    },
    /// The result of a local activity, recorded by the worker that ran it.
    LocalActivityMarker {
        /// The activity's command number within the run.
        activity_seq: u64,
        /// The outcome.
        result: Result<Value, ActivityError>,
    },
    /// A durable timer began.
    TimerStarted {
        /// The timer's command number within the run (shared with activities and side effects).
        timer_seq: u64,
        /// When it fires, in ms since the epoch.
        fire_at_ms: i64,
    },
    /// A durable timer fired.
    TimerFired {
        /// The timer's command number within the run.
        timer_seq: u64,
    },
    /// The workflow dropped a timer before it fired.
    TimerCancelled {
        /// The timer's command number within the run.
        timer_seq: u64,
    },
    /// A client asked to cancel the workflow.
    WorkflowCancelRequested {},
    /// The workflow returned a result.
    WorkflowCompleted {
        /// The result, as JSON.
        result: Value,
    },
    /// The workflow returned an error (or could not run).
    WorkflowFailed {
        /// The error.
        error: WorkflowError,
    },
    /// The workflow ended cancelled.
    WorkflowCancelled {},
    /// The workflow's code passed `ctx.patched(patch_id)` (or `ctx.deprecate_patch(patch_id)`) for
    /// the first time in this run, running new code: the run takes the patched branch from here on,
    /// also on replay. Not numbered: a patch takes no command number, so adding one does not
    /// renumber the commands after it.
    PatchMarker {
        /// The id given to `ctx.patched`.
        patch_id: String,
        /// Recorded by `ctx.deprecate_patch`: code without the call replays this history too.
        deprecated: bool,
    },
    /// The value of a `ctx.side_effect(..)`, recorded the first time and read back on replay.
    SideEffectMarker {
        /// The side effect's command number within the run.
        side_effect_seq: u64,
        /// The value, as JSON.
        value: Value,
    },
    /// A client sent the workflow a signal (`Client::signal`).
    SignalReceived {
        /// The signal's registered name (its type's name unless `#[signal(name = "..")]`).
        signal_name: String,
        /// The signal, as JSON.
        input: Value,
        /// The request id that makes a client's retries deliver it once.
        request_id: String,
    },
    /// A client's update passed the workflow's validator and was accepted; its handler runs when
    /// the workflow sees this event.
    UpdateAccepted {
        /// The update's id: a repeated request with the same id gets the same answer.
        update_id: String,
        /// The update's registered name.
        update_name: String,
        /// The update, as JSON.
        input: Value,
    },
    /// The workflow answered an accepted update.
    UpdateCompleted {
        /// The update's id.
        update_id: String,
        /// The handler's answer, or why the update was refused when the workflow saw it.
        outcome: Result<Value, String>,
    },
    /// The workflow returned `ctx.continue_as_new(input)`: this run ends here, and a new run of the
    /// same workflow id (`new_run_id`) starts with `input` and a fresh history, in the same
    /// transaction. The last event of the run's history.
    WorkflowContinuedAsNew {
        /// The run that follows.
        new_run_id: String,
        /// The next run's workflow name.
        workflow_type: String,
        /// The next run's task queue.
        task_queue: String,
        /// The next run's input, as JSON.
        input: Value,
        /// Signals this run received and did not read: they are delivered again, first, to the
        /// next run (in the order they arrived, each with its request id).
        carried_signals: Vec<CarriedSignal>,
    },
    /// This run follows another run of the same workflow id: the second event of its history,
    /// after [`EventKind::WorkflowStarted`] (`ctx.info().previous_run_id` reads it).
    RunContinued {
        /// The run before.
        previous_run_id: String,
        /// Why this run was started: `continue_as_new`, `reset` or `reuse` (a start of an id whose
        /// last run had ended, which a `WorkflowIdReusePolicy` allowed).
        cause: String,
    },
    /// A client reset the workflow (`Client::reset`): the events before this one were copied from
    /// the run `previous_run_id` up to (not including) its workflow task `workflow_task`, whose
    /// decisions the current code now makes again from here.
    WorkflowReset {
        /// The run that was reset (it ended as terminated).
        previous_run_id: String,
        /// The workflow task, counted from 1, that runs again.
        workflow_task: u64,
        /// The reason the client gave.
        reason: String,
    },
    /// The workflow asked for a child workflow (`ctx.child_workflow(..)`): started in the same
    /// transaction as this event, unless its id is taken.
    ChildWorkflowInitiated {
        /// The child's command number within the run (shared with activities and timers).
        child_seq: u64,
        /// The child's registered workflow name.
        workflow_type: String,
        /// The child's workflow id.
        workflow_id: String,
        /// The child's task queue.
        task_queue: String,
        /// The child's input, as JSON.
        input: Value,
        /// What happens to the child when this workflow ends first.
        parent_close_policy: ParentClosePolicy,
        /// The child's execution timeout, in ms.
        execution_timeout_ms: Option<u64>,
    },
    /// The child workflow was started: it runs with its own history.
    ChildWorkflowStarted {
        /// The child's command number within the run.
        child_seq: u64,
        /// The child's workflow id.
        workflow_id: String,
        /// The child's run id.
        run_id: String,
    },
    /// The child workflow could not start: a workflow with its id exists.
    ChildWorkflowStartFailed {
        /// The child's command number within the run.
        child_seq: u64,
        /// The id that was taken.
        workflow_id: String,
    },
    /// The child workflow returned a result.
    ChildWorkflowCompleted {
        /// The child's command number within the run.
        child_seq: u64,
        /// The result, as JSON.
        result: Value,
    },
    /// The child workflow failed (or ran past its execution timeout).
    ChildWorkflowFailed {
        /// The child's command number within the run.
        child_seq: u64,
        /// The child's error.
        error: WorkflowError,
    },
    /// The child workflow ended cancelled.
    ChildWorkflowCancelled {
        /// The child's command number within the run.
        child_seq: u64,
    },
    /// The child workflow was terminated.
    ChildWorkflowTerminated {
        /// The child's command number within the run.
        child_seq: u64,
        /// Why, as the termination said.
        reason: String,
    },
    /// The workflow asked its child workflow to cancel (`handle.cancel()`, or its own cancel).
    ChildWorkflowCancelRequested {
        /// The child's command number within the run.
        child_seq: u64,
        /// The child's workflow id.
        workflow_id: String,
    },
}

/// A signal a run received and did not read, handed to the run that continues it
/// ([`EventKind::WorkflowContinuedAsNew`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CarriedSignal {
    /// The signal's registered name.
    pub signal_name: String,
    /// The signal, as JSON.
    pub input: Value,
    /// The request id it was sent with (its retries stay deduplicated in the next run).
    pub request_id: String,
}

impl EventKind {
    /// The event's name, as stored.
    pub fn name(&self) -> &'static str {
        format::event_name(self)
    }

    /// True for events the workflow's own code produced (they are compared on replay).
    pub fn is_command(&self) -> bool {
        format::is_command_name(self.name())
    }

    /// A short description for error messages: the name and the command number it concerns
    /// (e.g. `timer #3 started`, then `activity scheduled #4 of ...`). Activities, timers and side
    /// effects of a run share one sequence of **command numbers**, given in program order.
    pub fn describe(&self) -> String {
        match self {
            EventKind::ActivityScheduled {
                activity_seq,
                activity_type,
                local,
                ..
            } => format!(
                "{} #{activity_seq} of `{activity_type}`",
                if *local {
                    "local activity scheduled"
                } else {
                    "activity scheduled"
                }
            ),
            EventKind::ActivityCancelRequested { activity_seq } => {
                format!("cancel of activity #{activity_seq}")
            }
            EventKind::TimerStarted { timer_seq, .. } => format!("timer #{timer_seq} started"),
            EventKind::TimerCancelled { timer_seq } => format!("timer #{timer_seq} cancelled"),
            EventKind::PatchMarker {
                patch_id,
                deprecated,
            } => format!(
                "patch marker `{patch_id}`{}",
                if *deprecated { " (deprecated)" } else { "" }
            ),
            EventKind::SideEffectMarker {
                side_effect_seq, ..
            } => format!("side effect #{side_effect_seq}"),
            EventKind::SignalReceived { signal_name, .. } => format!("signal `{signal_name}`"),
            EventKind::UpdateAccepted {
                update_id,
                update_name,
                ..
            } => format!("update `{update_name}` ({update_id}) accepted"),
            EventKind::UpdateCompleted { update_id, .. } => {
                format!("update {update_id} completed")
            }
            EventKind::WorkflowContinuedAsNew { new_run_id, .. } => {
                format!("continued as new (run {new_run_id})")
            }
            EventKind::ChildWorkflowInitiated {
                child_seq,
                workflow_type,
                ..
            } => format!("child workflow #{child_seq} of `{workflow_type}` initiated"),
            EventKind::ChildWorkflowCancelRequested { child_seq, .. } => {
                format!("cancel of child workflow #{child_seq}")
            }
            other => other.name().replace('_', " "),
        }
    }
}
