//! Child workflows: the `ChildWorkflowInitiated` and `ChildWorkflowCancelRequested` commands, a
//! child's end recorded in its parent's history, and the parent close policies.
//!
//! Like Temporal (sdk-core's `child_workflow_state_machine.rs`), a child is a workflow of its own
//! with its own history; its start and end are events of its parent's history:
//!
//! - **Start**, in the parent's workflow-task commit (one transaction): the command
//!   `ChildWorkflowInitiated`, then, after the task's marker, `ChildWorkflowStarted` (the child's
//!   row, its first event and its first workflow task are written by the same plan:
//!   [`Effect::StartChild`]) or, when a workflow with the child's id exists,
//!   `ChildWorkflowStartFailed` (and the parent runs again to see it).
//! - **End**, in the transaction that closes the child: its outcome appended to the parent's
//!   history (`ChildWorkflowCompleted` / `Failed` / `Cancelled` / `Terminated`) and a workflow
//!   task for the parent ([`deliver`]).
//! - **The parent's end**, in the transaction that closes the parent: each child still running
//!   is asked to cancel, terminated, or left alone, as its [`ParentClosePolicy`] says
//!   ([`on_close`]).
//!
//! What follows a plan on other workflows is a list of [`Followup`]s: a store reads the facts of
//! the workflow each one concerns, asks the function here, and applies the plan it returns, in
//! the same transaction.

use super::facts::WorkflowFacts;
use super::plan::{ClosedAs, Effect, Guard, Plan, WorkflowTaskEffect};
use super::start::NewWorkflow;
use super::workflow_task::CommitState;
use crate::history::{EventKind, ParentClosePolicy};

/// A child workflow to start in its parent's commit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewChild {
    /// The child's run.
    pub workflow: NewWorkflow,
    /// Its parent's workflow id and run id.
    pub parent_id: String,
    pub parent_run_id: String,
    /// The child's command number in its parent's run.
    pub child_seq: u64,
    /// What happens to it when the parent ends first.
    pub policy: ParentClosePolicy,
}

/// Work on another workflow that a plan implies, decided in the same transaction once the facts
/// of that workflow are read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Followup {
    /// A workflow ended: read its links (its parent, its children still running) and ask
    /// [`on_close`].
    Closed {
        workflow_id: String,
        closed: ClosedAs,
    },
    /// Record a child's end in its parent ([`deliver`]).
    Deliver {
        parent_id: String,
        parent_run_id: String,
        event: EventKind,
    },
    /// Ask a workflow run to cancel ([`request_cancel_of`]).
    RequestCancel { workflow_id: String, run_id: String },
    /// Terminate a workflow run ([`terminate_of`]).
    Terminate {
        workflow_id: String,
        run_id: String,
        reason: String,
    },
}

/// A closed workflow's links, as a store reads them: its parent (if it is a child) and its
/// children that still run.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Links {
    /// Its parent's workflow id, run id, and the child's command number there.
    pub parent: Option<(String, String, u64)>,
    /// Its children still running: workflow id, run id, policy.
    pub open_children: Vec<(String, String, ParentClosePolicy)>,
}

/// The ids of the children a commit's commands start: a store reads which of them exist
/// ([`WorkflowFacts::existing_ids`]).
pub(crate) fn child_ids(commands: &[EventKind]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|c| match c {
            EventKind::ChildWorkflowInitiated { workflow_id, .. } => Some(workflow_id.clone()),
            _ => None,
        })
        .collect()
}

/// The run id of a parent's child `seq`: derived from the parent's run, so that the engine stays
/// pure and the parent can name the run it cancels.
pub(crate) fn child_run_id(parent_run_id: &str, seq: u64) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in parent_run_id.bytes().chain(seq.to_le_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325) as u128;
    let lo = fnv(0x8422_2325_cbf2_9ce4) as u128;
    uuid::Builder::from_random_bytes(((hi << 64) | lo).to_be_bytes())
        .into_uuid()
        .to_string()
}

/// The `ChildWorkflowInitiated` command: the child started by this plan, or refused because its
/// id is taken (the parent then runs again to see the refusal).
pub(crate) fn start(st: &mut CommitState<'_>, cmd: &EventKind) {
    let EventKind::ChildWorkflowInitiated {
        child_seq,
        workflow_type,
        workflow_id,
        task_queue,
        input,
        parent_close_policy,
        execution_timeout_ms,
    } = cmd
    else {
        return;
    };
    let taken =
        st.facts.existing_ids.contains(workflow_id) || st.children_started.contains(workflow_id);
    if taken {
        st.after_marker.push(EventKind::ChildWorkflowStartFailed {
            child_seq: *child_seq,
            workflow_id: workflow_id.clone(),
        });
        st.rerun = true;
        return;
    }
    let run_id = child_run_id(&st.facts.run_id, *child_seq);
    let now = st.plan.time_ms;
    st.children_started.push(workflow_id.clone());
    st.plan.effects.push(Effect::StartChild(Box::new(NewChild {
        workflow: NewWorkflow {
            workflow_id: workflow_id.clone(),
            run_id: run_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            input: input.clone(),
            execution_deadline_ms: execution_timeout_ms
                .map(|ms| now.saturating_add(ms.min(i64::MAX as u64) as i64)),
        },
        parent_id: st.facts.workflow_id.clone(),
        parent_run_id: st.facts.run_id.clone(),
        child_seq: *child_seq,
        policy: *parent_close_policy,
    })));
    st.after_marker.push(EventKind::ChildWorkflowStarted {
        child_seq: *child_seq,
        workflow_id: workflow_id.clone(),
        run_id,
    });
    st.plan.wake = true;
}

/// The `ChildWorkflowCancelRequested` command: the child (the run this parent started) is asked
/// to cancel in the same transaction; its end reaches the parent as usual.
pub(crate) fn request_cancel(st: &mut CommitState<'_>, child_seq: u64, workflow_id: &str) {
    st.plan.followups.push(Followup::RequestCancel {
        workflow_id: workflow_id.to_string(),
        run_id: child_run_id(&st.facts.run_id, child_seq),
    });
    st.plan.wake = true;
}

/// What a store does after applying `plan`, on other workflows.
pub(crate) fn followups(plan: &Plan) -> Vec<Followup> {
    let mut v = plan.followups.clone();
    if let Some(closed) = plan.closes().filter(|_| plan.linked) {
        v.push(Followup::Closed {
            workflow_id: plan.workflow_id.clone(),
            closed: closed.clone(),
        });
    }
    v
}

/// The event a child's end is recorded as in its parent's history.
pub(crate) fn outcome_event(child_seq: u64, closed: &ClosedAs) -> EventKind {
    match closed {
        ClosedAs::Completed(result) => EventKind::ChildWorkflowCompleted {
            child_seq,
            result: result.clone(),
        },
        ClosedAs::Failed(crate::error::WorkflowError::Application {
            error_type,
            message,
        }) if error_type == super::terminate::TERMINATED => EventKind::ChildWorkflowTerminated {
            child_seq,
            reason: message.clone(),
        },
        ClosedAs::Failed(error) => EventKind::ChildWorkflowFailed {
            child_seq,
            error: error.clone(),
        },
        ClosedAs::Cancelled => EventKind::ChildWorkflowCancelled { child_seq },
        // Not delivered (see `on_close`); said as a failure should it ever be.
        ClosedAs::ContinuedAsNew(run) => EventKind::ChildWorkflowFailed {
            child_seq,
            error: crate::error::WorkflowError::application(
                "ChildContinuedAsNew",
                format!("the child workflow continued as new (run {run})"),
            ),
        },
    }
}

/// A workflow ended: its parent hears of it, and its children still running get what their
/// parent close policy says.
pub(crate) fn on_close(closed: &ClosedAs, links: &Links, workflow_id: &str) -> Vec<Followup> {
    let mut v = Vec::new();
    // A run that continued as new has not ended for its parent: the chain goes on. (Following
    // the chain to its last run is not built yet: the parent is not told of the later runs' end,
    // see the known limits in `guide::runs`.)
    let ended = !matches!(closed, ClosedAs::ContinuedAsNew(_));
    if let Some((parent_id, parent_run_id, seq)) = links.parent.as_ref().filter(|_| ended) {
        v.push(Followup::Deliver {
            parent_id: parent_id.clone(),
            parent_run_id: parent_run_id.clone(),
            event: outcome_event(*seq, closed),
        });
    }
    for (child_id, run_id, policy) in &links.open_children {
        match policy {
            ParentClosePolicy::RequestCancel => v.push(Followup::RequestCancel {
                workflow_id: child_id.clone(),
                run_id: run_id.clone(),
            }),
            ParentClosePolicy::Terminate => v.push(Followup::Terminate {
                workflow_id: child_id.clone(),
                run_id: run_id.clone(),
                reason: format!(
                    "its parent workflow `{workflow_id}` ended (parent close policy: terminate)"
                ),
            }),
            ParentClosePolicy::Abandon => {}
        }
    }
    v
}

fn same_run<'a>(facts: Option<&'a WorkflowFacts>, run_id: &str) -> Option<&'a WorkflowFacts> {
    facts.filter(|f| f.run_id == run_id && f.running())
}

/// A child's end reaches its parent: the event and a workflow task, while the parent's run goes
/// on. `None` when it has ended (a child it abandoned, or one that ended with it).
pub(crate) fn deliver(
    parent: Option<&WorkflowFacts>,
    parent_run_id: &str,
    event: EventKind,
    now: i64,
) -> Option<Plan> {
    let parent = same_run(parent, parent_run_id)?;
    let mut plan = Plan::new(&parent.workflow_id, Guard::append_while_running(), now);
    plan.append(event);
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    Some(plan)
}

/// A parent asks its child's run to cancel (its `handle.cancel()`, or the `RequestCancel` policy).
pub(crate) fn request_cancel_of(
    child: Option<&WorkflowFacts>,
    run_id: &str,
    now: i64,
) -> Option<Plan> {
    let child = same_run(child, run_id)?;
    super::cancel::request(child, now).plan_mut().cloned()
}

/// A parent's `Terminate` policy ends its child's run.
pub(crate) fn terminate_of(
    child: Option<&WorkflowFacts>,
    run_id: &str,
    reason: &str,
    now: i64,
) -> Option<Plan> {
    let child = same_run(child, run_id)?;
    super::terminate::terminate(child, reason, now)
}

#[cfg(test)]
#[path = "child_tests.rs"]
mod tests;
