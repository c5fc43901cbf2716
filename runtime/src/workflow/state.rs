//! The shared state of one workflow run's code: its commands, numbered in program order, the
//! slots the history's events resolve, and the cancel rule.

use super::context::WorkflowInfo;
use crate::definition::ActivityOptions;
use crate::error::{ActivityError, ChildWorkflowError, WorkflowError};
use crate::history::{CancellationType, EventKind};
use serde_json::Value;
use std::collections::HashMap;

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
pub(crate) struct TimerSlot {
    pub(crate) result: Option<Result<(), WorkflowError>>,
    /// Started through [`WorkflowContext::detached`]: the workflow's cancel leaves it alone.
    pub(crate) detached: bool,
}

/// The workflow-side state shared by the context and every future it hands out.
pub(crate) struct WfState {
    pub(crate) info: WorkflowInfo,
    pub(crate) next_seq: u64,
    /// Commands produced since the last drain, as the history events they become.
    pub(crate) commands: Vec<EventKind>,
    pub(crate) activities: HashMap<u64, ActivitySlot>,
    pub(crate) timers: HashMap<u64, TimerSlot>,
    /// Child workflows, by command number.
    pub(crate) children: HashMap<u64, super::child::ChildSlot>,
    pub(crate) now_ms: i64,
    pub(crate) rng: u64,
    /// The workflow has seen its `WorkflowCancelRequested` event.
    pub(crate) cancel_requested: bool,
    /// While the executor replays a recorded workflow task: the activities and timers (by seq) that
    /// the task's recorded commands scheduled. Empty otherwise.
    pub(crate) replaying_starts: Vec<u64>,
    /// The executor is replaying a recorded workflow task (not running a new one).
    pub(crate) replaying: bool,
    /// While `replaying`: the commands the recorded task produced, in order (what
    /// `ctx.patched` and `ctx.side_effect` read back).
    pub(crate) replay_commands: Vec<crate::history::HistoryEvent>,
    /// What `ctx.patched` answered for each patch id in this run, so it answers the same after.
    pub(crate) patches: HashMap<String, bool>,
    /// Set when a handle resolved during a poll, so the executor polls again.
    pub(crate) changed: bool,
    /// Set when the instance is being thrown away: drops then record nothing.
    pub(crate) discarded: bool,
    /// Signals not yet read, and the query and update handlers.
    pub(crate) messages: super::messages::MessageState,
    /// The input `ctx.continue_as_new(..)` was called with: the run ends with a
    /// `WorkflowContinuedAsNew` command instead of its returned error.
    pub(crate) continue_as_new: Option<serde_json::Value>,
    /// The code called `ctx.info()`: it may read `history_length`, which the one-commit step
    /// cannot know before its commit (see `worker::attempt::try_continue`).
    pub(crate) info_read: bool,
}

pub(crate) fn seed_from(run_id: &str) -> u64 {
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
            children: HashMap::new(),
            now_ms: 0,
            rng,
            cancel_requested: false,
            replaying_starts: Vec::new(),
            replaying: false,
            replay_commands: Vec::new(),
            patches: HashMap::new(),
            changed: false,
            discarded: false,
            messages: Default::default(),
            continue_as_new: None,
            info_read: false,
        }
    }

    pub(crate) fn alloc_seq(&mut self) -> u64 {
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
    pub(crate) fn refuses_new_work(&self, detached: bool, seq: u64) -> bool {
        self.cancel_requested && !detached && !self.replaying_starts.contains(&seq)
    }

    /// Requests the cancel of activity `seq` according to its cancellation type.
    pub(crate) fn cancel_activity(&mut self, seq: u64) {
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

    /// Asks child `seq` to cancel (once; nothing if it has ended).
    pub(crate) fn cancel_child(&mut self, seq: u64) {
        let Some(slot) = self.children.get_mut(&seq) else {
            return;
        };
        if slot.result.is_some() || slot.cancel_requested {
            return;
        }
        slot.cancel_requested = true;
        self.commands.push(EventKind::ChildWorkflowCancelRequested {
            child_seq: seq,
            workflow_id: slot.workflow_id.clone(),
        });
        self.changed = true;
    }

    fn resolve_child(&mut self, seq: u64, result: Result<Value, ChildWorkflowError>) {
        if let Some(slot) = self.children.get_mut(&seq) {
            if slot.result.is_none() {
                slot.result = Some(result);
            }
        }
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
            EventKind::SignalReceived {
                signal_name,
                input,
                request_id,
            } => self
                .messages
                .push_signal(signal_name, input.clone(), request_id),
            EventKind::RunContinued {
                previous_run_id, ..
            }
            | EventKind::WorkflowReset {
                previous_run_id, ..
            } => self.info.previous_run_id = Some(previous_run_id.clone()),
            EventKind::ChildWorkflowStarted {
                child_seq, run_id, ..
            } => {
                if let Some(c) = self.children.get_mut(child_seq) {
                    c.run_id = Some(run_id.clone());
                }
            }
            EventKind::ChildWorkflowStartFailed {
                child_seq,
                workflow_id,
            } => self.resolve_child(
                *child_seq,
                Err(ChildWorkflowError::AlreadyStarted {
                    workflow_id: workflow_id.clone(),
                }),
            ),
            EventKind::ChildWorkflowCompleted { child_seq, result } => {
                self.resolve_child(*child_seq, Ok(result.clone()))
            }
            EventKind::ChildWorkflowFailed { child_seq, error } => {
                let workflow_id = self.child_id(*child_seq);
                self.resolve_child(
                    *child_seq,
                    Err(ChildWorkflowError::Failed {
                        workflow_id,
                        error: error.clone(),
                    }),
                )
            }
            EventKind::ChildWorkflowCancelled { child_seq } => {
                let workflow_id = self.child_id(*child_seq);
                self.resolve_child(
                    *child_seq,
                    Err(ChildWorkflowError::Cancelled { workflow_id }),
                )
            }
            EventKind::ChildWorkflowTerminated { child_seq, reason } => {
                let workflow_id = self.child_id(*child_seq);
                self.resolve_child(
                    *child_seq,
                    Err(ChildWorkflowError::Terminated {
                        workflow_id,
                        reason: reason.clone(),
                    }),
                )
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
                let mut children: Vec<u64> = self
                    .children
                    .iter()
                    .filter(|(_, c)| c.result.is_none() && !c.cancel_requested && !c.detached)
                    .map(|(s, _)| *s)
                    .collect();
                children.sort_unstable();
                for seq in children {
                    self.cancel_child(seq);
                }
            }
            _ => {}
        }
    }

    fn child_id(&self, seq: u64) -> String {
        self.children
            .get(&seq)
            .map(|c| c.workflow_id.clone())
            .unwrap_or_default()
    }

    pub(crate) fn resolve_activity(&mut self, seq: u64, result: Result<Value, ActivityError>) {
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
