//! Queries across processes on Postgres: the parent process runs no worker; a worker process
//! holds the workflow in its cache. A query from the parent is answered by that worker's instance
//! (asked over `NOTIFY`, answered the same way): the parent replays nothing. Once the worker
//! process is killed, no worker answers, and the parent answers by replaying the history itself
//! after a short wait.
//!
//! Which path answered is observable: the workflow counts, per process, how many times its body
//! began (each replay begins it again), and answers the number its own instance got.
//!
//! The child is this test binary running `query_child_entry` with `DURAFLOW_QUERY_CHILD_STORE`
//! set; without it that entry passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::{Store, Worker};
use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::sync::Mutex;
use std::time::Instant;
use support::{crash, within};

const ENV_STORE: &str = "DURAFLOW_QUERY_CHILD_STORE";
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(120);
const LIMIT: Duration = Duration::from_secs(30);

/// How many times each workflow's body began in this process, by workflow id.
static BEGUN: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

fn begin(id: &str) -> u32 {
    let mut map = BEGUN.lock().unwrap_or_else(|e| e.into_inner());
    let n = map
        .get_or_insert_with(HashMap::new)
        .entry(id.into())
        .or_insert(0);
    *n += 1;
    *n
}

fn begun(id: &str) -> u32 {
    let map = BEGUN.lock().unwrap_or_else(|e| e.into_inner());
    map.as_ref().and_then(|m| m.get(id).copied()).unwrap_or(0)
}

/// This process's id (which process's instance answered).
fn this_process() -> u32 {
    std::process::id()
}

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Add(pub u32);

/// The process and instance that answers, and what it has seen.
#[query(output = (u32, u32, Vec<u32>))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Which;

/// Waits for `n` signals; answers `Which` with (pid, its instance's number, the signals seen).
#[workflow(signals(Add), queries(Which))]
pub async fn counted(ctx: WorkflowContext, n: u32) -> Result<Vec<u32>, WorkflowError> {
    let me = begin(&ctx.info().workflow_id);
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let pid = this_process();
    ctx.on_query(move |_: Which| (pid, me, s.lock().unwrap().clone()));
    let mut ch = ctx.signal_channel::<Add>();
    for _ in 0..n {
        let v = ch.recv().await?.0;
        seen.lock().unwrap().push(v);
    }
    let out = seen.lock().unwrap().clone();
    Ok(out)
}

/// A worker process when `DURAFLOW_QUERY_CHILD_STORE` is set; otherwise a test that passes at once.
#[test]
fn query_child_entry() {
    let Some(spec) = std::env::var_os(ENV_STORE) else {
        return;
    };
    let spec = spec.to_string_lossy().to_string();
    crash::two_thread_runtime().block_on(async move {
        let (url, schema) = spec.rsplit_once('|').expect("URL|SCHEMA");
        let store = Store::postgres_in_schema(url, schema)
            .await
            .expect("open postgres");
        let options =
            crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2));
        let _worker = Worker::new(&store)
            .register(counted)
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

fn spawn(dir: &Path, spec: &str, name: &str) -> Child {
    let mut cmd = crash::child_command(dir, name, "query_child_entry");
    cmd.env(ENV_STORE, spec);
    cmd.spawn().expect("spawn the child worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_of_another_process_answers_then_a_replay() {
    let Some(db) = support::TestDb::postgres("query_xproc").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{}|{}", db.pg_url(), db.pg_schema());
    let mut child = spawn(dir.path(), &spec, "worker");
    let started = Instant::now();
    while !crash::child_file(dir.path(), "worker", "stdout").contains("CHILD_READY") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never started: {}",
            crash::child_file(dir.path(), "worker", "stderr")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = Client::new(&db.store);
    let id = "xq-1";
    let h = client.start(counted, id, 2).await.unwrap();
    client.signal(counted, id, Add(5)).await.unwrap();
    let me = std::process::id();
    // Until the child's task committed, queries are answered by replays here; then by the child.
    let (pid, instance, seen) = within(LIMIT, "a query answered by the worker process", async {
        loop {
            let a = client.query(counted, id, Which).await.unwrap();
            if a.0 != me && a.2 == vec![5] {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!((instance, seen), (1, vec![5]), "the child's first instance");
    let replays = begun(id);
    for _ in 0..3 {
        let a = client.query(counted, id, Which).await.unwrap();
        assert_eq!(
            a,
            (pid, 1, vec![5]),
            "the same instance of the worker process"
        );
    }
    assert_eq!(
        begun(id),
        replays,
        "no replay here while the worker holds it"
    );

    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // No worker answers now: the parent replays, after a short wait.
    let a = within(LIMIT, "query", client.query(counted, id, Which))
        .await
        .unwrap();
    assert_eq!(a, (me, replays + 1, vec![5]), "answered by a replay here");
    drop(h);
    db.cleanup().await;
}
