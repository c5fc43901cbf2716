//! `duraflow::testing::Replayer`: histories exported with `history_json` replay on the code that
//! wrote them, a deliberately broken change is caught with the event and the fix named, the same
//! change behind `ctx.patched` passes, and unreadable input says why.

mod support;

use duraflow::prelude::*;
use duraflow::testing::{ReplayOutcome, Replayer};
use duraflow::{WorkerOptions, WorkflowStatus};
use support::{stop, within};

#[activity]
async fn reserve(order: u64) -> Result<u64, ActivityError> {
    Ok(order)
}

#[activity]
async fn charge(order: u64) -> Result<u64, ActivityError> {
    Ok(order * 100)
}

#[activity]
async fn charge_with_fee(order: u64) -> Result<u64, ActivityError> {
    Ok(order * 100 + 30)
}

/// The code the histories were recorded with.
#[workflow(name = "order")]
async fn order_v1(ctx: WorkflowContext, order: u64) -> Result<u64, WorkflowError> {
    ctx.activity(reserve, order).await?;
    ctx.sleep(Duration::from_millis(5)).await?;
    Ok(ctx.activity(charge, order).await?)
}

/// A deliberately broken change: another activity where the history has `charge`.
#[workflow(name = "order")]
async fn order_broken(ctx: WorkflowContext, order: u64) -> Result<u64, WorkflowError> {
    ctx.activity(reserve, order).await?;
    ctx.sleep(Duration::from_millis(5)).await?;
    Ok(ctx.activity(charge_with_fee, order).await?)
}

/// Another broken change: the timer's duration.
#[workflow(name = "order")]
async fn order_longer_wait(ctx: WorkflowContext, order: u64) -> Result<u64, WorkflowError> {
    ctx.activity(reserve, order).await?;
    ctx.sleep(Duration::from_secs(60)).await?;
    Ok(ctx.activity(charge, order).await?)
}

/// The same change done right: behind a patch.
#[workflow(name = "order")]
async fn order_patched(ctx: WorkflowContext, order: u64) -> Result<u64, WorkflowError> {
    ctx.activity(reserve, order).await?;
    ctx.sleep(Duration::from_millis(5)).await?;
    if ctx.patched("fee") {
        Ok(ctx.activity(charge_with_fee, order).await?)
    } else {
        Ok(ctx.activity(charge, order).await?)
    }
}

fn registry(order: impl duraflow::Register) -> Registry {
    Registry::new()
        .register(reserve)
        .register(charge)
        .register(charge_with_fee)
        .register(order)
}

/// Runs two orders with v1 on a memory store and exports their histories into a folder.
async fn recorded_histories() -> tempfile::TempDir {
    let store = Store::memory().unwrap();
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(50);
    let w = Worker::new(&store)
        .options(o)
        .register(reserve)
        .register(charge)
        .register(order_v1)
        .start();
    let client = Client::new(&store);
    let dir = tempfile::tempdir().unwrap();
    for id in ["order-1", "order-2"] {
        let h = client.start(order_v1, id, 7).await.unwrap();
        assert_eq!(
            within(Duration::from_secs(20), id, h.result())
                .await
                .unwrap(),
            700
        );
        let json = client.history_json(id).await.unwrap();
        std::fs::write(dir.path().join(format!("{id}.json")), json.to_string()).unwrap();
    }
    assert_eq!(
        client.describe("order-1").await.unwrap().status,
        WorkflowStatus::Completed
    );
    stop(w).await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_change_is_caught_and_a_patched_one_passes() {
    let dir = recorded_histories().await;

    let report = Replayer::new(registry(order_v1)).replay_dir(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.histories.len(), 2);
    println!("{report}");

    let report = Replayer::new(registry(order_broken)).replay_dir(dir.path());
    assert!(!report.is_ok());
    let text = report.to_string();
    println!("{text}");
    assert!(text.contains("2 failed"), "{text}");
    let first = &report.histories[0];
    assert!(first.source.ends_with("order-1.json"), "{}", first.source);
    let ReplayOutcome::Mismatch(m) = &first.outcome else {
        panic!("expected a mismatch: {report}");
    };
    // Events: 1 started, 2 reserve scheduled, 3 marker, 4 started, 5 completed, 6 timer
    // started, 7 marker, 8 fired, 9 charge scheduled.
    assert_eq!(m.event_seq, 9, "{m}");
    assert_eq!(
        m.recorded.as_deref(),
        Some("activity scheduled #3 of `charge`")
    );
    assert_eq!(
        m.produced.as_deref(),
        Some("activity scheduled #3 of `charge_with_fee`")
    );
    assert!(text.contains("history event #9"), "names the event: {text}");
    assert!(text.contains("ctx.patched("), "names the fix: {text}");

    let report = Replayer::new(registry(order_longer_wait)).replay_dir(dir.path());
    let ReplayOutcome::Mismatch(m) = &report.histories[1].outcome else {
        panic!("expected a mismatch: {report}");
    };
    assert_eq!(m.event_seq, 6);
    assert_eq!(m.recorded.as_deref(), Some("timer #2 started (5ms)"));
    assert_eq!(m.produced.as_deref(), Some("timer #2 started (1m)"));

    let report = Replayer::new(registry(order_patched)).replay_dir(dir.path());
    assert!(report.is_ok(), "the patched change replays: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_json_and_bad_input() {
    let dir = recorded_histories().await;
    let replayer = Replayer::new(registry(order_v1));
    let one = std::fs::read_to_string(dir.path().join("order-1.json")).unwrap();

    // One history as a string; several in one array; an object naming its workflow.
    assert!(replayer.replay_json(&one).is_ok());
    let two = format!("[{one}, {one}]");
    assert_eq!(replayer.replay_json(&two).histories.len(), 2);
    let named = format!(r#"{{"workflow_id": "order-1", "events": {one}}}"#);
    let r = replayer.replay_json(&named);
    assert!(r.is_ok(), "{r}");
    assert_eq!(r.histories[0].workflow_id, "order-1");
    // Files and folders, as a command line names them.
    let r = replayer.replay_paths(&[dir.path().join("order-2.json"), dir.path().to_path_buf()]);
    assert_eq!(r.histories.len(), 3, "{r}");
    assert!(r.is_ok(), "{r}");

    let failed = |report: duraflow::testing::ReplayReport| -> String {
        assert!(!report.is_ok());
        match &report.histories[0].outcome {
            ReplayOutcome::Failed(why) => why.clone(),
            other => panic!("expected a failure, got {other:?}"),
        }
    };
    let why = failed(replayer.replay_json("{not json"));
    assert!(why.contains("not JSON"), "{why}");
    let why = failed(replayer.replay_json(r#"{"hello": 1}"#));
    assert!(why.contains("not a history"), "{why}");
    let why = failed(Replayer::new(Registry::new()).replay_json(&one));
    assert!(why.contains("no workflow named `order`"), "{why}");
    let newer = one.replacen(
        "\"workflow_task_completed\"",
        "\"signal_from_the_future\"",
        1,
    );
    let why = failed(replayer.replay_json(&newer));
    assert!(why.contains("newer duraflow"), "{why}");
    let why = failed(replayer.replay_dir(dir.path().join("missing")));
    assert!(why.contains("cannot read the folder"), "{why}");
    let empty = tempfile::tempdir().unwrap();
    let r = replayer.replay_dir(empty.path());
    assert!(!r.is_ok(), "an empty folder is not a pass");
}
