//! Metrics and traces: what a worker and a store report, and how to collect it.
//!
//! # Metrics
//!
//! duraflow records its metrics through the [`metrics`](https://docs.rs/metrics) facade: install
//! any recorder (`metrics-exporter-prometheus`, a StatsD exporter, ...) at the start of your
//! process and they appear there. With no recorder installed each call is a no-op that allocates
//! nothing (the names and labels are `'static`).
//!
//! | name | type | labels | what it counts or measures |
//! |---|---|---|---|
//! | `duraflow_workflow_tasks_total` | counter | `outcome`: `committed`, `lease_lost`, `error`, `held` | workflow tasks a worker ran, by how they ended (`error`: retried when its lease ends; `held`: see `describe`) |
//! | `duraflow_workflow_task_seconds` | histogram | | time to run a workflow task and commit it |
//! | `duraflow_activity_attempts_total` | counter | `outcome`: `completed`, `failed`, `retried`, `cancelled`, `timed_out` | activity attempts, by how they ended (`retried`: failed, another attempt follows) |
//! | `duraflow_activity_attempt_seconds` | histogram | | an attempt's run time, from its start to its result |
//! | `duraflow_step_seconds` | histogram | | step latency: an activity's scheduling to its outcome, retries included |
//! | `duraflow_store_commit_seconds` | histogram | `store`: `sqlite`, `postgres` | one durable commit (SQLite: one group commit; Postgres: one transaction) |
//! | `duraflow_store_batch_size` | histogram | `store`: `sqlite` | store calls one SQLite group commit carries |
//! | `duraflow_queue_depth` | gauge | `kind`: `workflow`, `activity` | tasks due now in the worker's task queues, waiting for a worker (sampled every 10 s) |
//! | `duraflow_workflows_held` | gauge | | workflows held (a replay that no longer matches, or unreadable data; sampled every 10 s) |
//!
//! Local activities run inside their workflow task and are not counted as attempts.
//!
//! The names are the constants of this module; a test installs a recorder, runs a workflow and
//! checks that each one moved.
//!
//! # Traces
//!
//! Every run a worker holds in memory has a `workflow_run` span (fields `workflow_id`, `run_id`,
//! `workflow_type`), opened with no parent: it is the root of the run's trace. Under it, a
//! `workflow_task` span per workflow task and an `activity_attempt` span per attempt (fields
//! `workflow_id`, `run_id`, `activity_type`, `activity_id`, `attempt`). An OpenTelemetry subscriber
//! (`tracing-opentelemetry`) therefore shows one trace per run, with its tasks and attempts as
//! children, for as long as one worker keeps the run cached (a run replayed by another worker or
//! after a restart starts a new trace, which carries the same `run_id`):
//!
//! ```ignore
//! use tracing_subscriber::prelude::*;
//! let tracer = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?; // your exporter
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_batch_exporter(tracer)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())          // the log lines, as before
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service")))
//!     .init();
//! ```
//!
//! A run's root span ends (and is exported) when the run ends or leaves the worker's cache.
//!
//! # Logs
//!
//! With any subscriber at the default level (`INFO`), a worker says at start what it serves (its
//! task queues, workflow and activity names), and each failed attempt is a `WARN` line with the
//! workflow id, the activity, the attempt, the error and when the next attempt runs.

/// Counter: workflow tasks, label `outcome` (`committed`, `lease_lost`, `error`, `held`).
pub const WORKFLOW_TASKS: &str = "duraflow_workflow_tasks_total";
/// Histogram (seconds): running a workflow task and committing it.
pub const WORKFLOW_TASK_SECONDS: &str = "duraflow_workflow_task_seconds";
/// Counter: activity attempts, label `outcome` (`completed`, `failed`, `retried`, `cancelled`,
/// `timed_out`).
pub const ACTIVITY_ATTEMPTS: &str = "duraflow_activity_attempts_total";
/// Histogram (seconds): an attempt's run time.
pub const ACTIVITY_ATTEMPT_SECONDS: &str = "duraflow_activity_attempt_seconds";
/// Histogram (seconds): an activity's scheduling to its outcome (the step latency).
pub const STEP_SECONDS: &str = "duraflow_step_seconds";
/// Histogram (seconds): one durable commit, label `store` (`sqlite`, `postgres`).
pub const STORE_COMMIT_SECONDS: &str = "duraflow_store_commit_seconds";
/// Histogram: store calls per SQLite group commit, label `store` (`sqlite`).
pub const STORE_BATCH_SIZE: &str = "duraflow_store_batch_size";
/// Gauge: tasks due in the worker's task queues, label `kind` (`workflow`, `activity`).
pub const QUEUE_DEPTH: &str = "duraflow_queue_depth";
/// Gauge: workflows held.
pub const WORKFLOWS_HELD: &str = "duraflow_workflows_held";

/// Every metric name, for exporters that want to describe them up front.
pub const ALL: &[&str] = &[
    WORKFLOW_TASKS,
    WORKFLOW_TASK_SECONDS,
    ACTIVITY_ATTEMPTS,
    ACTIVITY_ATTEMPT_SECONDS,
    STEP_SECONDS,
    STORE_COMMIT_SECONDS,
    STORE_BATCH_SIZE,
    QUEUE_DEPTH,
    WORKFLOWS_HELD,
];

/// How a workflow task ended, for [`WORKFLOW_TASKS`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum TaskOutcome {
    Committed,
    LeaseLost,
    Error,
    Held,
}

// Each label value is a literal, so the macros build a static key: nothing is allocated.
pub(crate) fn workflow_task(outcome: TaskOutcome) {
    let c = match outcome {
        TaskOutcome::Committed => metrics::counter!(WORKFLOW_TASKS, "outcome" => "committed"),
        TaskOutcome::LeaseLost => metrics::counter!(WORKFLOW_TASKS, "outcome" => "lease_lost"),
        TaskOutcome::Error => metrics::counter!(WORKFLOW_TASKS, "outcome" => "error"),
        TaskOutcome::Held => metrics::counter!(WORKFLOW_TASKS, "outcome" => "held"),
    };
    c.increment(1);
}

/// A workflow task took `took`, from its claim to its end.
pub(crate) fn workflow_task_time(took: std::time::Duration) {
    metrics::histogram!(WORKFLOW_TASK_SECONDS).record(took.as_secs_f64());
}

/// An attempt ended with `resolution` after running `ran`; `step` is its scheduling to now.
pub(crate) fn attempt(
    resolution: &crate::engine::ActivityResolution,
    ran: std::time::Duration,
    step_ms: i64,
) {
    use crate::engine::ActivityResolution as R;
    let c = match resolution {
        R::Completed(_) => metrics::counter!(ACTIVITY_ATTEMPTS, "outcome" => "completed"),
        R::Failed(_) => metrics::counter!(ACTIVITY_ATTEMPTS, "outcome" => "failed"),
        R::Retry { .. } => metrics::counter!(ACTIVITY_ATTEMPTS, "outcome" => "retried"),
        R::Cancelled { .. } => metrics::counter!(ACTIVITY_ATTEMPTS, "outcome" => "cancelled"),
        R::TimedOut(_) => metrics::counter!(ACTIVITY_ATTEMPTS, "outcome" => "timed_out"),
    };
    c.increment(1);
    metrics::histogram!(ACTIVITY_ATTEMPT_SECONDS).record(ran.as_secs_f64());
    if !matches!(resolution, R::Retry { .. }) {
        metrics::histogram!(STEP_SECONDS).record(step_ms.max(0) as f64 / 1000.0);
    }
}

/// One SQLite group commit of `calls` store calls.
pub(crate) fn sqlite_commit(took: std::time::Duration, calls: usize) {
    metrics::histogram!(STORE_COMMIT_SECONDS, "store" => "sqlite").record(took.as_secs_f64());
    metrics::histogram!(STORE_BATCH_SIZE, "store" => "sqlite").record(calls as f64);
}

/// One Postgres transaction's commit.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn postgres_commit(took: std::time::Duration) {
    metrics::histogram!(STORE_COMMIT_SECONDS, "store" => "postgres").record(took.as_secs_f64());
}

/// The sampled depth of the worker's queues and the held workflows.
pub(crate) fn queue_depth(depth: &crate::store::QueueDepth) {
    metrics::gauge!(QUEUE_DEPTH, "kind" => "workflow").set(depth.workflow_tasks as f64);
    metrics::gauge!(QUEUE_DEPTH, "kind" => "activity").set(depth.activity_tasks as f64);
    metrics::gauge!(WORKFLOWS_HELD).set(depth.held_workflows as f64);
}
