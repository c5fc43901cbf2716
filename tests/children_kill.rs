//! Child workflows under worker kills, on a SQLite file and on Postgres: worker *processes* are
//! killed with SIGKILL while parents start children, children complete (their end appended to
//! the parent's history in the child's closing transaction) and parents take their next step.
//! A last worker finishes everything. Then, through the public API: every parent has its right
//! result; each child was started once (one row, one `child_workflow_initiated` and one
//! `child_workflow_started` per child in the parent's history) and its end recorded once; the
//! parent's step after its children was scheduled once; every activity ran; histories are
//! contiguous; and the parent close policies were applied in the parent's close (its
//! `Terminate` child failed `Terminated`, its `RequestCancel` child ended cancelled).
//!
//! A second test (Postgres) runs the children on a task queue that only another worker process
//! serves: the parent's process never runs a child.
//!
//! The worker is this test binary running `children_kill_entry` with `DURAFLOW_CHILD_KILL_STORE`
//! set; without it that entry passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, Store, Worker, WorkflowStatus};
use std::path::Path;
use std::process::Child;
use std::time::Instant;
use support::crash;

const ENV_STORE: &str = "DURAFLOW_CHILD_KILL_STORE";
const ENV_LOG: &str = "DURAFLOW_CHILD_KILL_LOG";
/// `parents`, `children` or `all`: which task queues the worker process serves.
const ENV_ROLE: &str = "DURAFLOW_CHILD_KILL_ROLE";
const PARENTS: u32 = 6;
const KIDS: u64 = 3;
const ROUNDS: u64 = 6;
const CHILD_QUEUE: &str = "children";
const MAX_LIFETIME: Duration = Duration::from_secs(120);

/// A child's activity: records its execution in the side log.
#[activity]
pub async fn kill_add(ctx: ActivityContext, x: u64) -> Result<u64, ActivityError> {
    crash::record_execution(&ctx, true)?;
    Ok(x + 1)
}

/// The parent's step after its children: records its execution too.
#[activity]
pub async fn kill_step(ctx: ActivityContext, sum: u64) -> Result<u64, ActivityError> {
    crash::record_execution(&ctx, true)?;
    Ok(sum)
}

#[workflow]
pub async fn kill_adder(ctx: WorkflowContext, x: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.activity(kill_add, x).await?)
}

#[workflow]
pub async fn kill_sleeper(ctx: WorkflowContext, _x: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KillParent {
    /// The queue the children run on (`None`: the parent's).
    child_queue: Option<String>,
}

/// Two long children left to their policies, `KIDS` children joined, then one more step.
#[workflow]
pub async fn kill_parent(ctx: WorkflowContext, p: KillParent) -> Result<u64, WorkflowError> {
    let id = ctx.info().workflow_id;
    let queue = |call: ChildWorkflowCallOf<u64>| match &p.child_queue {
        Some(q) => call.task_queue(q.clone()),
        None => call,
    };
    let scope = ctx.detached();
    let _t = scope
        .child_workflow(kill_sleeper, ())
        .id(format!("{id}-t"))
        .parent_close_policy(ParentClosePolicy::Terminate)
        .start();
    let _c = scope
        .child_workflow(kill_sleeper, ())
        .id(format!("{id}-c"))
        .parent_close_policy(ParentClosePolicy::RequestCancel)
        .start();
    let kids: Vec<_> = (0..KIDS)
        .map(|k| queue(ctx.child_workflow(kill_adder, k).id(format!("{id}-k{k}"))).start())
        .collect();
    let mut sum = 0;
    for k in kids {
        sum += k.await?;
    }
    Ok(ctx.activity(kill_step, sum).await?)
}

type ChildWorkflowCallOf<O> = duraflow::ChildWorkflowCall<O>;

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

/// A worker process when `DURAFLOW_CHILD_KILL_STORE` is set; otherwise passes at once.
#[test]
fn children_kill_entry() {
    let Some(spec) = std::env::var_os(ENV_STORE) else {
        return;
    };
    let spec = spec.to_string_lossy().to_string();
    crash::set_side_log(std::env::var_os(ENV_LOG).expect("side log path"));
    let role = std::env::var(ENV_ROLE).unwrap_or_else(|_| "all".into());
    crash::two_thread_runtime().block_on(async move {
        let store = open(&spec).await;
        let options =
            crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2));
        let parents = || {
            Worker::new(&store)
                .options(options.clone())
                .register(kill_parent)
                .register(kill_step)
                .register(kill_sleeper)
                .register(kill_adder)
                .register(kill_add)
        };
        let children = || {
            Worker::new(&store)
                .options(options.clone())
                .task_queue(CHILD_QUEUE)
                .register(kill_adder)
                .register(kill_add)
        };
        let _workers = match role.as_str() {
            "parents" => vec![parents().start()],
            "children" => vec![children().start()],
            _ => vec![parents().start(), children().start()],
        };
        println!("CHILD_READY");
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            crash::end_if_lived_too_long(started, MAX_LIFETIME);
        }
    });
}

fn spawn(dir: &Path, spec: &str, name: &str, role: &str) -> Child {
    let mut cmd = crash::child_command(dir, name, "children_kill_entry");
    cmd.env(ENV_STORE, spec)
        .env(ENV_LOG, dir.join("side.log"))
        .env(ENV_ROLE, role);
    cmd.spawn().expect("spawn the worker process")
}

async fn wait_ready(dir: &Path, name: &str) {
    let start = Instant::now();
    while !crash::child_file(dir, name, "stdout").contains("CHILD_READY") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker {name} never started: {}",
            crash::child_file(dir, name, "stderr")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The checks once every parent has ended.
async fn check(client: &Client, dir: &Path, prefix: &str) {
    let want: u64 = (1..=KIDS).sum();
    for i in 0..PARENTS {
        let id = format!("{prefix}-{i}");
        let h = client.handle::<u64>(&id);
        let out = support::within(Duration::from_secs(90), "parent end", h.result())
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(out, want, "{id}");
        let hist = h.history().await.unwrap();
        support::assert_contiguous(&hist);
        let n = |name: &str| support::count(&hist, |k| k.name() == name);
        assert_eq!(
            n("child_workflow_initiated"),
            KIDS as usize + 2,
            "{id}: started once"
        );
        assert_eq!(n("child_workflow_started"), KIDS as usize + 2, "{id}");
        assert_eq!(
            n("child_workflow_completed"),
            KIDS as usize,
            "{id}: ends once"
        );
        assert_eq!(
            support::count(&hist, |k| matches!(
                k,
                EventKind::ActivityScheduled { activity_type, .. } if activity_type == "kill_step"
            )),
            1,
            "{id}: the step after the children is taken once"
        );
        for k in 0..KIDS {
            let child = format!("{id}-k{k}");
            let ch = client.history(&child).await.unwrap();
            support::assert_contiguous(&ch);
            assert_eq!(support::count(&ch, |e| e.name() == "activity_completed"), 1);
            assert_eq!(
                client.describe(&child).await.unwrap().status,
                WorkflowStatus::Completed
            );
        }
        let t = client.describe(&format!("{id}-t")).await.unwrap();
        assert_eq!(t.status, WorkflowStatus::Failed, "{id}-t: terminated");
        let c = format!("{id}-c");
        support::eventually(
            Duration::from_secs(60),
            "the RequestCancel child ends",
            || async { client.describe(&c).await.unwrap().status == WorkflowStatus::Cancelled },
        )
        .await;
    }
    let logged = crash::by_activity(&crash::read_side_log(&dir.join("side.log"), true));
    // Every activity ran (a child's `kill_add`, each parent's `kill_step`).
    assert_eq!(
        logged.len(),
        (PARENTS as usize) * (KIDS as usize + 1),
        "every activity ran at least once"
    );
}

async fn run_kills(spec: String, dir: &Path) {
    let store = open(&spec).await;
    let client = Client::new(&store);
    for i in 0..PARENTS {
        client
            .start(
                kill_parent,
                format!("kp-{i}"),
                KillParent { child_queue: None },
            )
            .await
            .unwrap();
    }
    for round in 0..ROUNDS {
        let name = format!("worker-{round}");
        let mut w = spawn(dir, &spec, &name, "all");
        wait_ready(dir, &name).await;
        // Kill at varying points: children starting, completing, parents stepping.
        tokio::time::sleep(Duration::from_millis(20 + round * 40)).await;
        w.kill().expect("SIGKILL");
        w.wait().expect("reap");
    }
    let mut last = spawn(dir, &spec, "worker-last", "all");
    check(&client, dir, "kp").await;
    last.kill().expect("kill the last worker");
    last.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_children_survive_worker_kills() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    Store::sqlite(&db).unwrap();
    run_kills(format!("sqlite:{}", db.display()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_children_survive_worker_kills() {
    let Some(db) = support::TestDb::postgres("child_kill").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("pg:{}|{}", db.pg_url(), db.pg_schema());
    run_kills(spec, dir.path()).await;
    db.cleanup().await;
}

/// Children on a task queue that only another process serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_children_run_in_another_process() {
    let Some(db) = support::TestDb::postgres("child_mp").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("pg:{}|{}", db.pg_url(), db.pg_schema());
    let client = Client::new(&db.store);
    let mut parents = spawn(dir.path(), &spec, "parents", "parents");
    let mut children = spawn(dir.path(), &spec, "children", "children");
    wait_ready(dir.path(), "parents").await;
    wait_ready(dir.path(), "children").await;
    for i in 0..PARENTS {
        client
            .start(
                kill_parent,
                format!("mp-{i}"),
                KillParent {
                    child_queue: Some(CHILD_QUEUE.into()),
                },
            )
            .await
            .unwrap();
    }
    check(&client, dir.path(), "mp").await;
    // Which process ran what: every `kill_add` in the children's process, every `kill_step` in
    // the parents'.
    let pid_of = |p: &Child| p.id();
    let (pp, cp) = (pid_of(&parents), pid_of(&children));
    for e in crash::read_side_log(&dir.path().join("side.log"), true) {
        let pid = e.pid.unwrap();
        if e.workflow_id.contains("-k") {
            assert_eq!(pid, cp, "a child ran in the children's process: {e:?}");
        } else {
            assert_eq!(
                pid, pp,
                "a parent's step ran in the parents' process: {e:?}"
            );
        }
    }
    parents.kill().unwrap();
    parents.wait().unwrap();
    children.kill().unwrap();
    children.wait().unwrap();
    db.cleanup().await;
}
