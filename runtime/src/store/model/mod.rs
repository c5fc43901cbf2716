//! Model-based store tests: proptest generates random sequences of store operations (start,
//! workflow task claims with leases that hold or expire, commits of random commands, activity
//! claims, heartbeats, outcomes, retries, attempt timeouts, workflow cancels, signals (retried,
//! and claiming the task for a worker that holds the workflow), timer firing, and
//! crashes: the store dropped and opened again on the same file or schema), runs each against a
//! store and against the model of the engine's rules in `rules.rs`, and checks after every step
//! that both observe the same: every answer, and each workflow's status, cancel request, history
//! and pending activities. A failing case shrinks to the shortest sequence of operations that still
//! fails, printed as `Debug` of the operations.
//!
//! Cases per store: `DURAFLOW_MODEL_CASES` (default 128 on memory, 24 on a SQLite file, 16 on
//! Postgres, each at most 60 operations). Postgres: `DURAFLOW_TEST_PG_URL`, a schema per case,
//! mandatory when `CI` is set (as in the conformance suite).

mod driver;
mod rules;

use super::{Store, StoreBackend};
use proptest::prelude::*;
use rules::{Cmd, Outcome, Timeout};
use std::sync::Arc;

/// One operation of a sequence. Numbers pick a workflow (`w0`..`w2`) or a held handle, modulo how
/// many there are; an operation with nothing to act on does nothing.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// A client starts workflow `w<n>` (again: refused as a duplicate), with an execution
    /// deadline that has passed already or none.
    Start { workflow: u8, timed_out: bool },
    /// A worker claims the due workflow tasks with a lease that holds, or that has expired at once
    /// (the next claim takes the task over and fences this one).
    ClaimWorkflowTasks { lease_expires: bool },
    /// A worker commits these commands with a workflow task it holds (or held), asking or not
    /// for the activities it schedules (eager claims).
    Commit {
        handle: u8,
        commands: Vec<Cmd>,
        eager: bool,
    },
    /// A worker claims the due activity tasks.
    ClaimActivities,
    /// A held attempt heartbeats.
    Heartbeat(u8),
    /// A held attempt ends.
    Finish(u8, Outcome),
    /// A client cancels workflow `w<n>`.
    CancelWorkflow(u8),
    /// A client signals workflow `w<n>` with request id `r<request>` (a repeated id is a retry:
    /// recorded once). `direct`: a worker of the client's process holds the workflow's instance,
    /// so an idle workflow's task is claimed for it in the signal's transaction.
    Signal {
        workflow: u8,
        request: u8,
        direct: bool,
    },
    /// The timer loop fires what is due.
    FireTimers,
    /// The reaper takes the attempts past their deadline and records their timeouts.
    Expire,
    /// The process dies: the store is dropped and opened again; held handles are lost.
    Crash,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let timeout = prop_oneof![Just(Timeout::Short), Just(Timeout::Long)];
    prop_oneof![
        8 => timeout.prop_map(Cmd::Schedule),
        3 => any::<u8>().prop_map(Cmd::CancelActivity),
        4 => any::<bool>().prop_map(Cmd::StartTimer),
        2 => any::<u8>().prop_map(Cmd::CancelTimer),
        1 => Just(Cmd::Complete),
        1 => Just(Cmd::Fail),
        1 => Just(Cmd::CancelSelf),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Complete),
        3 => Just(Outcome::FailRetryable),
        1 => Just(Outcome::FailFinal),
        1 => Just(Outcome::Cancelled),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..3, prop::bool::weighted(0.2))
            .prop_map(|(workflow, timed_out)| Op::Start { workflow, timed_out }),
        3 => Just(Op::ClaimWorkflowTasks { lease_expires: false }),
        1 => Just(Op::ClaimWorkflowTasks { lease_expires: true }),
        5 => (any::<u8>(), prop::collection::vec(cmd(), 0..4), any::<bool>())
            .prop_map(|(handle, commands, eager)| Op::Commit { handle, commands, eager }),
        3 => Just(Op::ClaimActivities),
        1 => any::<u8>().prop_map(Op::Heartbeat),
        5 => (any::<u8>(), outcome()).prop_map(|(h, o)| Op::Finish(h, o)),
        1 => (0u8..3).prop_map(Op::CancelWorkflow),
        2 => (0u8..3, 0u8..4, any::<bool>())
            .prop_map(|(workflow, request, direct)| Op::Signal { workflow, request, direct }),
        1 => Just(Op::FireTimers),
        2 => Just(Op::Expire),
        1 => Just(Op::Crash),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..60)
}

/// How a store is opened again after a crash.
pub(super) enum Reopen {
    /// Memory holds nothing across a crash: the step does nothing.
    Nothing,
    File(std::path::PathBuf),
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        schema: String,
    },
}

impl Reopen {
    /// Whether a crash step does anything (memory keeps nothing across one).
    fn reopens(&self) -> bool {
        !matches!(self, Reopen::Nothing)
    }

    /// Opens the same store again.
    async fn open(&self) -> Arc<dyn StoreBackend> {
        match self {
            Reopen::Nothing => Store::memory().expect("memory store").backend,
            Reopen::File(path) => {
                Store::sqlite(path)
                    .unwrap_or_else(|e| panic!("the SQLite file does not open again: {e}"))
                    .backend
            }
            #[cfg(feature = "postgres")]
            Reopen::Postgres { url, schema } => Arc::new(
                super::postgres::PostgresStore::connect(url, Some(schema))
                    .await
                    .unwrap_or_else(|e| panic!("the Postgres schema does not open again: {e}")),
            ),
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("DURAFLOW_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

proptest! {
    #![proptest_config(config(128))]
    #[test]
    fn model_memory(ops in ops()) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.db");
        runtime().block_on(async {
            let store = Store::memory().expect("memory store").backend;
            driver::Driver::new(store, Reopen::Nothing).run(&ops).await;
            let store = Store::sqlite(&path).expect("SQLite file store").backend;
            driver::Driver::new(store, Reopen::File(path.clone()))
                .run(&ops)
                .await;
        });
    }
}

proptest! {
    #![proptest_config(config(24))]
    #[test]
    fn model_sqlite_file(ops in ops()) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.db");
        runtime().block_on(async {
            let store = Store::sqlite(&path).expect("SQLite file store").backend;
            driver::Driver::new(store, Reopen::File(path.clone())).run(&ops).await;
        });
    }
}

#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(config(16))]
    #[test]
    fn model_postgres(ops in ops()) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CASE: AtomicUsize = AtomicUsize::new(0);
        let rt = runtime();
        let Some(url) = rt.block_on(super::conformance::pg::url()) else {
            return Ok(());
        };
        let n = CASE.fetch_add(1, Ordering::Relaxed);
        let guard = super::conformance::pg::SchemaGuard::new(&url, &format!("model_{n}"));
        let schema = guard.schema.clone();
        rt.block_on(async {
            let store: Arc<dyn StoreBackend> = Arc::new(
                super::postgres::PostgresStore::connect(&url, Some(&schema))
                    .await
                    .unwrap_or_else(|e| panic!("cannot open the Postgres store at {url}: {e}")),
            );
            driver::Driver::new(store, Reopen::Postgres { url: url.clone(), schema })
                .run(&ops)
                .await;
        });
        drop(guard);
    }
}

/// Sequences that once found a disagreement, replayed as they were shrunk.
#[test]
fn model_regressions() {
    use Op::*;
    let cases: Vec<Vec<Op>> = vec![
        // A retryable failure of the last attempt fails the activity.
        vec![
            Start {
                workflow: 0,
                timed_out: false,
            },
            ClaimWorkflowTasks {
                lease_expires: false,
            },
            Commit {
                handle: 0,
                commands: vec![Cmd::Schedule(Timeout::Long)],
                eager: false,
            },
            ClaimActivities,
            Finish(0, Outcome::FailRetryable),
            ClaimActivities,
            Finish(0, Outcome::FailRetryable),
        ],
        // A short activity whose two attempts both time out ends timed out; its retry in
        // between is due at once.
        vec![
            Start {
                workflow: 1,
                timed_out: false,
            },
            ClaimWorkflowTasks {
                lease_expires: false,
            },
            Commit {
                handle: 0,
                commands: vec![Cmd::Schedule(Timeout::Short), Cmd::StartTimer(true)],
                eager: true,
            },
            Expire,
            ClaimActivities,
            Expire,
            FireTimers,
            ClaimWorkflowTasks {
                lease_expires: true,
            },
            Crash,
            ClaimWorkflowTasks {
                lease_expires: false,
            },
            Commit {
                handle: 0,
                commands: vec![Cmd::Complete],
                eager: false,
            },
        ],
    ];
    for ops in cases {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.db");
        runtime().block_on(async {
            let store = Store::memory().expect("memory store").backend;
            driver::Driver::new(store, Reopen::Nothing).run(&ops).await;
            let store = Store::sqlite(&path).expect("SQLite file store").backend;
            driver::Driver::new(store, Reopen::File(path.clone()))
                .run(&ops)
                .await;
        });
    }
}
