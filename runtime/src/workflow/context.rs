//! The context a workflow runs with: activities, durable timers, and deterministic stand-ins for time,
//! randomness and ids. Everything here is recorded in, or replayed from, the workflow's history.
//!
//! Workflow cancellation lives here too: once the workflow has seen its cancel request, work started
//! in its main scope resolves `Cancelled` without being scheduled ([`WfState::refuses_new_work`]),
//! and work in the detached scope ([`WorkflowContext::detached`]) is shielded from the cancel.

use crate::activity::definition::ActivityDefinition;
use crate::definition::{ActivityOptions, CanCancel, CancelCapability, Cancellable};
use crate::error::{ActivityError, WorkflowError};
use crate::history::{CancellationType, EventKind};
use crate::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
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
}

#[derive(Debug)]
pub(crate) struct ActivitySlot {
    pub(crate) result: Option<Result<Value, ActivityError>>,
    pub(crate) cancellation_type: CancellationType,
    pub(crate) cancel_requested: bool,
    pub(crate) local: bool,
    /// Started through [`WorkflowContext::detached`]: the workflow's cancel leaves it alone.
    pub(crate) detached: bool,
    pub(crate) activity_type: String,
    /// For local activities: what the worker needs to run it.
    pub(crate) local_call: Option<(Value, ActivityOptions)>,
}

/// A durable timer: its outcome once it has one, and its scope.
#[derive(Debug)]
struct TimerSlot {
    result: Option<Result<(), WorkflowError>>,
    /// Started through [`WorkflowContext::detached`]: the workflow's cancel leaves it alone.
    detached: bool,
}

/// The workflow-side state shared by the context and every future it hands out.
pub(crate) struct WfState {
    pub(crate) info: WorkflowInfo,
    next_seq: u64,
    /// Commands produced since the last drain, as the history events they become.
    pub(crate) commands: Vec<EventKind>,
    pub(crate) activities: HashMap<u64, ActivitySlot>,
    timers: HashMap<u64, TimerSlot>,
    pub(crate) now_ms: i64,
    rng: u64,
    /// The workflow has seen its `WorkflowCancelRequested` event.
    pub(crate) cancel_requested: bool,
    /// While the executor replays a recorded workflow task: the activities and timers (by seq) that
    /// the task's recorded commands scheduled. Empty otherwise.
    pub(crate) replaying_starts: Vec<u64>,
    /// Set when a handle resolved during a poll, so the executor polls again.
    pub(crate) changed: bool,
    /// Set when the instance is being thrown away: drops then record nothing.
    pub(crate) discarded: bool,
}

fn seed_from(run_id: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

impl WfState {
    pub(crate) fn new(info: WorkflowInfo) -> Self {
        let rng = seed_from(&info.run_id);
        WfState {
            info,
            next_seq: 1,
            commands: Vec::new(),
            activities: HashMap::new(),
            timers: HashMap::new(),
            now_ms: 0,
            rng,
            cancel_requested: false,
            replaying_starts: Vec::new(),
            changed: false,
            discarded: false,
        }
    }

    fn alloc_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// The rule of workflow cancellation, for a new activity (regular or local) or timer `seq`: true
    /// when it is to resolve `Cancelled` at once, with no command. That is when the workflow has seen
    /// its cancel request (an event at a fixed point of the history, so replay decides the same) and
    /// the work is started in the main scope, not through [`WorkflowContext::detached`].
    ///
    /// One exception keeps histories written before this rule replaying: when a recorded task being
    /// replayed scheduled this very seq (a main-scope activity its code started after the request, as
    /// builds before `detached()` did), it is scheduled again, and the recorded commands are checked
    /// as always. Live tasks have no recorded commands, so the rule always applies to new work.
    fn refuses_new_work(&self, detached: bool, seq: u64) -> bool {
        self.cancel_requested && !detached && !self.replaying_starts.contains(&seq)
    }

    /// Requests the cancel of activity `seq` according to its cancellation type.
    fn cancel_activity(&mut self, seq: u64) {
        let Some(slot) = self.activities.get_mut(&seq) else {
            return;
        };
        if slot.result.is_some() || slot.cancel_requested {
            return;
        }
        slot.cancel_requested = true;
        match slot.cancellation_type {
            CancellationType::TryCancel => {
                slot.result = Some(Err(ActivityError::cancelled()));
                self.commands
                    .push(EventKind::ActivityCancelRequested { activity_seq: seq });
            }
            CancellationType::WaitCancellationCompleted => {
                self.commands
                    .push(EventKind::ActivityCancelRequested { activity_seq: seq });
            }
            CancellationType::Abandon => {
                slot.result = Some(Err(ActivityError::cancelled()));
            }
        }
        self.changed = true;
    }

    /// Delivers an event from outside (an activity or timer outcome, a cancel request).
    pub(crate) fn deliver(&mut self, kind: &EventKind) {
        match kind {
            EventKind::ActivityCompleted {
                activity_seq,
                result,
            } => self.resolve_activity(*activity_seq, Ok(result.clone())),
            EventKind::ActivityFailed {
                activity_seq,
                error,
            }
            | EventKind::ActivityTimedOut {
                activity_seq,
                error,
            } => self.resolve_activity(*activity_seq, Err(error.clone())),
            EventKind::ActivityCancelled {
                activity_seq,
                details,
            } => self.resolve_activity(
                *activity_seq,
                Err(ActivityError::Cancelled {
                    details: details.clone(),
                }),
            ),
            EventKind::LocalActivityMarker {
                activity_seq,
                result,
            } => self.resolve_activity(*activity_seq, result.clone()),
            EventKind::TimerFired { timer_seq } => {
                if let Some(t) = self.timers.get_mut(timer_seq) {
                    if t.result.is_none() {
                        t.result = Some(Ok(()));
                    }
                }
            }
            EventKind::WorkflowCancelRequested {} if !self.cancel_requested => {
                // The cancel reaches the main scope's pending work; the detached scope's goes on.
                self.cancel_requested = true;
                let mut timers: Vec<u64> = self
                    .timers
                    .iter()
                    .filter(|(_, t)| t.result.is_none() && !t.detached)
                    .map(|(s, _)| *s)
                    .collect();
                timers.sort_unstable();
                for seq in timers {
                    if let Some(t) = self.timers.get_mut(&seq) {
                        t.result = Some(Err(WorkflowError::Cancelled));
                    }
                    self.commands
                        .push(EventKind::TimerCancelled { timer_seq: seq });
                }
                let mut acts: Vec<u64> = self
                    .activities
                    .iter()
                    .filter(|(_, a)| a.result.is_none() && !a.cancel_requested && !a.detached)
                    .map(|(s, _)| *s)
                    .collect();
                acts.sort_unstable();
                for seq in acts {
                    self.cancel_activity(seq);
                }
            }
            _ => {}
        }
    }

    fn resolve_activity(&mut self, seq: u64, result: Result<Value, ActivityError>) {
        if let Some(slot) = self.activities.get_mut(&seq) {
            if slot.result.is_none() {
                slot.result = Some(result);
            }
        }
    }

    /// Local activities scheduled and not yet resolved: what a worker must (re)start.
    pub(crate) fn pending_local_activities(&self) -> Vec<(u64, String, Value, ActivityOptions)> {
        let mut v: Vec<_> = self
            .activities
            .iter()
            .filter(|(_, a)| a.local && a.result.is_none() && !a.cancel_requested)
            .filter_map(|(s, a)| {
                a.local_call
                    .as_ref()
                    .map(|(i, o)| (*s, a.activity_type.clone(), i.clone(), o.clone()))
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// Whether a local activity is scheduled and not resolved (its cancel may have been asked
    /// for): its worker keeps the workflow task leased while one is.
    pub(crate) fn has_unresolved_local(&self) -> bool {
        self.activities
            .values()
            .any(|a| a.local && a.result.is_none())
    }

    /// Local activities whose cancel was asked for and waited for, and not resolved: after a
    /// replay nothing runs them any more, so their cancellation is recorded.
    pub(crate) fn unresolved_local_cancels(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .activities
            .iter()
            .filter(|(_, a)| a.local && a.result.is_none() && a.cancel_requested)
            .map(|(s, _)| *s)
            .collect();
        v.sort_unstable();
        v
    }
}

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
    state: Arc<Mutex<WfState>>,
    /// This is the detached scope: the workflow's cancel does not reach what it starts.
    detached: bool,
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

    fn lock(&self) -> MutexGuard<'_, WfState> {
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
            let fire_at_ms = st.now_ms.saturating_add(duration.as_millis() as i64);
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

    /// Facts about this run.
    pub fn info(&self) -> WorkflowInfo {
        self.lock().info.clone()
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
    /// their [`CancellationType`], timers at once). Through the detached context, work is scheduled
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

/// A call of an activity from a workflow, not yet started: set options, then `.await` or `.start()`.
///
/// `C` records whether the handle can be cancelled: [`Cancellable`] once the activity declares a
/// heartbeat timeout, the call sets one, or the call is local.
#[must_use = "an activity call does nothing until it is awaited or started"]
pub struct ActivityCall<O, C> {
    ctx: WorkflowContext,
    activity_type: &'static str,
    input: Result<Value, String>,
    options: ActivityOptions,
    local: bool,
    cancellation_type: CancellationType,
    _marker: PhantomData<fn() -> (O, C)>,
}

impl<O, C> ActivityCall<O, C> {
    fn new<I: Serialize>(
        ctx: WorkflowContext,
        activity_type: &'static str,
        options: ActivityOptions,
        input: &I,
        local: bool,
    ) -> Self {
        ActivityCall {
            ctx,
            activity_type,
            input: serde_json::to_value(input).map_err(|e| e.to_string()),
            options,
            local,
            cancellation_type: CancellationType::default(),
            _marker: PhantomData,
        }
    }

    /// Longest single attempt.
    pub fn start_to_close_timeout(mut self, d: Duration) -> Self {
        self.options.start_to_close_timeout = Some(d);
        self
    }

    /// Longest time from scheduling to the end, across all attempts.
    pub fn schedule_to_close_timeout(mut self, d: Duration) -> Self {
        self.options.schedule_to_close_timeout = Some(d);
        self
    }

    /// Longest wait for a worker to start an attempt.
    pub fn schedule_to_start_timeout(mut self, d: Duration) -> Self {
        self.options.schedule_to_start_timeout = Some(d);
        self
    }

    /// Longest silence between heartbeats; makes the handle cancellable.
    pub fn heartbeat_timeout(mut self, d: Duration) -> ActivityCall<O, Cancellable> {
        self.options.heartbeat_timeout = Some(d);
        ActivityCall {
            ctx: self.ctx,
            activity_type: self.activity_type,
            input: self.input,
            options: self.options,
            local: self.local,
            cancellation_type: self.cancellation_type,
            _marker: PhantomData,
        }
    }

    /// How failed attempts are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry_policy = policy;
        self
    }

    /// How a cancel behaves.
    pub fn cancellation_type(mut self, t: CancellationType) -> Self {
        self.cancellation_type = t;
        self
    }

    /// The task queue the activity is sent to.
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.options.task_queue = Some(queue.into());
        self
    }

    /// Schedules the activity now and returns a handle: a future of its result that can be cancelled.
    pub fn start(self) -> ActivityHandle<O, C> {
        let mut st = self.ctx.lock();
        let seq = st.alloc_seq();
        let mut slot = ActivitySlot {
            result: None,
            cancellation_type: self.cancellation_type,
            cancel_requested: false,
            local: self.local,
            detached: self.ctx.detached,
            activity_type: self.activity_type.to_string(),
            local_call: None,
        };
        let checked = self.options.retry_policy.validate().and(self.input);
        match checked {
            Err(msg) => {
                slot.result = Some(Err(ActivityError::Failed {
                    activity_type: self.activity_type.to_string(),
                    attempts: 0,
                    cause: Box::new(ActivityError::non_retryable(
                        "InvalidCall",
                        format!("activity `{}` was not scheduled: {msg}", self.activity_type),
                    )),
                }));
            }
            Ok(_) if st.refuses_new_work(self.ctx.detached, seq) => {
                // Started in the main scope of a cancelled workflow: never scheduled.
                slot.cancel_requested = true;
                slot.result = Some(Err(ActivityError::cancelled()));
            }
            Ok(input) => {
                let task_queue = self
                    .options
                    .task_queue
                    .clone()
                    .unwrap_or_else(|| st.info.task_queue.clone());
                if self.local {
                    slot.local_call = Some((input.clone(), self.options.clone()));
                }
                st.commands.push(EventKind::ActivityScheduled {
                    activity_seq: seq,
                    activity_type: self.activity_type.to_string(),
                    input,
                    options: self.options,
                    task_queue,
                    local: self.local,
                    cancellation_type: self.cancellation_type,
                });
            }
        }
        st.activities.insert(seq, slot);
        drop(st);
        ActivityHandle {
            ctx: self.ctx,
            seq,
            activity_type: self.activity_type,
            _marker: PhantomData,
        }
    }
}

impl<O: serde::de::DeserializeOwned, C> IntoFuture for ActivityCall<O, C> {
    type Output = Result<O, ActivityError>;
    type IntoFuture = ActivityHandle<O, C>;

    fn into_future(self) -> Self::IntoFuture {
        self.start()
    }
}

/// A started activity: `.await` it for the result, `.cancel()` it where it can hear a cancellation.
#[must_use = "dropping the handle does not cancel the activity; await it or call cancel()"]
pub struct ActivityHandle<O, C> {
    ctx: WorkflowContext,
    seq: u64,
    activity_type: &'static str,
    _marker: PhantomData<fn() -> (O, C)>,
}

impl<O, C: CancelCapability> ActivityHandle<O, C> {
    /// Requests cancellation, as the call's [`CancellationType`] says. It compiles only for handles
    /// whose activity can hear a cancellation (see [`CanCancel`]).
    pub fn cancel(&self)
    where
        C: CanCancel,
    {
        self.ctx.lock().cancel_activity(self.seq);
    }

    /// The activity's number within the workflow run.
    pub fn activity_seq(&self) -> u64 {
        self.seq
    }
}

impl<O: serde::de::DeserializeOwned, C> Future for ActivityHandle<O, C> {
    type Output = Result<O, ActivityError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let st = self.ctx.lock();
        let Some(slot) = st.activities.get(&self.seq) else {
            return Poll::Pending;
        };
        match &slot.result {
            None => Poll::Pending,
            Some(Err(e)) => Poll::Ready(Err(e.clone())),
            Some(Ok(v)) => {
                Poll::Ready(
                    serde_json::from_value(v.clone()).map_err(|e| ActivityError::Failed {
                        activity_type: self.activity_type.to_string(),
                        attempts: 1,
                        cause: Box::new(ActivityError::non_retryable(
                            "PayloadError",
                            format!(
                                "the result of activity `{}` does not deserialize as `{}`: {e}",
                                self.activity_type,
                                std::any::type_name::<O>()
                            ),
                        )),
                    }),
                )
            }
        }
    }
}

/// A durable timer from [`WorkflowContext::sleep`].
#[must_use = "a timer does nothing unless awaited"]
pub struct Sleep {
    ctx: WorkflowContext,
    seq: u64,
    done: bool,
}

impl Future for Sleep {
    type Output = Result<(), WorkflowError>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = self
            .ctx
            .lock()
            .timers
            .get(&self.seq)
            .and_then(|t| t.result.clone());
        match r {
            Some(r) => {
                self.done = true;
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.ctx.lock();
        if st.discarded {
            return;
        }
        if let Some(slot) = st.timers.get_mut(&self.seq) {
            if slot.result.is_none() {
                slot.result = Some(Err(WorkflowError::Cancelled));
                st.commands.push(EventKind::TimerCancelled {
                    timer_seq: self.seq,
                });
            }
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
