//! Crash recovery with real process kills (issue 3, item 7).
//!
//! The parent test creates 40 workflows in a SQLite file, then runs worker *processes* against it and
//! kills each with SIGKILL at a different moment: right after the spawn, as soon as its worker has
//! started (while it recovers), at fixed delays, and at the moment the child holds SQLite's WAL write
//! lock (it is inside a group commit: the writer thread has begun the shared transaction of many
//! callers' jobs and not yet finished `COMMIT`), some of them once it is under load (it has executed
//! some activities, so attempts are in flight). A last child runs until every workflow has ended.
//! The parent then reads every history through the public API and checks: every workflow completed
//! with the right result, recorded once; every activity completed once and was never started again
//! after its completion; every timer fired once; event numbers are contiguous. A side log, written
//! and synced by each activity execution before it returns, tells which executions really happened:
//! re-executions are allowed only for attempts whose result was not recorded before a kill.
//!
//! The child is this test binary itself, running the `child_worker_entry` test with
//! `DURAFLOW_KILL_CHILD_DB` set; without that variable `child_worker_entry` passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, ListFilter, Store, Worker, WorkflowStatus};
use std::path::Path;
use std::process::Child;
use std::time::Instant;
use support::crash::{self, Expected};

const ENV_DB: &str = "DURAFLOW_KILL_CHILD_DB";
const ENV_LOG: &str = "DURAFLOW_KILL_CHILD_LOG";
const ENV_RUN_TO_END: &str = "DURAFLOW_KILL_CHILD_RUN_TO_END";

const WORKFLOWS: u32 = 40;
const STEPS: u32 = 8;
/// The whole test fails past this.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(90);
/// A child that is never killed (the parent died) ends itself after this.
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------------------
// The workload

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainInput {
    pub index: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepInput {
    pub index: u32,
    pub step: u32,
    pub acc: i64,
}

fn mix(acc: i64, index: u32, step: u32) -> i64 {
    acc.wrapping_mul(31)
        .wrapping_add(i64::from(index) * 100 + i64::from(step))
}

fn expected_result(index: u32) -> i64 {
    (0..STEPS).fold(i64::from(index), |acc, step| mix(acc, index, step))
}

/// How long an activity execution takes before and after it writes the side log: a few ms each, so
/// attempts are in flight when a kill lands, some of them executed but with their result not yet
/// recorded.
fn activity_ms(index: u32, step: u32) -> (u64, u64) {
    let x = index * 7 + step * 3;
    (u64::from(1 + x % 6), u64::from(2 + x % 8))
}

/// The durable sleep after a step, for some steps of some workflows.
fn pause_ms(index: u32, step: u32) -> Option<u64> {
    ((index + step) % 3 == 0).then(|| u64::from(50 + (index * 7 + step * 13) % 150))
}

/// One step of the chain. Records the execution (`workflow_id activity_seq attempt`) in the side log
/// before it returns its result.
#[activity(start_to_close_timeout = "2s", retry(initial_interval = "100ms"))]
pub async fn kill_step(ctx: ActivityContext, input: StepInput) -> Result<i64, ActivityError> {
    let (before, after) = activity_ms(input.index, input.step);
    tokio::time::sleep(Duration::from_millis(before)).await;
    crash::record_execution(&ctx, false)?;
    tokio::time::sleep(Duration::from_millis(after)).await;
    Ok(mix(input.acc, input.index, input.step))
}

/// A chain of `STEPS` activities, with durable timers between some of them.
#[workflow]
pub async fn kill_chain(ctx: WorkflowContext, input: ChainInput) -> Result<i64, WorkflowError> {
    let mut acc = i64::from(input.index);
    for step in 0..STEPS {
        acc = ctx
            .activity(
                kill_step,
                StepInput {
                    index: input.index,
                    step,
                    acc,
                },
            )
            .await?;
        if let Some(ms) = pause_ms(input.index, step) {
            ctx.sleep(Duration::from_millis(ms)).await?;
        }
    }
    Ok(acc)
}

fn workflow_id(index: u32) -> String {
    format!("kill-wf-{index:02}")
}

// ------------------------------------------------------------------------------------------------
// The child: a worker process

/// A worker process when `DURAFLOW_KILL_CHILD_DB` is set; otherwise a test that passes at once.
#[test]
fn child_worker_entry() {
    let Some(db) = std::env::var_os(ENV_DB) else {
        return;
    };
    let log = std::env::var_os(ENV_LOG).expect("the child needs DURAFLOW_KILL_CHILD_LOG");
    crash::set_side_log(log);
    let run_to_end = std::env::var_os(ENV_RUN_TO_END).is_some();
    let rt = crash::two_thread_runtime();
    rt.block_on(async move {
        let store = Store::sqlite(&db).expect("the child opens the store");
        let options =
            crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2));
        let worker = Worker::new(&store)
            .register(kill_step)
            .register(kill_chain)
            .options(options)
            .start();
        println!("CHILD_READY");
        let client = Client::new(&store);
        let started = Instant::now();
        if run_to_end {
            let running = client
                .list(ListFilter::all().status(WorkflowStatus::Running))
                .await
                .expect("list")
                .len();
            println!("RUNNING_AT_START {running}");
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            crash::end_if_lived_too_long(started, CHILD_MAX_LIFETIME);
            if run_to_end {
                let running = client
                    .list(ListFilter::all().status(WorkflowStatus::Running))
                    .await
                    .expect("list");
                if running.is_empty() {
                    break;
                }
            }
        }
        worker.shutdown().await;
        println!("CHILD_DONE");
    });
}

// ------------------------------------------------------------------------------------------------
// The parent

/// When a round's kill lands.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as the child says its worker started (it is recovering: its first claims).
    WhenReady,
    /// This long after the spawn.
    After(u64),
    /// After at least this long, at the first moment the child holds the WAL write lock.
    InCommit(u64),
    /// Once this child has executed this many activities (it is under load, with attempts in
    /// flight), at the first moment it holds the WAL write lock.
    UnderLoad(usize),
}

fn spawn_child(dir: &Path, db: &Path, log: &Path, name: &str, run_to_end: bool) -> Child {
    let mut cmd = crash::child_command(dir, name, "child_worker_entry");
    cmd.env(ENV_DB, db)
        .env(ENV_LOG, log)
        .env_remove(ENV_RUN_TO_END);
    if run_to_end {
        cmd.env(ENV_RUN_TO_END, "1");
    }
    cmd.spawn().expect("spawn the child worker")
}

fn child_output(dir: &Path, name: &str) -> String {
    format!(
        "--- {name} stdout ---\n{}\n--- {name} stderr ---\n{}",
        crash::tail(&crash::child_file(dir, name, "stdout"), 30),
        crash::tail(&crash::child_file(dir, name, "stderr"), 30)
    )
}

/// Whether process `pid` holds SQLite's WAL write lock on the database, i.e. an exclusive POSIX lock
/// on byte 120 of the `-shm` file (`UNIX_SHM_BASE + WAL_WRITE_LOCK`): taken by `BEGIN IMMEDIATE`,
/// released when the `COMMIT` (with its fsync) has finished. `None` if it cannot be told (no
/// `/proc/locks`, or no `-shm` file yet).
fn holds_wal_write_lock(shm: &Path, pid: u32) -> Option<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(shm).ok()?.ino();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        Some(locks.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // `1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 120 120`
            f.len() >= 8
                && f[1] == "POSIX"
                && f[3] == "WRITE"
                && f[4] == pid.to_string()
                && f[5].rsplit(':').next() == Some(&ino.to_string())
                && f[6] == "120"
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = (shm, pid);
        None
    }
}

/// Waits (up to 3 s) for the moment process `pid` holds the WAL write lock; what was seen last.
fn wait_for_write_lock(shm: &Path, pid: u32) -> Option<bool> {
    let give_up = Instant::now() + Duration::from_secs(3);
    loop {
        match holds_wal_write_lock(shm, pid) {
            Some(true) => return Some(true),
            seen if Instant::now() >= give_up => return seen,
            _ => std::thread::yield_now(),
        }
    }
}

fn side_log_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[derive(Debug)]
struct RoundReport {
    plan: KillAt,
    alive_ms: u128,
    in_commit: Option<bool>,
    log_lines_after: usize,
}

#[test]
fn kill_recovery() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kill.db");
    let shm = dir.path().join("kill.db-shm");
    let log = dir.path().join("side.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // The workflows are created up front; the parent's handle is closed before any child runs.
    rt.block_on(async {
        let store = Store::sqlite(&db).expect("open the store");
        let client = Client::new(&store);
        for index in 0..WORKFLOWS {
            client
                .start(kill_chain, workflow_id(index), ChainInput { index })
                .await
                .expect("start a workflow");
        }
    });

    let plans = [
        KillAt::After(0),
        KillAt::WhenReady,
        KillAt::After(40),
        KillAt::InCommit(60),
        KillAt::UnderLoad(5),
        KillAt::After(150),
        KillAt::UnderLoad(25),
        KillAt::WhenReady,
        KillAt::UnderLoad(12),
        KillAt::After(300),
        KillAt::UnderLoad(40),
    ];
    let mut reports = Vec::new();
    for (round, plan) in plans.iter().copied().enumerate() {
        let name = format!("child-{round}");
        let spawned = Instant::now();
        let mut child = spawn_child(dir.path(), &db, &log, &name, false);
        let pid = child.id();
        let in_commit = match plan {
            KillAt::WhenReady => {
                let stdout = dir.path().join(format!("{name}.stdout"));
                let give_up = Instant::now() + Duration::from_secs(10);
                while !std::fs::read_to_string(&stdout)
                    .unwrap_or_default()
                    .contains("CHILD_READY")
                {
                    assert!(
                        Instant::now() < give_up,
                        "round {round}: the child did not start its worker within 10 s\n{}",
                        child_output(dir.path(), &name)
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                holds_wal_write_lock(&shm, pid)
            }
            KillAt::After(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                holds_wal_write_lock(&shm, pid)
            }
            KillAt::InCommit(min_ms) => {
                std::thread::sleep(Duration::from_millis(min_ms));
                wait_for_write_lock(&shm, pid)
            }
            KillAt::UnderLoad(n) => {
                let before = side_log_lines(&log);
                let give_up = Instant::now() + Duration::from_secs(5);
                while side_log_lines(&log) < before + n && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(1));
                }
                wait_for_write_lock(&shm, pid)
            }
        };
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "round {round}: the child ended by itself ({status}) before the kill\n{}",
                child_output(dir.path(), &name)
            );
        }
        child.kill().expect("SIGKILL the child");
        let alive_ms = spawned.elapsed().as_millis();
        let status = child.wait().expect("wait for the killed child");
        assert!(
            !status.success(),
            "round {round}: the child was expected to die by SIGKILL, got {status}"
        );
        reports.push(RoundReport {
            plan,
            alive_ms,
            in_commit,
            log_lines_after: side_log_lines(&log),
        });
        assert!(
            t0.elapsed() < OVERALL_TIMEOUT,
            "the kill rounds took longer than {OVERALL_TIMEOUT:?}"
        );
    }

    // The last child runs until every workflow has ended.
    let name = "child-final";
    let mut child = spawn_child(dir.path(), &db, &log, name, true);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if t0.elapsed() > OVERALL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the workflows did not all end within {OVERALL_TIMEOUT:?} after the kills: a workflow never resumed\n{}",
                child_output(dir.path(), name)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let final_out = child_output(dir.path(), name);
    assert!(
        status.success(),
        "the final child failed ({status})\n{final_out}"
    );
    let running_at_final_start = final_out
        .lines()
        .find_map(|l| l.strip_prefix("RUNNING_AT_START "))
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| "?".into());

    // Check the histories through the public API.
    let executions = crash::read_side_log(&log, false);
    let logged = crash::by_activity(&executions);
    let total_activities = (WORKFLOWS * STEPS) as usize;
    let mut retried_attempts = 0usize;
    rt.block_on(async {
        let store = Store::sqlite(&db).expect("reopen the store");
        let client = Client::new(&store);
        let all = client.list(ListFilter::all()).await.expect("list");
        assert_eq!(all.len(), WORKFLOWS as usize, "workflow count");
        for index in 0..WORKFLOWS {
            let want = Expected {
                result: expected_result(index),
                activities: STEPS as usize,
                timers: (0..STEPS).filter(|s| pause_ms(index, *s).is_some()).count(),
            };
            let checked = crash::check_workflow(&client, &workflow_id(index), &want, &logged).await;
            retried_attempts += checked.retried;
        }
        crash::check_logged_activities(&logged, "kill-wf-", total_activities);
    });

    let re_executions = executions.len() - logged.len();
    eprintln!("kill_recovery: {} kill rounds", reports.len());
    for (i, r) in reports.iter().enumerate() {
        eprintln!(
            "  round {i}: {:?}, killed after {} ms, in a group commit: {}, side log lines so far: {}",
            r.plan,
            r.alive_ms,
            match r.in_commit {
                Some(true) => "yes (held the WAL write lock)",
                Some(false) => "no",
                None => "unknown",
            },
            r.log_lines_after
        );
    }
    eprintln!(
        "kill_recovery: {} workflows still running when the final child started; {} activity executions for {} activities ({} re-executions); {} retried attempts in the histories; {:.1} s",
        running_at_final_start,
        executions.len(),
        total_activities,
        re_executions,
        retried_attempts,
        t0.elapsed().as_secs_f64()
    );
    let in_commit_kills = reports.iter().filter(|r| r.in_commit == Some(true)).count();
    assert!(
        in_commit_kills >= 1 || reports.iter().all(|r| r.in_commit.is_none()),
        "no kill landed inside a group commit: {reports:?}"
    );
}
