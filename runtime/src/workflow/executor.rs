//! Deterministic execution of workflow code: a workflow's future is polled on a loop of our own, fed
//! the events of its history in the batches they were first seen in, and what it asks for (its
//! commands) is compared with what the history recorded.

use crate::error::WorkflowError;
use crate::history::{EventKind, HistoryEvent};
use crate::workflow::check::{check_commands, ReplayMismatch};
use crate::workflow::context::{WfState, WorkflowContext, WorkflowInfo};
use crate::workflow::definition::DynWorkflow;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type RootFuture = crate::definition::BoxFuture<'static, Result<Value, WorkflowError>>;

/// Why a workflow task could not produce commands.
#[derive(Debug)]
pub(crate) enum TaskFailure {
    /// The code no longer matches the history.
    Nondeterminism(Box<ReplayMismatch>),
    /// The history cannot be replayed by any code (e.g. commands with no marker after them).
    Damaged(String),
    /// The workflow's code panicked.
    Panic(String),
}

impl std::fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskFailure::Nondeterminism(m) => write!(
                f,
                "{m}. The workflow is held, with nothing lost, until code that matches its \
                 history runs"
            ),
            TaskFailure::Damaged(m) => f.write_str(m),
            TaskFailure::Panic(m) => write!(f, "workflow code panicked: {m}"),
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A workflow run in memory: its state, its root future, and how far into its history it is.
pub(crate) struct WorkflowInstance {
    state: Arc<Mutex<WfState>>,
    def: DynWorkflow,
    future: Option<RootFuture>,
    /// The last history event delivered to the code.
    pub(crate) delivered_through: u64,
    /// The marker of the last task this instance committed: command events up to it are its own.
    pub(crate) own_marker_seq: u64,
    pub(crate) finished: bool,
    /// The run's `workflow_run` span, the root of its trace: its workflow tasks and attempts are
    /// children of it while this instance lives.
    pub(crate) span: tracing::Span,
}

impl Drop for WorkflowInstance {
    fn drop(&mut self) {
        self.lock().discarded = true;
        // Drop the future while `discarded` is set, so its timers record nothing.
        self.future = None;
    }
}

/// A new `workflow_run` span: with no parent, so that it roots the run's trace.
pub(crate) fn run_span(info: &WorkflowInfo) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "workflow_run",
        workflow_id = %info.workflow_id,
        run_id = %info.run_id,
        workflow_type = %info.workflow_type,
    )
}

impl WorkflowInstance {
    pub(crate) fn new(def: DynWorkflow, info: WorkflowInfo) -> Self {
        let span = run_span(&info);
        WorkflowInstance {
            state: Arc::new(Mutex::new(WfState::new(info))),
            def,
            future: None,
            delivered_through: 0,
            own_marker_seq: 0,
            finished: false,
            span,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WfState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands one event from outside to the code (command events and markers are skipped).
    pub(crate) fn deliver(&mut self, ev: &HistoryEvent) {
        if ev.seq > self.delivered_through {
            self.delivered_through = ev.seq;
        }
        match &ev.kind {
            EventKind::WorkflowStarted { input, run_id, .. } => {
                // The seed of `ctx.random_u64()` is the run id the history starts with: a reset
                // run, whose history is copied from the run it resets, draws the same numbers.
                self.lock().rng = super::state::seed_from(run_id);
                if self.future.is_none() && !self.finished {
                    let ctx = WorkflowContext::new(self.state.clone());
                    self.future = Some(self.def.execute_json(ctx, input.clone()));
                }
            }
            k if k.is_command() => {}
            EventKind::WorkflowTaskCompleted { .. } => {}
            EventKind::UpdateAccepted {
                update_id,
                update_name,
                input,
            } => self.apply_update(update_id, update_name, input.clone()),
            k => self.lock().deliver(k),
        }
    }

    /// An accepted update reached the code: its handler runs now (on replay too, at the same
    /// point), and its answer is the `UpdateCompleted` command of this task.
    fn apply_update(&mut self, update_id: &str, name: &str, input: Value) {
        if self.finished {
            return;
        }
        let outcome = super::messages::apply_update(&self.state, name, input);
        self.lock().commands.push(EventKind::UpdateCompleted {
            update_id: update_id.to_string(),
            outcome,
        });
    }

    /// Answers a query from the instance's current state; writes nothing.
    pub(crate) fn query(&self, name: &str, input: Value) -> Result<Value, String> {
        super::messages::answer_query(&self.state, name, input)
    }

    /// Runs an update's validator against the instance's current state; writes nothing.
    pub(crate) fn validate_update(&self, name: &str, input: &Value) -> Result<(), String> {
        super::messages::validate_update(&self.state, name, input)
    }

    /// Whether the code ever called `ctx.info()` (whose `history_length` only a workflow task that
    /// knows its last event can give).
    pub(crate) fn info_read(&self) -> bool {
        self.lock().info_read
    }

    /// How many delivered signals the code has not read.
    pub(crate) fn unread_signals(&self) -> usize {
        self.lock().messages.unread_signals()
    }

    /// Hands an event from outside to the code before it has a place in the history (the one-commit
    /// step: its seq is known once stored).
    pub(crate) fn deliver_kind(&mut self, kind: &EventKind) {
        if !kind.is_command() {
            self.lock().deliver(kind);
        }
    }

    /// Polls the code until it makes no more progress; returns the commands it produced.
    pub(crate) fn activate(&mut self, now_ms: i64) -> Result<Vec<EventKind>, TaskFailure> {
        {
            let through = self.delivered_through;
            let mut st = self.lock();
            st.now_ms = now_ms;
            st.info.history_length = through;
        }
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..10_000 {
            self.lock().changed = false;
            let Some(fut) = self.future.as_mut() else {
                break;
            };
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fut.as_mut().poll(&mut cx)
            }));
            match polled {
                Err(payload) => {
                    return Err(match payload.downcast::<ReplayMismatch>() {
                        // `ctx.side_effect` found a recorded value of another type.
                        Ok(m) => TaskFailure::Nondeterminism(m),
                        Err(payload) => TaskFailure::Panic(panic_message(&*payload)),
                    });
                }
                Ok(Poll::Ready(result)) => {
                    self.future = None;
                    self.finished = true;
                    let mut st = self.lock();
                    let continued = match &result {
                        Err(WorkflowError::Application { error_type, .. })
                            if error_type == super::context::CONTINUE_AS_NEW =>
                        {
                            st.continue_as_new.take()
                        }
                        _ => None,
                    };
                    let cmd = match result {
                        _ if continued.is_some() => EventKind::WorkflowContinuedAsNew {
                            // Not compared on replay: any id is as good, and this one sorts by time.
                            new_run_id: uuid::Uuid::now_v7().to_string(),
                            workflow_type: st.info.workflow_type.clone(),
                            task_queue: st.info.task_queue.clone(),
                            input: continued.unwrap_or_default(),
                            carried_signals: st.messages.unread_in_order(),
                        },
                        Ok(result) => EventKind::WorkflowCompleted { result },
                        Err(e) if e.is_cancelled() && st.cancel_requested => {
                            EventKind::WorkflowCancelled {}
                        }
                        Err(error) => EventKind::WorkflowFailed { error },
                    };
                    st.commands.push(cmd);
                    break;
                }
                Ok(Poll::Pending) => {
                    if !self.lock().changed {
                        break;
                    }
                }
            }
        }
        Ok(std::mem::take(&mut self.lock().commands))
    }

    /// Rebuilds an instance from its history, checking every recorded command against the code. Events
    /// after the last marker are delivered too; the caller then activates for the new commands.
    pub(crate) fn replay(
        def: DynWorkflow,
        info: WorkflowInfo,
        history: &[HistoryEvent],
    ) -> Result<Self, TaskFailure> {
        let mut inst = WorkflowInstance::new(def, info.clone());
        let mut inbound = 0usize;
        let mut recorded: Vec<&HistoryEvent> = Vec::new();
        for ev in history {
            match &ev.kind {
                EventKind::WorkflowTaskCompleted {
                    processed_through,
                    task_time_ms,
                } => {
                    while inbound < history.len() && history[inbound].seq <= *processed_through {
                        let e = &history[inbound];
                        if !e.kind.is_command() {
                            inst.deliver(e);
                        }
                        inbound += 1;
                    }
                    // What the task had seen: `ctx.info().history_length` reads the same as when
                    // it ran.
                    inst.delivered_through = *processed_through;
                    // What this task scheduled, so that work the history has is produced again
                    // (see `WfState::refuses_new_work`); the commands are checked all the same.
                    inst.lock().replaying_starts = recorded
                        .iter()
                        .filter_map(|e| match e.kind {
                            EventKind::ActivityScheduled { activity_seq, .. } => Some(activity_seq),
                            EventKind::TimerStarted { timer_seq, .. } => Some(timer_seq),
                            EventKind::ChildWorkflowInitiated { child_seq, .. } => Some(child_seq),
                            _ => None,
                        })
                        .collect();
                    {
                        let mut st = inst.lock();
                        st.replaying = true;
                        st.replay_commands = recorded.iter().map(|e| (*e).clone()).collect();
                    }
                    let produced = inst.activate(*task_time_ms);
                    {
                        let mut st = inst.lock();
                        st.replaying_starts.clear();
                        st.replaying = false;
                        st.replay_commands.clear();
                    }
                    let produced = produced?;
                    check_commands(&info, &produced, &recorded, ev)
                        .map_err(TaskFailure::Nondeterminism)?;
                    recorded.clear();
                    inst.own_marker_seq = ev.seq;
                }
                k if k.is_command() => recorded.push(ev),
                _ => {}
            }
        }
        // A workflow's end that no task produced (its execution timeout, a termination) closes
        // the history without a marker.
        let closed_by_the_engine = matches!(
            recorded.as_slice(),
            [last] if crate::engine::close::is_close(&last.kind) && last.seq == history.last().map_or(0, |e| e.seq)
        );
        if let Some(stray) = recorded.first().filter(|_| !closed_by_the_engine) {
            return Err(TaskFailure::Damaged(format!(
                "workflow `{}`: history event #{} ({}) has no workflow-task marker after it; the history is damaged",
                info.workflow_id,
                stray.seq,
                stray.kind.describe()
            )));
        }
        for e in &history[inbound..] {
            if !e.kind.is_command() {
                inst.deliver(e);
            }
        }
        Ok(inst)
    }

    /// Local activities scheduled and not resolved, to (re)start after a replay.
    pub(crate) fn pending_local_activities(
        &self,
    ) -> Vec<(u64, String, Value, crate::definition::ActivityOptions)> {
        self.lock().pending_local_activities()
    }

    /// Whether a local activity of the workflow is scheduled and not resolved.
    pub(crate) fn has_unresolved_local(&self) -> bool {
        self.lock().has_unresolved_local()
    }

    /// Local activities whose waited-for cancel is not resolved (see `WfState`).
    pub(crate) fn unresolved_local_cancels(&self) -> Vec<u64> {
        self.lock().unresolved_local_cancels()
    }

    pub(crate) fn info(&self) -> WorkflowInfo {
        self.lock().info.clone()
    }
}
