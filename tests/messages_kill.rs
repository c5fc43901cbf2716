//! Signals under worker kills: a worker *process* is killed with SIGKILL while signals are being
//! sent and delivered (recorded but not yet seen by the workflow, or seen but not yet committed),
//! on a SQLite file and on Postgres. The client retries every signal of the round after the kill,
//! with the same request ids. At the end each workflow has received every signal exactly once and
//! in the order they were sent: its result lists them, and its history has each once.
//!
//! The child is this test binary running `messages_child_entry` with `DURAFLOW_MSG_CHILD_STORE`
//! set; without it that entry passes at once.

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, Store, Worker};
use std::path::Path;
use std::process::Child;
use std::time::Instant;
use support::crash;

const ENV_STORE: &str = "DURAFLOW_MSG_CHILD_STORE";
const WORKFLOWS: u32 = 6;
const ROUNDS: u32 = 5;
const PER_ROUND: u32 = 4;
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(120);

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tick(pub u32);

/// Receives `n` ticks, each followed by a durable timer (so delivery and commits interleave with
/// the kills), and returns them in the order received.
#[workflow(signals(Tick))]
pub async fn tick_collector(ctx: WorkflowContext, n: u32) -> Result<Vec<u32>, WorkflowError> {
    let mut ticks = ctx.signal_channel::<Tick>();
    let mut got = Vec::new();
    while got.len() < n as usize {
        got.push(ticks.recv().await?.0);
        ctx.sleep(Duration::from_millis(1)).await?;
    }
    Ok(got)
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

/// A worker process when `DURAFLOW_MSG_CHILD_STORE` is set; otherwise a test that passes at once.
#[test]
fn messages_child_entry() {
    let Some(spec) = std::env::var_os(ENV_STORE) else {
        return;
    };
    let spec = spec.to_string_lossy().to_string();
    crash::two_thread_runtime().block_on(async move {
        let store = open(&spec).await;
        let options =
            crash::child_worker_options(Duration::from_millis(100), Duration::from_secs(2));
        let _worker = Worker::new(&store)
            .register(tick_collector)
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
    let mut cmd = crash::child_command(dir, name, "messages_child_entry");
    cmd.env(ENV_STORE, spec);
    cmd.spawn().expect("spawn the child worker")
}

async fn wait_ready(dir: &Path, name: &str) {
    let start = Instant::now();
    while !crash::child_file(dir, name, "stdout").contains("CHILD_READY") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child {name} never started: {}",
            crash::child_file(dir, name, "stderr")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends round `round`'s ticks to every workflow; `retry`: the same request ids again.
async fn send_round(client: &Client, round: u32, retry: bool) {
    for w in 0..WORKFLOWS {
        for k in 0..PER_ROUND {
            let tick = round * PER_ROUND + k;
            let recorded = client
                .signal_with_request_id(
                    tick_collector,
                    &format!("tick-wf-{w}"),
                    &format!("tick-{w}-{tick}"),
                    Tick(tick),
                )
                .await
                .expect("signal");
            if retry {
                assert!(!recorded, "a retried signal is never recorded twice");
            }
        }
    }
}

async fn run(spec: String, dir: &Path) {
    let store = open(&spec).await;
    let client = Client::new(&store);
    let total = ROUNDS * PER_ROUND;
    for w in 0..WORKFLOWS {
        client
            .start(tick_collector, format!("tick-wf-{w}"), total)
            .await
            .unwrap();
    }
    for round in 0..ROUNDS {
        let name = format!("child-{round}");
        let mut child = spawn(dir, &spec, &name);
        wait_ready(dir, &name).await;
        send_round(&client, round, false).await;
        // Kill while the child delivers them: at once, or a few milliseconds in.
        tokio::time::sleep(Duration::from_millis(u64::from(round) * 7)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        send_round(&client, round, true).await;
    }
    let mut last = spawn(dir, &spec, "child-last");
    for w in 0..WORKFLOWS {
        let id = format!("tick-wf-{w}");
        let h = client.handle::<Vec<u32>>(&id);
        let out = support::within(Duration::from_secs(60), "workflow end", h.result())
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            out,
            (0..total).collect::<Vec<_>>(),
            "{id}: once each, in order"
        );
        let history = h.history().await.unwrap();
        assert_eq!(
            support::count(&history, |k| matches!(k, EventKind::SignalReceived { .. })),
            total as usize
        );
        support::assert_contiguous(&history);
    }
    last.kill().expect("kill the last child");
    last.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_signals_survive_worker_kills() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    Store::sqlite(&db).unwrap();
    run(format!("sqlite:{}", db.display()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_signals_survive_worker_kills() {
    let Some(db) = support::TestDb::postgres("msg_kill").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("pg:{}|{}", db.pg_url(), db.pg_schema());
    run(spec, dir.path()).await;
    db.cleanup().await;
}
