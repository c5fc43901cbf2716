//! The `child` workload (BENCH.md), as the peers' runners measure it: one workflow starts N child
//! workflows (each one `add` activity) with `ctx.child_workflow(..).start()`, then awaits each
//! handle in order and checks the sum. wall = parent started -> parent's result; children/s =
//! N / wall. A child's start is committed with the parent's workflow task; its end is appended
//! to the parent's history, and wakes the parent, in the transaction that closes the child.

use super::*;

/// A child: one `add` activity.
#[workflow]
pub async fn add_child_wf(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(add, (-1i64, x)).await?)
}

/// Starts `n` children at once, then joins them in order.
#[workflow]
pub async fn child_parent_wf(ctx: WorkflowContext, n: u32) -> Result<i64, WorkflowError> {
    let id = ctx.info().workflow_id;
    let handles: Vec<_> = (0..n as i64)
        .map(|i| {
            ctx.child_workflow(add_child_wf, i)
                .id(format!("{id}-{i}"))
                .start()
        })
        .collect();
    let mut sum = 0i64;
    for h in handles {
        sum += h.await?;
    }
    Ok(sum)
}

pub(crate) async fn run_child(a: &Args, client: &Client) -> Res<()> {
    let (n, _, _) = sizes(a, "child");
    let h = client
        .start(child_parent_wf, next_id("child-warm"), 10)
        .await?;
    if bounded(60.0, "child warm-up", h.result()).await?? != 55 {
        return Err("child: wrong warm-up sum".into());
    }
    let t0 = Instant::now();
    let h = client
        .start(child_parent_wf, next_id("child"), n as u32)
        .await?;
    let sum = bounded(600.0, "child parent workflow", h.result()).await??;
    let el = t0.elapsed();
    let want: i64 = (1..=n as i64).sum();
    if sum != want {
        return Err(format!("child: wrong sum {sum} != {want}").into());
    }
    emit(
        a,
        "child",
        1,
        n,
        n,
        vec![
            ("wall_ms", r3(ms(el))),
            ("children_per_s", r1(n as f64 / el.as_secs_f64())),
            ("x_how", json!("one workflow: N x ctx.child_workflow(..).start() (child with one add activity) in one task, then each handle awaited in order; start() to result()")),
        ],
    );
    Ok(())
}
