//! The paths a message takes, on memory, a SQLite file and Postgres:
//! - a query to a workflow a worker of this process holds in its cache is answered from that
//!   instance (no replay), one to a workflow no worker holds is answered by a read-only replay,
//!   and one to a workflow that ended too;
//! - signals to a workflow a worker holds idle are delivered by the signal's own commit (the task
//!   is claimed in the signal's transaction for that worker): each once and in order, also while
//!   a second worker on another store handle (as another process would) competes for the tasks.
//!
//! Which path answered a query is observable: the workflow counts how many times its body began
//! (each replay begins it again), and answers the number its own instance got.

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, Store, Worker, WorkerOptions};
use std::collections::HashMap;
use std::sync::Mutex;
use support::{stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store).options(o).register(counted)
}

/// How many times each workflow's body began (a first run or a replay), by workflow id.
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

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Add(pub u32);

/// Which instance answers, and what it has seen.
#[query(output = (u32, Vec<u32>))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Which;

/// Receives `n` signals, in order; answers `Which` with its instance's number and the signals.
#[workflow(signals(Add), queries(Which))]
async fn counted(ctx: WorkflowContext, n: u32) -> Result<Vec<u32>, WorkflowError> {
    let me = begin(&ctx.info().workflow_id);
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    ctx.on_query(move |_: Which| (me, s.lock().unwrap().clone()));
    let mut ch = ctx.signal_channel::<Add>();
    for _ in 0..n {
        let v = ch.recv().await?.0;
        seen.lock().unwrap().push(v);
    }
    let out = seen.lock().unwrap().clone();
    Ok(out)
}

/// Waits until the workflow answers `Which` with `want` signals seen.
async fn until_seen(client: &Client, id: &str, want: usize) -> (u32, Vec<u32>) {
    within(LIMIT, "the workflow sees the signals", async {
        loop {
            if let Ok(a) = client.query(counted, id, Which).await {
                if a.1.len() >= want {
                    return a;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Cached: answered by the worker's instance, however often asked, with no replay. Not held (no
/// worker): a replay, read-only, per query. Ended: a replay.
async fn queries_take_the_cached_path_when_a_worker_holds_the_workflow(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "paths-query");
    let h = client.start(counted, &id, 2).await.unwrap();
    client.signal(counted, &id, Add(7)).await.unwrap();
    until_seen(&client, &id, 1).await;
    // While its task runs the worker does not hold the instance (a query replays); once the task
    // committed, a query is answered without a replay.
    let (instance, seen) = within(LIMIT, "a query answered without a replay", async {
        loop {
            let b = begun(&id);
            let a = client.query(counted, &id, Which).await.unwrap();
            if begun(&id) == b {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(seen, vec![7]);
    let before = begun(&id);
    for _ in 0..5 {
        let (i, seen) = client.query(counted, &id, Which).await.unwrap();
        assert_eq!(
            (i, seen),
            (instance, vec![7]),
            "the cached instance answers"
        );
    }
    assert_eq!(begun(&id), before, "no replay while the worker holds it");
    stop(w).await;

    // No worker holds it now: each query replays the history (a new instance) and answers the same.
    let (i, seen) = client.query(counted, &id, Which).await.unwrap();
    assert_eq!(seen, vec![7]);
    assert_eq!(begun(&id), before + 1, "a replay began the body again");
    assert_eq!(i, before + 1);
    client.query(counted, &id, Which).await.unwrap();
    assert_eq!(begun(&id), before + 2);

    // Ended: answered by a replay of the whole history.
    let w = worker(&db.store).start();
    client.signal(counted, &id, Add(8)).await.unwrap();
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        vec![7, 8]
    );
    stop(w).await;
    let n = begun(&id);
    let (i, seen) = client.query(counted, &id, Which).await.unwrap();
    assert_eq!((i, seen), (n + 1, vec![7, 8]));
}

/// Many signals to a workflow held idle by a worker of this process, one at a time and in bursts,
/// with a second worker on another store handle competing for its tasks: each arrives once, in
/// order.
async fn signals_to_a_held_workflow_arrive_once_in_order(db: &TestDb) {
    const N: u32 = 60;
    let w = worker(&db.store).start();
    let second = if db.store.kind() == "memory" {
        None
    } else {
        Some(worker(&db.reopen().await).start())
    };
    let client = Client::new(&db.store);
    let id = wid(db, "paths-signal");
    let h = client.start(counted, &id, N).await.unwrap();
    for v in 0..N / 2 {
        // One at a time: the workflow is idle (held) before each.
        client.signal(counted, &id, Add(v)).await.unwrap();
        until_seen(&client, &id, v as usize + 1).await;
    }
    // A burst: most arrive while a task runs.
    let mut sends = tokio::task::JoinSet::new();
    for v in N / 2..N {
        let (client, id) = (client.clone(), id.clone());
        sends.spawn(async move { client.signal(counted, &id, Add(v)).await });
    }
    while let Some(r) = sends.join_next().await {
        r.unwrap().unwrap();
    }
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    let recorded: Vec<u32> = h
        .history()
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SignalReceived { input, .. } => input.as_u64().map(|v| v as u32),
            _ => None,
        })
        .collect();
    assert_eq!(out, recorded, "delivered in the order recorded");
    let mut sorted = out.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..N).collect::<Vec<_>>(), "each signal once");
    assert_eq!(
        out[..(N / 2) as usize],
        (0..N / 2).collect::<Vec<_>>()[..],
        "in order"
    );
    stop(w).await;
    if let Some(s) = second {
        stop(s).await;
    }
}

store_tests!(memory:
    queries_take_the_cached_path_when_a_worker_holds_the_workflow,
    signals_to_a_held_workflow_arrive_once_in_order,
);
