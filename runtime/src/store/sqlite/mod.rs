//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the connection. Every store call is a job sent to it; the thread takes all
//! jobs that are waiting, runs each inside a savepoint of one transaction, commits once, and only then
//! answers each caller: many workflows' transitions share one fsync (group commit), and no caller
//! hears of a write before it is durable.

use crate::clock::Clock;
use crate::error::{Error, Result};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

mod apply;
mod backend;
mod liveness;
mod open;
pub(crate) use open::{classify, Cause};
mod messages;
mod read;
mod schedules;
mod schema;

use schema::{FORMAT_MARKER, MIGRATIONS, SCHEMA_VERSION};

/// How hard each commit holds on to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: a completed step survives power loss.
    Full,
    /// `synchronous=NORMAL`: survives a process crash, not always a power loss.
    Normal,
    /// In memory.
    Memory,
}

type Reply = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A store call: run against the connection (or `None` when no transaction could begin).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

pub(crate) struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    kind: &'static str,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::database_from(open::explain(&e), e)
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        db_err(e)
    }
}

impl SqliteStore {
    pub(crate) fn open(path: &Path, durability: Durability) -> Result<Self> {
        let display = path.display().to_string();
        let existed = path.exists()
            && std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        let conn = Connection::open(path).map_err(|e| open::cause(&display, "open", e))?;
        open::check_existing(&conn, &display, path, existed)?;
        Self::start(conn, durability).map_err(|e| open::cause_of_start(&display, e))
    }

    pub(crate) fn memory() -> Result<Self> {
        Self::memory_with_clock(Clock::default())
    }

    /// An in-memory store whose transitions read `clock` (a virtual one for `TestEnv`).
    pub(crate) fn memory_with_clock(clock: Clock) -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        Self::start_with_clock(conn, Durability::Memory, clock)
    }

    fn start(conn: Connection, durability: Durability) -> Result<Self> {
        Self::start_with_clock(conn, durability, Clock::default())
    }

    fn start_with_clock(conn: Connection, durability: Durability, clock: Clock) -> Result<Self> {
        match durability {
            Durability::Memory => {}
            Durability::Full | Durability::Normal => {
                let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(Error::Store(format!(
                        "SQLite refused WAL mode (got `{mode}`); the file system may not support it"
                    )));
                }
                let sync = if durability == Durability::Full {
                    "FULL"
                } else {
                    "NORMAL"
                };
                conn.execute_batch(&format!("PRAGMA synchronous={sync};"))?;
            }
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(128);
        // Keep each cached statement's query plan: the bundled SQLite (STAT4) would otherwise
        // re-prepare a statement whenever a bound value compared with an indexed column changes,
        // which is every call here (27% of the store's instructions in a profile).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        migrate(&conn)?;
        let kind = match durability {
            Durability::Full => "sqlite-wal-full",
            Durability::Normal => "sqlite-wal-normal",
            Durability::Memory => "memory",
        };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("duraflow-sqlite-writer".into())
            .spawn(move || {
                WRITER_CLOCK.with(|c| *c.borrow_mut() = clock);
                writer_loop(conn, rx)
            })
            .map_err(|e| Error::Store(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(SqliteStore { jobs: tx, kind })
    }

    /// Runs `f` on the writer thread inside the next group commit; answers after the commit.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let r = match conn {
                Some(conn) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| {
                        Err(Error::Store("internal error: a store job panicked".into()))
                    }),
                None => Err(Error::database(
                    "the store could not give this call a transaction of its own; nothing was written"
                )),
            };
            let failed = r.is_err();
            let reply: Reply = Box::new(move |commit| {
                let r = match commit {
                    Ok(()) => r,
                    Err(e) => Err(Error::database(format!("commit failed: {e}"))),
                };
                let _ = tx.send(r);
            });
            (failed, reply)
        });
        self.jobs.send(job).map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

/// The schema version the file holds: 0 for a new file.
fn stored_version(conn: &Connection) -> Result<i64> {
    let has_meta: bool = qrow(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='duraflow_meta'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    if !has_meta {
        return Ok(0);
    }
    let v: String = qrow(
        conn,
        "SELECT value FROM duraflow_meta WHERE key='schema_version'",
        [],
        |r| r.get::<_, String>(0),
    )?;
    v.parse::<i64>()
        .ok()
        .filter(|v| (0..=SCHEMA_VERSION).contains(v))
        .ok_or_else(|| {
            Error::Store(format!(
                "schema version `{v}` is not one this build of duraflow knows (1 to \
                 {SCHEMA_VERSION}); the file was left untouched"
            ))
        })
}

/// Migrates one step at a time, each in its own `BEGIN IMMEDIATE` transaction that reads the
/// version it starts from: two processes opening the same file after an upgrade (an application
/// and the CLI) take turns, and the second finds the work done.
fn migrate(conn: &Connection) -> Result<()> {
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let current = match stored_version(conn) {
            Ok(v) => v,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        let Some(sql) = usize::try_from(current)
            .ok()
            .and_then(|c| MIGRATIONS.get(c))
        else {
            conn.execute_batch("ROLLBACK")?;
            return Ok(());
        };
        let to = current + 1;
        let r = conn.execute_batch(sql).and_then(|_| {
            exec(
                conn,
                "INSERT INTO duraflow_meta(key, value) VALUES ('format', ?1), ('schema_version', ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![FORMAT_MARKER, to.to_string()],
            )
        });
        match r {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(Error::Store(format!(
                    "migration to schema {to} failed: {e}; it was rolled back. The file may be \
                     damaged: `sqlite3 FILE 'PRAGMA integrity_check'` checks it"
                )));
            }
        }
    }
}

thread_local! {
    /// The clock of the store whose writer thread this is (each store has its own thread).
    static WRITER_CLOCK: std::cell::RefCell<Clock> = std::cell::RefCell::new(Clock::default());
}

/// Now, on the clock of the store whose writer thread runs the caller: every transition reads
/// the time here, inside its transaction.
pub(super) fn now_ms() -> i64 {
    WRITER_CLOCK.with(|c| c.borrow().now_ms())
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < 512 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (began, calls) = (std::time::Instant::now(), jobs.len());
        run_batch(&conn, jobs, &mut |conn, sql| {
            exec(conn, sql, []).map(|_| ())
        });
        crate::telemetry::sqlite_commit(began.elapsed(), calls);
    }
}

/// A control statement of the group commit (`BEGIN IMMEDIATE`, `SAVEPOINT job`, ...), run by
/// `ctl`: the writer runs them on the connection; a test fails some of them.
type Control<'a> = dyn FnMut(&Connection, &str) -> rusqlite::Result<()> + 'a;

/// One group commit: every job in its own savepoint of one transaction, then one commit, and only
/// then the answers. A job whose savepoint cannot be set is not run (it answers an error); a job
/// that failed is rolled back to its savepoint; if that rollback (or a release) fails, what the
/// transaction holds is unknown, so the whole batch is rolled back and every job answers an error.
fn run_batch(conn: &Connection, jobs: Vec<Job>, ctl: &mut Control<'_>) {
    if let Err(e) = ctl(conn, "BEGIN IMMEDIATE") {
        let msg = open::explain(&e);
        for job in jobs {
            let (_, reply) = job(None);
            reply(Err(msg.clone()));
        }
        return;
    }
    let mut replies = Vec::with_capacity(jobs.len());
    // Set once the transaction can no longer be trusted: nothing of it is committed.
    let mut broken: Option<String> = None;
    for job in jobs {
        if broken.is_some() {
            let (_, reply) = job(None);
            replies.push(reply);
            continue;
        }
        if let Err(e) = ctl(conn, "SAVEPOINT job") {
            // Not run unprotected: the job answers an error; the others go on.
            tracing::warn!(error = %e, "SQLite store: could not set a job's savepoint");
            let (_, reply) = job(None);
            replies.push(reply);
            continue;
        }
        let (failed, reply) = job(Some(conn));
        replies.push(reply);
        if failed {
            if let Err(e) = ctl(conn, "ROLLBACK TO job") {
                broken = Some(format!("could not roll a failed job back ({e}); the whole group commit was rolled back"));
                continue;
            }
        }
        if let Err(e) = ctl(conn, "RELEASE job") {
            broken = Some(format!(
                "could not release a job's savepoint ({e}); the whole group commit was rolled back"
            ));
        }
    }
    let commit = match broken {
        Some(msg) => Err(msg),
        None => ctl(conn, "COMMIT").map_err(|e| open::explain(&e)),
    };
    if let Err(msg) = &commit {
        tracing::error!(error = %msg, "SQLite store: a group commit failed; its calls answer an error");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for r in replies {
        r(commit.clone());
    }
}

/// `execute` through the statement cache: SQL text is parsed once per connection.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `query_row` through the statement cache.
fn qrow<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Answers = Arc<Mutex<Vec<(usize, bool, std::result::Result<(), String>)>>>;

    /// A job that runs `sql` (and then fails, with `fail`), and records (its number, whether it
    /// ran, its answer).
    fn job(i: usize, sql: &'static str, fail: bool, answers: &Answers) -> Job {
        let answers = answers.clone();
        Box::new(move |conn| {
            let ran = conn.is_some();
            if let Some(c) = conn {
                c.execute_batch(sql).unwrap();
            }
            let failed = !ran || fail;
            let reply: Reply = Box::new(move |commit| {
                let answer = if failed {
                    Err("the job failed".to_string())
                } else {
                    commit
                };
                answers.lock().unwrap().push((i, ran, answer));
            });
            (failed, reply)
        })
    }

    fn setup() -> (Connection, Answers, Vec<Job>) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x INTEGER)").unwrap();
        let answers: Answers = Arc::default();
        let jobs = vec![
            job(1, "INSERT INTO t VALUES (1)", false, &answers),
            job(2, "INSERT INTO t VALUES (2)", true, &answers),
            job(3, "INSERT INTO t VALUES (3)", false, &answers),
        ];
        (conn, answers, jobs)
    }

    fn rows(conn: &Connection) -> Vec<i64> {
        let mut st = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    fn failing(
        on: &'static str,
        nth: usize,
    ) -> impl FnMut(&Connection, &str) -> rusqlite::Result<()> {
        let mut seen = 0;
        move |conn, sql| {
            if sql == on {
                seen += 1;
                if seen == nth {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                        Some(format!("injected: {sql}")),
                    ));
                }
            }
            conn.execute_batch(sql)
        }
    }

    #[test]
    fn a_failed_job_is_rolled_back_alone() {
        let (conn, answers, jobs) = setup();
        run_batch(&conn, jobs, &mut failing("none", 1));
        assert_eq!(rows(&conn), vec![1, 3]);
        let answers = answers.lock().unwrap();
        assert_eq!(answers[0], (1, true, Ok(())));
        assert!(answers[1].2.is_err());
        assert_eq!(answers[2], (3, true, Ok(())));
    }

    #[test]
    fn a_failed_rollback_fails_the_whole_batch() {
        let (conn, answers, jobs) = setup();
        run_batch(&conn, jobs, &mut failing("ROLLBACK TO job", 1));
        assert_eq!(
            rows(&conn),
            Vec::<i64>::new(),
            "nothing of the batch is committed"
        );
        let answers = answers.lock().unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers.iter().all(|(_, _, a)| a.is_err()), "{answers:?}");
        assert!(!answers[2].1, "a job after the failure is not run");
        // The connection is usable again.
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_failed_release_fails_the_whole_batch() {
        let (conn, answers, jobs) = setup();
        run_batch(&conn, jobs, &mut failing("RELEASE job", 1));
        assert_eq!(rows(&conn), Vec::<i64>::new());
        assert!(answers.lock().unwrap().iter().all(|(_, _, a)| a.is_err()));
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_job_without_its_savepoint_is_not_run() {
        let (conn, answers, jobs) = setup();
        // The third job's savepoint cannot be set: it does not run; the first one commits.
        run_batch(&conn, jobs, &mut failing("SAVEPOINT job", 3));
        assert_eq!(rows(&conn), vec![1]);
        let answers = answers.lock().unwrap();
        assert_eq!(answers[0], (1, true, Ok(())));
        assert_eq!(answers[2].0, 3);
        assert!(!answers[2].1, "not run unprotected");
        assert!(answers[2].2.is_err());
    }
}
