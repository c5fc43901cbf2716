//! duraflow's benchmark: the workloads of BENCH.md (chain-seq, chain-conc, fanout, cancel, timer-cancel,
//! replay, parked, signal) on the SQLite store (WAL + synchronous=FULL) or on Postgres.
//!
//! One JSON object per workload on stdout, nothing else there; progress on stderr. Percentiles are
//! nearest-rank, as in the peers' runners. `replay` and `parked` run their two halves in child
//! processes (this binary with `--phase`), so the resumed half starts with nothing in memory.
//!
//! ```sh
//! cargo run --release -p duraflow-bench -- --store sqlite --workloads chain-seq,cancel
//! cargo run --release -p duraflow-bench -- --store postgres --quick
//! ```

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker, WorkerHandle, WorkerOptions};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxErr>;

const SYSTEM: &str = "duraflow";
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const ALL_WORKLOADS: &str =
    "chain-seq,chain-conc,fanout,cancel,timer-cancel,replay,parked,signal,child";

mod child;
mod remote_cancel;
mod signal;

fn log(msg: impl AsRef<str>) {
    eprintln!("[duraflow-bench] {}", msg.as_ref());
}

// ------------------------------------------------------------------ process-global probes
//
// Workflow code may be replayed, so a timestamp taken in a workflow body is kept only the first time
// (`mark_first`): the first execution of a statement is the live one, a replay comes later.
// Activities are not replayed: their timestamps are taken every time.

type Marks = Mutex<HashMap<String, Instant>>;

fn marks(name: &'static str) -> &'static Marks {
    static M: OnceLock<Mutex<HashMap<&'static str, &'static Marks>>> = OnceLock::new();
    let mut all = M.get_or_init(Default::default).lock().unwrap();
    all.entry(name)
        .or_insert_with(|| Box::leak(Box::new(Mutex::new(HashMap::new()))))
}

fn mark_first(name: &'static str, key: &str) {
    let now = Instant::now();
    marks(name)
        .lock()
        .unwrap()
        .entry(key.to_string())
        .or_insert(now);
}

fn get_mark(name: &'static str, key: &str) -> Option<Instant> {
    marks(name).lock().unwrap().get(key).copied()
}

/// Per chain workflow: the instant each `add` activity ran (appended by the activity).
fn step_runs() -> &'static Mutex<HashMap<i64, Vec<Instant>>> {
    static M: OnceLock<Mutex<HashMap<i64, Vec<Instant>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}
static RECORD_STEPS: AtomicBool = AtomicBool::new(false);

static ARMED: AtomicUsize = AtomicUsize::new(0);
static ENDED: AtomicUsize = AtomicUsize::new(0);
static REPLAY_DONE: AtomicBool = AtomicBool::new(false);

// ------------------------------------------------------------------ activities and workflows

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainIn {
    /// Identifies the workflow in the step probe; negative: not recorded.
    pub tag: i64,
    pub k: u32,
    pub x: i64,
}

/// The tiny activity of BENCH.md. With a tag >= 0 it records when it ran.
#[activity]
pub async fn add(tag: i64, x: i64) -> Result<i64, ActivityError> {
    if tag >= 0 && RECORD_STEPS.load(Ordering::Relaxed) {
        let now = Instant::now();
        step_runs()
            .lock()
            .unwrap()
            .entry(tag)
            .or_default()
            .push(now);
    }
    Ok(x + 1)
}

#[workflow]
pub async fn chain_wf(ctx: WorkflowContext, input: ChainIn) -> Result<i64, WorkflowError> {
    let mut acc = input.x;
    for _ in 0..input.k {
        acc = ctx.activity(add, (input.tag, acc)).await?;
    }
    Ok(acc)
}

#[workflow]
pub async fn fanout_wf(ctx: WorkflowContext, n: u32) -> Result<i64, WorkflowError> {
    // Every call is scheduled first (commands in program order), then they are joined.
    let handles: Vec<_> = (0..n as i64)
        .map(|i| ctx.activity(add, (-1i64, i)).start())
        .collect();
    let mut sum = 0i64;
    for h in handles {
        sum += h.await?;
    }
    Ok(sum)
}

/// Heartbeats every `tick_ms` until it is cancelled; records when it first hears the cancel.
#[activity(heartbeat_timeout = "10s")]
pub async fn heartbeat_act(
    ctx: ActivityContext,
    id: String,
    tick_ms: u64,
) -> Result<(), ActivityError> {
    mark_first("act_started", &id);
    let mut i = 0u64;
    loop {
        tokio::select! {
            _ = ctx.cancelled() => {
                mark_first("seen", &id);
                return Err(ActivityError::cancelled());
            }
            _ = tokio::time::sleep(Duration::from_millis(tick_ms)) => {
                i += 1;
                if let Err(e) = ctx.heartbeat(&i) {
                    mark_first("seen", &id);
                    return Err(e);
                }
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelIn {
    pub id: String,
    pub tick_ms: u64,
    pub delay_ms: u64,
}

/// Starts the heartbeating activity, sleeps `delay_ms` on a durable timer, cancels it
/// (WaitCancellationCompleted) and waits for the activity's outcome.
#[workflow]
pub async fn cancel_wf(ctx: WorkflowContext, input: CancelIn) -> Result<u32, WorkflowError> {
    let h = ctx
        .activity(heartbeat_act, (input.id.clone(), input.tick_ms))
        .start_to_close_timeout(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(10))
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(input.delay_ms)).await?;
    mark_first("cancel_called", &input.id);
    h.cancel();
    let r = h.await;
    mark_first("cancel_resolved", &input.id);
    match r {
        Err(e) if e.is_cancelled() => Ok(1),
        other => Err(WorkflowError::application(
            "Unexpected",
            format!("the activity should have ended cancelled: {other:?}"),
        )),
    }
}

#[workflow]
pub async fn sleeper_wf(ctx: WorkflowContext, ms: u64) -> Result<u32, WorkflowError> {
    ctx.sleep(Duration::from_millis(ms)).await?;
    Ok(1)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayIn {
    pub n: u32,
    pub sleep_ms: u64,
}

/// N sequential activities, then a durable sleep. The replay probe marks the body's (re)start and
/// the point past its N-th activity.
#[workflow]
pub async fn replay_wf(ctx: WorkflowContext, input: ReplayIn) -> Result<i64, WorkflowError> {
    mark_first("replay_start", "r");
    let mut acc = 0i64;
    for _ in 0..input.n {
        acc = ctx.activity(add, (-1i64, acc)).await?;
    }
    mark_first("replay_mark", "r");
    REPLAY_DONE.store(true, Ordering::SeqCst);
    ctx.sleep(Duration::from_millis(input.sleep_ms)).await?;
    Ok(acc)
}

/// One activity, then a 1 h durable sleep. ARMED counts bodies past their activity (live or
/// replayed), ENDED counts sleeps that returned (a cancel).
#[workflow]
pub async fn parked_wf(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    let v = ctx.activity(add, (-1i64, x)).await?;
    ARMED.fetch_add(1, Ordering::SeqCst);
    let r = ctx.sleep(Duration::from_secs(3600)).await;
    ENDED.fetch_add(1, Ordering::SeqCst);
    r?;
    Ok(v)
}

// ------------------------------------------------------------------ arguments

mod args;
use args::Args;

/// (workflows or trials, steps per workflow, concurrency); the same sizes as the peers' runners.
fn sizes(a: &Args, w: &str) -> (usize, usize, usize) {
    let (n, k, c) = match (w, a.quick) {
        ("chain-seq", false) => (200, 10, 1),
        ("chain-seq", true) => (50, 10, 1),
        ("chain-conc", false) => (2000, 10, 100),
        ("chain-conc", true) => (300, 10, 100),
        ("fanout", false) => (1000, 1, 1),
        ("fanout", true) => (200, 1, 1),
        ("cancel", false) => (100, 0, 1),
        ("cancel", true) => (20, 0, 1),
        ("timer-cancel", false) => (100, 0, 1),
        ("timer-cancel", true) => (20, 0, 1),
        ("replay", false) => (10_000, 0, 1),
        ("replay", true) => (1_000, 0, 1),
        ("parked", false) => (100_000, 0, 1),
        ("parked", true) => (2_000, 0, 1),
        // signal: n = latency trials, k = signals per receiving workflow, c = receiving workflows
        ("signal", false) => (100, 10, 100),
        ("signal", true) => (20, 5, 20),
        ("child", false) => (1000, 1, 1),
        ("child", true) => (200, 1, 1),
        _ => (1, 1, 1),
    };
    (a.n.unwrap_or(n), a.k.unwrap_or(k), a.c.unwrap_or(c))
}

// ------------------------------------------------------------------ helpers

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn r3(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

fn r1(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 10.0).round() / 10.0)
    } else {
        Value::Null
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rss_bytes() -> u64 {
    // /proc/self/statm: size resident shared ... (pages)
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn store_label(a: &Args) -> &'static str {
    if a.store == "postgres" {
        "postgres"
    } else {
        "sqlite-wal-full"
    }
}

/// Prints one JSON line, fields in this order.
fn emit(a: &Args, workload: &str, n: usize, k: usize, c: usize, figures: Vec<(&str, Value)>) {
    let mut fields: Vec<(&str, Value)> = vec![
        ("system", json!(SYSTEM)),
        ("store", json!(store_label(a))),
        ("workload", json!(workload)),
        ("workflows", json!(n)),
        ("steps_per_workflow", json!(k)),
        ("concurrency", json!(c)),
    ];
    fields.extend(figures);
    fields.push(("version", json!(env!("CARGO_PKG_VERSION"))));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", json!(k), v))
        .collect();
    println!("{{{}}}", body.join(","));
}

async fn bounded<T, F: std::future::IntoFuture<Output = T>>(secs: f64, what: &str, f: F) -> Res<T> {
    tokio::time::timeout(Duration::from_secs_f64(secs), f)
        .await
        .map_err(|_| format!("timed out after {secs} s: {what}").into())
}

async fn wait_until<F: FnMut() -> bool>(secs: f64, every: Duration, mut pred: F) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if pred() {
            return true;
        }
        tokio::time::sleep(every).await;
    }
    pred()
}

async fn open_store(a: &Args, db: &Path, schema: &str) -> Res<Store> {
    if a.store == "postgres" {
        Ok(Store::postgres_in_schema(&a.pg_url, schema).await?)
    } else {
        Ok(Store::sqlite(db)?)
    }
}

async fn pg_client(a: &Args) -> Res<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(&a.pg_url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The durability the figures are taken with; refuses a Postgres server with it off.
async fn verify_durability(a: &Args, st: &Store) -> Res<String> {
    if a.store == "postgres" {
        let c = pg_client(a).await?;
        let sc: String = c.query_one("SHOW synchronous_commit", &[]).await?.get(0);
        let fs: String = c.query_one("SHOW fsync", &[]).await?.get(0);
        if sc != "on" || fs != "on" {
            return Err(format!(
                "Postgres has synchronous_commit={sc}, fsync={fs}; both must be on"
            )
            .into());
        }
        Ok(format!(
            "{}: synchronous_commit={sc}, fsync={fs}",
            st.kind()
        ))
    } else {
        if st.kind() != "sqlite-wal-full" {
            return Err(format!("store kind {} is not sqlite-wal-full", st.kind()).into());
        }
        Ok(format!(
            "{} (Store::sqlite: WAL, synchronous=FULL)",
            st.kind()
        ))
    }
}

async fn drop_pg_schema(a: &Args, schema: &str) {
    if a.store != "postgres" {
        return;
    }
    match pg_client(a).await {
        Ok(c) => {
            if let Err(e) = c
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await
            {
                log(format!("could not drop schema {schema}: {e}"));
            }
        }
        Err(e) => log(format!("could not connect to drop schema {schema}: {e}")),
    }
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn start_worker(store: &Store, opts: Option<WorkerOptions>) -> WorkerHandle {
    let mut w = Worker::new(store)
        .register(add)
        .register(heartbeat_act)
        .register(chain_wf)
        .register(fanout_wf)
        .register(cancel_wf)
        .register(remote_cancel::remote_cancel_wf)
        .register(sleeper_wf)
        .register(replay_wf)
        .register(parked_wf)
        .register(signal::signal_wf)
        .register(signal::recv_loop_wf)
        .register(child::add_child_wf)
        .register(child::child_parent_wf);
    if let Some(o) = opts {
        w = w.options(o);
    }
    w.start()
}

static IDS: AtomicUsize = AtomicUsize::new(0);
fn next_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        IDS.fetch_add(1, Ordering::Relaxed)
    )
}

async fn warmup(client: &Client) -> Res<()> {
    for i in 0..20 {
        let h = client
            .start(
                chain_wf,
                next_id("warm"),
                ChainIn {
                    tag: -1,
                    k: 10,
                    x: i,
                },
            )
            .await?;
        bounded(30.0, "warm-up workflow", h.result()).await??;
    }
    let mut hs = Vec::new();
    for i in 0..10 {
        hs.push(
            client
                .start(
                    chain_wf,
                    next_id("warm"),
                    ChainIn {
                        tag: -1,
                        k: 10,
                        x: i,
                    },
                )
                .await?,
        );
    }
    for h in hs {
        bounded(30.0, "warm-up workflow", h.result()).await??;
    }
    Ok(())
}

// ------------------------------------------------------------------ in-process workloads

async fn run_chain_seq(a: &Args, client: &Client) -> Res<()> {
    let (n, k, _) = sizes(a, "chain-seq");
    step_runs().lock().unwrap().clear();
    RECORD_STEPS.store(true, Ordering::SeqCst);
    let mut wf = Vec::with_capacity(n);
    let mut steps = Vec::with_capacity(n * k);
    let mut first = Vec::with_capacity(n);
    let mut last = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let s = Instant::now();
        let h = client
            .start(
                chain_wf,
                next_id("seq"),
                ChainIn {
                    tag: i as i64,
                    k: k as u32,
                    x: i as i64,
                },
            )
            .await?;
        let out = bounded(60.0, "chain-seq workflow", h.result()).await??;
        let e = Instant::now();
        if out != (i + k) as i64 {
            return Err(format!("chain-seq: wrong result {out}").into());
        }
        wf.push(ms(e - s));
        let runs = step_runs()
            .lock()
            .unwrap()
            .remove(&(i as i64))
            .unwrap_or_default();
        if runs.len() != k {
            return Err(format!(
                "chain-seq: {} activity runs recorded, expected {k}",
                runs.len()
            )
            .into());
        }
        // A step = one activity run to the next: the result's commit, the workflow task (deliver,
        // resume the code, commit the next command) and the next attempt's start.
        for w in runs.windows(2) {
            steps.push(ms(w[1] - w[0]));
        }
        if let (Some(f), Some(l)) = (runs.first(), runs.last()) {
            first.push(ms(*f - s));
            last.push(ms(e - *l));
        }
    }
    let el = t0.elapsed().as_secs_f64();
    RECORD_STEPS.store(false, Ordering::SeqCst);
    let per_step: Vec<f64> = wf.iter().map(|w| w / k as f64).collect();
    emit(
        a,
        "chain-seq",
        n,
        k,
        1,
        vec![
            ("steps_per_s", r1((n * k) as f64 / el)),
            ("workflows_per_s", r1(n as f64 / el)),
            ("step_p50_ms", r3(pct(&steps, 50.0))),
            ("step_p99_ms", r3(pct(&steps, 99.0))),
            ("wf_p50_ms", r3(pct(&wf, 50.0))),
            ("wf_p99_ms", r3(pct(&wf, 99.0))),
            ("x_wf_per_step_p50_ms", r3(pct(&per_step, 50.0))),
            ("x_start_to_first_activity_p50_ms", r3(pct(&first, 50.0))),
            ("x_last_activity_to_result_p50_ms", r3(pct(&last, 50.0))),
            ("x_how", json!("step = one activity run to the next one in the same workflow (activity result committed, workflow task, next command committed, next attempt started), timed in the activity, which is never replayed; wf = client start() to result()")),
        ],
    );
    Ok(())
}

async fn run_chain_conc(a: &Args, client: &Client) -> Res<()> {
    let (n, k, c) = sizes(a, "chain-conc");
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let client = client.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let s = Instant::now();
                let h = client
                    .start(
                        chain_wf,
                        next_id("conc"),
                        ChainIn {
                            tag: -1,
                            k: k as u32,
                            x: i as i64,
                        },
                    )
                    .await?;
                let out = bounded(120.0, "chain-conc workflow", h.result()).await??;
                if out != (i + k) as i64 {
                    return Err::<Vec<f64>, BoxErr>(
                        format!("chain-conc: wrong result {out}").into(),
                    );
                }
                lat.push(ms(s.elapsed()));
            }
            Ok(lat)
        }));
    }
    let mut wf = Vec::with_capacity(n);
    for t in tasks {
        wf.extend(bounded(a.deadline_s as f64, "chain-conc client", t).await???);
    }
    let el = t0.elapsed().as_secs_f64();
    emit(
        a,
        "chain-conc",
        n,
        k,
        c,
        vec![
            ("steps_per_s", r1((n * k) as f64 / el)),
            ("workflows_per_s", r1(n as f64 / el)),
            ("wf_p50_ms", r3(pct(&wf, 50.0))),
            ("wf_p99_ms", r3(pct(&wf, 99.0))),
            ("x_how", json!("c client tasks in a closed loop, each start() then result(); latency = start to result")),
        ],
    );
    Ok(())
}

async fn run_fanout(a: &Args, client: &Client) -> Res<()> {
    let (n, _, _) = sizes(a, "fanout");
    let h = client.start(fanout_wf, next_id("fan-warm"), 10).await?;
    bounded(60.0, "fanout warm-up", h.result()).await??;
    let t0 = Instant::now();
    let h = client.start(fanout_wf, next_id("fan"), n as u32).await?;
    let sum = bounded(300.0, "fanout workflow", h.result()).await??;
    let el = t0.elapsed();
    let want: i64 = (1..=n as i64).sum();
    if sum != want {
        return Err(format!("fanout: wrong sum {sum} != {want}").into());
    }
    emit(
        a,
        "fanout",
        1,
        n,
        n,
        vec![
            ("wall_ms", r3(ms(el))),
            ("steps_per_s", r1(n as f64 / el.as_secs_f64())),
            ("x_how", json!("one workflow: n ctx.activity(..).start() then each awaited in order; start() to result()")),
        ],
    );
    Ok(())
}

async fn run_cancel(a: &Args, client: &Client, schema: &str) -> Res<()> {
    let (trials, _, _) = sizes(a, "cancel");
    let tick = a.tick_ms;
    let mut seen_ms = Vec::new();
    let mut resolved_ms = Vec::new();
    let mut ended_ms = Vec::new();
    let mut failures = 0usize;
    for t in 0..trials {
        let id = next_id("cancel");
        // The durable timer lands the cancel at varying offsets inside a heartbeat tick.
        let delay_ms = 30 + (t % 5) as u64 * tick / 5;
        let h = client
            .start(
                cancel_wf,
                id.clone(),
                CancelIn {
                    id: id.clone(),
                    tick_ms: tick,
                    delay_ms,
                },
            )
            .await?;
        let r = bounded(30.0, "cancel trial", h.result()).await?;
        let t_end = Instant::now();
        let (c0, started, seen, res) = (
            get_mark("cancel_called", &id),
            get_mark("act_started", &id),
            get_mark("seen", &id),
            get_mark("cancel_resolved", &id),
        );
        match (r, c0, started, seen, res) {
            (Ok(1), Some(c0), Some(st), Some(seen), Some(res)) if st < c0 => {
                seen_ms.push(ms(seen.saturating_duration_since(c0)));
                resolved_ms.push(ms(res.saturating_duration_since(c0)));
                ended_ms.push(ms(t_end.saturating_duration_since(c0)));
            }
            (r, c0, st, seen, res) => {
                failures += 1;
                log(format!(
                    "cancel trial {t}: result {r:?}, cancel called {}, activity started {}, seen {}, resolved {}",
                    c0.is_some(),
                    st.is_some(),
                    seen.is_some(),
                    res.is_some()
                ));
            }
        }
    }
    if failures > 0 {
        log(format!("cancel: {failures} of {trials} trials failed"));
    }
    let mut extra = Vec::new();
    if a.store == "postgres" {
        let (xseen, xfailed, xnot_started) = remote_cancel::run(a, client, schema, trials).await?;
        if xfailed > 0 {
            log(format!(
                "cancel: {xfailed} of {trials} cross-process trials failed"
            ));
        }
        extra = vec![
            ("x_cross_process_seen_p50_ms", r3(pct(&xseen, 50.0))),
            ("x_cross_process_seen_p99_ms", r3(pct(&xseen, 99.0))),
            ("x_cross_process_how", json!("the same trials with the activity in another process (this binary, its own worker on its own task queue, one store handle each): handle.cancel() in the workflow code here to ctx.cancelled() there, system clock")),
            ("x_cross_process_failed_trials", json!(xfailed)),
            ("x_cross_process_not_started", json!(xnot_started)),
        ];
    }
    emit(
        a,
        "cancel",
        trials,
        0,
        1,
        vec![
            ("cancel_seen_p50_ms", r3(pct(&seen_ms, 50.0))),
            ("cancel_seen_p99_ms", r3(pct(&seen_ms, 99.0))),
            ("cancel_resolved_p50_ms", r3(pct(&resolved_ms, 50.0))),
            ("cancel_resolved_p99_ms", r3(pct(&resolved_ms, 99.0))),
            ("x_client_result_p50_ms", r3(pct(&ended_ms, 50.0))),
            ("x_client_result_p99_ms", r3(pct(&ended_ms, 99.0))),
            ("x_how", json!(format!("activity cancellation, in process: the workflow starts a heartbeating activity ({tick} ms ticks, heartbeat_timeout 10 s, WaitCancellationCompleted), sleeps 30-40 ms on a durable timer, then calls handle.cancel(); t0 = that call in the live (not replayed) workflow code; seen = ctx.cancelled() resolves in the activity; resolved = handle.await returns in the workflow code; x_client_result = t0 to the client's result()"))),
            ("x_failed_trials", json!(failures)),
        ]
        .into_iter()
        .chain(extra)
        .collect(),
    );
    Ok(())
}

async fn run_timer_cancel(a: &Args, client: &Client) -> Res<()> {
    let (trials, _, _) = sizes(a, "timer-cancel");
    let stagger = a.stagger_ms;
    let mut tasks = Vec::new();
    for t in 0..trials {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(t as u64 * stagger)).await;
            let h = client.start(sleeper_wf, next_id("timer"), 2000).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let t0 = Instant::now();
            client.cancel(h.id()).await?;
            let res = bounded(30.0, "cancelled sleeper to end", h.result()).await?;
            let el = ms(t0.elapsed());
            Ok::<(f64, bool), BoxErr>((el, matches!(res, Err(duraflow::Error::WorkflowCancelled))))
        }));
    }
    let mut ended = Vec::new();
    let mut not_cancelled = 0;
    for t in tasks {
        let (el, ok) = bounded(120.0, "timer-cancel trial", t).await???;
        if !ok {
            not_cancelled += 1;
        }
        ended.push(el);
    }
    if not_cancelled > 0 {
        log(format!(
            "timer-cancel: {not_cancelled} trials did not end as Cancelled"
        ));
    }
    emit(
        a,
        "timer-cancel",
        trials,
        0,
        1,
        vec![
            ("ended_p50_ms", r3(pct(&ended, 50.0))),
            ("ended_p99_ms", r3(pct(&ended, 99.0))),
            ("x_how", json!(format!("ctx.sleep(2 s) cancelled 0.2 s in by client.cancel(); ended = cancel() called to result() returning Cancelled; trials concurrent, started {stagger} ms apart"))),
            ("x_not_cancelled", json!(not_cancelled)),
        ],
    );
    Ok(())
}

// ------------------------------------------------------------------ child phases (replay, parked)

fn spawn_phase(a: &Args, phase: &str, db: &Path, schema: &str, n: usize) -> Res<Value> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--store")
        .arg(&a.store)
        .arg("--phase")
        .arg(phase)
        .arg("--db")
        .arg(db)
        .arg("--schema")
        .arg(schema)
        .arg("-n")
        .arg(n.to_string())
        .arg("--deadline")
        .arg(a.deadline_s.to_string())
        .arg("--pg-url")
        .arg(&a.pg_url)
        .stderr(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped());
    if let Some(c) = a.parked_cache {
        cmd.arg("--parked-cache").arg(c.to_string());
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("phase {phase} failed: {}", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("phase printed no result")?;
    Ok(serde_json::from_str(line)?)
}

fn now_epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits until the workflow's history shows a started timer after its last activity.
async fn wait_timer_recorded(client: &Client, id: &str, secs: f64) -> Res<usize> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let h = client.history(id).await?;
        if h.iter()
            .rev()
            .take(4)
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
        {
            return Ok(h.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("the timer of {id} was never recorded").into())
}

const REPLAY_SLEEP_MS: u64 = 1500;

async fn phase_main(a: Args) -> Res<()> {
    let t_proc = Instant::now();
    let phase = a.phase.clone().unwrap_or_default();
    let db = PathBuf::from(a.db.clone().ok_or("--db required")?);
    let schema = a.schema.clone().unwrap_or_else(|| "duraflow_bench".into());
    let n = a.n.ok_or("-n required")?;
    let st = open_store(&a, &db, &schema).await?;
    let client = Client::new(&st);
    let out = match phase.as_str() {
        "cancel-remote" => remote_cancel::child(&st).await?,
        "replay-build" => {
            let _w = start_worker(&st, None);
            let h = client
                .start(
                    replay_wf,
                    "replay-1",
                    ReplayIn {
                        n: n as u32,
                        sleep_ms: REPLAY_SLEEP_MS,
                    },
                )
                .await?;
            if !wait_until(a.deadline_s as f64, Duration::from_millis(5), || {
                REPLAY_DONE.load(Ordering::SeqCst)
            })
            .await
            {
                return Err("replay-build: the activities did not finish".into());
            }
            let due = now_epoch_ms() + REPLAY_SLEEP_MS;
            let events = wait_timer_recorded(&client, h.id(), 60.0).await?;
            json!({"built_s": t_proc.elapsed().as_secs_f64(), "due_ms": due, "events": events})
        }
        "replay-resume" => {
            // The timer is due by now (the parent waited); the new worker fires it, takes the workflow
            // task, reads the whole history and replays it (no cache in this process).
            let t0 = Instant::now();
            let _w = start_worker(&st, None);
            if !wait_until(a.deadline_s as f64, Duration::from_micros(200), || {
                REPLAY_DONE.load(Ordering::SeqCst)
            })
            .await
            {
                return Err("replay-resume: replay did not finish".into());
            }
            let mark = get_mark("replay_mark", "r").ok_or("no replay mark")?;
            let start = get_mark("replay_start", "r").ok_or("replay-resume: body never started")?;
            let out: i64 = bounded(
                60.0,
                "replayed workflow to end",
                client.handle::<i64>("replay-1").result(),
            )
            .await??;
            if out != n as i64 {
                return Err(format!("replay-resume: wrong result {out}").into());
            }
            json!({"replay_ms": ms(mark - start), "resume_ms": ms(mark - t0), "open_ms": ms(t0 - t_proc)})
        }
        "parked-build" => {
            let mut opts = WorkerOptions::default();
            if let Some(c) = a.parked_cache {
                opts.max_cached_workflows = c;
            }
            let cache = opts.max_cached_workflows;
            let _w = start_worker(&st, Some(opts));
            warmup(&client).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rss0 = rss_bytes();
            let t0 = Instant::now();
            let next = Arc::new(AtomicUsize::new(0));
            let mut starters = Vec::new();
            for _ in 0..32 {
                let client = client.clone();
                let next = next.clone();
                let deadline = a.deadline_s;
                starters.push(tokio::spawn(async move {
                    loop {
                        // at most 256 started but not yet at their timer
                        while next
                            .load(Ordering::SeqCst)
                            .saturating_sub(ARMED.load(Ordering::SeqCst))
                            >= 256
                        {
                            tokio::time::sleep(Duration::from_micros(500)).await;
                            if t0.elapsed().as_secs() > deadline {
                                return Err::<(), BoxErr>("parked-build: deadline".into());
                            }
                        }
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            return Ok(());
                        }
                        // the handle is dropped at once: only the workflow's rows and (if cached)
                        // its instance remain
                        client
                            .start(parked_wf, format!("parked-{i}"), i as i64)
                            .await?;
                    }
                }));
            }
            for s in starters {
                bounded(a.deadline_s as f64, "parked starters", s).await???;
            }
            let mut last_log = Instant::now();
            if !wait_until(a.deadline_s as f64, Duration::from_millis(10), || {
                if last_log.elapsed() > Duration::from_secs(10) {
                    log(format!(
                        "parked-build: {} of {n} parked",
                        ARMED.load(Ordering::SeqCst)
                    ));
                    last_log = Instant::now();
                }
                ARMED.load(Ordering::SeqCst) >= n
            })
            .await
            {
                return Err("parked-build: not every workflow reached its timer".into());
            }
            // every timer is durable: the last started ones have their TimerStarted
            for i in n.saturating_sub(64)..n {
                wait_timer_recorded(&client, &format!("parked-{i}"), 60.0).await?;
            }
            let t_parked = t0.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rss1 = rss_bytes();
            json!({"rss0": rss0, "rss1": rss1, "park_s": t_parked, "cache": cache})
        }
        "parked-resume" => {
            // A restart: the parked workflows have no workflow task until their timers fire, so the
            // new worker loads none of them. "Serving" = a probe workflow started after the worker
            // completes; then every parked workflow is woken (cancelled) so each one is replayed
            // (its activity and its sleep) and ends.
            let mut opts = WorkerOptions::default();
            if let Some(c) = a.parked_cache {
                opts.max_cached_workflows = c;
            }
            let _w = start_worker(&st, Some(opts));
            let h = client
                .start(
                    chain_wf,
                    next_id("probe"),
                    ChainIn {
                        tag: -1,
                        k: 1,
                        x: 0,
                    },
                )
                .await?;
            bounded(60.0, "probe workflow", h.result()).await??;
            let serving = t_proc.elapsed();
            let t_wake = Instant::now();
            let next = Arc::new(AtomicUsize::new(0));
            let mut cancellers = Vec::new();
            for _ in 0..64 {
                let client = client.clone();
                let next = next.clone();
                cancellers.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            return Ok::<(), BoxErr>(());
                        }
                        client.cancel(&format!("parked-{i}")).await?;
                    }
                }));
            }
            for c in cancellers {
                bounded(a.deadline_s as f64, "parked cancellers", c).await???;
            }
            let t_cancelled = t_wake.elapsed();
            let mut last_log = Instant::now();
            if !wait_until(a.deadline_s as f64, Duration::from_millis(1), || {
                if last_log.elapsed() > Duration::from_secs(10) {
                    log(format!(
                        "parked-resume: {} of {n} replayed",
                        ARMED.load(Ordering::SeqCst)
                    ));
                    last_log = Instant::now();
                }
                ARMED.load(Ordering::SeqCst) >= n
            })
            .await
            {
                return Err(format!(
                    "parked-resume: only {} of {n} replayed",
                    ARMED.load(Ordering::SeqCst)
                )
                .into());
            }
            let replayed = t_wake.elapsed();
            json!({"serving_ms": ms(serving), "wake_replayed_ms": ms(replayed), "cancel_calls_ms": ms(t_cancelled), "rss": rss_bytes()})
        }
        p => return Err(format!("unknown phase {p}").into()),
    };
    println!("{out}");
    // Die without shutdown, like a crash: what is parked stays in the store for the next process.
    std::process::exit(0);
}

async fn run_replay(a: &Args, dir: &Path) -> Res<()> {
    let (n, _, _) = sizes(a, "replay");
    let db = dir.join("replay.sqlite");
    let schema = format!("duraflow_replay_{}", std::process::id());
    drop_pg_schema(a, &schema).await;
    remove_sqlite(&db);
    log(format!(
        "replay: building a workflow with {n} completed activities (separate process)"
    ));
    let r = replay_phases(a, &db, &schema, n).await;
    remove_sqlite(&db);
    drop_pg_schema(a, &schema).await;
    r
}

async fn replay_phases(a: &Args, db: &Path, schema: &str, n: usize) -> Res<()> {
    let built = spawn_phase(a, "replay-build", db, schema, n)?;
    let events = built["events"].as_u64().unwrap_or(0);
    log(format!(
        "replay: built in {:.1} s ({events} history events); resuming in a new process once its timer is due",
        built["built_s"].as_f64().unwrap_or(0.0)
    ));
    let due = built["due_ms"].as_u64().unwrap_or(0);
    let wait = (due + 200).saturating_sub(now_epoch_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let res = spawn_phase(a, "replay-resume", db, schema, n)?;
    let replay_ms = res["replay_ms"].as_f64().ok_or("replay: no replay_ms")?;
    let resume_ms = res["resume_ms"].as_f64().ok_or("replay: no resume_ms")?;
    emit(
        a,
        "replay",
        1,
        n,
        1,
        vec![
            ("events_per_s", r1(n as f64 / (resume_ms / 1e3))),
            ("wall_ms", r3(resume_ms)),
            ("x_body_events_per_s", r1(n as f64 / (replay_ms / 1e3))),
            ("x_body_replay_ms", r3(replay_ms)),
            ("x_history_events", json!(events)),
            ("x_history_events_per_s", r1(events as f64 / (resume_ms / 1e3))),
            ("x_open_ms", r3(res["open_ms"].as_f64().unwrap_or(f64::NAN))),
            ("x_how", json!("events = completed activities (as the peers count steps); the workflow's timer is due when a new process starts its worker; wall = worker started -> the code is past its N-th activity (timer fired, task claimed, whole history read and replayed); x_body = the body's start -> past its N-th activity (excludes reading the history)")),
        ],
    );
    Ok(())
}

async fn run_parked(a: &Args, dir: &Path) -> Res<()> {
    let (n, _, _) = sizes(a, "parked");
    let db = dir.join("parked.sqlite");
    let schema = format!("duraflow_parked_{}", std::process::id());
    drop_pg_schema(a, &schema).await;
    remove_sqlite(&db);
    log(format!(
        "parked: parking {n} workflows on a 1 h timer (separate process)"
    ));
    let r = parked_phases(a, &db, &schema, n).await;
    remove_sqlite(&db);
    drop_pg_schema(a, &schema).await;
    r
}

async fn parked_phases(a: &Args, db: &Path, schema: &str, n: usize) -> Res<()> {
    let built = spawn_phase(a, "parked-build", db, schema, n)?;
    let rss0 = built["rss0"].as_f64().unwrap_or(0.0);
    let rss1 = built["rss1"].as_f64().unwrap_or(0.0);
    let cache = built["cache"].as_u64().unwrap_or(0) as usize;
    log(format!(
        "parked: parked in {:.1} s, RSS {:.1} -> {:.1} MiB; restarting",
        built["park_s"].as_f64().unwrap_or(0.0),
        rss0 / 1048576.0,
        rss1 / 1048576.0
    ));
    let res = spawn_phase(a, "parked-resume", db, schema, n)?;
    let cached = cache.min(n);
    emit(
        a,
        "parked",
        n,
        1,
        n,
        vec![
            ("bytes_per_parked", r1((rss1 - rss0) / n as f64)),
            ("recovered_ms", r3(res["serving_ms"].as_f64().unwrap_or(f64::NAN))),
            ("x_max_cached_workflows", json!(cache)),
            ("x_bytes_per_cached_instance", r1((rss1 - rss0) / cached.max(1) as f64)),
            ("x_park_s", r3(built["park_s"].as_f64().unwrap_or(f64::NAN))),
            ("x_wake_all_replayed_ms", r3(res["wake_replayed_ms"].as_f64().unwrap_or(f64::NAN))),
            ("x_cancel_calls_ms", r3(res["cancel_calls_ms"].as_f64().unwrap_or(f64::NAN))),
            ("x_how", json!("bytes = RSS delta / N while parked on ctx.sleep(1 h) (the worker caches at most x_max_cached_workflows instances; the rest are rows only); recovered = new process start -> worker serving (a probe workflow completed): a parked workflow has no task until its timer fires, so none is loaded at restart; x_wake_all_replayed = every parked workflow then cancelled by the client -> every one replayed its activity and re-entered its sleep")),
        ],
    );
    Ok(())
}

// ------------------------------------------------------------------ main

async fn bench_main(a: Args) -> Res<()> {
    let dir = std::env::temp_dir().join(format!("duraflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let schema = format!("duraflow_bench_{}", std::process::id());
    drop_pg_schema(&a, &schema).await;
    let r = run_workloads(&a, &dir, &schema).await;
    drop_pg_schema(&a, &schema).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

async fn run_workloads(a: &Args, dir: &Path, schema: &str) -> Res<()> {
    let db = dir.join("bench.sqlite");
    let in_process: Vec<&String> = a
        .workloads
        .iter()
        .filter(|w| !matches!(w.as_str(), "replay" | "parked"))
        .collect();
    let mut failed = Vec::new();
    if !in_process.is_empty() {
        let st = open_store(a, &db, schema).await?;
        log(format!("store: {}", verify_durability(a, &st).await?));
        let worker = start_worker(&st, None);
        let client = Client::new(&st);
        warmup(&client).await?;
        for w in &in_process {
            log(format!("running {w} {:?}", sizes(a, w)));
            let t = Instant::now();
            let r = match w.as_str() {
                "chain-seq" => run_chain_seq(a, &client).await,
                "chain-conc" => run_chain_conc(a, &client).await,
                "fanout" => run_fanout(a, &client).await,
                "cancel" => run_cancel(a, &client, schema).await,
                "timer-cancel" => run_timer_cancel(a, &client).await,
                "signal" => signal::run_signal(a, &client).await,
                "child" => child::run_child(a, &client).await,
                _ => Ok(()),
            };
            match r {
                Ok(()) => log(format!("{w} done in {:.1} s", t.elapsed().as_secs_f64())),
                Err(e) => {
                    log(format!("{w} FAILED: {e}"));
                    failed.push(w.to_string());
                }
            }
        }
        let _ = bounded(20.0, "worker shutdown", worker.shutdown()).await;
    }
    for w in a
        .workloads
        .iter()
        .filter(|w| matches!(w.as_str(), "replay" | "parked"))
    {
        log(format!("running {w} {:?}", sizes(a, w)));
        let t = Instant::now();
        let r = if w == "replay" {
            run_replay(a, dir).await
        } else {
            run_parked(a, dir).await
        };
        match r {
            Ok(()) => log(format!("{w} done in {:.1} s", t.elapsed().as_secs_f64())),
            Err(e) => {
                log(format!("{w} FAILED: {e}"));
                failed.push(w.to_string());
            }
        }
    }
    if !failed.is_empty() {
        return Err(format!("failed workloads: {}", failed.join(",")).into());
    }
    Ok(())
}

fn main() {
    // A mistake in the arguments: clap says which, with the usage, and exits with status 2.
    let a = <Args as clap::Parser>::parse();
    let deadline = a.deadline_s;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(deadline));
        eprintln!("[duraflow-bench] WATCHDOG: deadline {deadline} s exceeded, exiting");
        std::process::exit(3);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async move {
        if a.phase.is_some() {
            phase_main(a).await
        } else {
            bench_main(a).await
        }
    });
    if let Err(e) = r {
        eprintln!("[duraflow-bench] error: {e}");
        std::process::exit(1);
    }
}
