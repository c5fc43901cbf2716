//! The engine: every decision about a workflow's durable state, as pure functions.
//!
//! No tokio, no SQL, no clock: each decision takes what a store read inside its transaction (the
//! [`facts`]) and an input (a workflow task's commands, an activity attempt's outcome, a client's
//! request, a due timer) and returns a [`Plan`]: the events to append, the effects on tasks and
//! timers, and the guards the transaction must check before anything it writes counts. A store
//! reads the facts, calls the engine, checks the guards and turns each effect into its own SQL;
//! it decides nothing. A new command kind is one new file here, next to the others:
//!
//! | file | owns |
//! |---|---|
//! | [`start`] | a new run: its first event, its first workflow task, its execution timeout |
//! | [`workflow_task`] | claiming a workflow task, committing its commands (dispatching each to its kind's file), holding it, the one-commit continuation |
//! | [`activity`] | scheduling, cancel requests, attempts, outcomes, retries, timeouts, deadlines |
//! | [`local`] | a local activity's recorded outcome; the lease its workflow task keeps while local activities run |
//! | [`timer`] | starting, cancelling and firing durable timers |
//! | [`marker`] | patch and side-effect markers: appended, nothing else planned |
//! | [`cancel`] | a client's request to cancel a workflow |
//! | [`reset`] | a client's reset: a new run from a copy of the history up to a chosen workflow task, redone by the current code |
//! | [`terminate`] | a client's termination: the workflow ends at once, failed `Terminated`, no cleanup |
//! | [`close`] | a workflow's end: completed, failed, cancelled, or past its execution timeout |
//! | [`continue_as_new`] | ending a run and starting the next run of the same id, with a fresh history, in one transaction |
//! | [`liveness`] | when a worker holding running attempts is dead, and what becomes of its attempts |
//! | [`signal`] | a client's signal (once per request id), and signal-with-start |
//! | [`update`] | accepting a validated update; the commit that answers it |
//! | [`schedule`] | a schedule's due ticks, its overlap policy and catch-up window, the starts they make; pause, resume, trigger, delete |
//! | [`child`] | child workflows: their start in the parent's commit, their end in the parent's history, the parent close policies |
//!
//! The conformance suite in `store/conformance.rs` checks that every store applies plans alike.

pub(crate) mod activity;
pub(crate) mod cancel;
pub(crate) mod child;
pub(crate) mod close;
pub(crate) mod continue_as_new;
pub(crate) mod facts;
pub(crate) mod liveness;
pub(crate) mod local;
pub(crate) mod marker;
pub(crate) mod plan;
pub(crate) mod reset;
pub(crate) mod schedule;
pub(crate) mod signal;
pub(crate) mod start;
pub(crate) mod terminate;
pub(crate) mod timer;
pub(crate) mod update;
pub(crate) mod workflow_task;

#[cfg(test)]
mod testkit;

pub(crate) use activity::{ActivityResolution, ClaimedActivity, ExpiredActivity};
pub(crate) use facts::{AttemptFacts, TaskState, WorkflowFacts, WorkflowStatus};
pub(crate) use local::{LeaseRequest, LeaseState};
pub(crate) use plan::{ClosedAs, Effect, Plan, WorkflowTaskEffect};
pub(crate) use workflow_task::{
    ClaimedWorkflowTask, CommitOutcome, Continuation, EagerClaim, FinishOutcome, LocalLease,
    WorkflowTaskCommit,
};
