//! A read-only replica of a workflow, built by the client from the stored history with the
//! workflow's own code: what answers queries and validates updates, on any store and in any
//! process, for a workflow a worker holds, one no worker holds, and one that ended. Nothing is
//! written: a replica's commands are dropped.

use super::client::Client;
use crate::error::{Error, Result};
use crate::history::{EventKind, HistoryEvent};
use crate::message::MessageKind;
use crate::workflow::context::WorkflowInfo;
use crate::workflow::definition::DynWorkflow;
use crate::workflow::executor::WorkflowInstance;
use std::time::Duration;

/// A workflow's history, read for a message.
pub(crate) struct Snapshot {
    pub history: Vec<HistoryEvent>,
}

impl Snapshot {
    /// The registered workflow name.
    pub(crate) fn workflow_type(&self) -> &str {
        match self.history.first().map(|e| &e.kind) {
            Some(EventKind::WorkflowStarted { workflow_type, .. }) => workflow_type,
            _ => "",
        }
    }

    /// The number the next event gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.history.last().map_or(1, |e| e.seq + 1)
    }

    /// Whether the workflow ran at least one task (its handlers are registered then).
    pub(crate) fn has_run(&self) -> bool {
        self.history
            .iter()
            .any(|e| matches!(e.kind, EventKind::WorkflowTaskCompleted { .. }))
    }

    /// How the workflow ended, if it did.
    pub(crate) fn closed(&self) -> Option<&'static str> {
        self.history.iter().rev().find_map(|e| match e.kind {
            EventKind::WorkflowCompleted { .. } => Some("completed"),
            EventKind::WorkflowFailed { .. } => Some("failed"),
            EventKind::WorkflowCancelled {} => Some("cancelled"),
            _ => None,
        })
    }

    /// The seq of the update's `UpdateAccepted`, if the history has it.
    pub(crate) fn accepted(&self, update_id: &str) -> Option<u64> {
        self.history.iter().find_map(|e| match &e.kind {
            EventKind::UpdateAccepted { update_id: u, .. } if u == update_id => Some(e.seq),
            _ => None,
        })
    }

    /// The update's recorded answer, if the history has it.
    pub(crate) fn answer(
        &self,
        update_id: &str,
    ) -> Option<std::result::Result<serde_json::Value, String>> {
        self.history.iter().find_map(|e| match &e.kind {
            EventKind::UpdateCompleted {
                update_id: u,
                outcome,
            } if u == update_id => Some(outcome.clone()),
            _ => None,
        })
    }

    /// Replays the history with `def`: the workflow's state as of its last task.
    pub(crate) fn replica(
        &self,
        def: &DynWorkflow,
        workflow_id: &str,
    ) -> std::result::Result<WorkflowInstance, String> {
        let Some(EventKind::WorkflowStarted {
            workflow_type,
            task_queue,
            run_id,
            ..
        }) = self.history.first().map(|e| &e.kind)
        else {
            return Err("the history does not begin with `workflow_started`".into());
        };
        let info = WorkflowInfo {
            workflow_id: workflow_id.to_string(),
            run_id: run_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            history_length: 0,
            previous_run_id: None,
        };
        WorkflowInstance::replay(def.clone(), info, &self.history).map_err(|f| f.to_string())
    }
}

impl Client {
    /// The workflow's history; [`Error::WorkflowNotFound`] if it has none.
    pub(crate) async fn snapshot(&self, workflow_id: &str) -> Result<Snapshot> {
        let history = self.store().backend.read_history(workflow_id, 1).await?;
        if history.is_empty() {
            return Err(Error::WorkflowNotFound(workflow_id.to_string()));
        }
        Ok(Snapshot { history })
    }

    /// The workflow's history once it ran its first task (which registers its handlers), or ended.
    pub(crate) async fn snapshot_after_first_task(&self, workflow_id: &str) -> Result<Snapshot> {
        loop {
            let waiter = self.store().hub.progress_waiter(workflow_id);
            let snap = {
                let notified = waiter.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let snap = self.snapshot(workflow_id).await;
                let done = match &snap {
                    Ok(s) => s.has_run() || s.closed().is_some(),
                    Err(_) => true,
                };
                if !done {
                    self.wait_progress(&mut notified).await;
                }
                done.then_some(snap)
            };
            self.store().hub.forget_progress_waiter(workflow_id, waiter);
            if let Some(snap) = snap {
                return snap;
            }
        }
    }

    /// Waits for a commit of the workflow in this process, a wake-up from another process, or a
    /// slow poll's tick.
    pub(crate) async fn wait_progress(
        &self,
        notified: &mut std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) {
        let mut external = self.store().backend.external_wakeups();
        tokio::select! {
            _ = notified.as_mut() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = crate::store::next_external(&mut external) => {}
        }
    }

    /// The definition of the workflow's type, from the registry, and the check that it declares
    /// a message of this kind and name (for messages sent by name, with JSON).
    pub(crate) fn declared(
        &self,
        workflow_type: &str,
        kind: MessageKind,
        name: &str,
    ) -> Result<Option<DynWorkflow>> {
        let Some(def) = self.registry().workflow(workflow_type).cloned() else {
            return Ok(None);
        };
        let declared: Vec<String> = def
            .meta()
            .messages
            .into_iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name)
            .collect();
        if !declared.iter().any(|d| d == name) {
            return Err(Error::UnknownMessage {
                workflow_type: workflow_type.to_string(),
                kind: match kind {
                    MessageKind::Signal => "signal",
                    MessageKind::Query => "query",
                    MessageKind::Update => "update",
                },
                name: name.to_string(),
                declared: if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                },
            });
        }
        Ok(Some(def))
    }
}
