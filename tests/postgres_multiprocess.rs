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
use duraflow::{Client, EventKind, ListFilter, Store, Worker, WorkflowStatus};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Instant;
use support::crash::{self, Expected};

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

/// `x + y`, after a few ms of "work". Records the execution (`workflow_id activity_seq attempt
/// pid`) in the side log before it returns its result.
#[activity(start_to_close_timeout = "2s", retry(initial_interval = "100ms"))]
pub async fn mp_add(ctx: ActivityContext, input: AddInput) -> Result<i64, ActivityError> {
    let info = ctx.info();
    let ms = 2 + (input.x.unsigned_abs() * 7 + info.activity_id.len() as u64) % 8;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    crash::record_execution(&ctx, true)?;
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
    crash::set_side_log(log);
    let rt = crash::two_thread_runtime();
    rt.block_on(async move {
        let store = Store::postgres_in_schema(&url, &schema)
            .await
            .expect("the child opens the store");
        let options =
            crash::child_worker_options(Duration::from_millis(200), Duration::from_secs(5));
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
            crash::end_if_lived_too_long(started, CHILD_MAX_LIFETIME);
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
        let procs = (0..CHILDREN)
            .map(|i| {
                crash::child_command(dir, &Children::name(i), "mp_child_worker_entry")
                    .env(ENV_URL, url)
                    .env(ENV_SCHEMA, schema)
                    .env(ENV_LOG, log)
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
        crash::child_file(&self.dir, &Children::name(i), "stdout")
    }

    /// The tails of every child's stdout and stderr.
    fn output(&self) -> String {
        (0..self.procs.len())
            .map(|i| {
                let name = Children::name(i);
                format!(
                    "--- {name} (pid {}) stdout ---\n{}\n--- {name} stderr ---\n{}",
                    self.pid(i),
                    crash::tail(&self.stdout(i), 20),
                    crash::tail(&crash::child_file(&self.dir, &name, "stderr"), 20)
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
    crash::two_thread_runtime().block_on(run());
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
    let executions = crash::read_side_log(&log, true);
    let logged = crash::by_activity(&executions);
    let all = client.list(ListFilter::all()).await.expect("list");
    assert_eq!(all.len(), WORKFLOWS as usize, "workflow count");
    let mut retried_attempts = 0usize;
    let mut completed_by_pid: HashMap<u32, usize> = HashMap::new();
    for index in 0..WORKFLOWS {
        let id = workflow_id(index);
        let want = Expected {
            result: expected_result(index),
            activities: STEPS as usize,
            timers: (0..STEPS).filter(|s| pause_ms(index, *s).is_some()).count(),
        };
        let checked = crash::check_workflow(&client, &id, &want, &logged).await;
        retried_attempts += checked.retried;
        let h = &checked.history;
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

        // The side log, beyond the shared checks: the completing attempt ran once, in the process
        // that took it; no attempt ran twice.
        for (seq, (completing, worker)) in &checked.done {
            let runs = &logged[&(id.clone(), *seq)];
            let completing_runs: Vec<u32> = runs
                .iter()
                .filter(|r| r.attempt == *completing)
                .filter_map(|r| r.pid)
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
            for r in runs {
                assert!(
                    seen.insert(r.attempt),
                    "{id}: activity #{seq} ran attempt {} twice ({runs:?})",
                    r.attempt
                );
            }
        }
    }
    let total_activities = (WORKFLOWS * STEPS) as usize;
    crash::check_logged_activities(&logged, "mp-wf-", total_activities);
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
        .filter(|runs| {
            runs.len() > 1
                && runs[..runs.len() - 1]
                    .iter()
                    .any(|r| r.pid == Some(victim_pid))
        })
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
