//! A soak on Postgres: three worker processes and a steady mix of workloads (sequential chains,
//! fan-outs, durable timers, retried activities, local activities, cancellations) started at a
//! steady rate for a while. Every workflow ends as it must (no result lost), no activity outcome
//! is recorded twice, and neither the workers' memory nor their connections grow past a bound:
//!
//! - connections: each worker process holds at most 13 (a pool of 12 and one LISTEN connection);
//!   the bound checked is 3 × 13 at every sample;
//! - memory: each worker's RSS at the end is at most 1.5 × its RSS after the warm-up (the first
//!   fifth of the run) + 32 MiB.
//!
//! `cargo test --test postgres_soak` runs it for 2 minutes (CI). The long version:
//! `DURAFLOW_SOAK_SECS=1800 cargo test --release --test postgres_soak -- --nocapture`.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker, WorkerOptions, WorkflowHandle};
use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const ENV_CHILD: &str = "DURAFLOW_SOAK_CHILD";
const APP: &str = "duraflow_soak";
const CONNECTIONS_PER_PROCESS: i64 = 13;

static FLAKY: AtomicU32 = AtomicU32::new(0);

#[activity]
async fn soak_add(x: i64) -> Result<i64, ActivityError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(x + 1)
}

/// Fails its first attempt (in this process) every other call.
#[activity(retry(
    initial_interval = "20ms",
    backoff_coefficient = 1.0,
    maximum_attempts = 5
))]
async fn soak_flaky(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    if ctx.info().attempt == 1 && FLAKY.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
        return Err(ActivityError::application("Transient", "first attempt"));
    }
    Ok(x * 2)
}

/// Waits, heartbeating, until cancelled (or 30 s).
#[activity(heartbeat_timeout = "5s")]
async fn soak_wait(ctx: ActivityContext, _x: i64) -> Result<i64, ActivityError> {
    for i in 0..300 {
        ctx.heartbeat(&i)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(0)
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Kind {
    Chain,
    Fanout,
    Timer,
    Retry,
    Local,
    Cancel,
}

const KINDS: [Kind; 6] = [
    Kind::Chain,
    Kind::Fanout,
    Kind::Timer,
    Kind::Retry,
    Kind::Local,
    Kind::Cancel,
];

#[workflow]
async fn soak_flow(ctx: WorkflowContext, input: (Kind, i64)) -> Result<i64, WorkflowError> {
    let (kind, x) = input;
    Ok(match kind {
        Kind::Chain => {
            let mut v = x;
            for _ in 0..4 {
                v = ctx.activity(soak_add, v).await?;
            }
            v
        }
        Kind::Fanout => {
            let (a, b, c) = join!(
                ctx.activity(soak_add, x),
                ctx.activity(soak_add, x + 10),
                ctx.activity(soak_add, x + 20)
            );
            a? + b? + c?
        }
        Kind::Timer => {
            ctx.sleep(Duration::from_millis(100 + (x as u64 % 200)))
                .await?;
            ctx.activity(soak_add, x).await?
        }
        Kind::Retry => ctx.activity(soak_flaky, x).await?,
        Kind::Local => ctx.local_activity(soak_add, x).await? + 1,
        Kind::Cancel => ctx.activity(soak_wait, x).await?,
    })
}

fn expected(kind: Kind, x: i64) -> Option<i64> {
    match kind {
        Kind::Chain => Some(x + 4),
        Kind::Fanout => Some(3 * x + 33),
        Kind::Timer => Some(x + 1),
        Kind::Retry => Some(x * 2),
        Kind::Local => Some(x + 2),
        Kind::Cancel => None,
    }
}

/// A worker process: runs until its stdin closes, then shuts down.
#[test]
fn soak_child() {
    let Ok(spec) = std::env::var(ENV_CHILD) else {
        return;
    };
    let (url, schema) = spec.split_once(' ').unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::postgres_in_schema(url, schema).await.unwrap();
        let mut opts = WorkerOptions::default();
        opts.poll_interval = Duration::from_millis(200);
        let w = Worker::new(&store)
            .register(soak_add)
            .register(soak_flaky)
            .register(soak_wait)
            .register(soak_flow)
            .options(opts)
            .start();
        let eof = tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 64];
            while std::io::stdin()
                .read(&mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        });
        let _ = eof.await;
        w.shutdown().await;
    });
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn connections(admin: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    let h = tokio::spawn(conn);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("{APP}_{}", std::process::id())],
        )
        .await
        .unwrap()
        .get(0);
    drop(c);
    let _ = h.await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_three_worker_processes() {
    let Some(db) = support::TestDb::postgres("soak").await else {
        return;
    };
    let secs: u64 = std::env::var("DURAFLOW_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let admin = db.pg_url().to_string();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let worker_url = format!("{admin}{sep}application_name={APP}_{}", std::process::id());
    let mut children: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "soak_child", "--nocapture", "--test-threads=1"])
                .env(ENV_CHILD, format!("{worker_url} {}", db.pg_schema()))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let client = Client::new(&db.store);
    let started = Instant::now();
    let run = Duration::from_secs(secs);
    let warm_up = run / 5;
    let mut warm_rss: Option<Vec<u64>> = None;
    let mut max_conns = 0;
    let mut handles: Vec<(Kind, i64, WorkflowHandle<i64>)> = Vec::new();
    let mut n: i64 = 0;
    let mut next_sample = Instant::now();
    // About 12 workflows a second, every kind in turn.
    while started.elapsed() < run {
        let kind = KINDS[n as usize % KINDS.len()];
        let h = client
            .start(soak_flow, format!("soak-{n}"), (kind, n))
            .await
            .unwrap();
        if matches!(kind, Kind::Cancel) {
            let h2 = h.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = h2.cancel().await;
            });
        }
        handles.push((kind, n, h));
        n += 1;
        if Instant::now() >= next_sample {
            next_sample = Instant::now() + Duration::from_secs(2);
            let c = connections(&admin).await;
            max_conns = max_conns.max(c);
            assert!(
                c <= 3 * CONNECTIONS_PER_PROCESS,
                "{c} connections of the worker processes"
            );
            if warm_rss.is_none() && started.elapsed() >= warm_up {
                warm_rss = Some(pids.iter().map(|p| rss_kib(*p)).collect());
            }
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    // Every workflow ends as it must.
    let mut done: HashMap<&'static str, u32> = HashMap::new();
    for (kind, x, h) in &handles {
        let r = tokio::time::timeout(Duration::from_secs(120), h.result())
            .await
            .unwrap_or_else(|_| panic!("{} did not end", h.id()));
        match (expected(*kind, *x), r) {
            (Some(want), Ok(got)) => assert_eq!(got, want, "{}", h.id()),
            (None, Err(duraflow::Error::WorkflowCancelled)) => {}
            (_, other) => panic!("{} ({kind:?}): {other:?}", h.id()),
        }
        *done.entry(format!("{kind:?}").leak()).or_default() += 1;
        let history = h.history().await.unwrap();
        let mut outcomes: HashMap<u64, u32> = HashMap::new();
        for e in &history {
            if let EventKind::ActivityCompleted { activity_seq, .. }
            | EventKind::ActivityFailed { activity_seq, .. }
            | EventKind::ActivityCancelled { activity_seq, .. } = &e.kind
            {
                *outcomes.entry(*activity_seq).or_default() += 1;
            }
        }
        assert!(
            outcomes.values().all(|c| *c == 1),
            "{}: an outcome recorded twice: {outcomes:?}",
            h.id()
        );
    }
    let end_rss: Vec<u64> = pids.iter().map(|p| rss_kib(*p)).collect();
    let warm_rss = warm_rss.unwrap_or_else(|| end_rss.clone());
    for (w, e) in warm_rss.iter().zip(&end_rss) {
        assert!(
            *e <= w * 3 / 2 + 32 * 1024,
            "worker RSS grew from {w} KiB to {e} KiB"
        );
    }
    println!(
        "soak: {secs} s, {} workflows ({done:?}), 0 lost, 0 recorded twice; max {max_conns} connections of the 3 worker processes; RSS KiB after warm-up {warm_rss:?}, at the end {end_rss:?}",
        handles.len()
    );
    for c in &mut children {
        drop(c.stdin.take());
    }
    for c in &mut children {
        let _ = c.wait();
    }
    db.cleanup().await;
}
