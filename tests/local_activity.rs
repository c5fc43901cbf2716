//! Local activities that outlive their worker, and cancelling one with `WaitCancellationCompleted`,
//! after the behaviours of Temporal's cross-SDK feature suite (`local_activity/cancel_wait_completed`
//! and the rule that an interrupted local activity starts again from attempt 1), in our words:
//!
//! - a worker killed (SIGKILL) while a local activity runs leaves nothing stuck: its workflow
//!   task stays leased to it while the local activity runs, the lease expires, and another worker
//!   replays the workflow and runs the local activity again from attempt 1;
//! - a local activity cancelled with `WaitCancellationCompleted` resolves (and the workflow goes on)
//!   only once its cleanup, a `Drop` guard, has finished.
//!
//! On the SQLite file and Postgres.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker, WorkerOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::{count, crash, note, note_for, noted, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(30);

const ENV_CHILD: &str = "DURAFLOW_LA_CHILD";
const ENV_SQLITE: &str = "DURAFLOW_LA_CHILD_SQLITE";
const ENV_PG_URL: &str = "DURAFLOW_LA_CHILD_PG_URL";
const ENV_PG_SCHEMA: &str = "DURAFLOW_LA_CHILD_PG_SCHEMA";
const ENV_LOG: &str = "DURAFLOW_LA_CHILD_LOG";

fn options() -> WorkerOptions {
    crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2))
}

// ---------------------------------------------------------------------------------------------
// A worker killed while its local activity runs.

/// The side log every run appends to: `workflow_id attempt pid` (a child is told its parent's).
fn log_path() -> PathBuf {
    match std::env::var_os(ENV_LOG) {
        Some(p) => PathBuf::from(p),
        None => std::env::temp_dir().join(format!("duraflow-la-{}.log", std::process::id())),
    }
}

fn log_run(workflow_id: &str, attempt: u32) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path())
        .expect("side log");
    f.write_all(format!("{workflow_id} {attempt} {}\n", std::process::id()).as_bytes())
        .expect("side log write");
    f.sync_data().expect("side log sync");
}

/// The runs of `workflow_id` in the side log: (attempt, pid).
fn runs(log: &Path, workflow_id: &str) -> Vec<(u32, u32)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 3 && f[0] == workflow_id)
                .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .collect()
}

/// In the child it never ends (the child is killed meanwhile); elsewhere it returns its attempt.
#[activity]
async fn outlives_its_worker(ctx: ActivityContext) -> Result<u32, ActivityError> {
    log_run(&ctx.info().workflow_id, ctx.info().attempt);
    if std::env::var_os(ENV_CHILD).is_some() {
        std::future::pending::<()>().await;
    }
    Ok(ctx.info().attempt)
}

#[workflow]
async fn killed_wf(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    Ok(ctx.local_activity(outlives_its_worker, ()).await?)
}

/// A worker process when `DURAFLOW_LA_CHILD` is set; otherwise a test that passes at once.
#[test]
fn la_child_entry() {
    if std::env::var_os(ENV_CHILD).is_none() {
        return;
    }
    let rt = crash::two_thread_runtime();
    rt.block_on(async {
        let store = match std::env::var_os(ENV_SQLITE) {
            Some(path) => Store::sqlite(path).expect("the child opens the store"),
            None => {
                let url = std::env::var(ENV_PG_URL).expect("a Postgres URL");
                let schema = std::env::var(ENV_PG_SCHEMA).expect("a Postgres schema");
                Store::postgres_in_schema(&url, &schema)
                    .await
                    .expect("the child opens the store")
            }
        };
        let _worker = Worker::new(&store)
            .register(outlives_its_worker)
            .register(killed_wf)
            .options(options())
            .start();
        println!("CHILD_READY");
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            crash::end_if_lived_too_long(started, Duration::from_secs(60));
        }
    });
}

async fn a_killed_worker_s_local_activity_runs_again_elsewhere(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    // One side log for this process and its children; lines are told apart by workflow id.
    let log = log_path();
    let client = Client::new(&db.store);
    let id = wid(db, "killed-local");
    let h = client.start(killed_wf, id.clone(), ()).await.unwrap();
    let mut cmd = crash::child_command(dir.path(), "child", "la_child_entry");
    cmd.env(ENV_CHILD, "1").env(ENV_LOG, &log);
    match (db.path(), db.pg_url_schema()) {
        (Some(path), _) => {
            cmd.env(ENV_SQLITE, path);
        }
        (None, Some((url, schema))) => {
            cmd.env(ENV_PG_URL, url).env(ENV_PG_SCHEMA, schema);
        }
        _ => unreachable!("a SQLite file or Postgres"),
    }
    let mut child = cmd.spawn().expect("spawn the child worker");
    let pid = child.id();
    let started = Instant::now();
    while runs(&log, &id).is_empty() {
        assert!(
            started.elapsed() < LIMIT,
            "the child never ran the local activity\n{}\n{}",
            crash::tail(&crash::child_file(dir.path(), "child", "stdout"), 20),
            crash::tail(&crash::child_file(dir.path(), "child", "stderr"), 20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    // Another worker: the child's lease on the workflow task runs out, and this one replays the
    // workflow and runs the local activity again, from attempt 1.
    let w = Worker::new(&db.store)
        .register(outlives_its_worker)
        .register(killed_wf)
        .options(options())
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 1);
    let me = std::process::id();
    assert_eq!(runs(&log, &id), vec![(1, pid), (1, me)]);
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::LocalActivityMarker { .. }
        )),
        1
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// WaitCancellationCompleted: resolved once the cleanup has finished.

struct SlowCleanup(String);
impl Drop for SlowCleanup {
    fn drop(&mut self) {
        note_for(&self.0, "cleanup started");
        std::thread::sleep(Duration::from_millis(300));
        note_for(&self.0, "cleanup done");
    }
}

#[activity]
async fn cleans_up_slowly(ctx: ActivityContext) -> Result<(), ActivityError> {
    let _guard = SlowCleanup(ctx.info().workflow_id.clone());
    note(&ctx, "running");
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[activity]
async fn goes_on(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "the workflow went on");
    Ok(())
}

#[workflow]
async fn waits_for_cleanup_wf(ctx: WorkflowContext) -> Result<bool, WorkflowError> {
    let h = ctx
        .local_activity(cleans_up_slowly, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(100)).await?;
    h.cancel();
    let cancelled = h.await.unwrap_err().is_cancelled();
    ctx.local_activity(goes_on, ()).await?;
    Ok(cancelled)
}

async fn a_waited_for_cancel_resolves_after_the_cleanup(db: &TestDb) {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    let w = Worker::new(&db.store)
        .register(cleans_up_slowly)
        .register(goes_on)
        .register(waits_for_cleanup_wf)
        .options(o)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "wait-cleanup");
    let h = client
        .start(waits_for_cleanup_wf, id.clone(), ())
        .await
        .unwrap();
    assert!(within(LIMIT, "result", h.result()).await.unwrap());
    assert_eq!(
        noted(&id),
        vec![
            "running".to_string(),
            "cleanup started".to_string(),
            "cleanup done".to_string(),
            "the workflow went on".to_string(),
        ]
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        1
    );
    stop(w).await;
}

store_tests!(
    a_killed_worker_s_local_activity_runs_again_elsewhere,
    a_waited_for_cancel_resolves_after_the_cleanup,
);
