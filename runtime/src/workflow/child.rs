//! What workflow code awaits for a child workflow: the call (options), and the handle (a future
//! of the child's result that can cancel the child).

use super::context::WorkflowContext;
use crate::error::{ChildWorkflowError, WorkflowError};
use crate::history::{EventKind, ParentClosePolicy};
use crate::workflow::definition::WorkflowDefinition;
use serde_json::Value;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A child workflow's slot in its parent's state: its outcome once the parent's history has it.
#[derive(Debug)]
pub(crate) struct ChildSlot {
    pub(crate) result: Option<Result<Value, ChildWorkflowError>>,
    pub(crate) workflow_id: String,
    /// Its run id, once its start is in the history.
    pub(crate) run_id: Option<String>,
    pub(crate) cancel_requested: bool,
    /// Started through [`WorkflowContext::detached`]: the parent's cancel leaves it alone.
    pub(crate) detached: bool,
}

/// A call of a child workflow from a workflow, not yet started: set options, then `.await` it for
/// the child's result or `.start()` it for a [`ChildWorkflowHandle`].
///
/// The child is a workflow of its own, with its own id and history; it may run on any worker that
/// serves its task queue, in any process. Its start and its end are events of the parent's
/// history, so the parent replays them.
#[must_use = "a child workflow call does nothing until it is awaited or started"]
pub struct ChildWorkflowCall<O> {
    ctx: WorkflowContext,
    workflow_type: &'static str,
    input: Result<Value, String>,
    workflow_id: Option<String>,
    task_queue: Option<String>,
    execution_timeout: Option<Duration>,
    parent_close_policy: ParentClosePolicy,
    _marker: PhantomData<fn() -> O>,
}

impl<O> ChildWorkflowCall<O> {
    pub(crate) fn new<W: WorkflowDefinition>(
        ctx: WorkflowContext,
        def: W,
        input: &W::Input,
    ) -> Self {
        let options = def.options();
        ChildWorkflowCall {
            ctx,
            workflow_type: def.name(),
            input: serde_json::to_value(input).map_err(|e| e.to_string()),
            workflow_id: None,
            task_queue: options.task_queue,
            execution_timeout: options.execution_timeout,
            parent_close_policy: ParentClosePolicy::default(),
            _marker: PhantomData,
        }
    }

    /// The child's workflow id. Default: `<parent id>-child-<command number>`, the same on
    /// replay. A workflow with this id that exists (running or ended) makes the start fail with
    /// [`ChildWorkflowError::AlreadyStarted`].
    pub fn id(mut self, workflow_id: impl Into<String>) -> Self {
        self.workflow_id = Some(workflow_id.into());
        self
    }

    /// The task queue the child runs on. Default: the child definition's own, else the parent's.
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.task_queue = Some(queue.into());
        self
    }

    /// Longest time the child may run; past it, it ends failed (`ExecutionTimeout`). Default:
    /// the child definition's own, else none.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// What happens to the child if this workflow ends first. Default
    /// [`ParentClosePolicy::RequestCancel`].
    pub fn parent_close_policy(mut self, policy: ParentClosePolicy) -> Self {
        self.parent_close_policy = policy;
        self
    }

    /// Starts the child (in this workflow task's commit) and returns its handle.
    ///
    /// Started in the main scope after the workflow was asked to cancel, the child is not
    /// started: its handle resolves `Err(ChildWorkflowError::Cancelled { .. })` at once.
    pub fn start(self) -> ChildWorkflowHandle<O> {
        let mut st = self.ctx.lock();
        let seq = st.alloc_seq();
        let workflow_id = self
            .workflow_id
            .unwrap_or_else(|| format!("{}-child-{seq}", st.info.workflow_id));
        let mut slot = ChildSlot {
            result: None,
            workflow_id: workflow_id.clone(),
            run_id: None,
            cancel_requested: false,
            detached: self.ctx.detached,
        };
        let invalid = |message: String| ChildWorkflowError::Failed {
            workflow_id: workflow_id.clone(),
            error: WorkflowError::application("InvalidCall", message),
        };
        match self.input {
            Err(e) => {
                slot.result = Some(Err(invalid(format!(
                    "child workflow `{}` was not started: its input does not serialize: {e}",
                    self.workflow_type
                ))))
            }
            Ok(_) if workflow_id.is_empty() => {
                slot.result = Some(Err(invalid(format!(
                    "child workflow `{}` was not started: its id is empty; give `.id(..)` a \
                     non-empty id",
                    self.workflow_type
                ))))
            }
            Ok(_) if st.refuses_new_work(self.ctx.detached, seq) => {
                slot.cancel_requested = true;
                slot.result = Some(Err(ChildWorkflowError::Cancelled {
                    workflow_id: workflow_id.clone(),
                }));
            }
            Ok(input) => {
                let task_queue = self
                    .task_queue
                    .unwrap_or_else(|| st.info.task_queue.clone());
                st.commands.push(EventKind::ChildWorkflowInitiated {
                    child_seq: seq,
                    workflow_type: self.workflow_type.to_string(),
                    workflow_id: workflow_id.clone(),
                    task_queue,
                    input,
                    parent_close_policy: self.parent_close_policy,
                    execution_timeout_ms: self
                        .execution_timeout
                        .map(|d| d.as_millis().min(u64::MAX as u128) as u64),
                });
            }
        }
        st.children.insert(seq, slot);
        drop(st);
        ChildWorkflowHandle {
            ctx: self.ctx,
            seq,
            workflow_id,
            workflow_type: self.workflow_type,
            _marker: PhantomData,
        }
    }
}

impl<O: serde::de::DeserializeOwned> IntoFuture for ChildWorkflowCall<O> {
    type Output = Result<O, ChildWorkflowError>;
    type IntoFuture = ChildWorkflowHandle<O>;

    fn into_future(self) -> Self::IntoFuture {
        self.start()
    }
}

/// A started child workflow: `.await` it for the child's result, `.cancel()` to ask the child to
/// cancel. Dropping it leaves the child running.
#[must_use = "dropping the handle does not cancel the child; await it or call cancel()"]
pub struct ChildWorkflowHandle<O> {
    ctx: WorkflowContext,
    seq: u64,
    workflow_id: String,
    workflow_type: &'static str,
    _marker: PhantomData<fn() -> O>,
}

impl<O> ChildWorkflowHandle<O> {
    /// The child's workflow id.
    pub fn id(&self) -> &str {
        &self.workflow_id
    }

    /// The child's run id, once this workflow has seen the child start (`None` before, and when
    /// it could not start).
    pub fn run_id(&self) -> Option<String> {
        self.ctx
            .lock()
            .children
            .get(&self.seq)
            .and_then(|c| c.run_id.clone())
    }

    /// Asks the child to cancel: the request is recorded in the child's history with this
    /// task's commit, the child's code decides what cancelling means, and this handle resolves
    /// with how the child ended (`Err(ChildWorkflowError::Cancelled { .. })` if it returned
    /// the cancellation). Nothing happens if the child already ended.
    pub fn cancel(&self) {
        self.ctx.lock().cancel_child(self.seq);
    }
}

impl<O: serde::de::DeserializeOwned> Future for ChildWorkflowHandle<O> {
    type Output = Result<O, ChildWorkflowError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let st = self.ctx.lock();
        let Some(result) = st.children.get(&self.seq).and_then(|c| c.result.clone()) else {
            return Poll::Pending;
        };
        drop(st);
        Poll::Ready(result.and_then(|v| {
            serde_json::from_value(v).map_err(|e| ChildWorkflowError::Failed {
                workflow_id: self.workflow_id.clone(),
                error: WorkflowError::application(
                    "PayloadError",
                    format!(
                        "the result of child workflow `{}` does not deserialize as `{}`: {e}",
                        self.workflow_type,
                        std::any::type_name::<O>()
                    ),
                ),
            })
        }))
    }
}
