//! Runs one sequence of operations against a store and the model side by side: each operation is
//! sent to the store the way a worker or a client sends it, applied to the model, and every answer
//! (claims, accepted or fenced commits and outcomes, heartbeats, cancels, fired timers) and then
//! every workflow's observable state (status, cancel request, history, pending activities) must be
//! the same.

use super::rules::{Cmd, Model, Outcome, Resolved, Timeout, MAX_ATTEMPTS};
use super::{Op, Reopen};
use crate::definition::ActivityOptions;
use crate::engine::activity::{resolve_result, resolve_timeout};
use crate::engine::EagerClaim;
use crate::error::{ActivityError, TimeoutKind, WorkflowError};
use crate::history::{format, CancellationType, EventKind};
use crate::retry::RetryPolicy;
use crate::store::{
    now_ms, ClaimedActivity, DirectClaim, NewSignal, NewWorkflow, StoreBackend, WorkflowTaskCommit,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const Q: &str = "model-queue";
const WT: &str = "model-workflow";
const AT: &str = "model-activity";
const WORKER: &str = "model-worker";
const IDS: [&str; 3] = ["w0", "w1", "w2"];

/// A workflow task this driver holds.
#[derive(Debug)]
struct WftHandle {
    id: String,
    token: i64,
    claim: u64,
    seen: usize,
}

/// An attempt this driver holds.
#[derive(Debug)]
struct AttemptHandle {
    task: ClaimedActivity,
    generation: u64,
}

pub(super) struct Driver {
    store: Arc<dyn StoreBackend>,
    reopen: Reopen,
    model: Model,
    wfts: Vec<WftHandle>,
    attempts: Vec<AttemptHandle>,
    step: usize,
    op: String,
}

fn options(timeout: Timeout) -> ActivityOptions {
    ActivityOptions {
        start_to_close_timeout: Some(match timeout {
            Timeout::Short => Duration::from_millis(1),
            Timeout::Long => Duration::from_secs(600),
        }),
        retry_policy: RetryPolicy {
            initial_interval: Duration::ZERO,
            maximum_attempts: MAX_ATTEMPTS,
            ..RetryPolicy::default()
        },
        ..ActivityOptions::default()
    }
}

/// The short form of an event the model keeps.
fn signature(kind: &EventKind) -> String {
    let name = format::event_name(kind);
    match kind {
        EventKind::ActivityStarted {
            activity_seq,
            attempt,
            ..
        } => format!("{name}#{activity_seq}.{attempt}"),
        _ => match format::ref_seq(kind) {
            Some(seq) => format!("{name}#{seq}"),
            None => name.to_string(),
        },
    }
}

impl Driver {
    pub(super) fn new(store: Arc<dyn StoreBackend>, reopen: Reopen) -> Self {
        Driver {
            store,
            reopen,
            model: Model::default(),
            wfts: Vec::new(),
            attempts: Vec::new(),
            step: 0,
            op: String::new(),
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!("step {} `{}`: {what}", self.step, self.op)
    }

    fn same<T: PartialEq + std::fmt::Debug>(&self, what: &str, store: T, model: T) {
        if store != model {
            self.fail(format!(
                "{what}: the store says {store:?}, the model {model:?}"
            ));
        }
    }

    fn ok<T>(&self, what: &str, r: crate::Result<T>) -> T {
        r.unwrap_or_else(|e| self.fail(format!("{what} failed: {e}")))
    }

    /// Runs every operation, checking the store against the model after each.
    pub(super) async fn run(mut self, ops: &[Op]) {
        for (i, op) in ops.iter().enumerate() {
            self.step = i;
            self.op = format!("{op:?}");
            self.apply(op).await;
            self.check().await;
        }
        if std::env::var_os("DURAFLOW_MODEL_SHOW").is_some() {
            for (id, w) in &self.model.workflows {
                eprintln!("{id}: {:?}", w.history);
            }
        }
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Start {
                workflow,
                timed_out,
            } => {
                self.start(IDS[*workflow as usize % IDS.len()], *timed_out)
                    .await
            }
            Op::ClaimWorkflowTasks { lease_expires } => self.claim_wfts(*lease_expires).await,
            Op::Commit {
                handle,
                commands,
                eager,
            } => self.commit(*handle, commands, *eager).await,
            Op::ClaimActivities => self.claim_activities().await,
            Op::Heartbeat(h) => self.heartbeat(*h).await,
            Op::Finish(h, outcome) => self.finish(*h, *outcome).await,
            Op::CancelWorkflow(w) => {
                let id = IDS[*w as usize % IDS.len()];
                if self.model.workflows.contains_key(id) {
                    let got = self.store.request_cancel_workflow(id).await;
                    let got = self.ok("request_cancel_workflow", got);
                    let want = self.model.cancel(id);
                    self.same("request_cancel_workflow", got, want);
                }
            }
            Op::Signal {
                workflow,
                request,
                direct,
            } => {
                let id = IDS[*workflow as usize % IDS.len()];
                if self.model.workflows.contains_key(id) {
                    self.signal(id, *request, *direct).await;
                }
            }
            Op::FireTimers => {
                let got = self.store.fire_due_timers(100).await;
                let got = self.ok("fire_due_timers", got);
                let want = self.model.fire_timers();
                self.same("timers fired", got, want);
            }
            Op::Expire => self.expire().await,
            Op::Crash => {
                if self.reopen.reopens() {
                    // The worker dies with the store: what it held is gone. The old store is
                    // dropped (its file or connections let go) before the new one opens.
                    let placeholder = crate::store::Store::memory().expect("memory store").backend;
                    drop(std::mem::replace(&mut self.store, placeholder));
                    self.store = self.reopen.open().await;
                    self.wfts.clear();
                    self.attempts.clear();
                }
            }
        }
    }

    async fn start(&mut self, id: &str, timed_out: bool) {
        let got = self
            .store
            .create_workflow(NewWorkflow {
                workflow_id: id.into(),
                run_id: format!("run-{id}"),
                workflow_type: WT.into(),
                task_queue: Q.into(),
                input: json!({ "id": id }),
                execution_deadline_ms: timed_out.then(|| now_ms() - 1),
            })
            .await;
        let created = match got {
            Ok(()) => true,
            Err(crate::Error::DuplicateWorkflowId(_)) => false,
            Err(e) => self.fail(format!("create_workflow failed: {e}")),
        };
        let want = self.model.start(id, timed_out);
        self.same("workflow created", created, want);
    }

    async fn signal(&mut self, id: &str, request: u8, direct: bool) {
        let request_id = format!("r{request}");
        let signal = NewSignal {
            name: "model-signal".into(),
            input: json!(request),
            request_id: request_id.clone(),
        };
        let event = signature(&EventKind::SignalReceived {
            signal_name: signal.name.clone(),
            input: signal.input.clone(),
            request_id: request_id.clone(),
        });
        let holder = direct.then(|| DirectClaim {
            owner: WORKER.into(),
            run_id: format!("run-{id}"),
            lease_ms: 600_000,
        });
        let got = match self.store.signal_workflow(id, signal, holder).await {
            Ok(out) => Ok((out.recorded, out.claimed)),
            Err(crate::Error::WorkflowClosed { status, .. }) => Err(status),
            Err(e) => self.fail(format!("signal_workflow failed: {e}")),
        };
        let want = self.model.signal(id, &request_id, event, direct);
        self.same(
            "signal recorded, claimed",
            got.as_ref()
                .map(|(r, c)| (*r, c.is_some()))
                .map_err(|s| s.to_string()),
            want.as_ref()
                .map(|(r, c)| (*r, c.is_some()))
                .map_err(|s| s.as_str().to_string()),
        );
        if let (Ok((_, Some(token))), Ok((_, Some((claim, seen))))) = (got, want) {
            self.wfts.push(WftHandle {
                id: id.to_string(),
                token,
                claim,
                seen,
            });
        }
    }

    async fn claim_wfts(&mut self, lease_expires: bool) {
        let lease = if lease_expires { -1_000 } else { 600_000 };
        let got = self
            .store
            .claim_workflow_tasks(WORKER, &[Q.into()], &[WT.into()], 10, lease)
            .await;
        let got = self.ok("claim_workflow_tasks", got);
        let mut ids: Vec<String> = got.iter().map(|c| c.workflow_id.clone()).collect();
        ids.sort();
        let want: Vec<String> = self
            .model
            .workflows
            .keys()
            .filter(|id| self.model.wft_due(id))
            .cloned()
            .collect();
        self.same("workflow tasks claimed", ids, want);
        for c in got {
            let (claim, seen) = self.model.claim_wft(&c.workflow_id, lease_expires);
            self.wfts.push(WftHandle {
                id: c.workflow_id,
                token: c.token,
                claim,
                seen,
            });
        }
    }

    async fn commit(&mut self, handle: u8, commands: &[Cmd], eager: bool) {
        if self.wfts.is_empty() {
            return;
        }
        // A worker commits a task once: the handle is used up (a stale one is still sent).
        let h = self.wfts.remove(handle as usize % self.wfts.len());
        let resolved = self.model.workflows[&h.id].resolve(commands);
        let events: Vec<EventKind> = resolved
            .iter()
            .map(|r| match *r {
                Resolved::Schedule(seq, timeout) => EventKind::ActivityScheduled {
                    activity_seq: seq,
                    activity_type: AT.into(),
                    input: json!(seq),
                    options: options(timeout),
                    task_queue: Q.into(),
                    local: false,
                    cancellation_type: CancellationType::TryCancel,
                },
                Resolved::CancelActivity(seq) => {
                    EventKind::ActivityCancelRequested { activity_seq: seq }
                }
                Resolved::StartTimer(seq, due) => EventKind::TimerStarted {
                    timer_seq: seq,
                    fire_at_ms: if due {
                        1_000 + seq as i64
                    } else {
                        now_ms() + 3_600_000
                    },
                },
                Resolved::CancelTimer(seq) => EventKind::TimerCancelled { timer_seq: seq },
                Resolved::Complete => EventKind::WorkflowCompleted {
                    result: json!("done"),
                },
                Resolved::Fail => EventKind::WorkflowFailed {
                    error: WorkflowError::application("ModelFailure", "the model failed it"),
                },
                Resolved::Cancelled => EventKind::WorkflowCancelled {},
            })
            .collect();
        let got = self
            .store
            .commit_workflow_task(WorkflowTaskCommit {
                workflow_id: h.id.clone(),
                token: h.token,
                processed_through: h.seen as u64,
                task_time_ms: now_ms(),
                commands: events,
                eager: eager.then(|| EagerClaim {
                    worker_id: WORKER.into(),
                    activity_types: vec![AT.into()],
                    queues: vec![Q.into()],
                    max: 10,
                }),
                local_lease: None,
            })
            .await;
        let outcome = self.ok("commit_workflow_task", got);
        let want = self.model.commit(&h.id, h.claim, h.seen, &resolved, eager);
        let given = outcome
            .as_ref()
            .map(|o| o.eager.iter().map(|t| t.activity_seq).collect::<Vec<_>>());
        self.same("commit accepted, activities claimed with it", given, want);
        for task in outcome.map(|o| o.eager).unwrap_or_default() {
            self.attempts.push(AttemptHandle {
                task,
                generation: 1,
            });
        }
    }

    async fn claim_activities(&mut self) {
        let got = self
            .store
            .claim_activity_tasks(WORKER, &[Q.into()], &[AT.into()], 20)
            .await;
        let got = self.ok("claim_activity_tasks", got);
        let mut claimed: Vec<(String, u64)> = got
            .iter()
            .map(|t| (t.workflow_id.clone(), t.activity_seq))
            .collect();
        claimed.sort();
        let want: Vec<(String, u64)> = self
            .model
            .workflows
            .iter()
            .flat_map(|(id, w)| w.activities.keys().map(move |s| (id.clone(), *s)))
            .filter(|(id, s)| self.model.activity_due(id, *s))
            .collect();
        self.same("activity tasks claimed", claimed, want);
        // In the store's order: two starts of one workflow are appended in it.
        for task in got {
            let (generation, attempt) = self
                .model
                .claim_activity(&task.workflow_id, task.activity_seq);
            self.same("attempt", task.attempt, attempt);
            self.attempts.push(AttemptHandle { task, generation });
        }
    }

    async fn heartbeat(&mut self, h: u8) {
        if self.attempts.is_empty() {
            return;
        }
        let a = &self.attempts[h as usize % self.attempts.len()];
        let got = self
            .store
            .heartbeat(
                a.task.task_id,
                a.task.token,
                None,
                (now_ms() + 3_600_000, TimeoutKind::Heartbeat),
            )
            .await;
        let got = self.ok("heartbeat", got);
        let (id, seq, generation) = (
            a.task.workflow_id.clone(),
            a.task.activity_seq,
            a.generation,
        );
        let want = self.model.heartbeat(&id, seq, generation);
        self.same("heartbeat", got, want);
    }

    async fn finish(&mut self, h: u8, outcome: Outcome) {
        if self.attempts.is_empty() {
            return;
        }
        let a = self.attempts.remove(h as usize % self.attempts.len());
        let result = match outcome {
            Outcome::Complete => Ok(json!("ok")),
            Outcome::FailRetryable => Err(ActivityError::application("Flaky", "try again")),
            Outcome::FailFinal => Err(ActivityError::non_retryable("Fatal", "give up")),
            Outcome::Cancelled => Err(ActivityError::cancelled()),
        };
        let resolution = resolve_result(&a.task, result, None, now_ms());
        let got = self
            .store
            .finish_activity(a.task.task_id, a.task.token, resolution, None)
            .await;
        let got = self.ok("finish_activity", got);
        let want = self.model.finish(
            &a.task.workflow_id,
            a.task.activity_seq,
            a.generation,
            outcome,
        );
        self.same("outcome recorded", got, want);
    }

    async fn expire(&mut self) {
        // Every short attempt's 1 ms deadline has passed.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let got = self.store.claim_expired_activities(100).await;
        let got = self.ok("claim_expired_activities", got);
        let mut reaped: Vec<(String, u64)> = got
            .iter()
            .map(|e| (e.task.workflow_id.clone(), e.task.activity_seq))
            .collect();
        reaped.sort();
        let want: Vec<(String, u64)> = self
            .model
            .workflows
            .iter()
            .flat_map(|(id, w)| w.activities.keys().map(move |s| (id.clone(), *s)))
            .filter(|(id, s)| self.model.expired(id, *s))
            .collect();
        self.same("attempts reaped", reaped, want);
        for e in got {
            let resolution = resolve_timeout(&e, now_ms());
            let done = self
                .store
                .finish_activity(e.task.task_id, e.task.token, resolution, None)
                .await;
            let done = self.ok("finish_activity of a reaped attempt", done);
            self.same("reaped attempt recorded", done, true);
            self.model.expire(&e.task.workflow_id, e.task.activity_seq);
        }
    }

    /// Every workflow's status, cancel request, history and pending activities.
    async fn check(&self) {
        for (id, w) in &self.model.workflows {
            let d = self.ok("describe", self.store.describe(id).await);
            let Some(d) = d else {
                self.fail(format!("workflow `{id}` is missing"))
            };
            self.same(
                &format!("status of {id}"),
                d.status.as_str(),
                w.status.as_str(),
            );
            self.same(
                &format!("cancel request of {id}"),
                d.cancel_requested,
                w.cancel_requested,
            );
            let history = self.ok("read_history", self.store.read_history(id, 1).await);
            let got: Vec<String> = history.iter().map(|e| signature(&e.kind)).collect();
            self.same(&format!("history of {id}"), &got, &w.history);
            let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
            let numbered: Vec<u64> = (1..=history.len() as u64).collect();
            self.same(&format!("event numbers of {id}"), seqs, numbered);
            self.same(
                &format!("history length of {id}"),
                d.history_length,
                w.history.len() as u64,
            );
            let got: Vec<(u64, String, u32, bool)> = d
                .pending_activities
                .iter()
                .map(|p| {
                    (
                        p.activity_seq,
                        p.state.clone(),
                        p.attempt,
                        p.cancel_requested,
                    )
                })
                .collect();
            let want: Vec<(u64, String, u32, bool)> = w
                .activities
                .iter()
                .map(|(seq, a)| {
                    let state = if a.running { "running" } else { "pending" };
                    (*seq, state.to_string(), a.attempt, a.cancel_requested)
                })
                .collect();
            self.same(&format!("pending activities of {id}"), got, want);
        }
    }
}
