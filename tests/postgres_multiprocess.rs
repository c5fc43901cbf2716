//! Several worker processes on one Postgres database, one of them killed with SIGKILL mid-run
//! (issue 5).
//!
//! The parent test makes a fresh schema, starts `WORKFLOWS` workflows of `STEPS` sequential
//! activities (`add(x, 1)`, a few of them with a short durable timer), then spawns `CHILDREN` worker
//! processes on that schema. Each has a short workflow task lease and its activities a short
//! start-to-close timeout, so the work of a dead process is taken over within seconds. Once a good
//! part of the workflows has completed, but not all, and the victim is busy executing activities,
//! the parent SIGKILLs it; the others finish everything and then end themselves.
//!
//! The parent then checks, through the public API: every workflow completed with the right result,
//! recorded once; every activity completed exactly once and never started again after its
//! completion; event numbers are contiguous. A side log, written and synced by each activity
//! execution before it returns (`workflow_id activity_seq attempt pid`), tells which executions
//! really happened and in which process: every completed activity ran, no attempt ran after the
//! completing one, no attempt ran twice, and every process executed activities. Re-executions
//! (attempts whose result was lost with the killed process) are reported.
//!
//! The child is this test binary itself, running the `mp_child_worker_entry` test with
//! `DURAFLOW_MP_CHILD_URL` set; without that variable `mp_child_worker_entry` passes at once.
//!
//! In CI the Postgres server must answer (see `tests/support`); elsewhere the test is skipped with a
//! message when nothing answers.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, EventKind, ListFilter, Store, Worker, WorkerOptions, WorkflowStatus};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

const ENV_URL: &str = "DURAFLOW_MP_CHILD_URL";
const ENV_SCHEMA: &str = "DURAFLOW_MP_CHILD_SCHEMA";
const ENV_LOG: &str = "DURAFLOW_MP_CHILD_LOG";

const WORKFLOWS: u32 = 500;
const STEPS: u32 = 4;
const CHILDREN: usize = 3;
/// Which child is killed.
const VICTIM: usize = 1;
/// The kill lands once at least this share of the workflows has completed (and not all have).
const KILL_AT_COMPLETED: usize = WORKFLOWS as usize / 5;
/// The whole test fails past this.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(120);
/// A child that is never killed (the parent died) ends itself after this.
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(150);

// ------------------------------------------------------------------------------------------------
// The workload

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddInput {
    pub x: i64,
    pub y: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainInput {
    pub index: u32,
}

/// A short durable timer after one step, for a few workflows.
fn pause_ms(index: u32, step: u32) -> Option<u64> {
    (index % 25 == 0 && step == 1).then(|| u64::from(100 + index % 200))
}

fn expected_result(index: u32) -> i64 {
    i64::from(index) + i64::from(STEPS)
}

fn workflow_id(index: u32) -> String {
    format!("mp-wf-{index:03}")
}

static SIDE_LOG: OnceLock<PathBuf> = OnceLock::new();

/// Appends `line` to the side log and syncs it: once this returns, the execution is on disk.
fn append_side_log(line: &str) -> std::io::Result<()> {
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

/// `x + y`, after a few ms of "work". Records the execution (`workflow_id activity_seq attempt
/// pid`) in the side log before it returns its result.
#[activity(start_to_close_timeout = "2s", retry(initial_interval = "100ms"))]
pub async fn mp_add(ctx: ActivityContext, input: AddInput) -> Result<i64, ActivityError> {
    let info = ctx.info();
    let ms = 2 + (input.x.unsigned_abs() * 7 + info.activity_id.len() as u64) % 8;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let line = format!(
        "{} {} {} {}\n",
        info.workflow_id,
        info.activity_id,
        info.attempt,
        std::process::id()
    );
    append_side_log(&line).map_err(|e| ActivityError::application("SideLog", e))?;
    Ok(input.x + input.y)
}

/// `STEPS` sequential `add(x, 1)` from `index`, with a durable timer in a few workflows.
#[workflow]
pub async fn mp_chain(ctx: WorkflowContext, input: ChainInput) -> Result<i64, WorkflowError> {
    let mut x = i64::from(input.index);
    for step in 0..STEPS {
        x = ctx.activity(mp_add, AddInput { x, y: 1 }).await?;
        if let Some(ms) = pause_ms(input.index, step) {
            ctx.sleep(Duration::from_millis(ms)).await?;
        }
    }
    Ok(x)
}

// ------------------------------------------------------------------------------------------------
// The child: a worker process

/// A worker process when `DURAFLOW_MP_CHILD_URL` is set; otherwise a test that passes at once.
#[test]
fn mp_child_worker_entry() {
    let Ok(url) = std::env::var(ENV_URL) else {
        return;
    };
    let schema = std::env::var(ENV_SCHEMA).expect("the child needs DURAFLOW_MP_CHILD_SCHEMA");
    let log = std::env::var_os(ENV_LOG).expect("the child needs DURAFLOW_MP_CHILD_LOG");
    SIDE_LOG.set(PathBuf::from(log)).expect("side log set once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let store = Store::postgres_in_schema(&url, &schema)
            .await
            .expect("the child opens the store");
        let mut options = WorkerOptions::default();
        options.workflow_task_lease = Duration::from_secs(1);
        options.poll_interval = Duration::from_millis(200);
        options.shutdown_grace = Duration::from_secs(5);
        let worker = Worker::new(&store)
            .register(mp_add)
            .register(mp_chain)
            .options(options)
            .start();
        println!("WORKER_ID {}", worker.id());
        println!("CHILD_READY");
        let client = Client::new(&store);
        let started = Instant::now();
        // Ends once no workflow is running any more (a shutdown waits for the attempts in flight).
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if started.elapsed() > CHILD_MAX_LIFETIME {
                eprintln!("child: lived too long, ending");
                std::process::exit(3);
            }
            match client
                .list(ListFilter::all().status(WorkflowStatus::Running))
                .await
            {
                Ok(running) if running.is_empty() => break,
                Ok(_) => {}
                Err(e) => eprintln!("child: list failed: {e}"),
            }
        }
        worker.shutdown().await;
        println!("CHILD_DONE");
    });
}

// ------------------------------------------------------------------------------------------------
// The parent

struct Children {
    dir: PathBuf,
    procs: Vec<Child>,
}

impl Children {
    fn name(i: usize) -> String {
        format!("child-{i}")
    }

    fn spawn(dir: &Path, url: &str, schema: &str, log: &Path) -> Children {
        let exe = std::env::current_exe().expect("current_exe");
        let procs = (0..CHILDREN)
            .map(|i| {
                let name = Children::name(i);
                let stdout =
                    std::fs::File::create(dir.join(format!("{name}.stdout"))).expect("stdout file");
                let stderr =
                    std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("stderr file");
                Command::new(&exe)
                    .args([
                        "--exact",
                        "mp_child_worker_entry",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(ENV_URL, url)
                    .env(ENV_SCHEMA, schema)
                    .env(ENV_LOG, log)
                    .stdin(Stdio::null())
                    .stdout(stdout)
                    .stderr(stderr)
                    .spawn()
                    .expect("spawn a child worker")
            })
            .collect();
        Children {
            dir: dir.to_path_buf(),
            procs,
        }
    }

    fn pid(&self, i: usize) -> u32 {
        self.procs[i].id()
    }

    fn stdout(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.stdout", Children::name(i))))
            .unwrap_or_default()
    }

    /// The tails of every child's stdout and stderr.
    fn output(&self) -> String {
        let tail = |s: &str| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        (0..self.procs.len())
            .map(|i| {
                let name = Children::name(i);
                let err = std::fs::read_to_string(self.dir.join(format!("{name}.stderr")))
                    .unwrap_or_default();
                format!(
                    "--- {name} (pid {}) stdout ---\n{}\n--- {name} stderr ---\n{}",
                    self.pid(i),
                    tail(&self.stdout(i)),
                    tail(&err)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The children other than `except` that have ended.
    fn ended(&mut self, except: Option<usize>) -> Vec<(usize, std::process::ExitStatus)> {
        (0..self.procs.len())
            .filter(|i| Some(*i) != except)
            .filter_map(|i| Some((i, self.procs[i].try_wait().expect("try_wait")?)))
            .collect()
    }

    /// Fails the test if a child other than `except` has ended.
    fn check_alive(&mut self, except: Option<usize>, when: &str) {
        if let Some((i, status)) = self.ended(except).first() {
            let out = self.output();
            panic!("child-{i} ended by itself ({status}) {when}\n{out}");
        }
    }
}

impl Drop for Children {
    /// No child outlives the test, also when it fails.
    fn drop(&mut self) {
        for c in &mut self.procs {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// One line of the side log.
struct Execution {
    workflow_id: String,
    seq: u64,
    attempt: u32,
    pid: u32,
}

fn read_side_log(path: &Path) -> Vec<Execution> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "malformed side log line {l:?}");
            Execution {
                workflow_id: f[0].to_string(),
                seq: f[1].parse().expect("activity seq"),
                attempt: f[2].parse().expect("attempt"),
                pid: f[3].parse().expect("pid"),
            }
        })
        .collect()
}

/// How many side log lines each pid wrote.
fn executions_by_pid(path: &Path) -> HashMap<u32, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by_pid = HashMap::new();
    for l in text.lines() {
        if let Some(pid) = l.rsplit(' ').next().and_then(|p| p.parse().ok()) {
            *by_pid.entry(pid).or_insert(0) += 1;
        }
    }
    by_pid
}

async fn completed_count(client: &Client) -> usize {
    client
        .list(ListFilter::all().status(WorkflowStatus::Completed))
        .await
        .expect("list completed workflows")
        .len()
}

#[test]
fn postgres_multiprocess_kill() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let t0 = Instant::now();
    let Some(db) = support::TestDb::postgres("multiproc").await else {
        eprintln!("skipping postgres_multiprocess_kill: no Postgres server");
        return;
    };
    let (url, schema) = db
        .pg_url_schema()
        .map(|(u, s)| (u.to_string(), s.to_string()))
        .expect("a Postgres database");
    let store = db.reopen().await;
    // The schema is dropped also when the test fails (the children are killed as the test's
    // task unwinds).
    let outcome = tokio::spawn(kill_test(t0, store, url, schema)).await;
    db.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn kill_test(t0: Instant, store: Store, url: String, schema: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("side.log");
    let client = Client::new(&store);

    // The workflows are created up front, through the parent's own store handle.
    for index in 0..WORKFLOWS {
        client
            .start(mp_chain, workflow_id(index), ChainInput { index })
            .await
            .expect("start a workflow");
    }
    let started_s = t0.elapsed().as_secs_f64();
    {
        let other = Store::postgres_in_schema(&url, &schema)
            .await
            .expect("open the schema as the children do");
        let seen = Client::new(&other)
            .list(ListFilter::all())
            .await
            .expect("list")
            .len();
        assert_eq!(
            seen, WORKFLOWS as usize,
            "schema {schema} is not the test's schema"
        );
    }

    let mut children = Children::spawn(dir.path(), &url, &schema, &log);
    let victim_pid = children.pid(VICTIM);
    let spawned = Instant::now();

    // The kill: once enough workflows have completed and the victim is executing activities.
    let mut victim_last = 0usize;
    let (completed_at_kill, victim_execs_at_kill) = loop {
        assert!(
            t0.elapsed() < OVERALL_TIMEOUT,
            "{KILL_AT_COMPLETED} workflows did not complete within {OVERALL_TIMEOUT:?}\n{}",
            children.output()
        );
        children.check_alive(None, "before the kill");
        let done = completed_count(&client).await;
        assert!(
            done < WORKFLOWS as usize,
            "every workflow completed before the kill could land ({done}); the victim had executed {victim_last} activities\n{}",
            children.output()
        );
        let victim_now = executions_by_pid(&log)
            .get(&victim_pid)
            .copied()
            .unwrap_or(0);
        // Busy: it executed activities since the last look.
        let busy = victim_now > victim_last && victim_last > 0;
        victim_last = victim_now;
        if done >= KILL_AT_COMPLETED && busy {
            children.procs[VICTIM].kill().expect("SIGKILL the victim");
            break (done, victim_now);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let killed_after = spawned.elapsed();
    let status = children.procs[VICTIM]
        .wait()
        .expect("wait for the killed child");
    assert!(
        !status.success(),
        "the victim was expected to die by SIGKILL, got {status}"
    );

    // The survivors finish everything.
    loop {
        // A survivor ends by itself once it sees nothing running: that is a failure only if, after
        // it ended, not every workflow has completed.
        let ended = children.ended(Some(VICTIM));
        let done = completed_count(&client).await;
        if done == WORKFLOWS as usize {
            break;
        }
        if let Some((i, status)) = ended.first() {
            panic!(
                "child-{i} ended ({status}) with only {done} of {WORKFLOWS} workflows completed\n{}",
                children.output()
            );
        }
        if t0.elapsed() > OVERALL_TIMEOUT {
            let running: Vec<String> = client
                .list(ListFilter::all().status(WorkflowStatus::Running))
                .await
                .map(|r| r.into_iter().take(10).map(|s| s.workflow_id).collect())
                .unwrap_or_default();
            panic!(
                "only {done} of {WORKFLOWS} workflows completed within {OVERALL_TIMEOUT:?} after the kill (still running, first ones: {running:?}): a workflow never resumed\n{}",
                children.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_done = t0.elapsed();

    // The survivors see nothing running and end themselves (after their attempts in flight).
    let give_up = Instant::now() + Duration::from_secs(20);
    for i in (0..CHILDREN).filter(|i| *i != VICTIM) {
        let status = loop {
            if let Some(status) = children.procs[i].try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > give_up {
                let out = children.output();
                panic!("child-{i} did not end within 20 s of the last completion\n{out}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success() && children.stdout(i).contains("CHILD_DONE"),
            "child-{i} failed ({status})\n{}",
            children.output()
        );
    }

    // Which worker id is which process.
    let mut pid_of_worker: HashMap<String, u32> = HashMap::new();
    for i in 0..CHILDREN {
        let out = children.stdout(i);
        let id = out
            .lines()
            .find_map(|l| l.split_once("WORKER_ID ").map(|(_, id)| id))
            .unwrap_or_else(|| panic!("child-{i} printed no worker id\n{out}"));
        pid_of_worker.insert(id.trim().to_string(), children.pid(i));
    }

    // ---- Checks through the public API.
    let executions = read_side_log(&log);
    let mut logged: BTreeMap<(String, u64), Vec<(u32, u32)>> = BTreeMap::new();
    for e in &executions {
        logged
            .entry((e.workflow_id.clone(), e.seq))
            .or_default()
            .push((e.attempt, e.pid));
    }
    let all = client.list(ListFilter::all()).await.expect("list");
    assert_eq!(all.len(), WORKFLOWS as usize, "workflow count");
    let mut retried_attempts = 0usize;
    let mut completed_by_pid: HashMap<u32, usize> = HashMap::new();
    for index in 0..WORKFLOWS {
        let id = workflow_id(index);
        let d = client.describe(&id).await.expect("describe");
        assert_eq!(d.status, WorkflowStatus::Completed, "{id}: status ({d:?})");
        assert_eq!(
            d.result,
            Some(serde_json::json!(expected_result(index))),
            "{id}: result"
        );
        let h = client.history(&id).await.expect("history");
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
            "{id}: the first event is not WorkflowStarted"
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
            vec![serde_json::json!(expected_result(index))],
            "{id}: exactly one WorkflowCompleted with the right result"
        );
        // After the completion, only the completing task's marker.
        let end = h
            .iter()
            .position(|e| matches!(e.kind, EventKind::WorkflowCompleted { .. }))
            .unwrap_or(0);
        for e in &h[end + 1..] {
            assert!(
                matches!(e.kind, EventKind::WorkflowTaskCompleted { .. }),
                "{id}: event #{} {:?} after WorkflowCompleted",
                e.seq,
                e.kind
            );
        }
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
                    let Some(last) = attempts.get(activity_seq).and_then(|a| a.last().cloned())
                    else {
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
            STEPS as usize,
            "{id}: activities scheduled"
        );
        assert_eq!(
            done.keys().copied().collect::<BTreeSet<_>>(),
            scheduled,
            "{id}: every scheduled activity completed exactly once"
        );
        for (seq, a) in &attempts {
            let got: Vec<u32> = a.iter().map(|(n, _)| *n).collect();
            let want: Vec<u32> = (1..=a.len() as u32).collect();
            assert_eq!(got, want, "{id}: attempts of activity #{seq}");
            retried_attempts += a.len() - 1;
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
        let want_timers = (0..STEPS).filter(|s| pause_ms(index, *s).is_some()).count();
        assert_eq!(timers.len(), want_timers, "{id}: timers");
        for (seq, (s, f)) in &timers {
            assert_eq!((*s, *f), (1, 1), "{id}: timer #{seq} started/fired counts");
        }

        // The side log: the completing attempt really ran, in the process that took it, once; no
        // execution is later than it; every execution has its ActivityStarted.
        for (seq, (completing, worker)) in &done {
            let runs = logged
                .get(&(id.clone(), *seq))
                .unwrap_or_else(|| panic!("{id}: activity #{seq} completed but never ran"));
            let completing_runs: Vec<u32> = runs
                .iter()
                .filter(|(a, _)| a == completing)
                .map(|(_, pid)| *pid)
                .collect();
            assert_eq!(
                completing_runs.len(),
                1,
                "{id}: activity #{seq} completed by attempt {completing}, which the side log shows {} times (it shows {runs:?})",
                completing_runs.len()
            );
            let pid = pid_of_worker.get(worker).copied();
            assert_eq!(
                pid,
                Some(completing_runs[0]),
                "{id}: activity #{seq} attempt {completing} was taken by worker {worker} but ran in pid {}",
                completing_runs[0]
            );
            *completed_by_pid.entry(completing_runs[0]).or_default() += 1;
            let mut seen = BTreeSet::new();
            for (a, pid) in runs {
                assert!(
                    a <= completing,
                    "{id}: activity #{seq} ran attempt {a} (pid {pid}) after attempt {completing} completed it"
                );
                assert!(
                    seen.insert(*a),
                    "{id}: activity #{seq} ran attempt {a} twice ({runs:?})"
                );
                assert!(
                    attempts[seq].iter().any(|(n, _)| n == a),
                    "{id}: activity #{seq} ran attempt {a}, which has no ActivityStarted"
                );
            }
        }
    }
    // No execution of an activity the histories do not know.
    for (wf, seq) in logged.keys() {
        assert!(
            wf.starts_with("mp-wf-") && (1..=64).contains(seq),
            "side log names an unknown activity {wf} #{seq}"
        );
    }
    let total_activities = (WORKFLOWS * STEPS) as usize;
    assert_eq!(
        logged.len(),
        total_activities,
        "every activity ran at least once"
    );
    let by_pid = executions_by_pid(&log);
    for i in 0..CHILDREN {
        let pid = children.pid(i);
        assert!(
            by_pid.get(&pid).copied().unwrap_or(0) > 0,
            "child-{i} (pid {pid}) executed no activity: {by_pid:?}"
        );
    }

    // Re-executions: executions beyond the first of an activity, and whose earlier run was in the
    // killed process.
    let re_executions = executions.len() - logged.len();
    let after_victim = logged
        .values()
        .filter(|runs| runs.len() > 1 && runs[..runs.len() - 1].iter().any(|r| r.1 == victim_pid))
        .count();
    let per_child: Vec<String> = (0..CHILDREN)
        .map(|i| {
            let pid = children.pid(i);
            format!(
                "child-{i}{} executed {}, completed {}",
                if i == VICTIM { " (killed)" } else { "" },
                by_pid.get(&pid).copied().unwrap_or(0),
                completed_by_pid.get(&pid).copied().unwrap_or(0)
            )
        })
        .collect();
    eprintln!(
        "postgres_multiprocess_kill: {WORKFLOWS} workflows x {STEPS} activities started in {started_s:.1} s; \
         victim killed {:.1} s after the spawn with {completed_at_kill} workflows completed and {victim_execs_at_kill} activities executed by it; \
         all completed at {:.1} s; {} executions for {total_activities} activities ({re_executions} re-executions, {after_victim} of them after a run in the killed process); \
         {retried_attempts} retried attempts in the histories; {}; total {:.1} s",
        killed_after.as_secs_f64(),
        all_done.as_secs_f64(),
        executions.len(),
        per_child.join(", "),
        t0.elapsed().as_secs_f64()
    );

    drop(children);
}
