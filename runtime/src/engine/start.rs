//! A new run: its row, event #1 `WorkflowStarted` with the input, its first workflow task, and the
//! timer of its execution timeout.

use super::facts::{WorkflowFacts, WorkflowStatus};
use super::plan::{Effect, Guard, NextRun, Plan, WorkflowTaskEffect};
use crate::error::Error;
use crate::history::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a start may reuse the id of a workflow whose last run has **ended** (Temporal's
/// `WorkflowIdReusePolicy`). The ended run stays readable as an earlier run
/// ([`crate::Client::runs`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowIdReusePolicy {
    /// A new run may start whatever the last run's end.
    AllowDuplicate,
    /// A new run may start only if the last run failed, was cancelled or was terminated (a retry
    /// of work that did not succeed).
    AllowDuplicateFailedOnly,
    /// An id is used once: starting it again fails with [`Error::DuplicateWorkflowId`] (the
    /// default, and how every earlier release behaved).
    #[default]
    RejectDuplicate,
}

/// What a start does when a workflow with the id is **running** (Temporal's
/// `WorkflowIdConflictPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowIdConflictPolicy {
    /// Fail with [`Error::DuplicateWorkflowId`] (the default).
    #[default]
    Fail,
    /// Return the running workflow's handle: an idempotent start that a client can retry safely
    /// (nothing is recorded; the input is not compared).
    UseExisting,
}

/// The policies of one start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StartPolicy {
    pub reuse: WorkflowIdReusePolicy,
    pub conflict: WorkflowIdConflictPolicy,
}

impl StartPolicy {
    /// Whether this is every release's behaviour (an id is used once): the store's fast path.
    pub(crate) fn is_default(&self) -> bool {
        *self == StartPolicy::default()
    }
}

/// What a start did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StartOutcome {
    /// A new run was recorded (false: the running workflow's handle, `UseExisting`).
    pub started: bool,
    /// The run the handle is for.
    pub run_id: String,
}

/// What a start of an id that exists does, as [`decide`] says.
#[derive(Debug)]
pub(crate) enum StartDecision {
    /// The last run ended and may be replaced: this plan archives it and starts the new run.
    Replace(Plan),
    /// The workflow runs: its run, whose handle the caller gets.
    Existing { run_id: String },
    /// Refused, with the error that says why and what to pass instead.
    Refused(Error),
}

/// Decides a start of `wf` whose id is taken by the run `existing` (an id that is free is simply
/// inserted with [`start`]'s plan).
pub(crate) fn decide(
    existing: &WorkflowFacts,
    wf: &NewWorkflow,
    policy: StartPolicy,
    now: i64,
) -> StartDecision {
    let id = &wf.workflow_id;
    if existing.running() {
        return match policy.conflict {
            WorkflowIdConflictPolicy::UseExisting => StartDecision::Existing {
                run_id: existing.run_id.clone(),
            },
            WorkflowIdConflictPolicy::Fail => {
                StartDecision::Refused(Error::DuplicateWorkflowId(id.clone()))
            }
        };
    }
    let allowed = match policy.reuse {
        WorkflowIdReusePolicy::AllowDuplicate => true,
        WorkflowIdReusePolicy::AllowDuplicateFailedOnly => matches!(
            existing.status,
            WorkflowStatus::Failed | WorkflowStatus::Cancelled
        ),
        WorkflowIdReusePolicy::RejectDuplicate => false,
    };
    if !allowed {
        return StartDecision::Refused(match policy.reuse {
            WorkflowIdReusePolicy::RejectDuplicate => Error::DuplicateWorkflowId(id.clone()),
            _ => Error::WorkflowIdReuseRefused {
                workflow_id: id.clone(),
                status: existing.status.as_str().to_string(),
            },
        });
    }
    let mut plan = Plan::new(
        id,
        Guard {
            next_event_seq: None,
            wft_token: None,
            running: false,
        },
        now,
    );
    plan.effects.push(Effect::ArchiveRun {
        next_run_id: wf.run_id.clone(),
    });
    plan.effects.push(Effect::ReplaceRun(NextRun {
        run_id: wf.run_id.clone(),
        workflow_type: wf.workflow_type.clone(),
        task_queue: wf.task_queue.clone(),
        input: wf.input.clone(),
    }));
    plan.then = Some(Box::new(start(wf, now)));
    plan.wake = true;
    StartDecision::Replace(plan)
}

/// A new workflow run to record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewWorkflow {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Value,
    pub execution_deadline_ms: Option<i64>,
}

/// Plans a new run. The store creates the workflow row (refusing an id that exists) and applies the
/// plan: its events are numbered from 1.
pub(crate) fn start(wf: &NewWorkflow, now: i64) -> Plan {
    let mut plan = Plan::new(
        &wf.workflow_id,
        Guard {
            next_event_seq: Some(1),
            wft_token: None,
            running: true,
        },
        now,
    );
    plan.append(EventKind::WorkflowStarted {
        workflow_type: wf.workflow_type.clone(),
        input: wf.input.clone(),
        task_queue: wf.task_queue.clone(),
        run_id: wf.run_id.clone(),
    });
    begin_run(&mut plan, wf.execution_deadline_ms, now);
    plan
}

/// What every new run's first plan has after its first events: the execution timeout's timer (if
/// any), the first workflow task, and a wake-up for the workers.
pub(super) fn begin_run(plan: &mut Plan, execution_deadline_ms: Option<i64>, now: i64) {
    if let Some(deadline) = execution_deadline_ms {
        plan.effects.push(Effect::UpsertTimer {
            timer_seq: super::timer::EXECUTION_TIMEOUT_TIMER,
            fire_at_ms: deadline,
        });
    }
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{facts_running, NOW};

    fn new_run() -> NewWorkflow {
        NewWorkflow {
            workflow_id: "order-1".into(),
            run_id: "r2".into(),
            workflow_type: "order".into(),
            task_queue: "default".into(),
            input: serde_json::json!(1),
            execution_deadline_ms: None,
        }
    }

    fn policy(reuse: WorkflowIdReusePolicy, conflict: WorkflowIdConflictPolicy) -> StartPolicy {
        StartPolicy { reuse, conflict }
    }

    #[test]
    fn a_running_id_fails_or_gives_its_handle() {
        let running = facts_running(4, 1);
        use WorkflowIdConflictPolicy::*;
        use WorkflowIdReusePolicy::*;
        assert!(matches!(
            decide(&running, &new_run(), policy(AllowDuplicate, Fail), NOW),
            StartDecision::Refused(Error::DuplicateWorkflowId(id)) if id == "order-1"
        ));
        assert!(matches!(
            decide(&running, &new_run(), policy(RejectDuplicate, UseExisting), NOW),
            StartDecision::Existing { run_id } if run_id == running.run_id
        ));
    }

    #[test]
    fn an_ended_id_is_reused_as_the_policy_says() {
        use WorkflowIdReusePolicy::*;
        for (status, reuse, allowed) in [
            (WorkflowStatus::Completed, AllowDuplicate, true),
            (WorkflowStatus::Completed, AllowDuplicateFailedOnly, false),
            (WorkflowStatus::Failed, AllowDuplicateFailedOnly, true),
            (WorkflowStatus::Cancelled, AllowDuplicateFailedOnly, true),
            (WorkflowStatus::Failed, RejectDuplicate, false),
        ] {
            let mut ended = facts_running(4, 1);
            ended.status = status;
            let d = decide(
                &ended,
                &new_run(),
                policy(reuse, WorkflowIdConflictPolicy::UseExisting),
                NOW,
            );
            match d {
                StartDecision::Replace(plan) => {
                    assert!(allowed, "{status:?} {reuse:?}");
                    assert_eq!(
                        plan.effects[0],
                        Effect::ArchiveRun {
                            next_run_id: "r2".into()
                        }
                    );
                    assert!(matches!(&plan.effects[1], Effect::ReplaceRun(n) if n.run_id == "r2"));
                    assert!(plan.events.is_empty());
                    let next = plan.then.as_deref().unwrap();
                    assert_eq!(next, &start(&new_run(), NOW));
                }
                StartDecision::Refused(e) => {
                    assert!(!allowed, "{status:?} {reuse:?}: {e}");
                    let text = e.to_string();
                    assert!(text.contains("order-1"), "{text}");
                }
                StartDecision::Existing { .. } => panic!("an ended run has no handle to share"),
            }
        }
    }

    #[test]
    fn a_run_starts_with_its_input_a_task_and_its_deadline() {
        let wf = NewWorkflow {
            workflow_id: "order-1".into(),
            run_id: "r1".into(),
            workflow_type: "order".into(),
            task_queue: "default".into(),
            input: serde_json::json!({"qty": 2}),
            execution_deadline_ms: Some(NOW + 1_000),
        };
        let plan = start(&wf, NOW);
        assert_eq!(plan.guard.next_event_seq, Some(1));
        assert_eq!(
            plan.events,
            vec![EventKind::WorkflowStarted {
                workflow_type: "order".into(),
                input: serde_json::json!({"qty": 2}),
                task_queue: "default".into(),
                run_id: "r1".into()
            }]
        );
        assert_eq!(
            plan.effects,
            vec![
                Effect::UpsertTimer {
                    timer_seq: 0,
                    fire_at_ms: NOW + 1_000
                },
                Effect::WorkflowTask(WorkflowTaskEffect::Enqueue { at_ms: NOW })
            ]
        );
    }
}
