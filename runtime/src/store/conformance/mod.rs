//! Store conformance: one set of checks that defines a correct [`StoreBackend`], run against every
//! store: SQLite in memory, a SQLite file in a temporary directory, and Postgres (feature `postgres`,
//! a fresh schema per test, dropped after it).
//!
//! Each `check_*` drives the trait the way the worker does and asserts exactly what each transition
//! wrote, read back through `read_history`, `describe`, `list`, `count_by_status`, the claims and `next_due_ms`.
//! `conformance!` turns each check into three tests: `memory_*`, `sqlite_file_*` and `postgres_*`.
//!
//! Postgres: `DURAFLOW_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/test`. With `CI` set,
//! a server that does not answer fails the Postgres tests; elsewhere they are skipped with a note.
//!
//! Timing: deadlines, leases and timers that must pass are set a few milliseconds ahead (or in the
//! past) and waited out; those that must not pass are set minutes ahead. No assertion is about speed.

mod attempts;
mod children;
mod claims;
mod commit;
mod continuation;
mod list;
mod liveness;
mod messages;
mod misc;
mod runs;
mod schedules;
mod start;
mod support;
mod terminate;
mod waiting;

use crate::store::{Store, StoreBackend};
use attempts::*;
use children::*;
use claims::*;
use commit::*;
use continuation::*;
use list::*;
use liveness::*;
use messages::*;
use misc::*;
use runs::*;
use schedules::*;
use start::*;
use std::sync::Arc;
use terminate::*;
use waiting::*;

// ---------------------------------------------------------------------------------------------
// Fixtures: one fresh store per test.

struct Fixture {
    // Dropped before the guard: the store lets go of its file or connections first.
    store: Arc<dyn StoreBackend>,
    _guard: Guard,
}

enum Guard {
    Nothing,
    Dir {
        _dir: tempfile::TempDir,
    },
    #[cfg(feature = "postgres")]
    Schema {
        _schema: pg::SchemaGuard,
    },
}

impl Fixture {
    fn memory() -> Fixture {
        Fixture {
            store: Store::memory().expect("memory store").backend,
            _guard: Guard::Nothing,
        }
    }

    fn sqlite_file() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::sqlite(dir.path().join("conformance.db"))
            .expect("SQLite file store")
            .backend;
        Fixture {
            store,
            _guard: Guard::Dir { _dir: dir },
        }
    }

    /// `None`: no server answers and this is not CI (the test is skipped).
    #[cfg(feature = "postgres")]
    async fn postgres(check: &str) -> Option<Fixture> {
        let url = pg::url().await?;
        let guard = pg::SchemaGuard::new(&url, check);
        let store = super::postgres::PostgresStore::connect(&url, Some(&guard.schema))
            .await
            .unwrap_or_else(|e| panic!("cannot open the Postgres store at {url}: {e}"));
        Some(Fixture {
            store: Arc::new(store),
            _guard: Guard::Schema { _schema: guard },
        })
    }
}

#[cfg(feature = "postgres")]
pub(super) mod pg {
    use std::time::Duration;

    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// The server's URL, or `None` when it does not answer outside CI. In CI it must answer.
    pub(crate) async fn url() -> Option<String> {
        let url = std::env::var("DURAFLOW_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let answers = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
        if answers {
            Some(url)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set and Postgres at {url} does not answer: the Postgres conformance tests must run in CI"
            );
        } else {
            eprintln!(
                "skipping a Postgres conformance test: nothing answers at {url} (set DURAFLOW_TEST_PG_URL)"
            );
            None
        }
    }

    /// A schema for one test, dropped (with everything in it) when the guard drops.
    pub(crate) struct SchemaGuard {
        url: String,
        pub(crate) schema: String,
    }

    impl SchemaGuard {
        pub(crate) fn new(url: &str, check: &str) -> SchemaGuard {
            let hash = check.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
            let name: String = check
                .trim_start_matches("check_")
                .chars()
                .take(28)
                .collect();
            let schema = format!("conf_{name}_{:08x}_{}", hash as u32, std::process::id());
            exec(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            SchemaGuard {
                url: url.to_string(),
                schema,
            }
        }
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            exec(
                &self.url,
                &format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    self.schema
                ),
            );
        }
    }

    /// Runs SQL on a connection of its own, on a thread of its own (callable from `Drop`).
    fn exec(url: &str, sql: &str) {
        let (url, owned) = (url.to_string(), sql.to_string());
        let r = std::thread::spawn(move || -> Result<(), String> {
            let sql = owned;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let task = tokio::spawn(conn);
                let r = client.batch_execute(&sql).await.map_err(|e| e.to_string());
                drop(client);
                let _ = task.await;
                r
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the SQL thread panicked".into()));
        if let Err(e) = r {
            eprintln!("conformance: `{sql}` failed: {e}");
        }
    }
}

/// For each check, a test per store: `check => memory_test, sqlite_file_test, postgres_test;`.
macro_rules! conformance {
    ($($check:ident => $memory:ident, $file:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            let f = Fixture::memory();
            $check(&*f.store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $file() {
            let f = Fixture::sqlite_file();
            $check(&*f.store).await;
        }

        #[cfg(feature = "postgres")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(f) = Fixture::postgres(stringify!($check)).await else {
                return;
            };
            $check(&*f.store).await;
        }
    )*};
}

conformance! {
    check_create_workflow => memory_create_workflow, sqlite_file_create_workflow, postgres_create_workflow;
    check_execution_deadline => memory_execution_deadline, sqlite_file_execution_deadline, postgres_execution_deadline;
    check_workflow_task_tokens_and_leases => memory_workflow_task_tokens_and_leases, sqlite_file_workflow_task_tokens_and_leases, postgres_workflow_task_tokens_and_leases;
    check_workflow_task_filters => memory_workflow_task_filters, sqlite_file_workflow_task_filters, postgres_workflow_task_filters;
    check_commit_stale_token => memory_commit_stale_token, sqlite_file_commit_stale_token, postgres_commit_stale_token;
    check_commit_commands_and_marker => memory_commit_commands_and_marker, sqlite_file_commit_commands_and_marker, postgres_commit_commands_and_marker;
    check_timers => memory_timers, sqlite_file_timers, postgres_timers;
    check_cancel_pending_activity => memory_cancel_pending_activity, sqlite_file_cancel_pending_activity, postgres_cancel_pending_activity;
    check_cancel_running_activity => memory_cancel_running_activity, sqlite_file_cancel_running_activity, postgres_cancel_running_activity;
    check_close_workflow => memory_close_workflow, sqlite_file_close_workflow, postgres_close_workflow;
    check_commit_rerun_when_history_moved => memory_commit_rerun_when_history_moved, sqlite_file_commit_rerun_when_history_moved, postgres_commit_rerun_when_history_moved;
    check_eager_claims => memory_eager_claims, sqlite_file_eager_claims, postgres_eager_claims;
    check_eager_claims_only_new_tasks => memory_eager_claims_only_new_tasks, sqlite_file_eager_claims_only_new_tasks, postgres_eager_claims_only_new_tasks;
    check_claim_activity_tasks => memory_claim_activity_tasks, sqlite_file_claim_activity_tasks, postgres_claim_activity_tasks;
    check_heartbeat => memory_heartbeat, sqlite_file_heartbeat, postgres_heartbeat;
    check_finish_outcomes => memory_finish_outcomes, sqlite_file_finish_outcomes, postgres_finish_outcomes;
    check_finish_retry => memory_finish_retry, sqlite_file_finish_retry, postgres_finish_retry;
    check_retry_of_cancelled_attempt => memory_retry_of_cancelled_attempt, sqlite_file_retry_of_cancelled_attempt, postgres_retry_of_cancelled_attempt;
    check_finish_after_close => memory_finish_after_close, sqlite_file_finish_after_close, postgres_finish_after_close;
    check_continue_commits => memory_continue_commits, sqlite_file_continue_commits, postgres_continue_commits;
    check_continue_falls_back => memory_continue_falls_back, sqlite_file_continue_falls_back, postgres_continue_falls_back;
    check_continue_cancels_pending => memory_continue_cancels_pending, sqlite_file_continue_cancels_pending, postgres_continue_cancels_pending;
    check_continue_retry => memory_continue_retry, sqlite_file_continue_retry, postgres_continue_retry;
    check_expired_activities => memory_expired_activities, sqlite_file_expired_activities, postgres_expired_activities;
    check_record_local_activity => memory_record_local_activity, sqlite_file_record_local_activity, postgres_record_local_activity;
    check_local_lease => memory_local_lease, sqlite_file_local_lease, postgres_local_lease;
    check_request_cancel_workflow => memory_request_cancel_workflow, sqlite_file_request_cancel_workflow, postgres_request_cancel_workflow;
    check_hold_and_release => memory_hold_and_release, sqlite_file_hold_and_release, postgres_hold_and_release;
    check_list_and_describe => memory_list_and_describe, sqlite_file_list_and_describe, postgres_list_and_describe;
    check_next_due_ms => memory_next_due_ms, sqlite_file_next_due_ms, postgres_next_due_ms;
    check_list_filters_and_paging => memory_list_filters_and_paging, sqlite_file_list_filters_and_paging, postgres_list_filters_and_paging;
    check_last_failure_and_attempts => memory_last_failure_and_attempts, sqlite_file_last_failure_and_attempts, postgres_last_failure_and_attempts;
    check_poller_heartbeats => memory_poller_heartbeats, sqlite_file_poller_heartbeats, postgres_poller_heartbeats;
    check_queue_depth => memory_queue_depth, sqlite_file_queue_depth, postgres_queue_depth;
    check_lost_worker => memory_lost_worker, sqlite_file_lost_worker, postgres_lost_worker;
    check_lost_last_attempt => memory_lost_last_attempt, sqlite_file_lost_last_attempt, postgres_lost_last_attempt;
    check_signal_workflow => memory_signal_workflow, sqlite_file_signal_workflow, postgres_signal_workflow;
    check_signal_during_closing_task => memory_signal_during_closing_task, sqlite_file_signal_during_closing_task, postgres_signal_during_closing_task;
    check_signal_direct_claim => memory_signal_direct_claim, sqlite_file_signal_direct_claim, postgres_signal_direct_claim;
    check_signal_with_start => memory_signal_with_start, sqlite_file_signal_with_start, postgres_signal_with_start;
    check_accept_update => memory_accept_update, sqlite_file_accept_update, postgres_accept_update;
    check_terminate_workflow => memory_terminate_workflow, sqlite_file_terminate_workflow, postgres_terminate_workflow;
    check_schedule_create_read_list => memory_schedule_create_read_list, sqlite_file_schedule_create_read_list, postgres_schedule_create_read_list;
    check_schedule_fire_starts_each_tick_once => memory_schedule_fire_starts_each_tick_once, sqlite_file_schedule_fire_starts_each_tick_once, postgres_schedule_fire_starts_each_tick_once;
    check_schedule_concurrent_fires_act_once => memory_schedule_concurrent_fires_act_once, sqlite_file_schedule_concurrent_fires_act_once, postgres_schedule_concurrent_fires_act_once;
    check_schedule_overlap_policies => memory_schedule_overlap_policies, sqlite_file_schedule_overlap_policies, postgres_schedule_overlap_policies;
    check_schedule_pause_resume_trigger_delete => memory_schedule_pause_resume_trigger_delete, sqlite_file_schedule_pause_resume_trigger_delete, postgres_schedule_pause_resume_trigger_delete;
    check_continue_as_new => memory_continue_as_new, sqlite_file_continue_as_new, postgres_continue_as_new;
    check_start_policies => memory_start_policies, sqlite_file_start_policies, postgres_start_policies;
    check_reset => memory_reset, sqlite_file_reset, postgres_reset;
    check_child_start_and_end => memory_child_start_and_end, sqlite_file_child_start_and_end, postgres_child_start_and_end;
    check_child_start_refused_for_a_taken_id => memory_child_start_refused_for_a_taken_id, sqlite_file_child_start_refused_for_a_taken_id, postgres_child_start_refused_for_a_taken_id;
    check_child_cancel_request_and_termination => memory_child_cancel_request_and_termination, sqlite_file_child_cancel_request_and_termination, postgres_child_cancel_request_and_termination;
    check_parent_close_policies => memory_parent_close_policies, sqlite_file_parent_close_policies, postgres_parent_close_policies;
    check_child_closed_by_the_one_commit_step => memory_child_closed_by_the_one_commit_step, sqlite_file_child_closed_by_the_one_commit_step, postgres_child_closed_by_the_one_commit_step;
}
