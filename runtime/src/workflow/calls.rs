//! What workflow code awaits: activity calls and handles, and durable sleeps.

use super::context::WorkflowContext;
use super::state::*;
use crate::definition::{ActivityOptions, CanCancel, CancelCapability, Cancellable};
use crate::error::{ActivityError, WorkflowError};
use crate::history::{CancellationType, EventKind};
use crate::retry::RetryPolicy;
use serde::Serialize;
use serde_json::Value;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A call of an activity from a workflow, not yet started: set options, then `.await` or `.start()`.
///
/// `C` records whether the handle can be cancelled: [`Cancellable`] once the activity declares a
/// heartbeat timeout, the call sets one, or the call is local.
#[must_use = "an activity call does nothing until it is awaited or started"]
pub struct ActivityCall<O, C> {
    pub(crate) ctx: WorkflowContext,
    pub(crate) activity_type: &'static str,
    pub(crate) input: Result<Value, String>,
    pub(crate) options: ActivityOptions,
    pub(crate) local: bool,
    pub(crate) cancellation_type: CancellationType,
    pub(crate) _marker: PhantomData<fn() -> (O, C)>,
}

impl<O, C> ActivityCall<O, C> {
    pub(crate) fn new<I: Serialize>(
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
    pub(crate) ctx: WorkflowContext,
    pub(crate) seq: u64,
    pub(crate) activity_type: &'static str,
    pub(crate) _marker: PhantomData<fn() -> (O, C)>,
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

    /// The activity's **command number** within the workflow run: activities, timers and side
    /// effects share one sequence, numbered in program order from 1 (a run may show `timer #3`,
    /// then `activity scheduled #4`). Histories and replay errors name commands by it.
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
    pub(crate) ctx: WorkflowContext,
    pub(crate) seq: u64,
    pub(crate) done: bool,
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
