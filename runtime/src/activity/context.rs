//! The context an activity runs with: heartbeats, cancellation, and its info.

use crate::error::ActivityError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Facts about the running activity attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActivityInfo {
    /// The activity's id within its workflow run (its sequence number there).
    pub activity_id: String,
    /// The registered activity name.
    pub activity_type: String,
    /// The workflow that scheduled it.
    pub workflow_id: String,
    /// The workflow run that scheduled it.
    pub run_id: String,
    /// The attempt number, starting at 1.
    pub attempt: u32,
    /// When the activity was scheduled.
    pub scheduled_time: SystemTime,
    /// When this attempt started.
    pub started_time: SystemTime,
    /// When this attempt times out, if it does.
    pub deadline: Option<SystemTime>,
    /// The heartbeat timeout, if any.
    pub heartbeat_timeout: Option<Duration>,
    /// The task queue it was taken from.
    pub task_queue: String,
    /// Whether it runs as a local activity.
    pub is_local: bool,
    /// A key that stays the same across attempts: use it to make side effects idempotent.
    pub idempotency_key: String,
}

impl ActivityInfo {
    /// Info for an activity called directly in a test.
    pub fn for_test(activity_type: &str) -> Self {
        let now = SystemTime::now();
        ActivityInfo {
            activity_id: "1".into(),
            activity_type: activity_type.into(),
            workflow_id: "test-workflow".into(),
            run_id: "test-run".into(),
            attempt: 1,
            scheduled_time: now,
            started_time: now,
            deadline: None,
            heartbeat_timeout: None,
            task_queue: crate::definition::DEFAULT_TASK_QUEUE.into(),
            is_local: false,
            idempotency_key: "test-run/1".into(),
        }
    }
}

/// Why an activity attempt is asked to stop: what [`ActivityContext::cancel_reason`] says once
/// [`ActivityContext::cancelled`] resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Its workflow cancelled it (or ended, or its lease was taken over): return the cancellation
    /// (`ctx.heartbeat(..)?` does) to end cancelled.
    Cancelled,
    /// The worker running it is shutting down: it has until the end of the worker's
    /// `shutdown_grace` to finish or to stop; an attempt it interrupts runs again elsewhere. A
    /// cancel requested meanwhile still arrives, and then takes precedence.
    WorkerShutdown,
}

/// The shared cancellation flag of one attempt, and the shutdown signal of the worker running it.
#[derive(Clone, Debug)]
pub(crate) struct CancelFlag {
    cancel: Arc<watch::Sender<bool>>,
    /// The worker's shutdown signal (true once its `shutdown()` began).
    shutdown: watch::Receiver<bool>,
}

impl CancelFlag {
    /// A flag that also reports the worker's shutdown.
    pub(crate) fn with_shutdown(shutdown: watch::Receiver<bool>) -> Self {
        CancelFlag {
            cancel: Arc::new(watch::channel(false).0),
            shutdown,
        }
    }
    pub(crate) fn cancel(&self) {
        self.cancel.send_replace(true);
    }
    /// Whether a real cancel (not a shutdown) reached the attempt.
    pub(crate) fn is_cancel_requested(&self) -> bool {
        *self.cancel.borrow()
    }
    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
    pub(crate) fn reason(&self) -> Option<CancelReason> {
        if self.is_cancel_requested() {
            Some(CancelReason::Cancelled)
        } else if self.is_shutting_down() {
            Some(CancelReason::WorkerShutdown)
        } else {
            None
        }
    }
    pub(crate) fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.cancel.subscribe();
        // The sender lives as long as `self`, so `wait_for` only returns once the flag is set.
        let cancel = async move {
            let _ = rx.wait_for(|c| *c).await;
        };
        let mut s = self.shutdown.clone();
        let shutdown = async move {
            if s.wait_for(|c| *c).await.is_err() {
                // The worker is gone without a shutdown: only a cancel can come now.
                std::future::pending::<()>().await
            }
        };
        tokio::select! {
            _ = cancel => {}
            _ = shutdown => {}
        }
    }
}

/// The context of an activity attempt: heartbeats, cancellation, info.
///
/// Cheap to clone; clones share the attempt.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ActivityInfo,
    previous_details: Option<Value>,
    cancel: CancelFlag,
    /// The latest details, read by the attempt's heartbeat flusher. `None` for local activities.
    heartbeat: Option<watch::Sender<Option<Value>>>,
}

impl ActivityContext {
    pub(crate) fn new(
        info: ActivityInfo,
        previous_details: Option<Value>,
        cancel: CancelFlag,
        heartbeat: Option<watch::Sender<Option<Value>>>,
    ) -> Self {
        ActivityContext {
            inner: Arc::new(Inner {
                info,
                previous_details,
                cancel,
                heartbeat,
            }),
        }
    }

    /// A context for calling an activity's body directly in a unit test, and the handle that drives it.
    ///
    /// ```
    /// use duraflow::prelude::*;
    /// let (ctx, probe) = ActivityContext::for_test("my_activity");
    /// ctx.heartbeat(&3u32).unwrap();
    /// assert_eq!(probe.last_heartbeat::<u32>(), Some(3));
    /// probe.cancel();
    /// assert!(ctx.heartbeat(&4u32).unwrap_err().is_cancelled());
    /// ```
    pub fn for_test(activity_type: &str) -> (ActivityContext, TestActivityProbe) {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let cancel = CancelFlag::with_shutdown(shutdown_rx);
        let (tx, rx) = watch::channel(None);
        let ctx = ActivityContext::new(
            ActivityInfo::for_test(activity_type),
            None,
            cancel.clone(),
            Some(tx),
        );
        (
            ctx,
            TestActivityProbe {
                cancel,
                shutdown,
                details: rx,
            },
        )
    }

    /// Records progress and keeps the attempt alive. It never blocks: the latest details are stored
    /// throttled (the first at once, then at most one every 0.8 × heartbeat timeout, the latest value
    /// winning) and flushed when the attempt ends. An activity without a heartbeat timeout has its
    /// details stored only when the attempt ends.
    ///
    /// Returns `Err(ActivityError::Cancelled { .. })` once a cancellation has reached the activity:
    /// write `ctx.heartbeat(&d)?` to end cancelled. Once the worker running it began to shut down
    /// (and no cancel was requested), it returns `Err(ActivityError::WorkerShutdown)`: `?` then
    /// hands the attempt to another worker, its details stored. The details are stored either way.
    pub fn heartbeat<T: Serialize + ?Sized>(&self, details: &T) -> Result<(), ActivityError> {
        let value = serde_json::to_value(details).map_err(|e| {
            ActivityError::non_retryable(
                "HeartbeatDetails",
                format!("heartbeat details do not serialize to JSON: {e}"),
            )
        })?;
        if let Some(tx) = &self.inner.heartbeat {
            tx.send_replace(Some(value.clone()));
        }
        match self.inner.cancel.reason() {
            Some(CancelReason::Cancelled) => Err(ActivityError::Cancelled {
                details: Some(value),
            }),
            Some(CancelReason::WorkerShutdown) => Err(ActivityError::WorkerShutdown),
            None => Ok(()),
        }
    }

    /// The details of the last heartbeat of an earlier attempt, decoded as `T`: resume from there.
    pub fn heartbeat_details<T: DeserializeOwned>(&self) -> Option<T> {
        self.inner
            .previous_details
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Resolves once a cancellation has reached this attempt, or the worker running it began to
    /// shut down: [`ActivityContext::cancel_reason`] tells which. On a shutdown the attempt has
    /// until the end of the worker's `shutdown_grace` to finish or stop (then its future is
    /// dropped); a cancel requested meanwhile still arrives.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// True once a cancellation has reached this attempt, or its worker began to shut down.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Why the attempt is asked to stop, if it is: a cancel ([`CancelReason::Cancelled`], which
    /// wins) or its worker's shutdown ([`CancelReason::WorkerShutdown`]).
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.inner.cancel.reason()
    }

    /// Facts about this attempt.
    pub fn info(&self) -> &ActivityInfo {
        &self.inner.info
    }
}

/// Drives an [`ActivityContext`] made by [`ActivityContext::for_test`].
#[derive(Debug)]
pub struct TestActivityProbe {
    cancel: CancelFlag,
    shutdown: watch::Sender<bool>,
    details: watch::Receiver<Option<Value>>,
}

impl TestActivityProbe {
    /// Delivers a cancellation, as a workflow's `handle.cancel()` would.
    pub fn cancel(&self) {
        self.cancel.cancel()
    }

    /// Tells the activity its worker is shutting down, as a worker's `shutdown()` would.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// The details of the latest heartbeat, decoded as `T`.
    pub fn last_heartbeat<T: DeserializeOwned>(&self) -> Option<T> {
        self.details
            .borrow()
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}
