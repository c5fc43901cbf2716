//! The model: the engine's rules for one queue of workflows, written again as plainly as possible
//! (maps and counters, no SQL, no plans), so that a store and the model can be run side by side and
//! must agree on everything a user or a worker can observe.
//!
//! What it keeps per workflow: status, cancel request, the history as short signatures
//! (`activity_started#3.2`), the workflow task (none, pending, running with a lease that holds or
//! has expired) and its claim count, activity tasks (pending or running, attempts, claims, cancel
//! flag, whether a heartbeat moved the deadline out of reach) and timers.

use std::collections::BTreeMap;

/// The timer of a workflow's execution timeout.
pub(super) const EXECUTION_TIMER: u64 = 0;

/// Attempts an activity gets: the model's retry policy (no backoff, so a retry is due at once).
pub(super) const MAX_ATTEMPTS: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Task {
    Pending,
    Running { lease_expired: bool },
}

/// An activity's start-to-close timeout: `Short` (1 ms: every attempt has expired by the next
/// `Expire`), `Long` (ten minutes: never within a case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    Short,
    Long,
}

#[derive(Clone, Debug)]
pub(super) struct Activity {
    pub(super) timeout: Timeout,
    pub(super) running: bool,
    pub(super) attempt: u32,
    /// Claims and reaps so far: a handle is current while this has not moved.
    pub(super) generation: u64,
    pub(super) cancel_requested: bool,
    /// A heartbeat set the deadline an hour out.
    pub(super) heartbeated: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Workflow {
    pub(super) status: Status,
    pub(super) cancel_requested: bool,
    pub(super) history: Vec<String>,
    pub(super) task: Option<Task>,
    /// Workflow task claims so far: a commit's handle is current while this has not moved.
    pub(super) claims: u64,
    /// The next command number (activities and timers share one counter, as in workflow code).
    pub(super) next_seq: u64,
    pub(super) activities: BTreeMap<u64, Activity>,
    /// Activity seqs ever scheduled, and timer seqs ever started: what cancel commands target.
    pub(super) scheduled: Vec<u64>,
    pub(super) started_timers: Vec<u64>,
    /// Timers that have not fired nor been cancelled: seq -> whether it is due (in the past).
    pub(super) timers: BTreeMap<u64, bool>,
    /// The request ids of the signals recorded.
    pub(super) signals: Vec<String>,
}

/// A workflow task's command, as the model's workflows issue them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Schedules an activity with this timeout.
    Schedule(Timeout),
    /// Requests the cancel of the n-th activity ever scheduled (modulo their count).
    CancelActivity(u8),
    /// Starts a timer: due at once (`true`) or in an hour.
    StartTimer(bool),
    /// Cancels the n-th timer ever started (modulo their count).
    CancelTimer(u8),
    /// Completes the workflow.
    Complete,
    /// Fails the workflow.
    Fail,
    /// Ends the workflow cancelled, as its code does once a cancel was requested (only then).
    CancelSelf,
}

/// How an attempt ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Complete,
    /// An application error the retry policy retries.
    FailRetryable,
    /// A non-retryable application error.
    FailFinal,
    /// The code returned the cancellation.
    Cancelled,
}

/// A command resolved to the numbers it concerns (what the driver also sends to the store).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Resolved {
    Schedule(u64, Timeout),
    CancelActivity(u64),
    StartTimer(u64, bool),
    CancelTimer(u64),
    Complete,
    Fail,
    Cancelled,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Model {
    pub(super) workflows: BTreeMap<String, Workflow>,
}

impl Workflow {
    fn new() -> Self {
        Workflow {
            status: Status::Running,
            cancel_requested: false,
            history: vec!["workflow_started".into()],
            task: Some(Task::Pending),
            claims: 0,
            next_seq: 1,
            activities: BTreeMap::new(),
            scheduled: Vec::new(),
            started_timers: Vec::new(),
            timers: BTreeMap::new(),
            signals: Vec::new(),
        }
    }

    fn running(&self) -> bool {
        self.status == Status::Running
    }

    fn enqueue(&mut self) {
        if self.running() && self.task.is_none() {
            self.task = Some(Task::Pending);
        }
    }

    fn close(&mut self, status: Status) {
        self.status = status;
        self.task = None;
        self.timers.clear();
        self.activities.retain(|_, a| a.running);
        for a in self.activities.values_mut() {
            a.cancel_requested = true;
        }
    }

    /// Resolves a workflow's commands to numbers, stopping after a closing one.
    pub(super) fn resolve(&self, cmds: &[Cmd]) -> Vec<Resolved> {
        let mut next = self.next_seq;
        let mut scheduled = self.scheduled.clone();
        let mut timers = self.started_timers.clone();
        let mut out = Vec::new();
        for cmd in cmds {
            let r = match *cmd {
                Cmd::Schedule(t) => {
                    next += 1;
                    scheduled.push(next - 1);
                    Resolved::Schedule(next - 1, t)
                }
                Cmd::CancelActivity(i) if !scheduled.is_empty() => {
                    Resolved::CancelActivity(scheduled[i as usize % scheduled.len()])
                }
                Cmd::StartTimer(due) => {
                    next += 1;
                    timers.push(next - 1);
                    Resolved::StartTimer(next - 1, due)
                }
                Cmd::CancelTimer(i) if !timers.is_empty() => {
                    Resolved::CancelTimer(timers[i as usize % timers.len()])
                }
                Cmd::Complete => Resolved::Complete,
                Cmd::Fail => Resolved::Fail,
                Cmd::CancelSelf if self.cancel_requested => Resolved::Cancelled,
                Cmd::CancelActivity(_) | Cmd::CancelTimer(_) | Cmd::CancelSelf => continue,
            };
            let closes = matches!(r, Resolved::Complete | Resolved::Fail | Resolved::Cancelled);
            out.push(r);
            if closes {
                break;
            }
        }
        out
    }
}

impl Model {
    pub(super) fn wf(&mut self, id: &str) -> &mut Workflow {
        self.workflows
            .get_mut(id)
            .unwrap_or_else(|| panic!("the model has no workflow `{id}`"))
    }

    /// `create_workflow`: false for an id that exists. `timed_out`: its execution deadline has
    /// already passed (the timer fires at the next `fire_due_timers`).
    pub(super) fn start(&mut self, id: &str, timed_out: bool) -> bool {
        if self.workflows.contains_key(id) {
            return false;
        }
        let mut w = Workflow::new();
        if timed_out {
            w.timers.insert(EXECUTION_TIMER, true);
        }
        self.workflows.insert(id.into(), w);
        true
    }

    /// Whether `claim_workflow_tasks` takes this workflow's task.
    pub(super) fn wft_due(&self, id: &str) -> bool {
        matches!(
            self.workflows[id].task,
            Some(
                Task::Pending
                    | Task::Running {
                        lease_expired: true
                    }
            )
        )
    }

    /// Claims the workflow task; returns the claim's number and the history length it saw.
    pub(super) fn claim_wft(&mut self, id: &str, lease_expired: bool) -> (u64, usize) {
        let w = self.wf(id);
        w.task = Some(Task::Running { lease_expired });
        w.claims += 1;
        (w.claims, w.history.len())
    }

    /// `commit_workflow_task` with the handle of claim `claim` that saw `seen` events.
    ///
    /// `eager`: the worker asks for the activities it schedules (none of a commit that closes the
    /// workflow, nor one it cancels in the same commit): they start at once, their
    /// `activity_started` after the marker. Returns the activity seqs it was given, or `None` if
    /// the commit was refused.
    pub(super) fn commit(
        &mut self,
        id: &str,
        claim: u64,
        seen: usize,
        cmds: &[Resolved],
        eager: bool,
    ) -> Option<Vec<u64>> {
        let w = self.wf(id);
        if !(w.running() && w.claims == claim && matches!(w.task, Some(Task::Running { .. }))) {
            return None;
        }
        let closes = cmds
            .iter()
            .any(|c| matches!(c, Resolved::Complete | Resolved::Fail | Resolved::Cancelled));
        let cancelled: Vec<u64> = cmds
            .iter()
            .filter_map(|c| match c {
                Resolved::CancelActivity(seq) => Some(*seq),
                _ => None,
            })
            .collect();
        let mut claimed = Vec::new();
        let mut rerun = w.history.len() > seen;
        if closes && rerun {
            // The code decided to end the workflow without the newest events: nothing is
            // written, the task is due again.
            w.task = Some(Task::Pending);
            return Some(Vec::new());
        }
        let mut closed = false;
        for cmd in cmds {
            match *cmd {
                Resolved::Schedule(seq, timeout) => {
                    w.next_seq = seq + 1;
                    w.scheduled.push(seq);
                    w.history.push(format!("activity_scheduled#{seq}"));
                    let now = eager && !closes && !cancelled.contains(&seq);
                    if now {
                        claimed.push(seq);
                    }
                    w.activities.insert(
                        seq,
                        Activity {
                            timeout,
                            running: now,
                            attempt: now as u32,
                            generation: now as u64,
                            cancel_requested: false,
                            heartbeated: false,
                        },
                    );
                }
                Resolved::CancelActivity(seq) => {
                    w.history.push(format!("activity_cancel_requested#{seq}"));
                    match w.activities.get_mut(&seq) {
                        Some(a) if !a.running => {
                            w.activities.remove(&seq);
                            w.history.push(format!("activity_cancelled#{seq}"));
                            rerun = true;
                        }
                        Some(a) => a.cancel_requested = true,
                        None => {}
                    }
                }
                Resolved::StartTimer(seq, due) => {
                    w.next_seq = seq + 1;
                    w.started_timers.push(seq);
                    w.history.push(format!("timer_started#{seq}"));
                    w.timers.insert(seq, due);
                }
                Resolved::CancelTimer(seq) => {
                    w.history.push(format!("timer_cancelled#{seq}"));
                    w.timers.remove(&seq);
                }
                Resolved::Complete => {
                    w.history.push("workflow_completed".into());
                    closed = true;
                }
                Resolved::Fail => {
                    w.history.push("workflow_failed".into());
                    closed = true;
                }
                Resolved::Cancelled => {
                    w.history.push("workflow_cancelled".into());
                    closed = true;
                }
            }
        }
        w.history.push("workflow_task_completed".into());
        for seq in &claimed {
            w.history.push(format!("activity_started#{seq}.1"));
        }
        if closed {
            let status = match cmds.last() {
                Some(Resolved::Complete) => Status::Completed,
                Some(Resolved::Cancelled) => Status::Cancelled,
                _ => Status::Failed,
            };
            w.close(status);
        } else if rerun {
            w.task = Some(Task::Pending);
        } else {
            w.task = None;
        }
        Some(claimed)
    }

    /// Whether `claim_activity_tasks` takes this activity.
    pub(super) fn activity_due(&self, id: &str, seq: u64) -> bool {
        self.workflows[id]
            .activities
            .get(&seq)
            .is_some_and(|a| !a.running)
    }

    /// Starts the next attempt; returns the claim's number and the attempt.
    pub(super) fn claim_activity(&mut self, id: &str, seq: u64) -> (u64, u32) {
        let w = self.wf(id);
        let a = w.activities.get_mut(&seq).expect("a due activity");
        a.running = true;
        a.attempt += 1;
        a.generation += 1;
        a.heartbeated = false;
        let (generation, attempt) = (a.generation, a.attempt);
        w.history.push(format!("activity_started#{seq}.{attempt}"));
        (generation, attempt)
    }

    fn current<'a>(&'a mut self, id: &str, seq: u64, generation: u64) -> Option<&'a mut Activity> {
        self.wf(id)
            .activities
            .get_mut(&seq)
            .filter(|a| a.generation == generation)
    }

    /// `heartbeat`: `None` if the handle is not current, else whether a cancel was requested.
    pub(super) fn heartbeat(&mut self, id: &str, seq: u64, generation: u64) -> Option<bool> {
        let a = self.current(id, seq, generation)?;
        a.heartbeated = true;
        Some(a.cancel_requested)
    }

    /// `finish_activity`: whether the handle was current (and the outcome recorded).
    pub(super) fn finish(&mut self, id: &str, seq: u64, generation: u64, outcome: Outcome) -> bool {
        let Some(a) = self.current(id, seq, generation) else {
            return false;
        };
        let retry = outcome == Outcome::FailRetryable && a.attempt < MAX_ATTEMPTS;
        let event = match outcome {
            _ if retry && a.cancel_requested => "activity_cancelled",
            _ if retry => {
                a.running = false;
                return true;
            }
            Outcome::Complete => "activity_completed",
            Outcome::FailRetryable | Outcome::FailFinal => "activity_failed",
            Outcome::Cancelled => "activity_cancelled",
        };
        self.end_activity(id, seq, event);
        true
    }

    /// Whether `claim_expired_activities` takes this attempt.
    pub(super) fn expired(&self, id: &str, seq: u64) -> bool {
        self.workflows[id]
            .activities
            .get(&seq)
            .is_some_and(|a| a.running && a.timeout == Timeout::Short && !a.heartbeated)
    }

    /// The reaper takes an expired attempt (its token moves on) and records its timeout.
    pub(super) fn expire(&mut self, id: &str, seq: u64) {
        let a = self
            .wf(id)
            .activities
            .get_mut(&seq)
            .expect("an expired attempt");
        a.generation += 1;
        if a.attempt < MAX_ATTEMPTS && !a.cancel_requested {
            a.running = false;
            return;
        }
        let event = if a.attempt < MAX_ATTEMPTS {
            "activity_cancelled"
        } else {
            "activity_timed_out"
        };
        self.end_activity(id, seq, event);
    }

    fn end_activity(&mut self, id: &str, seq: u64, event: &str) {
        let w = self.wf(id);
        w.activities.remove(&seq);
        if w.running() {
            w.history.push(format!("{event}#{seq}"));
            w.enqueue();
        }
    }

    /// `request_cancel_workflow`: false once the workflow ended.
    pub(super) fn cancel(&mut self, id: &str) -> bool {
        let w = self.wf(id);
        if !w.running() {
            return false;
        }
        if !w.cancel_requested {
            w.cancel_requested = true;
            w.history.push("workflow_cancel_requested".into());
            w.enqueue();
        }
        true
    }

    /// `signal_workflow` with request id `request` (its event's short form is `event`): `Err` when
    /// the workflow ended (a retry of a recorded signal is not refused), else whether this call
    /// recorded it and, with `direct`, the claim it made of an idle workflow's task (its number
    /// and the history length it saw).
    pub(super) fn signal(
        &mut self,
        id: &str,
        request: &str,
        event: String,
        direct: bool,
    ) -> Result<(bool, Option<(u64, usize)>), Status> {
        let w = self.wf(id);
        if w.signals.iter().any(|r| r == request) {
            return Ok((false, None));
        }
        if !w.running() {
            return Err(w.status);
        }
        w.signals.push(request.to_string());
        w.history.push(event);
        if direct && w.task.is_none() {
            w.task = Some(Task::Running {
                lease_expired: false,
            });
            w.claims += 1;
            return Ok((true, Some((w.claims, w.history.len()))));
        }
        w.enqueue();
        Ok((true, None))
    }

    /// `fire_due_timers`: how many fired.
    pub(super) fn fire_timers(&mut self) -> usize {
        let mut fired = 0;
        for w in self.workflows.values_mut() {
            // In fire time order: the due timers of the workflow's code (fire time 1000 + seq),
            // then its execution deadline (a moment ago).
            let mut due: Vec<u64> = w
                .timers
                .iter()
                .filter(|(_, d)| **d)
                .map(|(s, _)| *s)
                .collect();
            due.sort_by_key(|s| (*s == EXECUTION_TIMER, *s));
            for seq in due {
                if w.timers.remove(&seq).is_none() {
                    continue;
                }
                fired += 1;
                if seq == EXECUTION_TIMER {
                    w.history.push("workflow_failed".into());
                    w.close(Status::Failed);
                } else if w.running() {
                    w.history.push(format!("timer_fired#{seq}"));
                    w.enqueue();
                }
            }
        }
        fired
    }
}
