//! The context a workflow runs with: activities, durable timers, and deterministic stand-ins for time,
//! randomness and ids. Everything here is recorded in, or replayed from, the workflow's history.
//!
//! Workflow cancellation lives here too: once the workflow has seen its cancel request, work started
//! in its main scope resolves `Cancelled` without being scheduled ([`WfState::refuses_new_work`]),
//! and work in the detached scope ([`WorkflowContext::detached`]) is shielded from the cancel.

use crate::activity::definition::ActivityDefinition;
use crate::definition::Cancellable;
use crate::error::WorkflowError;
use crate::history::EventKind;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Facts about the running workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowInfo {
    /// The workflow id, chosen at start.
    pub workflow_id: String,
    /// The run id, unique per run.
    pub run_id: String,
    /// The registered workflow name.
    pub workflow_type: String,
    /// The task queue.
    pub task_queue: String,
    /// How many events the run's history had when the current workflow task began: the number to
    /// watch for [`WorkflowContext::continue_as_new`] (the same on replay).
    #[serde(default)]
    pub history_length: u64,
    /// The run this run continues (continue-as-new, a reset, or a reused workflow id), if any.
    #[serde(default)]
    pub previous_run_id: Option<String>,
}

pub use super::calls::{ActivityCall, ActivityHandle, Sleep};

/// The error type [`WorkflowContext::continue_as_new`] returns, which the run's end turns into
/// the `WorkflowContinuedAsNew` command.
pub(crate) const CONTINUE_AS_NEW: &str = "ContinueAsNew";

pub use super::child::{ChildWorkflowCall, ChildWorkflowHandle};
pub(crate) use super::state::*;
use crate::workflow::definition::WorkflowDefinition;

/// The context of a workflow run. Cheap to clone.
///
/// Every call is deterministic: on replay it returns what it returned the first time.
///
/// The context a workflow receives is its **main scope**: once a client has asked to cancel the
/// workflow, activities and timers started through it resolve `Cancelled` at once, without being
/// scheduled. [`WorkflowContext::detached`] gives the **detached scope**, for cleanup that must run
/// all the same.
#[derive(Clone)]
pub struct WorkflowContext {
    pub(super) state: Arc<Mutex<WfState>>,
    /// This is the detached scope: the workflow's cancel does not reach what it starts.
    pub(super) detached: bool,
}

impl std::fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowContext")
            .field("info", &self.lock().info)
            .field("detached", &self.detached)
            .finish()
    }
}

impl WorkflowContext {
    pub(crate) fn new(state: Arc<Mutex<WfState>>) -> Self {
        WorkflowContext {
            state,
            detached: false,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, WfState> {
        // A panic inside workflow code poisons nothing we rely on: keep going with the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls an activity. Set options on the returned call, then `.await` it for the result or `.start()`
    /// it for a handle. The input type is the activity's, checked at compile time.
    ///
    /// Started in the main scope after the workflow was asked to cancel, the activity is not scheduled:
    /// its handle resolves `Err(ActivityError::Cancelled { .. })` at once. Cleanup goes through
    /// [`WorkflowContext::detached`].
    pub fn activity<A: ActivityDefinition>(
        &self,
        activity: A,
        input: A::Input,
    ) -> ActivityCall<A::Output, A::Cancel> {
        ActivityCall::new(
            self.clone(),
            activity.name(),
            activity.options(),
            &input,
            false,
        )
    }

    /// Calls an activity as a local activity: it runs in this worker's process, its result is recorded
    /// in the history, and it can always be cancelled (its future is dropped). After a cancel request,
    /// in the main scope, it resolves `Cancelled` at once, as [`WorkflowContext::activity`] does.
    pub fn local_activity<A: ActivityDefinition>(
        &self,
        activity: A,
        input: A::Input,
    ) -> ActivityCall<A::Output, Cancellable> {
        ActivityCall::new(
            self.clone(),
            activity.name(),
            activity.options(),
            &input,
            true,
        )
    }

    /// Calls a child workflow: a workflow of its own (its own id and history, on any worker that
    /// serves its task queue), whose start and end are events of this workflow's history. Set
    /// options on the returned call, then `.await` it for the child's result or `.start()` it for
    /// a [`ChildWorkflowHandle`](crate::ChildWorkflowHandle). The input and output types are the
    /// child's, checked at compile time. A child that fails, is cancelled or terminated, or
    /// cannot start (its id is taken) resolves to the matching
    /// [`ChildWorkflowError`](crate::ChildWorkflowError); `?` turns it into a `WorkflowError`
    /// (a cancellation stays a cancellation).
    ///
    /// When this workflow ends first, the child gets what its
    /// [`ParentClosePolicy`](crate::ParentClosePolicy) says (default: asked to cancel). When this
    /// workflow is asked to cancel, its children of the main scope are asked to cancel too.
    ///
    /// # Examples
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[workflow]
    /// async fn charge_card(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    ///     Ok(format!("receipt-{cents}"))
    /// }
    ///
    /// #[workflow]
    /// async fn order(ctx: WorkflowContext, id: u64) -> Result<String, WorkflowError> {
    ///     let child = ctx
    ///         .child_workflow(charge_card, 500)
    ///         .id(format!("charge-{id}"))
    ///         .parent_close_policy(ParentClosePolicy::Terminate)
    ///         .start();
    ///     assert_eq!(child.id(), format!("charge-{id}"));
    ///     let receipt = child.await?;
    ///     Ok(receipt)
    /// }
    /// # fn main() {}
    /// ```
    pub fn child_workflow<W: WorkflowDefinition>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> ChildWorkflowCall<W::Output> {
        ChildWorkflowCall::new(self.clone(), workflow, &input)
    }

    /// A durable timer: survives restarts. In the main scope it resolves
    /// `Err(WorkflowError::Cancelled)` at once if the workflow is cancelled while it waits, or was
    /// cancelled before it began, and then no timer is started (write `.await?`). A timer of the
    /// [detached scope](WorkflowContext::detached) fires whatever the workflow's cancel.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let mut st = self.lock();
        let seq = st.alloc_seq();
        let result = if st.refuses_new_work(self.detached, seq) {
            Some(Err(WorkflowError::Cancelled))
        } else if duration.is_zero() {
            Some(Ok(()))
        } else {
            let fire_at_ms = crate::duration::after_ms(st.now_ms, duration);
            st.commands.push(EventKind::TimerStarted {
                timer_seq: seq,
                fire_at_ms,
            });
            None
        };
        st.timers.insert(
            seq,
            TimerSlot {
                result,
                detached: self.detached,
            },
        );
        Sleep {
            ctx: self.clone(),
            seq,
            done: false,
        }
    }

    /// The workflow's clock: the time its current task began, the same on replay.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.lock().now_ms.max(0) as u64)
    }

    /// A random number, the same on replay.
    pub fn random_u64(&self) -> u64 {
        let mut st = self.lock();
        // splitmix64
        st.rng = st.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = st.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random (version 4 layout) UUID, the same on replay.
    pub fn uuid(&self) -> uuid::Uuid {
        let hi = self.random_u64() as u128;
        let lo = self.random_u64() as u128;
        uuid::Builder::from_random_bytes(((hi << 64) | lo).to_be_bytes()).into_uuid()
    }

    /// Facts about this run: workflow id, run id, type, task queue, the history's length and the
    /// run before this one.
    pub fn info(&self) -> WorkflowInfo {
        let mut st = self.lock();
        st.info_read = true;
        st.info.clone()
    }

    /// Ends this run and starts a new run of the same workflow id with `input` (the workflow's
    /// input type) and a fresh history, in one transaction: Temporal's continue-as-new, for
    /// workflows that loop for ever without their history growing without bound. Return what it
    /// returns: `return ctx.continue_as_new(next_state);`.
    ///
    /// The run ends with status `continued_as_new`; its history and result stay readable
    /// ([`crate::Client::runs`], [`crate::Client::run_history`]). The new run gets the same
    /// workflow type and task queue, and `ctx.info().previous_run_id` names this run. Signals this
    /// run received and did not read are delivered to the new run first, in order; so are signals
    /// that arrived while this last task ran. Activities still running are abandoned (their
    /// results are dropped), timers are dropped. A client's [`crate::WorkflowHandle::result`]
    /// waits through the chain and returns the last run's result.
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[workflow]
    /// async fn count_to(ctx: WorkflowContext, (done, goal): (u64, u64)) -> Result<u64, WorkflowError> {
    ///     let mut done = done;
    ///     while done < goal {
    ///         ctx.sleep(std::time::Duration::from_millis(1)).await?;
    ///         done += 1;
    ///         if ctx.info().history_length > 400 {
    ///             return ctx.continue_as_new((done, goal)); // a new run, a fresh history
    ///         }
    ///     }
    ///     Ok(done)
    /// }
    /// ```
    ///
    /// An input that does not serialize ends the run failed with a `PayloadError`, as a result
    /// that does not serialize does.
    pub fn continue_as_new<I: Serialize, O>(&self, input: I) -> Result<O, WorkflowError> {
        match serde_json::to_value(&input) {
            Ok(v) => {
                self.lock().continue_as_new = Some(v);
                Err(WorkflowError::application(
                    CONTINUE_AS_NEW,
                    "the workflow continues as new (return this error as is)",
                ))
            }
            Err(e) => Err(WorkflowError::application(
                "PayloadError",
                format!(
                    "the input given to continue_as_new does not serialize as `{}`: {e}",
                    std::any::type_name::<I>()
                ),
            )),
        }
    }

    /// True once a client has asked to cancel this workflow (the workflow has seen the request). The
    /// same in both scopes: the detached scope shields work from the cancel, not the news of it.
    pub fn is_cancelled(&self) -> bool {
        self.lock().cancel_requested
    }

    /// Resolves once a client has asked to cancel this workflow, in both scopes.
    pub fn cancelled(&self) -> WorkflowCancelled {
        WorkflowCancelled { ctx: self.clone() }
    }

    /// The workflow's **detached scope**: a context whose activities and timers the workflow's cancel
    /// does not reach, for cleanup that must run when the workflow is cancelled (compensations,
    /// releasing what it holds). Temporal's Go SDK calls it `NewDisconnectedContext`.
    ///
    /// Once the workflow has seen a client's cancel request, an activity (regular or local) or a
    /// timer started in the main scope (the context the workflow received) resolves `Cancelled` at
    /// once, without being scheduled, and the main scope's pending work was cancelled (activities by
    /// their [`CancellationType`](crate::CancellationType), timers at once). Through the detached context, work is scheduled
    /// and runs as usual, before or after the request; only its own `handle.cancel()`, or the
    /// workflow's end, cancels it. Everything else (`now`, `random_u64`, `uuid`, `info`,
    /// `is_cancelled`) is the same in both scopes. The returned context is `Clone + Send`, like this
    /// one; calling `detached()` on it returns the detached scope again.
    ///
    /// # Examples
    ///
    /// A saga: each step that succeeded registers its compensation; on a failure or a cancel, the
    /// compensations run newest first, in the detached scope.
    ///
    /// ```
    /// use duraflow::prelude::*;
    ///
    /// #[activity] async fn reserve(order: u64) -> Result<(), ActivityError> { Ok(()) }
    /// #[activity] async fn release(order: u64) -> Result<(), ActivityError> { Ok(()) }
    /// #[activity] async fn charge(order: u64) -> Result<(), ActivityError> { Ok(()) }
    /// #[activity] async fn refund(order: u64) -> Result<(), ActivityError> { Ok(()) }
    /// #[activity] async fn ship(order: u64) -> Result<(), ActivityError> { Ok(()) }
    ///
    /// #[workflow]
    /// async fn booking(ctx: WorkflowContext, order: u64) -> Result<(), WorkflowError> {
    ///     let mut done = Vec::new();
    ///     let steps = async {
    ///         ctx.activity(reserve, order).await?;
    ///         done.push("reserve");
    ///         ctx.activity(charge, order).await?;
    ///         done.push("charge");
    ///         ctx.activity(ship, order).await
    ///     };
    ///     if let Err(e) = steps.await {
    ///         // Cancelled or failed: undo what was done. The main scope would refuse this work
    ///         // after a cancel request; the detached scope runs it.
    ///         let cleanup = ctx.detached();
    ///         for step in done.into_iter().rev() {
    ///             match step {
    ///                 "charge" => cleanup.activity(refund, order).await?,
    ///                 _ => cleanup.activity(release, order).await?,
    ///             }
    ///         }
    ///         return Err(e.into()); // a cancellation ends the workflow `Cancelled`
    ///     }
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn detached(&self) -> WorkflowContext {
        WorkflowContext {
            state: self.state.clone(),
            detached: true,
        }
    }
}

/// Resolves once the workflow has been asked to cancel; from [`WorkflowContext::cancelled`].
pub struct WorkflowCancelled {
    ctx: WorkflowContext,
}

impl Future for WorkflowCancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.ctx.lock().cancel_requested {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
