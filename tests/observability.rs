//! What duraflow says about its work: the log lines a default subscriber shows (a worker's start,
//! each failed attempt), `describe`'s account of why a workflow waits (last failure and attempt
//! count, "no pollers", a type no worker serves), and the metrics, read through a recorder of the
//! `metrics` facade installed by this test binary.
//!
//! The log lines and metrics of this binary's tests all go to one global subscriber and one global
//! recorder; each test reads only the lines that name its own workflows.

mod support;

use duraflow::prelude::*;
use duraflow::{telemetry, WorkflowStatus};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use support::{stop, wid, within, TestDb};

// ---------------------------------------------------------------------------------------------
// A log buffer behind a subscriber at the default level (INFO), and a metrics recorder.

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines so far that contain `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// What the recorder saw: each counter's total, each gauge's value, each histogram's count, by
/// `name{label=value,...}`.
#[derive(Default)]
struct Seen {
    counters: Mutex<HashMap<String, u64>>,
    gauges: Mutex<HashMap<String, f64>>,
    histograms: Mutex<HashMap<String, u64>>,
}

struct TestRecorder(Arc<Seen>);

struct Handle {
    key: String,
    seen: Arc<Seen>,
}

fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .seen
            .counters
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.seen
            .counters
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self
            .seen
            .gauges
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self
            .seen
            .gauges
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.seen
            .gauges
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, _value: f64) {
        *self
            .seen
            .histograms
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += 1;
    }
}

impl TestRecorder {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        Arc::new(Handle {
            key: render(key),
            seen: self.0.clone(),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

/// Installs the subscriber and the recorder, once for the binary.
fn observe() -> &'static Seen {
    static SEEN: OnceLock<Arc<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        let seen = Arc::new(Seen::default());
        metrics::set_global_recorder(TestRecorder(seen.clone())).expect("the only recorder");
        seen
    })
}

// ---------------------------------------------------------------------------------------------
// Definitions.

/// Fails its first attempts; its retry comes an hour later, so the test sees it waiting.
#[activity(retry(initial_interval = "1h", maximum_attempts = 3))]
async fn flaky_hour(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    Err(ActivityError::application(
        "Flaky",
        format!("attempt {} of {x} failed: disk full", ctx.info().attempt),
    ))
}

#[workflow]
async fn waits_on_flaky(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(flaky_hour, x).await?)
}

/// Fails twice, then succeeds.
#[activity(retry(initial_interval = "10ms", maximum_attempts = 5))]
async fn third_time_lucky(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    if ctx.info().attempt < 3 {
        return Err(ActivityError::application("NotYet", "try again"));
    }
    Ok(x + 1)
}

#[workflow]
async fn lucky_steps(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    let a = ctx.activity(third_time_lucky, x).await?;
    Ok(ctx.activity(third_time_lucky, a).await?)
}

#[workflow]
async fn nobody_serves_me(_ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(x)
}

#[workflow]
async fn something_else(_ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(x)
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Describes `id` until `done` holds (failing after a bound); returns that description.
async fn describe_until(
    client: &Client,
    id: &str,
    what: &str,
    done: impl Fn(&duraflow::WorkflowDescription) -> bool,
) -> duraflow::WorkflowDescription {
    let start = std::time::Instant::now();
    loop {
        let d = client.describe(id).await.unwrap();
        if done(&d) {
            return d;
        }
        assert!(
            start.elapsed() < LIMIT,
            "timed out waiting for: {what}; last: {d:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A failed attempt: one WARN line with the workflow, activity, attempt, error and next retry;
/// `describe` shows the pending activity's attempt count, last failure and when it runs again.
async fn failed_attempt_is_logged_and_described(db: &TestDb) {
    observe();
    let id = wid(db, "flaky-hour");
    let worker = Worker::new(&db.store)
        .register(flaky_hour)
        .register(waits_on_flaky)
        .start();
    let client = Client::new(&db.store);
    client.start(waits_on_flaky, &id, 7).await.unwrap();
    let d = describe_until(&client, &id, "the first attempt failed and waits", |d| {
        d.pending_activities
            .first()
            .is_some_and(|a| a.state == "pending" && a.attempt == 1)
    })
    .await;
    assert_eq!(d.status, WorkflowStatus::Running);
    let a = &d.pending_activities[0];
    assert_eq!(a.activity_type, "flaky_hour");
    assert_eq!(a.task_queue, "default");
    assert_eq!(
        a.last_failure,
        Some(ActivityError::application(
            "Flaky",
            "attempt 1 of 7 failed: disk full"
        ))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        a.due_ms > now + 30 * 60_000,
        "the next attempt is an hour away: {a:?}"
    );
    assert!(
        a.pollers.type_last_poll_ms.is_some(),
        "the worker serves it: {a:?}"
    );
    assert!(d.notes.is_empty(), "nothing amiss: {:?}", d.notes);

    let lines = log_lines(&id);
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(
        failed.len(),
        1,
        "one WARN line per failed attempt: {lines:#?}"
    );
    for part in [
        "activity attempt 1 of `flaky_hour` failed",
        "attempt 1 of 7 failed: disk full",
        "attempt 2 in",
        "activity_id=1",
        "attempt=1",
    ] {
        assert!(failed[0].contains(part), "`{part}` in {}", failed[0]);
    }
    stop(worker).await;
}

/// A typed start of a workflow no worker registers: `describe` says so, first "no pollers" (no
/// worker at all), then that the workers of its queue do not serve its type; a worker logs once at
/// start what it serves; the workflow runs once a worker registers it.
async fn start_nobody_serves_is_described(db: &TestDb) {
    observe();
    let id = wid(db, "nobody-serves");
    let client = Client::new(&db.store);
    let handle = client.start(nobody_serves_me, &id, 3).await.unwrap();
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    let task = d.pending_task.as_ref().expect("its workflow task waits");
    assert_eq!(task.state, "pending");
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    assert!(
        d.notes[0].contains("no pollers") && d.notes[0].contains("task queue `default`"),
        "{}",
        d.notes[0]
    );

    let other = Worker::new(&db.store).register(something_else).start();
    let other_id = other.id().to_string();
    let d = describe_until(&client, &id, "describe names the type nobody serves", |d| {
        d.notes
            .join("; ")
            .contains("no worker serves workflow type `nobody_serves_me`")
    })
    .await;
    let note = d.notes.join("; ");
    assert!(note.contains("register `nobody_serves_me`"), "{note}");
    let started = log_lines(&format!("worker {other_id} started"));
    assert_eq!(started.len(), 1, "one line at start: {started:?}");
    assert!(
        started[0].contains("task queues [default], workflows [something_else], activities []"),
        "{}",
        started[0]
    );

    let serving = Worker::new(&db.store).register(nobody_serves_me).start();
    let out: i64 = within(LIMIT, "the workflow runs", handle.result())
        .await
        .unwrap();
    assert_eq!(out, 3);
    stop(other).await;
    stop(serving).await;
}

/// The metrics move when a workflow runs: workflow tasks, attempts by outcome, step and attempt
/// latencies, commits of this store with their batch sizes, the sampled queue depths.
async fn metrics_move(db: &TestDb) {
    let seen = observe();
    let id = wid(db, "metrics");
    let worker = Worker::new(&db.store)
        .register(third_time_lucky)
        .register(lucky_steps)
        .start();
    let client = Client::new(&db.store);
    let h = client.start(lucky_steps, &id, 1).await.unwrap();
    assert_eq!(
        within(LIMIT, "the workflow ends", h.result())
            .await
            .unwrap(),
        3
    );
    stop(worker).await;

    let counter = |k: &str| seen.counters.lock().unwrap().get(k).copied().unwrap_or(0);
    let histogram = |k: &str| seen.histograms.lock().unwrap().get(k).copied().unwrap_or(0);
    let gauge = |k: &str| seen.gauges.lock().unwrap().get(k).copied();
    let outcome = |name: &str, o: &str| format!("{name}{{outcome={o}}}");
    assert!(counter(&outcome(telemetry::WORKFLOW_TASKS, "committed")) >= 1);
    assert!(counter(&outcome(telemetry::ACTIVITY_ATTEMPTS, "completed")) >= 2);
    assert!(counter(&outcome(telemetry::ACTIVITY_ATTEMPTS, "retried")) >= 4);
    assert!(histogram(&format!("{}{{}}", telemetry::WORKFLOW_TASK_SECONDS)) >= 1);
    assert!(histogram(&format!("{}{{}}", telemetry::ACTIVITY_ATTEMPT_SECONDS)) >= 6);
    assert!(histogram(&format!("{}{{}}", telemetry::STEP_SECONDS)) >= 2);
    let store = if db.store.kind() == "postgres" {
        "postgres"
    } else {
        "sqlite"
    };
    let store_label = |name: &str| format!("{name}{{store={store}}}");
    assert!(histogram(&store_label(telemetry::STORE_COMMIT_SECONDS)) >= 1);
    if store == "sqlite" {
        assert!(histogram(&store_label(telemetry::STORE_BATCH_SIZE)) >= 1);
    }
    for kind in ["workflow", "activity"] {
        let k = format!("{}{{kind={kind}}}", telemetry::QUEUE_DEPTH);
        assert!(gauge(&k).is_some(), "{k} sampled at the worker's start");
    }
    assert!(gauge(&format!("{}{{}}", telemetry::WORKFLOWS_HELD)).is_some());
}

store_tests!(memory:
    failed_attempt_is_logged_and_described,
    start_nobody_serves_is_described,
    metrics_move,
);
