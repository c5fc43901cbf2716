//! Shared test support: a fresh database per test on each real store.
//!
//! - SQLite: a file in a fresh temporary directory (WAL + synchronous=FULL, the default store).
//! - Memory: `Store::memory()`.
//! - Postgres: a fresh schema per test in the database named by `DURAFLOW_TEST_PG_URL`. In CI (env
//!   `CI` set) the variable must be set and the server must answer: the Postgres tests never skip
//!   there. Elsewhere, an unset variable falls back to `postgres://postgres@127.0.0.1:5432/test` if it
//!   answers, and the Postgres tests are skipped with a message if it does not.
#![allow(dead_code)]

pub mod crash;

use duraflow::{ActivityContext, EventKind, HistoryEvent, Store, WorkerHandle};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The default Postgres URL tried outside CI.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One test's database, on one store kind.
pub struct TestDb {
    pub store: Store,
    kind: Kind,
}

enum Kind {
    Sqlite(tempfile::TempDir, PathBuf),
    Memory,
    Postgres { url: String, schema: String },
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("duraflow.db");
        let store = Store::sqlite(&path).expect("open sqlite store");
        TestDb {
            store,
            kind: Kind::Sqlite(dir, path),
        }
    }

    pub fn memory() -> TestDb {
        init_tracing();
        TestDb {
            store: Store::memory().expect("memory store"),
            kind: Kind::Memory,
        }
    }

    /// A fresh schema for `name`, or `None` (skip) outside CI when no server answers.
    pub async fn postgres(name: &str) -> Option<TestDb> {
        init_tracing();
        let url = pg_url().await?;
        let schema = unique_schema(name);
        drop_schema(&url, &schema);
        let store = Store::postgres_in_schema(&url, &schema)
            .await
            .unwrap_or_else(|e| panic!("cannot open the Postgres store at {url}: {e}"));
        Some(TestDb {
            store,
            kind: Kind::Postgres { url, schema },
        })
    }

    /// A second, independent handle on the same database, as another process would open it.
    pub async fn reopen(&self) -> Store {
        match &self.kind {
            Kind::Sqlite(_, path) => Store::sqlite(path).expect("reopen sqlite"),
            Kind::Memory => panic!("an in-memory store cannot be reopened"),
            Kind::Postgres { url, schema } => Store::postgres_in_schema(url, schema)
                .await
                .expect("reopen postgres"),
        }
    }

    /// The SQLite file, if this is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Sqlite(_, p) => Some(p),
            _ => None,
        }
    }

    /// The Postgres URL (panics on another store).
    pub fn pg_url(&self) -> &str {
        self.pg_url_schema().expect("a Postgres TestDb").0
    }

    /// The Postgres schema (panics on another store).
    pub fn pg_schema(&self) -> &str {
        self.pg_url_schema().expect("a Postgres TestDb").1
    }

    /// The Postgres URL and schema, if this is Postgres.
    pub fn pg_url_schema(&self) -> Option<(&str, &str)> {
        match &self.kind {
            Kind::Postgres { url, schema } => Some((url, schema)),
            _ => None,
        }
    }

    /// Ends the test's use of the database (a Postgres schema is dropped).
    pub async fn cleanup(self) {
        drop(self);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres { url, schema } = &self.kind {
            drop_schema(url, schema);
        }
    }
}

/// A schema name unique to this test and process. Postgres names are at most 63 bytes: a prefix of
/// the test's name, a hash of all of it, and the pid.
pub fn unique_schema(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = name.chars().take(30).collect();
    format!("t_{prefix}_{:08x}_{}", hash as u32, std::process::id())
}

fn drop_schema(url: &str, schema: &str) {
    if let Err(e) = pg_exec_blocking(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")) {
        eprintln!("could not drop test schema `{schema}`: {e}");
    }
}

/// Runs SQL (one or more statements) on a connection of its own; callable from sync code and from
/// inside a runtime alike (it runs on a thread of its own).
pub fn pg_exec_blocking(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
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
    .map_err(|_| "the SQL thread panicked".to_string())?
}

/// The Postgres URL for tests (see the module docs).
pub async fn pg_url() -> Option<String> {
    let in_ci = std::env::var_os("CI").is_some();
    let url = match std::env::var("DURAFLOW_TEST_PG_URL") {
        Ok(u) => u,
        Err(_) if in_ci => panic!(
            "CI is set but DURAFLOW_TEST_PG_URL is not: the Postgres tests must run in CI. Set it, e.g. {DEFAULT_PG_URL}"
        ),
        Err(_) => DEFAULT_PG_URL.to_string(),
    };
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    if reachable {
        Some(url)
    } else if in_ci || std::env::var_os("DURAFLOW_TEST_PG_URL").is_some() {
        panic!("Postgres at {url} does not answer; start it (see README) or unset DURAFLOW_TEST_PG_URL outside CI");
    } else {
        eprintln!("skipping a Postgres test: nothing answers at {url} (set DURAFLOW_TEST_PG_URL)");
        None
    }
}

/// Waits for `cond` to hold, polling every 10 ms, up to `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !cond().await {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `fut` with a bound, failing the test with `what` if it runs out.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

/// How many events of `h` match `pred`.
pub fn count(h: &[HistoryEvent], pred: impl Fn(&EventKind) -> bool) -> usize {
    h.iter().filter(|e| pred(&e.kind)).count()
}

/// Asserts that the events are numbered 1, 2, 3, ...
pub fn assert_contiguous(h: &[HistoryEvent]) {
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "history seqs are contiguous from 1");
    }
}

/// Shuts a worker down, failing the test if that takes longer than 15 s.
pub async fn stop(w: WorkerHandle) {
    within(Duration::from_secs(15), "worker shutdown", w.shutdown()).await;
}

/// Generates one test per store for each listed `async fn NAME(db: &TestDb)`: `sqlite::NAME`,
/// `postgres::NAME`, and with `memory` first, `memory::NAME` too.
#[macro_export]
macro_rules! store_tests {
    (memory: $($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::memory();
                    super::$name(&db).await;
                }
            )*
        }
        $crate::store_tests!($($name),*);
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::support::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

/// Facts activities report to the test, keyed by workflow id (tests on several stores run at once,
/// so workflow ids carry the store's kind: see [`wid`]).
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Records `what` for the activity's workflow.
pub fn note(ctx: &ActivityContext, what: &str) {
    note_for(&ctx.info().workflow_id, what);
}

/// Records `what` for `workflow_id`.
pub fn note_for(workflow_id: &str, what: &str) {
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((workflow_id.to_string(), what.to_string()));
}

/// Everything recorded for `workflow_id`, in order.
pub fn noted(workflow_id: &str) -> Vec<String> {
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(w, _)| w == workflow_id)
        .map(|(_, s)| s.clone())
        .collect()
}

/// A workflow id unique to this store kind.
pub fn wid(db: &TestDb, name: &str) -> String {
    format!("{}-{name}", db.store.kind())
}
