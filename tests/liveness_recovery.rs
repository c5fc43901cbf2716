//! Recovery in seconds: a worker process killed with SIGKILL while it runs an activity attempt
//! whose `start_to_close_timeout` is 10 minutes; another worker hands the attempt on as soon as it
//! can tell the first is dead (its liveness lease, or on the same machine its process), and the
//! workflow completes long before the timeout. On a SQLite file and on Postgres. Prints the time
//! from the SIGKILL to the retried attempt's start (figures in RELIABILITY.md).

mod support;

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker, WorkerOptions, WorkflowStatus};
use std::process::{Command, Stdio};
use std::time::Instant;

const ENV_SQLITE: &str = "DURAFLOW_LIVE_CHILD_SQLITE";
const ENV_PG: &str = "DURAFLOW_LIVE_CHILD_PG";

/// The first attempt hangs (until its process is killed); later ones return at once.
#[activity(start_to_close_timeout = "10m")]
async fn live_slow(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    if ctx.info().attempt == 1 {
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    Ok(x * 2)
}

#[workflow]
async fn live_flow(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(live_slow, x).await?)
}

fn worker(store: &Store) -> duraflow::WorkerHandle {
    let mut opts = WorkerOptions::default();
    opts.poll_interval = Duration::from_millis(100);
    Worker::new(store)
        .register(live_slow)
        .register(live_flow)
        .options(opts)
        .start()
}

/// The child worker process: runs until it is killed (or for two minutes at most).
#[test]
fn child_worker() {
    let sqlite = std::env::var(ENV_SQLITE).ok();
    let pg = std::env::var(ENV_PG).ok();
    if sqlite.is_none() && pg.is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = match (sqlite, pg) {
            (Some(p), _) => Store::sqlite(p).unwrap(),
            (None, Some(spec)) => {
                let (url, schema) = spec.split_once(' ').unwrap();
                Store::postgres_in_schema(url, schema).await.unwrap()
            }
            _ => unreachable!(),
        };
        let _w = worker(&store);
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// Starts the workflow, lets a child process take its attempt, SIGKILLs the child, and measures
/// the time until the next attempt starts in a worker of this process.
async fn kill_and_measure(store: &Store, env: (&str, String), label: &str) {
    let client = Client::new(store);
    let h = client.start(live_flow, "live-1", 21).await.unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The child runs attempt 1.
    let mut running = false;
    for _ in 0..3000 {
        let d = client.describe("live-1").await.unwrap();
        if d.pending_activities
            .iter()
            .any(|a| a.state == "running" && a.attempt == 1)
        {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(running, "the child did not start the attempt");
    // This process's worker is up before the kill, as a surviving worker would be.
    let w = worker(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let killed = Instant::now();
    child.wait().unwrap();
    let mut retried = None;
    for _ in 0..6000 {
        let d = client.describe("live-1").await.unwrap();
        let second = d.pending_activities.iter().any(|a| a.attempt >= 2);
        if second || d.status != WorkflowStatus::Running {
            retried = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let retried = retried.expect("the attempt was not retried within 30 s (its timeout is 10 min)");
    println!("{label}: SIGKILL -> retried attempt started: {retried:?}");
    let out = tokio::time::timeout(Duration::from_secs(30), h.result())
        .await
        .expect("completes long before the 10-minute timeout")
        .unwrap();
    assert_eq!(out, 42);
    let history = client.history("live-1").await.unwrap();
    let completions = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
        .count();
    assert_eq!(completions, 1, "{history:?}");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_attempt_is_retried_in_seconds_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let store = Store::sqlite(&path).unwrap();
    kill_and_measure(&store, (ENV_SQLITE, path.display().to_string()), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_attempt_is_retried_in_seconds_on_postgres() {
    let Some(db) = support::TestDb::postgres("liveness_recovery").await else {
        return;
    };
    let spec = format!("{} {}", db.pg_url(), db.pg_schema());
    kill_and_measure(&db.store, (ENV_PG, spec), "postgres").await;
    db.cleanup().await;
}
