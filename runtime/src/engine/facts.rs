//! What a store reads, inside its transaction, before the engine decides.

use crate::definition::ActivityOptions;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The state of a workflow run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Not ended yet.
    Running,
    /// Returned a result.
    Completed,
    /// Returned an error, or could not run.
    Failed,
    /// Ended cancelled.
    Cancelled,
    /// Ended by `ctx.continue_as_new(..)`: a new run of the same workflow id took over. Only an
    /// earlier run ([`crate::Client::runs`]) has this status; the workflow itself runs on.
    ContinuedAsNew,
}

impl WorkflowStatus {
    /// The status as stored and shown: `running`, `completed`, `failed`, `cancelled` or
    /// `continued_as_new`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Running => "running",
            WorkflowStatus::Completed => "completed",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Cancelled => "cancelled",
            WorkflowStatus::ContinuedAsNew => "continued_as_new",
        }
    }

    /// A stored status; an unknown one is an error, never a default.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "running" => WorkflowStatus::Running,
            "completed" => WorkflowStatus::Completed,
            "failed" => WorkflowStatus::Failed,
            "cancelled" => WorkflowStatus::Cancelled,
            "continued_as_new" => WorkflowStatus::ContinuedAsNew,
            other => {
                return Err(Error::stored_data(
                    format!("unknown workflow status `{other}` in the database; was it written by another program?"),
                    None,
                ))
            }
        })
    }
}

/// The state of a task row (a workflow task or an activity task).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// Waiting for a worker (or for its retry time).
    Pending,
    /// Taken by a worker.
    Running,
}

impl TaskState {
    /// The state as stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
        }
    }

    /// A stored state; an unknown one is an error.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(TaskState::Pending),
            "running" => Ok(TaskState::Running),
            other => Err(Error::stored_data(
                format!("unknown task state `{other}` in the database; was it written by another program?"),
                None,
            )),
        }
    }
}

/// One workflow's row, read (and on Postgres locked) in the transaction that applies the plan.
#[derive(Clone, Debug)]
pub(crate) struct WorkflowFacts {
    /// The workflow id.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
    /// Its status.
    pub status: WorkflowStatus,
    /// The number the next appended event gets.
    pub next_event_seq: u64,
    /// The workflow task's fencing token.
    pub wft_token: i64,
    /// Its workflow task, if it has one.
    pub task: Option<TaskState>,
    /// Whether a client asked to cancel it.
    pub cancel_requested: bool,
    /// Activity tasks the decision concerns, by activity seq (see
    /// [`super::workflow_task::cancel_targets`]): their state and last heartbeat details.
    pub activities: HashMap<u64, (TaskState, Option<Value>)>,
    /// For a continuation: the events after the instance's `delivered_through`, by seq and stored
    /// name.
    pub unseen: Vec<(u64, String)>,
    /// Read only for a decision that starts the workflow's next run (continue-as-new): what that
    /// run inherits. `None` otherwise.
    pub next_run: Option<NextRunFacts>,
    /// Of the child ids a commit's commands start ([`super::child::child_ids`]), those a workflow
    /// already has.
    pub existing_ids: HashSet<String>,
    /// The run is a child, or has started children: its end has followups (`engine::child`).
    pub linked: bool,
}

/// What the next run of a workflow inherits from the current one, read in the transaction that
/// starts it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct NextRunFacts {
    /// Signals recorded after the last event the committing task had seen: its code never saw
    /// them, so they are handed to the next run.
    pub late_signals: Vec<crate::history::EventKind>,
    /// The execution deadline (Temporal's workflow execution timeout spans the chain of runs).
    pub execution_deadline_ms: Option<i64>,
}

impl WorkflowFacts {
    /// The last event in the history.
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_event_seq.saturating_sub(1)
    }

    /// Whether the workflow has not ended.
    pub(crate) fn running(&self) -> bool {
        self.status == WorkflowStatus::Running
    }
}

/// An activity task's options: parsed only when a decision needs them (a retry), so that ending an
/// attempt does not parse them on the hot path.
#[derive(Clone, Debug)]
pub(crate) enum LazyOptions {
    /// Already parsed (facts built by the engine's tests).
    #[cfg(test)]
    Parsed(ActivityOptions),
    /// As stored.
    Stored(String),
}

impl LazyOptions {
    pub(crate) fn get(&self) -> Result<ActivityOptions> {
        match self {
            #[cfg(test)]
            LazyOptions::Parsed(o) => Ok(o.clone()),
            LazyOptions::Stored(s) => crate::history::format::decode_options(s).map_err(|e| {
                crate::error::corrupt_from(format!("an activity task's options: {e}"), e)
            }),
        }
    }
}

/// An activity task row as ending an attempt needs it.
#[derive(Clone, Debug)]
pub(crate) struct AttemptFacts {
    /// The task row's id.
    pub task_id: i64,
    /// Its workflow.
    pub workflow_id: String,
    /// The activity's number within the run.
    pub activity_seq: u64,
    /// The current attempt's fencing token.
    pub token: i64,
    /// When the activity was scheduled.
    pub scheduled_ms: i64,
    /// Whether a cancel was requested.
    pub cancel_requested: bool,
    /// The last stored heartbeat details.
    pub heartbeat_details: Option<Value>,
    /// Its options.
    pub options: LazyOptions,
}
