//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the connection. Every store call is a job sent to it; the thread takes all
//! jobs that are waiting, runs each inside a savepoint of one transaction, commits once, and only then
//! answers each caller: many workflows' transitions share one fsync (group commit), and no caller
//! hears of a write before it is durable.

use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

mod apply;
mod backend;
mod read;
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
    Error::Database(e.to_string())
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
        let conn = Connection::open(path)
            .map_err(|e| Error::Store(format!("cannot open `{display}`: {e}")))?;
        Self::check_existing(&conn, &display, existed)?;
        Self::start(conn, durability)
    }

    pub(crate) fn memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        Self::start(conn, Durability::Memory)
    }

    /// Refuses a file that is not ours, is newer than this build, or is damaged, before anything is
    /// written to it.
    fn check_existing(conn: &Connection, display: &str, existed: bool) -> Result<()> {
        if !existed {
            return Ok(());
        }
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| {
                Error::Store(format!(
                    "`{display}` is not a readable SQLite database ({e}); it may be corrupt or another kind of file. It was left untouched: point duraflow at a new path, or restore a backup"
                ))
            })?;
        if tables.is_empty() {
            return Ok(());
        }
        if !tables.iter().any(|t| t == "duraflow_meta") {
            return Err(Error::Store(format!(
                "`{display}` is a SQLite database of another program (tables: {}); duraflow will not touch it. Use a new file for duraflow",
                tables.join(", ")
            )));
        }
        let marker: Option<String> = qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key = 'format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| Error::Store(format!("`{display}`: cannot read duraflow_meta: {e}")))?;
        if marker.as_deref() != Some(FORMAT_MARKER) {
            return Err(Error::Store(format!(
                "`{display}` has a duraflow_meta table but no duraflow format marker; it was not written by duraflow and was left untouched"
            )));
        }
        let version: i64 = qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map_err(|e| Error::Store(format!("`{display}`: no schema version: {e}")))?
        .parse()
        .map_err(|_| Error::Store(format!("`{display}`: schema version is not a number")))?;
        if version > SCHEMA_VERSION {
            return Err(Error::Store(format!(
                "`{display}` has schema version {version}, newer than this build of duraflow understands ({SCHEMA_VERSION}); upgrade duraflow. The file was left untouched"
            )));
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| Error::Store(format!("`{display}`: integrity check failed: {e}")))?;
        if check != "ok" {
            return Err(Error::Store(format!(
                "`{display}` is damaged (SQLite quick_check: {check}); it was left untouched. Restore a backup"
            )));
        }
        Ok(())
    }

    fn start(conn: Connection, durability: Durability) -> Result<Self> {
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
            .spawn(move || writer_loop(conn, rx))
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
                None => Err(Error::Database("could not begin a transaction".into())),
            };
            let failed = r.is_err();
            let reply: Reply = Box::new(move |commit| {
                let r = match commit {
                    Ok(()) => r,
                    Err(e) => Err(Error::Database(format!("commit failed: {e}"))),
                };
                let _ = tx.send(r);
            });
            (failed, reply)
        });
        self.jobs.send(job).map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let has_meta: bool = qrow(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='duraflow_meta'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    let current: i64 = if has_meta {
        qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key='schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )?
        .parse()
        .unwrap_or(0)
    } else {
        0
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i as i64 + 1;
        conn.execute_batch("BEGIN IMMEDIATE")?;
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
                    "migration to schema {to} failed: {e}"
                )));
            }
        }
    }
    Ok(())
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
        let mut replies = Vec::with_capacity(jobs.len());
        if let Err(e) = exec(&conn, "BEGIN IMMEDIATE", []) {
            let msg = e.to_string();
            for job in jobs {
                let (_, reply) = job(None);
                reply(Err(msg.clone()));
            }
            continue;
        }
        for job in jobs {
            let _ = exec(&conn, "SAVEPOINT job", []);
            let (failed, reply) = job(Some(&conn));
            if failed {
                let _ = exec(&conn, "ROLLBACK TO job", []);
            }
            let _ = exec(&conn, "RELEASE job", []);
            replies.push(reply);
        }
        let commit = exec(&conn, "COMMIT", [])
            .map(|_| ())
            .map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for r in replies {
            r(commit.clone());
        }
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
