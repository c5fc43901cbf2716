//! Continue-as-new under a worker kill, on a SQLite file and on Postgres: a worker *process*
//! commits a continue-as-new and is killed with SIGKILL before the new run's first workflow task
//! commits (its code panics in that task, so the new run is held with nothing of it committed but
//! its start, and the test kills the process while it is so). A second worker process finishes
//! the chain: every run is there once, in order, with its own history; each run's activity ran
//! once; the total is right.
//!
//! The children are this test binary running `can_child_entry` with `DURAFLOW_CAN_CHILD_STORE`
//! set; without it that entry passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, Store, Worker, WorkflowStatus};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use support::crash;

const ENV_STORE: &str = "DURAFLOW_CAN_CHILD_STORE";
/// The run whose first task panics in the first child (`u64::MAX`: none).
const ENV_PANIC_AT: &str = "DURAFLOW_CAN_CHILD_PANIC_AT";
const ENV_LOG: &str = "DURAFLOW_CAN_CHILD_LOG";
const RUNS: u64 = 6;
const PANIC_AT: u64 = 3;
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(120);
const ID: &str = "can-kill";

static PANIC_AT_RUN: AtomicU64 = AtomicU64::new(u64::MAX);

#[activity]
pub async fn step(run: u64) -> Result<u64, ActivityError> {
    crash::append_side_log(&format!("step {run}\n"))
        .map_err(|e| ActivityError::application("SideLog", e))?;
    Ok(run + 1)
}

/// Run `k` of the chain: one activity, then the next run (or the end) with the running total.
#[workflow]
pub async fn chain(ctx: WorkflowContext, (k, total): (u64, u64)) -> Result<u64, WorkflowError> {
    if k == PANIC_AT_RUN.load(Ordering::Relaxed) {
        // This process's code is broken for this run: its first task never commits.
        panic!("the first worker's code fails on run {k}");
    }
    let n = ctx.activity(step, k).await?;
    if k + 1 < RUNS {
        return ctx.continue_as_new((k + 1, total + n));
    }
    Ok(total + n)
}

async fn open(spec: &str) -> Store {
    match spec.split_once(':') {
        Some(("sqlite", path)) => Store::sqlite(path).expect("open sqlite"),
        Some(("pg", rest)) => {
            let (url, schema) = rest.rsplit_once('|').expect("pg:URL|SCHEMA");
            Store::postgres_in_schema(url, schema)
                .await
                .expect("open postgres")
        }
        _ => panic!("bad store spec {spec}"),
    }
}

/// A worker process when `DURAFLOW_CAN_CHILD_STORE` is set; otherwise a test that passes at once.
#[test]
fn can_child_entry() {
    let Some(spec) = std::env::var_os(ENV_STORE) else {
        return;
    };
    let spec = spec.to_string_lossy().to_string();
    if let Some(at) = std::env::var_os(ENV_PANIC_AT) {
        PANIC_AT_RUN.store(at.to_string_lossy().parse().unwrap(), Ordering::Relaxed);
    }
    crash::set_side_log(std::env::var_os(ENV_LOG).expect("side log"));
    crash::two_thread_runtime().block_on(async move {
        let store = open(&spec).await;
        let mut options =
            crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2));
        // A held task is retried long after the test is done with this child.
        options.held_retry_interval = Duration::from_secs(600);
        let _worker = Worker::new(&store)
            .register(chain)
            .register(step)
            .options(options)
            .start();
        println!("CHILD_READY");
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            crash::end_if_lived_too_long(started, CHILD_MAX_LIFETIME);
        }
    });
}

fn spawn(dir: &Path, spec: &str, name: &str, panic_at: Option<u64>) -> Child {
    let mut cmd = crash::child_command(dir, name, "can_child_entry");
    cmd.env(ENV_STORE, spec).env(ENV_LOG, dir.join("side.log"));
    if let Some(at) = panic_at {
        cmd.env(ENV_PANIC_AT, at.to_string());
    }
    cmd.spawn().expect("spawn the child worker")
}

async fn run(spec: String, dir: &Path) {
    let store = open(&spec).await;
    let client = Client::new(&store);
    client.start(chain, ID, (0, 0)).await.unwrap();
    let mut first = spawn(dir, &spec, "child-a", Some(PANIC_AT));
    // Wait until the continue-as-new into run PANIC_AT is committed and that run's first task
    // has failed: the new run holds its start and nothing else.
    let start = Instant::now();
    loop {
        let d = client.describe(ID).await.unwrap();
        let runs = client.runs(ID).await.unwrap();
        if runs.len() as u64 == PANIC_AT + 1 && d.held_reason.is_some() {
            assert_eq!(d.status, WorkflowStatus::Running);
            let h = client.history(ID).await.unwrap();
            assert!(
                h.iter()
                    .all(|e| !matches!(e.kind, EventKind::WorkflowTaskCompleted { .. })),
                "the new run's first task has not committed: {h:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first child never reached run {PANIC_AT}: {}",
            crash::tail(&crash::child_file(dir, "child-a", "stderr"), 20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");

    let mut second = spawn(dir, &spec, "child-b", None);
    let h = client.handle::<u64>(ID);
    // Held until the second child starts and releases it.
    let wait = async {
        loop {
            match h.result().await {
                Err(duraflow::Error::WorkflowHeld { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                other => break other,
            }
        }
    };
    let total = support::within(Duration::from_secs(60), "the chain's end", wait)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                crash::tail(&crash::child_file(dir, "child-b", "stderr"), 20)
            )
        });
    second.kill().expect("kill the second child");
    second.wait().expect("reap");

    assert_eq!(total, (1..=RUNS).sum::<u64>(), "the right total");
    let runs = client.runs(ID).await.unwrap();
    assert_eq!(
        runs.len() as u64,
        RUNS,
        "each run once: none lost, none twice"
    );
    for (k, run) in runs.iter().enumerate() {
        let h = client.run_history(ID, &run.run_id).await.unwrap();
        assert!(
            matches!(&h[0].kind, EventKind::WorkflowStarted { input, .. } if input[0] == k as u64),
            "run {k} starts with its own input"
        );
        assert_eq!(
            support::count(&h, |e| matches!(e, EventKind::WorkflowStarted { .. })),
            1
        );
        support::assert_contiguous(&h);
        let expected = if k as u64 + 1 < RUNS {
            WorkflowStatus::ContinuedAsNew
        } else {
            WorkflowStatus::Completed
        };
        assert_eq!(run.status, expected, "run {k}");
    }
    let log = std::fs::read_to_string(dir.join("side.log")).unwrap();
    let steps: Vec<&str> = log.lines().collect();
    let expected: Vec<String> = (0..RUNS).map(|k| format!("step {k}")).collect();
    assert_eq!(steps, expected, "each run's activity ran once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_continue_as_new_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    Store::sqlite(&db).unwrap();
    run(format!("sqlite:{}", db.display()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_continue_as_new_survives_a_kill() {
    let Some(db) = support::TestDb::postgres("can_kill").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("pg:{}|{}", db.pg_url(), db.pg_schema());
    run(spec, dir.path()).await;
    db.cleanup().await;
}
