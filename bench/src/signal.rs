//! The `signal` workload (BENCH.md), as the peers' runners measure it:
//! (a) latency: N trials one after another; a workflow waits on its signal channel (its first
//! workflow task is committed: the marker is in its history), the client waits a further
//! 2-24.5 ms varying by trial, then calls `client.signal(..)`; signal = that call -> the workflow
//! body holds the value (stamped the first time only, never on a replay).
//! (b) throughput: C workflows each receive K signals; once all wait, min(10, C) client tasks send
//! the C x K signals round-robin; signals_per_s = C*K / (first send -> all C workflows ended).

use super::*;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sig(pub i64);

/// Waits for one signal; stamps the moment its body holds the value.
#[workflow(signals(Sig))]
pub async fn signal_wf(ctx: WorkflowContext, id: String) -> Result<i64, WorkflowError> {
    let v = ctx.signal_channel::<Sig>().recv().await?.0;
    mark_first("signal_held", &id);
    Ok(v)
}

/// Receives `k` signals and sums them.
#[workflow(signals(Sig))]
pub async fn recv_loop_wf(ctx: WorkflowContext, k: u32) -> Result<i64, WorkflowError> {
    let mut ch = ctx.signal_channel::<Sig>();
    let mut sum = 0;
    for _ in 0..k {
        sum += ch.recv().await?.0;
    }
    Ok(sum)
}

/// Whether the workflow committed its first task (it waits on its channel then).
async fn waiting(client: &Client, id: &str) -> Res<bool> {
    Ok(client
        .history(id)
        .await?
        .iter()
        .any(|e| matches!(e.kind, EventKind::WorkflowTaskCompleted { .. })))
}

pub(crate) async fn run_signal(a: &Args, client: &Client) -> Res<()> {
    let (trials, k, c) = sizes(a, "signal");
    let mut lat = Vec::new();
    let mut send_ms = Vec::new();
    for t in 0..trials + 3 {
        // 3 unrecorded warm-up trials
        let id = next_id("sig");
        let h = client.start(signal_wf, id.clone(), id.clone()).await?;
        let end = Instant::now() + Duration::from_secs(10);
        while !waiting(client, &id).await? {
            if Instant::now() > end {
                return Err("signal: workflow never waited on its channel".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_micros(2000 + (t % 10) as u64 * 2500)).await;
        let t0 = Instant::now();
        client.signal(signal_wf, &id, Sig(t as i64)).await?;
        let t1 = Instant::now();
        if !wait_until(30.0, Duration::from_micros(100), || {
            get_mark("signal_held", &id).is_some()
        })
        .await
        {
            return Err("signal: not received in 30 s".into());
        }
        let out = bounded(30.0, "signal workflow", h.result()).await??;
        if out != t as i64 {
            return Err(format!("signal: wrong value {out}, sent {t}").into());
        }
        if t >= 3 {
            let at = get_mark("signal_held", &id).unwrap_or(t1);
            lat.push(ms(at.saturating_duration_since(t0)));
            send_ms.push(ms(t1 - t0));
        }
    }
    let ids: Vec<String> = (0..c).map(|_| next_id("sigtp")).collect();
    let mut hs = Vec::with_capacity(c);
    for id in &ids {
        hs.push(client.start(recv_loop_wf, id.clone(), k as u32).await?);
    }
    for id in &ids {
        let end = Instant::now() + Duration::from_secs(60);
        while !waiting(client, id).await? {
            if Instant::now() > end {
                return Err("signal throughput: not every workflow waits".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let s = 10.min(c.max(1));
    let ids = Arc::new(ids);
    let t0 = Instant::now();
    let mut senders = Vec::new();
    for j in 0..s {
        let client = client.clone();
        let ids = ids.clone();
        senders.push(tokio::spawn(async move {
            for r in 0..k {
                for w in ids.iter().skip(j).step_by(s) {
                    client.signal(recv_loop_wf, w, Sig((r + 1) as i64)).await?;
                }
            }
            Ok::<(), BoxErr>(())
        }));
    }
    let want = (k * (k + 1) / 2) as i64;
    for h in hs {
        let out = bounded(300.0, "signal throughput workflow", h.result()).await??;
        if out != want {
            return Err(format!("signal throughput: wrong sum {out} != {want}").into());
        }
    }
    let el = t0.elapsed().as_secs_f64();
    for t in senders {
        bounded(30.0, "signal sender", t).await???;
    }
    let wake = if a.store == "postgres" {
        "in-process wake-up (Postgres NOTIFY for other processes)"
    } else {
        "in-process wake-up, no polling"
    };
    emit(
        a,
        "signal",
        trials,
        k,
        c,
        vec![
            ("signal_p50_ms", r3(pct(&lat, 50.0))),
            ("signal_p99_ms", r3(pct(&lat, 99.0))),
            ("signals_per_s", r1((c * k) as f64 / el)),
            ("x_send_call_p50_ms", r3(pct(&send_ms, 50.0))),
            ("x_send_call_p99_ms", r3(pct(&send_ms, 99.0))),
            (
                "x_how",
                json!(format!(
                    "workflow waits on ctx.signal_channel (its first task committed), then 2-24.5 ms; signal = client.signal() called -> body holds the value; throughput: {c} workflows x {k} recv, {s} sender tasks, first send -> all ended; {wake}"
                )),
            ),
        ],
    );
    Ok(())
}
