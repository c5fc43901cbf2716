//! Shared pieces of the crash tests (`kill_recovery`, `postgres_multiprocess`): the side log that
//! activity executions write and sync before they return, the child worker process plumbing, and
//! the checks of a completed workflow's history against the side log.

use duraflow::{
    ActivityContext, ActivityError, Client, EventKind, HistoryEvent, WorkerOptions, WorkflowStatus,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------------
// The side log

static SIDE_LOG: OnceLock<PathBuf> = OnceLock::new();

/// Sets the side log path of this process (once, in a child worker).
pub fn set_side_log(path: impl Into<PathBuf>) {
    SIDE_LOG.set(path.into()).expect("side log set once");
}

/// Appends `line` to the side log and syncs it: once this returns, the execution is on disk.
pub fn append_side_log(line: &str) -> std::io::Result<()> {
    let path = SIDE_LOG
        .get()
        .ok_or_else(|| std::io::Error::other("the side log path is not set"))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write of one short line: O_APPEND keeps lines of concurrent processes whole.
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Records this execution in the side log: `workflow_id activity_seq attempt`, followed by this
/// process's pid when `with_pid`.
pub fn record_execution(ctx: &ActivityContext, with_pid: bool) -> Result<(), ActivityError> {
    let info = ctx.info();
    let line = if with_pid {
        format!(
            "{} {} {} {}\n",
            info.workflow_id,
            info.activity_id,
            info.attempt,
            std::process::id()
        )
    } else {
        format!(
            "{} {} {}\n",
            info.workflow_id, info.activity_id, info.attempt
        )
    };
    append_side_log(&line).map_err(|e| ActivityError::application("SideLog", e))
}

/// One line of the side log.
#[derive(Clone, Debug)]
pub struct Execution {
    pub workflow_id: String,
    pub seq: u64,
    pub attempt: u32,
    /// Only in side logs written `with_pid`.
    pub pid: Option<u32>,
}

/// Every line of the side log at `path`; each must have the pid iff `with_pid`.
pub fn read_side_log(path: &Path, with_pid: bool) -> Vec<Execution> {
    let fields = if with_pid { 4 } else { 3 };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), fields, "malformed side log line {l:?}");
            Execution {
                workflow_id: f[0].to_string(),
                seq: f[1].parse().expect("activity seq"),
                attempt: f[2].parse().expect("attempt"),
                pid: with_pid.then(|| f[3].parse().expect("pid")),
            }
        })
        .collect()
}

/// The executions of each activity `(workflow_id, activity_seq)`, in side log order.
pub type Logged = BTreeMap<(String, u64), Vec<Execution>>;

pub fn by_activity(executions: &[Execution]) -> Logged {
    let mut logged = Logged::new();
    for e in executions {
        logged
            .entry((e.workflow_id.clone(), e.seq))
            .or_default()
            .push(e.clone());
    }
    logged
}

/// No execution of an activity the histories do not know, and every activity ran at least once.
pub fn check_logged_activities(logged: &Logged, workflow_prefix: &str, total_activities: usize) {
    for (wf, seq) in logged.keys() {
        assert!(
            wf.starts_with(workflow_prefix) && (1..=64).contains(seq),
            "side log names an unknown activity {wf} #{seq}"
        );
    }
    assert_eq!(
        logged.len(),
        total_activities,
        "every activity ran at least once"
    );
}

// ------------------------------------------------------------------------------------------------
// Child worker processes

/// This test binary run as a child running only the test `entry`, its stdout and stderr in
/// `dir/{name}.stdout` and `dir/{name}.stderr`.
pub fn child_command(dir: &Path, name: &str, entry: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let stdout = std::fs::File::create(dir.join(format!("{name}.stdout"))).expect("stdout file");
    let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("stderr file");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    cmd
}

/// A multi-thread tokio runtime with two worker threads, as a child worker process uses.
pub fn two_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A child's worker options: a 1 s workflow task lease, so that a killed child's tasks are soon
/// taken over.
pub fn child_worker_options(poll_interval: Duration, shutdown_grace: Duration) -> WorkerOptions {
    let mut options = WorkerOptions::default();
    options.workflow_task_lease = Duration::from_secs(1);
    options.poll_interval = poll_interval;
    options.shutdown_grace = shutdown_grace;
    options
}

/// Ends this child process (exit code 3) once it has lived longer than `max_lifetime`: it was never
/// killed, so the parent died.
pub fn end_if_lived_too_long(started: Instant, max_lifetime: Duration) {
    if started.elapsed() > max_lifetime {
        eprintln!("child: lived too long, ending");
        std::process::exit(3);
    }
}

/// What child `name` wrote to `dir/{name}.{ext}` so far (`ext` is `stdout` or `stderr`).
pub fn child_file(dir: &Path, name: &str, ext: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_default()
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ------------------------------------------------------------------------------------------------
// The checks of a completed workflow

/// What one workflow must show.
pub struct Expected {
    pub result: i64,
    pub activities: usize,
    pub timers: usize,
}

/// What the checks found in one workflow's history.
pub struct Checked {
    pub history: Vec<HistoryEvent>,
    /// Per activity seq, its attempts in order, with the worker that took each.
    pub attempts: BTreeMap<u64, Vec<(u32, String)>>,
    /// Per activity seq, the completing attempt and its worker.
    pub done: BTreeMap<u64, (u32, String)>,
    /// Attempts beyond the first, over all activities.
    pub retried: usize,
}

/// Checks workflow `id` through the public API: completed with the expected result, recorded once;
/// contiguous event seqs; no failure, cancellation or time-out; every activity scheduled once, its
/// attempts 1, 2, ... each started once, completed once and nothing started after the completion;
/// every timer started and fired once. Against the side log: the completing attempt ran, no
/// execution is later than it, and every execution has its `ActivityStarted`.
pub async fn check_workflow(
    client: &Client,
    id: &str,
    want: &Expected,
    logged: &Logged,
) -> Checked {
    let d = client.describe(id).await.expect("describe");
    assert_eq!(d.status, WorkflowStatus::Completed, "{id}: status ({d:?})");
    assert_eq!(
        d.result,
        Some(serde_json::json!(want.result)),
        "{id}: result"
    );
    let h = client.history(id).await.expect("history");
    for (i, e) in h.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "{id}: event seqs are not contiguous from 1"
        );
    }
    assert!(
        matches!(
            h.first().map(|e| &e.kind),
            Some(EventKind::WorkflowStarted { .. })
        ),
        "{id}: the first event is not WorkflowStarted ({:?})",
        h.first().map(|e| &e.kind)
    );
    let started_count = h
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowStarted { .. }))
        .count();
    assert_eq!(started_count, 1, "{id}: WorkflowStarted count");
    let completed: Vec<_> = h
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowCompleted { result } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        vec![serde_json::json!(want.result)],
        "{id}: exactly one WorkflowCompleted with the right result"
    );
    for e in &h {
        assert!(
            !matches!(
                e.kind,
                EventKind::WorkflowFailed { .. }
                    | EventKind::WorkflowCancelled { .. }
                    | EventKind::ActivityFailed { .. }
                    | EventKind::ActivityTimedOut { .. }
                    | EventKind::ActivityCancelled { .. }
            ),
            "{id}: unexpected event #{} {:?}",
            e.seq,
            e.kind
        );
    }

    // Per activity: scheduled once, attempts 1, 2, ... each started once, completed once, and
    // nothing started after the completion.
    let mut scheduled = BTreeSet::new();
    let mut attempts: BTreeMap<u64, Vec<(u32, String)>> = BTreeMap::new();
    let mut done: BTreeMap<u64, (u32, String)> = BTreeMap::new();
    for e in &h {
        match &e.kind {
            EventKind::ActivityScheduled { activity_seq, .. } => {
                assert!(
                    scheduled.insert(*activity_seq),
                    "{id}: activity #{activity_seq} scheduled twice"
                );
            }
            EventKind::ActivityStarted {
                activity_seq,
                attempt,
                worker,
            } => {
                assert!(
                    scheduled.contains(activity_seq),
                    "{id}: activity #{activity_seq} started before it was scheduled"
                );
                assert!(
                    !done.contains_key(activity_seq),
                    "{id}: activity #{activity_seq} started again (attempt {attempt}, event #{}) after its completion: a completed activity was re-run",
                    e.seq
                );
                attempts
                    .entry(*activity_seq)
                    .or_default()
                    .push((*attempt, worker.clone()));
            }
            EventKind::ActivityCompleted { activity_seq, .. } => {
                let Some(last) = attempts.get(activity_seq).and_then(|a| a.last().cloned()) else {
                    panic!("{id}: activity #{activity_seq} completed without a start");
                };
                assert!(
                    done.insert(*activity_seq, last).is_none(),
                    "{id}: activity #{activity_seq} completed twice (event #{})",
                    e.seq
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        scheduled.len(),
        want.activities,
        "{id}: activities scheduled"
    );
    assert_eq!(
        done.keys().copied().collect::<BTreeSet<_>>(),
        scheduled,
        "{id}: every scheduled activity completed exactly once"
    );
    let mut retried = 0usize;
    for (seq, a) in &attempts {
        let got: Vec<u32> = a.iter().map(|(n, _)| *n).collect();
        let want: Vec<u32> = (1..=a.len() as u32).collect();
        assert_eq!(got, want, "{id}: attempts of activity #{seq}");
        retried += a.len() - 1;
    }

    // Timers: each fired exactly once.
    let mut timers: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for e in &h {
        match &e.kind {
            EventKind::TimerStarted { timer_seq, .. } => {
                timers.entry(*timer_seq).or_default().0 += 1
            }
            EventKind::TimerFired { timer_seq } => timers.entry(*timer_seq).or_default().1 += 1,
            _ => {}
        }
    }
    assert_eq!(timers.len(), want.timers, "{id}: timers");
    for (seq, (s, f)) in &timers {
        assert_eq!((*s, *f), (1, 1), "{id}: timer #{seq} started/fired counts");
    }

    // The side log: the completing attempt really ran, no execution is later than it, and every
    // execution has its ActivityStarted.
    for (seq, (completing, _)) in &done {
        let runs = logged
            .get(&(id.to_string(), *seq))
            .unwrap_or_else(|| panic!("{id}: activity #{seq} completed but never ran"));
        assert!(
            runs.iter().any(|r| r.attempt == *completing),
            "{id}: activity #{seq} completed by attempt {completing}, which the side log does not show (it shows {runs:?})"
        );
        for r in runs {
            let a = r.attempt;
            assert!(
                a <= *completing,
                "{id}: activity #{seq} ran attempt {a} (pid {:?}) after attempt {completing} completed it",
                r.pid
            );
            assert!(
                attempts[seq].iter().any(|(n, _)| *n == a),
                "{id}: activity #{seq} ran attempt {a}, which has no ActivityStarted"
            );
        }
    }

    Checked {
        history: h,
        attempts,
        done,
        retried,
    }
}
