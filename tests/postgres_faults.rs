//! Faults of a real Postgres server, on a server of the test's own (`support/pg_cluster.rs`; never
//! the shared one): the server restarted mid-run, a worker's connections terminated, the LISTEN
//! connection cut, statements cancelled by a statement timeout. Every workflow completes with the
//! right result, no activity result is recorded twice, workers say in the log (WARN, with the
//! cause) that they retry, with backoff, and the URL's password never reaches a log.

#[path = "support/logs.rs"]
mod logs;
#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, WaitOptions, Worker, WorkerOptions, WorkflowHandle};
use pg_cluster::PgCluster;
use std::collections::HashMap;

/// A slow step, so that a fault lands while workflows run.
#[activity]
async fn fault_step(x: i64) -> Result<i64, ActivityError> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(x + 1)
}

/// Five steps and a durable timer.
#[workflow]
async fn fault_chain(ctx: WorkflowContext, start: i64) -> Result<i64, WorkflowError> {
    let mut v = start;
    for i in 0..5 {
        v = ctx.activity(fault_step, v).await?;
        if i == 2 {
            ctx.sleep(Duration::from_millis(100)).await?;
        }
    }
    Ok(v)
}

const OUTAGE_BOUND: Duration = Duration::from_secs(90);

async fn store(cluster: &PgCluster, app: &str) -> Store {
    Store::postgres_in_schema(&cluster.url(&format!("application_name={app}")), "faults")
        .await
        .expect("open the store on the test's server")
}

fn worker(store: &Store, poll: Duration) -> duraflow::WorkerHandle {
    let mut opts = WorkerOptions::default();
    opts.poll_interval = poll;
    Worker::new(store)
        .register(fault_step)
        .register(fault_chain)
        .options(opts)
        .start()
}

async fn start_all(client: &Client, prefix: &str, n: i64) -> Vec<(i64, WorkflowHandle<i64>)> {
    let mut hs = Vec::new();
    for i in 0..n {
        let h = client
            .start(fault_chain, format!("{prefix}-{i}"), i * 100)
            .await
            .unwrap();
        hs.push((i, h));
    }
    hs
}

/// Every workflow ends with its right result (waiting through outages), and each activity's
/// outcome is in its history exactly once.
async fn check_all(hs: Vec<(i64, WorkflowHandle<i64>)>) {
    let opts = WaitOptions::default().outage_tolerance(OUTAGE_BOUND);
    for (i, h) in hs {
        let out = tokio::time::timeout(OUTAGE_BOUND, h.result_with(opts.clone()))
            .await
            .unwrap_or_else(|_| panic!("{} did not complete", h.id()))
            .unwrap_or_else(|e| panic!("{} failed: {e}", h.id()));
        assert_eq!(out, i * 100 + 5, "{}", h.id());
        let history = h.history().await.unwrap();
        let mut outcomes: HashMap<u64, u32> = HashMap::new();
        for e in &history {
            if let EventKind::ActivityCompleted { activity_seq, .. } = &e.kind {
                *outcomes.entry(*activity_seq).or_default() += 1;
            }
        }
        assert_eq!(outcomes.len(), 5, "{}: {history:?}", h.id());
        assert!(
            outcomes.values().all(|n| *n == 1),
            "{}: an outcome recorded twice: {outcomes:?}",
            h.id()
        );
    }
}

fn assert_no_password_in_logs(cluster: &PgCluster) {
    let text = logs::text();
    assert!(
        !text.contains(&cluster.password),
        "the URL's password reached a log"
    );
}

async fn wait_for_completed(client: &Client, prefix: &str, at_least: usize) {
    for _ in 0..2000 {
        let done = client
            .list(duraflow::ListFilter::all().status(duraflow::WorkflowStatus::Completed))
            .await
            .map(|l| {
                l.iter()
                    .filter(|w| w.workflow_id.starts_with(prefix))
                    .count()
            })
            .unwrap_or(0);
        if done >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {at_least} of {prefix} completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarted_mid_run() {
    logs::capture();
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let store = store(&cluster, "faults_restart").await;
    let w = worker(&store, Duration::from_millis(500));
    let client = Client::new(&store);
    let hs = start_all(&client, "restart", 12).await;
    wait_for_completed(&client, "restart", 2).await;
    let before = logs::warnings_with("store error while polling").len();
    // Down for a second: fast shutdown ends every session, then the same data comes back.
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = logs::warnings_with("store error while polling").len() - before;
    cluster.start_again();
    check_all(hs).await;
    w.shutdown().await;
    // The workers said so, with the cause, and backed off: a failed poll is not retried at once
    // (before the backoff: about 60 tries in 5 ms).
    let warns = logs::warnings_with("store error while polling");
    assert!(!warns.is_empty(), "no WARN for the lost server");
    assert!(
        warns
            .iter()
            .any(|l| l.contains("error=") && l.contains("retry_in=")),
        "the WARN names the cause and the backoff: {warns:?}"
    );
    assert!(
        during <= 30,
        "{during} failed polls in one second of outage: no backoff"
    );
    assert_no_password_in_logs(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_connections_are_terminated() {
    logs::capture();
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let store = store(&cluster, "faults_killed").await;
    let w = worker(&store, Duration::from_millis(500));
    let client = Client::new(&store);
    let hs = start_all(&client, "killed", 12).await;
    wait_for_completed(&client, "killed", 1).await;
    // Three times, every backend of this store (pool and LISTEN), by application_name.
    let mut terminated = 0;
    for _ in 0..3 {
        let rows = cluster
            .exec(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = 'faults_killed' AND pid <> pg_backend_pid()",
            )
            .await;
        terminated += rows.len();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(terminated > 0, "no connection of the store was found");
    check_all(hs).await;
    w.shutdown().await;
    assert_no_password_in_logs(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_connection_is_cut() {
    logs::capture();
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // The worker's process learns of new work only by NOTIFY (it polls once a minute): if its
    // LISTEN connection did not come back, the workflow started after the cut would wait.
    let worker_store = store(&cluster, "faults_listen").await;
    let client_store = store(&cluster, "faults_client").await;
    let w = worker(&worker_store, Duration::from_secs(60));
    let client = Client::new(&client_store);
    check_all(start_all(&client, "listen-before", 1).await).await;
    let cut = cluster
        .exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'faults_listen' AND query LIKE 'LISTEN%'",
        )
        .await;
    assert_eq!(cut.len(), 1, "the LISTEN connection");
    // Wait until it is back (a new backend LISTENs again).
    for i in 0.. {
        let rows = cluster
            .exec(
                "SELECT 1 FROM pg_stat_activity
                  WHERE application_name = 'faults_listen' AND query LIKE 'LISTEN%'",
            )
            .await;
        if !rows.is_empty() {
            break;
        }
        assert!(i < 500, "the LISTEN connection did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hs = start_all(&client, "listen-after", 3).await;
    for (i, h) in hs {
        let out = tokio::time::timeout(Duration::from_secs(20), h.result())
            .await
            .expect("woken by NOTIFY after the LISTEN connection came back")
            .unwrap();
        assert_eq!(out, i * 100 + 5);
    }
    w.shutdown().await;
    assert!(
        !logs::warnings_with("LISTEN connection lost").is_empty()
            || !logs::warnings_with("LISTEN connection closed").is_empty(),
        "the cut is in the log"
    );
    assert_no_password_in_logs(&cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_cancelled_by_a_statement_timeout() {
    logs::capture();
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // Every statement of the store may run 300 ms at most.
    let url = cluster.url("application_name=faults_timeout&options=-c%20statement_timeout%3D300");
    let store = Store::postgres_in_schema(&url, "faults").await.unwrap();
    let client = Client::new(&store);
    // Another session locks the workflows table for 2 s while they run: every transition of the
    // store waits on the lock, is cancelled by the timeout, and is retried.
    let w = worker(&store, Duration::from_millis(500));
    let hs = start_all(&client, "timeout", 8).await;
    wait_for_completed(&client, "timeout", 1).await;
    let admin = cluster.url("");
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let locker = tokio::spawn(async move {
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        let h = tokio::spawn(conn);
        c.batch_execute("BEGIN; LOCK TABLE faults.workflows IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let _ = held_tx.send(());
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.batch_execute("COMMIT").await.unwrap();
        drop(c);
        let _ = h.await;
    });
    held_rx.await.unwrap();
    locker.await.unwrap();
    check_all(hs).await;
    w.shutdown().await;
    let text = logs::text();
    assert!(
        text.contains("statement timeout"),
        "the statement timeout was met and logged"
    );
    assert_no_password_in_logs(&cluster);
}

#[tokio::test]
async fn connection_errors_do_not_show_the_password() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // A wrong password, and a port nothing listens on: neither error shows the password given.
    let wrong = cluster.url("").replace(&cluster.password, "Wr0ngSecretXyz");
    let e = Store::postgres(&wrong).await.expect_err("refused");
    let m = format!("{e} / {e:?}");
    assert!(!m.contains("Wr0ngSecretXyz"), "{m}");
    assert!(m.contains("password authentication failed"), "{m}");
    let nowhere = cluster
        .url("connect_timeout=2")
        .replace(&format!(":{}/", cluster.port), ":1/");
    let e = Store::postgres(&nowhere).await.expect_err("unreachable");
    let m = format!("{e} / {e:?}");
    assert!(!m.contains(&cluster.password), "{m}");
    // A URL that does not parse is quoted without its password.
    let bad = format!(
        "postgres://postgres:{}@127.0.0.1:notaport/x",
        cluster.password
    );
    let e = Store::postgres(&bad).await.expect_err("bad URL");
    let m = format!("{e} / {e:?}");
    assert!(!m.contains(&cluster.password), "{m}");
}
