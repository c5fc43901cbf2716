//! The public futures and handles are `Send` (and `Sync` where shared), so they work inside
//! `tokio::spawn` and across threads.

use duraflow::prelude::*;
use duraflow::{ActivityCall, Sleep, WorkerHandle, WorkflowHandle};

fn send<T: Send>(_: &T) {}
fn send_sync<T: Send + Sync>(_: &T) {}

#[workflow]
async fn wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _ = ctx;
    Ok(())
}

#[activity(heartbeat_timeout = "1s")]
async fn act(ctx: ActivityContext) -> Result<(), ActivityError> {
    ctx.heartbeat(&())?;
    Ok(())
}

#[allow(
    dead_code,
    unreachable_code,
    unused_variables,
    clippy::diverging_sub_expression
)]
fn public_futures_are_send(store: Store, client: Client, w: WorkflowContext, a: ActivityContext) {
    send_sync(&store);
    send_sync(&client);
    send_sync(&w);
    send_sync(&a);
    send(&client.start(wf, "id", ()));
    send(&client.start_by_name("wf", "id", serde_json::Value::Null));
    send(&client.describe("id"));
    send(&client.list(duraflow::ListFilter::all()));
    send(&client.history("id"));
    send(&client.cancel("id"));
    let handle: WorkflowHandle<()> = client.handle("id");
    send_sync(&handle);
    send(&handle.result());
    let worker: WorkerHandle = todo!();
    send(&worker.shutdown());
    let call: ActivityCall<(), duraflow::Cancellable> = w.activity(act, ());
    send(&call);
    let started = w.activity(act, ()).start();
    send(&started);
    let sleep: Sleep = w.sleep(Duration::from_secs(1));
    send(&sleep);
    send(&w.cancelled());
    send(&a.cancelled());
    let detached: WorkflowContext = w.detached();
    send_sync(&detached);
    send(&detached.activity(act, ()).start());
    send(&detached.sleep(Duration::from_secs(1)));
}

#[test]
fn send_and_sync_are_checked_at_compile_time() {
    // The checks are in the function above; compiling this file is the test.
    let _ = public_futures_are_send as fn(_, _, _, _);
}
