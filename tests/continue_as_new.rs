//! Continue-as-new end to end, on memory, a SQLite file and Postgres: a workflow that loops
//! 10,000 times and continues as new every 100 iterations keeps each run's history small and
//! ends with the right total; every run stays readable (its own history, which replays on its own);
//! `ctx.info()` names the run before; unread signals are delivered to the next run.

mod support;

use duraflow::prelude::*;
use duraflow::testing::Replayer;
use duraflow::{EventKind, Registry, Store, Worker, WorkerOptions, WorkflowStatus};
use support::{count, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(120);

#[activity]
async fn add(pair: (u64, u64)) -> Result<u64, ActivityError> {
    Ok(pair.0 + pair.1)
}

/// The state a run hands to the next: iterations done, the running total, how many runs so far.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub runs: u64,
}

/// Adds 1..=10,000; every tenth addition is an activity, the others side effects; a new run every
/// 100 iterations.
#[workflow]
async fn summer(ctx: WorkflowContext, p: Progress) -> Result<Progress, WorkflowError> {
    let Progress {
        mut done,
        mut total,
        runs,
    } = p;
    let first = done;
    while done < 10_000 {
        done += 1;
        total = if done % 10 == 0 {
            ctx.activity(add, (total, done)).await?
        } else {
            let n: u64 = ctx.side_effect(|| done);
            total + n
        };
        if done - first == 100 && done < 10_000 {
            return ctx.continue_as_new(Progress {
                done,
                total,
                runs: runs + 1,
            });
        }
    }
    Ok(Progress {
        done,
        total,
        runs: runs + 1,
    })
}

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note(pub String);

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Next;

/// Run 1 never reads its `Note`s: on `Next` it continues as new. Run 2 reads the notes it was
/// handed and returns them with the run before it.
#[workflow(signals(Note, Next))]
async fn relay(ctx: WorkflowContext, second: bool) -> Result<(Vec<String>, String), WorkflowError> {
    if !second {
        ctx.signal_channel::<Next>().recv().await?;
        return ctx.continue_as_new(true);
    }
    let mut notes = ctx.signal_channel::<Note>();
    let mut got = Vec::new();
    while let Some(n) = notes.try_recv() {
        got.push(n.0);
    }
    let previous = ctx.info().previous_run_id.unwrap_or_default();
    Ok((got, previous))
}

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    Worker::new(store)
        .options(o)
        .register(summer)
        .register(add)
        .register(relay)
}

async fn loops_ten_thousand_times_in_small_runs(db: &TestDb) {
    let id = wid(db, "summer");
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let start = std::time::Instant::now();
    let h = client
        .start(
            summer,
            &id,
            Progress {
                done: 0,
                total: 0,
                runs: 0,
            },
        )
        .await
        .unwrap();
    let out = within(LIMIT, "the 10,000 iterations", h.result())
        .await
        .unwrap();
    println!(
        "{}: 10,000 iterations in 100 runs took {:?}",
        db.store.kind(),
        start.elapsed()
    );
    assert_eq!(out.done, 10_000);
    assert_eq!(
        out.total,
        10_000 * 10_001 / 2,
        "the right total, nothing lost or added twice"
    );
    assert_eq!(out.runs, 100);

    let runs = client.runs(&id).await.unwrap();
    assert_eq!(runs.len(), 100, "one run per 100 iterations");
    let last = runs.last().unwrap();
    assert_eq!(last.status, WorkflowStatus::Completed);
    assert_eq!(last.next_run_id, None);
    for (i, run) in runs.iter().enumerate() {
        assert!(
            run.history_length < 500,
            "run {i} has {} events",
            run.history_length
        );
        let h = client.run_history(&id, &run.run_id).await.unwrap();
        assert_eq!(h.len() as u64, run.history_length);
        assert!(
            matches!(&h[0].kind, EventKind::WorkflowStarted { run_id, .. } if *run_id == run.run_id)
        );
        if i > 0 {
            assert_eq!(
                h[1].kind,
                EventKind::RunContinued {
                    previous_run_id: runs[i - 1].run_id.clone(),
                    cause: "continue_as_new".into()
                }
            );
        }
        if i + 1 < runs.len() {
            assert_eq!(run.status, WorkflowStatus::ContinuedAsNew);
            assert_eq!(
                run.next_run_id.as_deref(),
                Some(runs[i + 1].run_id.as_str())
            );
            assert!(matches!(
                &h.last().unwrap().kind,
                EventKind::WorkflowTaskCompleted { .. }
            ));
            assert_eq!(
                count(
                    &h,
                    |k| matches!(k, EventKind::WorkflowContinuedAsNew { new_run_id, .. } if *new_run_id == runs[i + 1].run_id)
                ),
                1
            );
        }
    }
    // `describe` and `history` show the current (last) run.
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.run_id, last.run_id);
    assert_eq!(
        client.history(&id).await.unwrap().len() as u64,
        last.history_length
    );
    // Each run's exported history replays on its own.
    let json = client
        .run_history_json(&id, &runs[41].run_id)
        .await
        .unwrap();
    let report = Replayer::new(Registry::new().register(summer).register(add))
        .replay_json(&json.to_string());
    assert!(report.is_ok(), "{report}");
    stop(w).await;
}

async fn unread_signals_go_to_the_next_run(db: &TestDb) {
    let id = wid(db, "relay");
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let h = client.start(relay, &id, false).await.unwrap();
    let first_run = client.describe(&id).await.unwrap().run_id;
    for n in ["a", "b", "c"] {
        client.signal(relay, &id, Note(n.into())).await.unwrap();
    }
    client.signal(relay, &id, Next).await.unwrap();
    let (notes, previous) = within(LIMIT, "the second run", h.result()).await.unwrap();
    assert_eq!(
        notes,
        vec!["a", "b", "c"],
        "every unread signal, in order, once"
    );
    assert_eq!(previous, first_run, "ctx.info() names the run before");
    let runs = client.runs(&id).await.unwrap();
    assert_eq!(runs.len(), 2);
    let second = client.run_history(&id, &runs[1].run_id).await.unwrap();
    assert_eq!(
        count(&second, |k| matches!(k, EventKind::SignalReceived { .. })),
        3,
        "the notes were handed over, Next was read by the first run"
    );
    // An unknown run is a clear error.
    let e = client.run_history(&id, "no-such-run").await.unwrap_err();
    assert!(e.to_string().contains("no run `no-such-run`"), "{e}");
    stop(w).await;
}

store_tests!(memory: loops_ten_thousand_times_in_small_runs, unread_signals_go_to_the_next_run);
