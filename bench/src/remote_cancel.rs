//! The cross-process half of the `cancel` workload (Postgres only): the same trials, with the
//! heartbeating activity running in another process (this binary with `--phase cancel-remote`,
//! polling its own task queue). `x_cross_process_seen` = the workflow code's `handle.cancel()`
//! in this process to `ctx.cancelled()` resolving in the other, both stamped with the system
//! clock (one machine, one clock).

use super::*;
use std::io::{BufRead, Read, Write};

/// The task queue only the other process polls.
const REMOTE_QUEUE: &str = "bench-remote";

fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// When each trial's workflow called `handle.cancel()` (the live run only), epoch µs.
fn cancel_stamps() -> &'static Mutex<HashMap<String, u64>> {
    static M: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// When the activity (in the other process) heard each cancel, epoch µs.
fn seen_stamps() -> &'static Mutex<HashMap<String, u64>> {
    static M: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// When each trial's activity started (in the other process), epoch µs.
fn start_stamps() -> &'static Mutex<HashMap<String, u64>> {
    static M: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// As `heartbeat_act`, stamping the system clock when it starts and when it hears the cancel.
#[activity(heartbeat_timeout = "10s")]
pub async fn remote_heartbeat_act(
    ctx: ActivityContext,
    id: String,
    tick_ms: u64,
) -> Result<(), ActivityError> {
    start_stamps()
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_insert_with(epoch_us);
    let mut i = 0u64;
    loop {
        tokio::select! {
            _ = ctx.cancelled() => {
                seen_stamps().lock().unwrap().entry(id).or_insert_with(epoch_us);
                return Err(ActivityError::cancelled());
            }
            _ = tokio::time::sleep(Duration::from_millis(tick_ms)) => {
                i += 1;
                if let Err(e) = ctx.heartbeat(&i) {
                    seen_stamps().lock().unwrap().entry(id).or_insert_with(epoch_us);
                    return Err(e);
                }
            }
        }
    }
}

/// `cancel_wf` with the activity on the other process's task queue.
#[workflow]
pub async fn remote_cancel_wf(ctx: WorkflowContext, input: CancelIn) -> Result<u32, WorkflowError> {
    let h = ctx
        .activity(remote_heartbeat_act, (input.id.clone(), input.tick_ms))
        .task_queue(REMOTE_QUEUE)
        .start_to_close_timeout(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(10))
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(input.delay_ms)).await?;
    cancel_stamps()
        .lock()
        .unwrap()
        .entry(input.id.clone())
        .or_insert_with(epoch_us);
    h.cancel();
    match h.await {
        Err(e) if e.is_cancelled() => Ok(1),
        other => Err(WorkflowError::application(
            "Unexpected",
            format!("the activity should have ended cancelled: {other:?}"),
        )),
    }
}

/// The other process: runs `remote_heartbeat_act` until its stdin closes, then prints the stamps.
pub async fn child(st: &Store) -> Res<Value> {
    let w = Worker::new(st)
        .task_queue(REMOTE_QUEUE)
        .register(remote_heartbeat_act)
        .start();
    println!("ready");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    let _ = bounded(20.0, "remote worker shutdown", w.shutdown()).await;
    let seen = seen_stamps().lock().unwrap().clone();
    let started = start_stamps().lock().unwrap().clone();
    Ok(json!({ "seen": seen, "started": started }))
}

/// Runs `trials` cross-process trials: the `cancel() -> seen` latencies (ms), the failed count,
/// and how many were cancelled before their activity started in the other process (a claim slower
/// than the 30-38 ms timer: the cancel withdrew it, nothing to hear; left out, as in process).
pub async fn run(
    a: &Args,
    client: &Client,
    schema: &str,
    trials: usize,
) -> Res<(Vec<f64>, usize, usize)> {
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .args([
            "--store",
            &a.store,
            "--phase",
            "cancel-remote",
            "--db",
            "unused",
        ])
        .args(["--schema", schema, "-n", "0", "--pg-url", &a.pg_url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let mut out = std::io::BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the remote worker did not start: {line:?}").into());
    }
    let tick = a.tick_ms;
    let mut ids = Vec::new();
    let mut failures = 0;
    for t in 0..trials {
        let id = next_id("xcancel");
        let delay_ms = 30 + (t % 5) as u64 * tick / 5;
        let input = CancelIn {
            id: id.clone(),
            tick_ms: tick,
            delay_ms,
        };
        let h = client.start(remote_cancel_wf, id.clone(), input).await?;
        match bounded(30.0, "cross-process cancel trial", h.result()).await? {
            Ok(1) => ids.push(id),
            r => {
                failures += 1;
                log(format!("cross-process cancel trial {t}: {r:?}"));
            }
        }
    }
    drop(child.stdin.take());
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the remote worker failed: {status}").into());
    }
    let v: Value = serde_json::from_str(
        rest.lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or("the remote worker printed no result")?,
    )?;
    let called = cancel_stamps().lock().unwrap().clone();
    let mut seen_ms = Vec::new();
    let mut not_started = 0;
    for id in ids {
        let started = v["started"][&id].as_u64();
        match (called.get(&id), started, v["seen"][&id].as_u64()) {
            (Some(&c), Some(st), Some(s)) if st < c => {
                seen_ms.push(s.saturating_sub(c) as f64 / 1000.0)
            }
            (Some(&c), st, _) if st.is_none_or(|st| st >= c) => not_started += 1,
            _ => failures += 1,
        }
    }
    Ok((seen_ms, failures, not_started))
}
