//! The Replayer: recorded histories against the current code, without a store or a worker.

use crate::api::registry::Registry;
use crate::history::{EventKind, HistoryEvent};
use crate::workflow::check::ReplayMismatch;
use crate::workflow::context::WorkflowInfo;
use crate::workflow::executor::{TaskFailure, WorkflowInstance};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// Replays recorded histories against the registered workflow code and reports, per history, ok
/// or the first place where code and history part. Meant for a CI test before a deploy: export
/// histories of running workflows (`Client::history_json`, or the CLI's `history --json`) into a
/// folder of the repository, and replay them all on every change.
///
/// Each history is replayed as a worker would replay it: the events are delivered in the batches
/// the history's workflow tasks recorded, and each task's commands are compared with those the
/// code produces now (see the crate docs, "Changing workflow code", for what is compared). Nothing
/// runs: no activity, no timer, no store.
///
/// # Examples
///
/// A user's CI test: every history in `tests/histories/` must replay on the current code (in
/// `tests/replay.rs`, with `#[test]` on the fn).
///
/// ```
/// use duraflow::prelude::*;
/// use duraflow::testing::Replayer;
///
/// #[activity] async fn charge(cents: u64) -> Result<u64, ActivityError> { Ok(cents) }
///
/// #[workflow]
/// async fn checkout(ctx: WorkflowContext, cents: u64) -> Result<u64, WorkflowError> {
///     Ok(ctx.activity(charge, cents).await?)
/// }
///
/// fn recorded_histories_replay_on_this_code() {
///     let report = Replayer::new(Registry::all()).replay_dir("tests/histories");
///     assert!(report.is_ok(), "{report}");
/// }
/// # fn main() {
/// #     let dir = tempfile::tempdir().unwrap();
/// #     let history = serde_json::json!([
/// #         {"seq": 1, "time_ms": 0, "event": "workflow_started", "workflow_type": "checkout",
/// #          "input": 250, "task_queue": "default", "run_id": "r1"},
/// #         {"seq": 2, "time_ms": 0, "event": "activity_scheduled", "activity_seq": 1,
/// #          "activity_type": "charge", "input": 250, "options": serde_json::to_value(
/// #             duraflow::ActivityOptions::default()).unwrap(), "task_queue": "default",
/// #          "local": false, "cancellation_type": "try_cancel"},
/// #         {"seq": 3, "time_ms": 0, "event": "workflow_task_completed",
/// #          "processed_through": 1, "task_time_ms": 0}
/// #     ]);
/// #     std::fs::write(dir.path().join("checkout-1.json"), history.to_string()).unwrap();
/// #     let report = Replayer::new(Registry::new().register(charge).register(checkout))
/// #         .replay_dir(dir.path());
/// #     assert!(report.is_ok(), "{report}");
/// # }
/// ```
// The `#[test]` in the example is the point: it shows the test a user adds to their own crate.
#[allow(clippy::test_attr_in_doctest)]
#[derive(Clone)]
pub struct Replayer {
    registry: Registry,
}

impl fmt::Debug for Replayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer")
            .field("workflows", &self.registry.workflow_names())
            .finish()
    }
}

/// What replaying one history found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// Every recorded workflow task's commands are those the code produces now.
    Ok,
    /// The first mismatch: event number, what the history recorded, what the code does, the fix.
    Mismatch(ReplayMismatch),
    /// The history could not be replayed at all (unreadable, an unknown workflow type, the code
    /// panicked): why, in words.
    Failed(String),
}

/// One history's replay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryReport {
    /// Where the history came from: a file path, or `json` (and its index, for several).
    pub source: String,
    /// The workflow id, when the export names it, else the file's name without `.json`.
    pub workflow_id: String,
    /// The recorded workflow type, if the history could be read that far.
    pub workflow_type: Option<String>,
    /// How many events the history has.
    pub events: usize,
    /// What the replay found.
    pub outcome: ReplayOutcome,
}

/// The replay of one or many histories. Its `Display` is a report to print in a test's failure
/// message: one line per history, then the mismatches in words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// One entry per history, in the order replayed.
    pub histories: Vec<HistoryReport>,
}

impl ReplayReport {
    /// True when there was at least one history and every one replayed.
    pub fn is_ok(&self) -> bool {
        !self.histories.is_empty()
            && self
                .histories
                .iter()
                .all(|h| h.outcome == ReplayOutcome::Ok)
    }

    /// The histories that did not replay.
    pub fn failures(&self) -> impl Iterator<Item = &HistoryReport> {
        self.histories
            .iter()
            .filter(|h| h.outcome != ReplayOutcome::Ok)
    }

    fn push_failed(&mut self, source: String, why: String) {
        self.histories.push(HistoryReport {
            workflow_id: source.clone(),
            source,
            workflow_type: None,
            events: 0,
            outcome: ReplayOutcome::Failed(why),
        });
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad = self.failures().count();
        if self.histories.is_empty() {
            return write!(f, "no history was replayed (no history found)");
        }
        writeln!(
            f,
            "replayed {} histor{}: {} ok, {} failed",
            self.histories.len(),
            if self.histories.len() == 1 {
                "y"
            } else {
                "ies"
            },
            self.histories.len() - bad,
            bad
        )?;
        for h in &self.histories {
            let what = h.workflow_type.as_deref().unwrap_or("?");
            match &h.outcome {
                ReplayOutcome::Ok => {
                    writeln!(f, "  ok        {} ({what}, {} events)", h.source, h.events)?
                }
                ReplayOutcome::Mismatch(m) => writeln!(f, "  MISMATCH  {}: {m}", h.source)?,
                ReplayOutcome::Failed(why) => writeln!(f, "  FAILED    {}: {why}", h.source)?,
            }
        }
        Ok(())
    }
}

impl Replayer {
    /// A replayer of the workflows in `registry` (`Registry::all()` for every definition linked
    /// into the binary).
    pub fn new(registry: Registry) -> Self {
        Replayer { registry }
    }

    /// Replays one history, given as events (e.g. `client.history(id)`).
    pub fn replay_history(&self, source: &str, history: &[HistoryEvent]) -> HistoryReport {
        self.replay_events(source, None, history)
    }

    /// Replays the histories in `json`: one history as `Client::history_json` exports it (an
    /// array of events), an object `{"workflow_id": .., "events": [..]}` (or `"history"`), or
    /// an array of those.
    pub fn replay_json(&self, json: &str) -> ReplayReport {
        let mut report = ReplayReport::default();
        self.replay_text("json", json, &mut report);
        report
    }

    /// Replays the history (or histories) in one JSON file.
    pub fn replay_file(&self, path: impl AsRef<Path>) -> ReplayReport {
        let mut report = ReplayReport::default();
        self.replay_path(path.as_ref(), &mut report);
        report
    }

    /// Replays every `*.json` file in `dir` (not its subfolders), in name order.
    pub fn replay_dir(&self, dir: impl AsRef<Path>) -> ReplayReport {
        let mut report = ReplayReport::default();
        self.replay_folder(dir.as_ref(), &mut report);
        report
    }

    /// Replays files and folders (each folder's `*.json` files), as a command line names them.
    pub fn replay_paths<P: AsRef<Path>>(&self, paths: &[P]) -> ReplayReport {
        let mut report = ReplayReport::default();
        for p in paths {
            let p = p.as_ref();
            if p.is_dir() {
                self.replay_folder(p, &mut report);
            } else {
                self.replay_path(p, &mut report);
            }
        }
        report
    }

    fn replay_folder(&self, dir: &Path, report: &mut ReplayReport) {
        let source = dir.display().to_string();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return report.push_failed(source, format!("cannot read the folder: {e}"));
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            report.push_failed(source, "the folder has no `*.json` history file".into());
        }
        for f in files {
            self.replay_path(&f, report);
        }
    }

    fn replay_path(&self, path: &Path, report: &mut ReplayReport) {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.replay_text(&source, &text, report),
            Err(e) => report.push_failed(source, format!("cannot read the file: {e}")),
        }
    }

    fn replay_text(&self, source: &str, text: &str, report: &mut ReplayReport) {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return report.push_failed(source.into(), format!("not JSON: {e}"));
            }
        };
        let is_history = |v: &Value| {
            v.as_array()
                .is_some_and(|a| a.first().is_none_or(|e| e.get("event").is_some()))
                || v.get("events").is_some()
                || v.get("history").is_some()
        };
        if is_history(&value) {
            return report.histories.push(self.replay_value(source, value));
        }
        match value {
            Value::Array(many) if many.iter().all(is_history) => {
                for (i, h) in many.into_iter().enumerate() {
                    let s = format!("{source}[{i}]");
                    report.histories.push(self.replay_value(&s, h));
                }
            }
            _ => report.push_failed(
                source.into(),
                "not a history: expected an array of events (as `history_json` exports it), \
                 an object with `events`, or an array of those"
                    .into(),
            ),
        }
    }

    fn replay_value(&self, source: &str, value: Value) -> HistoryReport {
        let (id, events) = match value {
            Value::Object(mut o) => {
                let id = o
                    .get("workflow_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let events = o
                    .remove("events")
                    .or_else(|| o.remove("history"))
                    .unwrap_or(Value::Null);
                (id, events)
            }
            v => (None, v),
        };
        let Value::Array(raw) = events else {
            return failed(
                source,
                id,
                0,
                "the history is not an array of events".into(),
            );
        };
        let n = raw.len();
        let mut history = Vec::with_capacity(n);
        for (i, e) in raw.into_iter().enumerate() {
            let name = e
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            match serde_json::from_value::<HistoryEvent>(e) {
                Ok(ev) => history.push(ev),
                Err(err) => {
                    let why = if err.to_string().contains("unknown variant") {
                        format!(
                            "event {} (`{name}`) is unknown to this build: was the history \
                             written by a newer duraflow? Upgrade duraflow to replay it",
                            i + 1
                        )
                    } else {
                        format!("event {} (`{name}`) cannot be read: {err}", i + 1)
                    };
                    return failed(source, id, n, why);
                }
            }
        }
        self.replay_events(source, id, &history)
    }

    fn replay_events(
        &self,
        source: &str,
        workflow_id: Option<String>,
        history: &[HistoryEvent],
    ) -> HistoryReport {
        let n = history.len();
        // Without an id in the export, the file's name stands for it (`order-1.json`: `order-1`).
        let workflow_id = workflow_id.unwrap_or_else(|| {
            Path::new(source)
                .file_stem()
                .map_or_else(|| source.to_string(), |s| s.to_string_lossy().into_owned())
        });
        let Some(HistoryEvent {
            kind:
                EventKind::WorkflowStarted {
                    workflow_type,
                    task_queue,
                    run_id,
                    ..
                },
            ..
        }) = history.first()
        else {
            return failed(
                source,
                Some(workflow_id),
                n,
                "the history does not begin with `workflow_started`".into(),
            );
        };
        let mut report = HistoryReport {
            source: source.to_string(),
            workflow_id: workflow_id.clone(),
            workflow_type: Some(workflow_type.clone()),
            events: n,
            outcome: ReplayOutcome::Ok,
        };
        let Some(def) = self.registry.workflow(workflow_type).cloned() else {
            report.outcome = ReplayOutcome::Failed(format!(
                "no workflow named `{workflow_type}` is registered with the Replayer (it knows: \
                 {}); register it",
                self.registry.workflow_names().join(", ")
            ));
            return report;
        };
        let info = WorkflowInfo {
            workflow_id,
            run_id: run_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            history_length: 0,
            previous_run_id: None,
        };
        report.outcome = match WorkflowInstance::replay(def, info, history) {
            Ok(_) => ReplayOutcome::Ok,
            Err(TaskFailure::Nondeterminism(m)) => ReplayOutcome::Mismatch(*m),
            Err(other) => ReplayOutcome::Failed(other.to_string()),
        };
        report
    }
}

fn failed(source: &str, id: Option<String>, events: usize, why: String) -> HistoryReport {
    HistoryReport {
        source: source.to_string(),
        workflow_id: id.unwrap_or_else(|| source.to_string()),
        workflow_type: None,
        events,
        outcome: ReplayOutcome::Failed(why),
    }
}
