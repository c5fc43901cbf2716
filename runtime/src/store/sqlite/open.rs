//! Opening a SQLite file: the checks made before anything is written (ours, not newer, not
//! damaged), and errors that name their real cause: a permission, a lock or an I/O error is said
//! as such, never as damage, since restoring a backup would not help.

use super::qrow;
use super::schema::{FORMAT_MARKER, SCHEMA_VERSION};
use crate::error::{Error, Result};
use rusqlite::{Connection, ErrorCode, OptionalExtension};
use std::path::Path;

/// What kind of failure a SQLite error is, for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The process may not read or write the file, or its directory, or the file system is
    /// read-only.
    Permission,
    /// Another connection holds a lock on the file.
    Lock,
    /// The operating system reported an I/O error, or the disk is full.
    Io,
    /// The bytes are not a (healthy) SQLite database.
    Damage,
    /// Anything else.
    Other,
}

/// Classifies a SQLite error by its primary result code.
pub(crate) fn classify(e: &rusqlite::Error) -> Cause {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied,
        ) => Cause::Permission,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Cause::Lock,
        Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::NoLargeFileSupport) => {
            Cause::Io
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Cause::Damage,
        _ => Cause::Other,
    }
}

/// A SQLite error met while the store runs, with what to do when it is not the store's fault: a full
/// disk or an I/O error, a file or file system that became read-only.
pub(crate) fn explain(e: &rusqlite::Error) -> String {
    match (classify(e), e.sqlite_error_code()) {
        (Cause::Io, Some(ErrorCode::DiskFull)) => format!(
            "{e}: the file system holding the store has no space left; nothing of this call was written and the last committed state is intact. Free some space: the store goes on by itself"
        ),
        (Cause::Io, _) => format!(
            "{e}: the operating system reported an I/O error; nothing of this call was written. Check the disk and the file system (the kernel log)"
        ),
        (Cause::Permission, _) => format!(
            "{e}: the store's file, or its file system, cannot be written any more (read-only?); nothing of this call was written and the last committed state is intact. Make it writable again: the store goes on by itself"
        ),
        _ => e.to_string(),
    }
}

/// The error for `e`, met while trying to `doing` on the file `display`, by its real cause.
pub(crate) fn cause(display: &str, doing: &str, e: rusqlite::Error) -> Error {
    let class = classify(&e);
    let message = match class {
        Cause::Permission => format!(
            "cannot {doing} `{display}`: permission denied or read-only ({e}). The database was not changed and may be healthy: this process must be able to read and write the file and create `-wal` and `-shm` files beside it, so check the permissions of the file and its directory, and that the file system is not mounted read-only"
        ),
        Cause::Lock => format!(
            "cannot {doing} `{display}`: it is locked by another connection ({e}). The database was not changed and may be healthy: wait for the other process (or stop it), then open it again"
        ),
        Cause::Io => format!(
            "cannot {doing} `{display}`: the operating system reported an I/O error ({e}). The database was left as it was: check the disk and the file system (free space, the kernel log), then open it again"
        ),
        Cause::Damage => format!(
            "`{display}` is not a readable SQLite database ({e}); it may be corrupt or another kind of file. It was left untouched: point duraflow at a new path, or restore a backup"
        ),
        Cause::Other => format!("cannot {doing} `{display}` ({e}); it was left untouched"),
    };
    match class {
        Cause::Damage => Error::Store(message),
        _ => Error::database_from(message, e),
    }
}

/// A failure while setting the file up (WAL mode, migrations): a permission, lock or I/O error is
/// said as such, with the file's name; other errors pass through.
pub(crate) fn cause_of_start(display: &str, e: Error) -> Error {
    let sqlite = match &e {
        Error::Database {
            source: Some(s), ..
        } => s.downcast_ref::<rusqlite::Error>(),
        _ => None,
    };
    match sqlite.map(|s| (classify(s), s)) {
        Some((Cause::Permission | Cause::Lock | Cause::Io, s)) => {
            let code = s.sqlite_error_code();
            let copy = match s {
                rusqlite::Error::SqliteFailure(f, m) => {
                    rusqlite::Error::SqliteFailure(*f, m.clone())
                }
                _ => rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(code.map(code_number).unwrap_or(1)),
                    Some(s.to_string()),
                ),
            };
            cause(display, "set up", copy)
        }
        // Any other failure while setting the file up says which file it is about.
        _ => match e {
            Error::Store(m) if !m.contains(display) => Error::Store(format!("`{display}`: {m}")),
            Error::Database { message, source } if !message.contains(display) => Error::Database {
                message: format!("`{display}`: {message}"),
                source,
            },
            other => other,
        },
    }
}

fn code_number(c: ErrorCode) -> i32 {
    match c {
        ErrorCode::ReadOnly => rusqlite::ffi::SQLITE_READONLY,
        ErrorCode::CannotOpen => rusqlite::ffi::SQLITE_CANTOPEN,
        ErrorCode::PermissionDenied => rusqlite::ffi::SQLITE_PERM,
        ErrorCode::DatabaseBusy => rusqlite::ffi::SQLITE_BUSY,
        ErrorCode::DatabaseLocked => rusqlite::ffi::SQLITE_LOCKED,
        ErrorCode::DiskFull => rusqlite::ffi::SQLITE_FULL,
        _ => rusqlite::ffi::SQLITE_IOERR,
    }
}

/// An operating system error on the file, by its kind.
fn io_cause(display: &str, e: std::io::Error) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::PermissionDenied => rusqlite::ffi::SQLITE_PERM,
        std::io::ErrorKind::NotFound => rusqlite::ffi::SQLITE_CANTOPEN,
        _ => rusqlite::ffi::SQLITE_IOERR,
    };
    cause(
        display,
        "read",
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(e.to_string())),
    )
}

/// A name read from the file (a table, an index, a column) as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Refuses a file that is not ours, is newer than this build, or is damaged, before anything is
/// written to it. A permission, lock or I/O error on the way is reported as what it is.
pub(super) fn check_existing(
    conn: &Connection,
    display: &str,
    path: &Path,
    existed: bool,
) -> Result<()> {
    if !existed {
        return Ok(());
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| cause(display, "read", e))?;
    if tables.is_empty() {
        return check_empty(conn, display);
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
    .map_err(|e| cause(display, "read duraflow_meta of", e))?;
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
    .map_err(|e| match classify(&e) {
        Cause::Permission | Cause::Lock | Cause::Io => cause(display, "read", e),
        _ => Error::Store(format!("`{display}`: no schema version: {e}")),
    })?
    .parse()
    .map_err(|_| Error::Store(format!("`{display}`: schema version is not a number")))?;
    if version < 1 {
        return Err(Error::Store(format!(
            "`{display}`: schema version {version} is not one duraflow ever wrote; the file was left untouched"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(Error::Store(format!(
            "`{display}` has schema version {version}, newer than this build of duraflow understands ({SCHEMA_VERSION}); upgrade duraflow. The file was left untouched"
        )));
    }
    check_structure(conn, display, path)?;
    if version < SCHEMA_VERSION {
        // A migration reads whole tables (an index is built over every row), so damage anywhere
        // would stop it halfway, after the switch to WAL mode had changed the file. Before an
        // upgrade, rare by nature, the whole file is checked first: O(file size), once.
        let verdict: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| match classify(&e) {
                Cause::Damage | Cause::Other => Error::Store(format!(
                    "`{display}` is damaged ({e}); it was left untouched. Restore a backup"
                )),
                _ => cause(display, "check", e),
            })?;
        if verdict != "ok" {
            return Err(Error::Store(format!(
                "`{display}` is damaged ({}); it was left untouched (schema version {version}, \
                 not migrated). Restore a backup",
                verdict.replace('\n', " ")
            )));
        }
    }
    Ok(())
}

/// Damage found before anything is written, at a cost that does not grow with the file (a
/// full `PRAGMA quick_check` reads every page: about 10 s for a 1.2 GB store read from disk): the header (SQLite's
/// magic, a valid page size, a file that holds every page the header counts when no WAL holds
/// the rest, so a file cut short is refused), the page and free-list counts, and both ends of every table and index
/// (the pages from each b-tree's root to its first and last leaf, rows included). Damage
/// elsewhere is reported when its data is read: the call fails, nothing is written.
/// A SQLite file without tables: duraflow will create its schema in it, so it must be sound
/// first. Creating tables in a file whose first page is damaged fails half-way, after switching
/// the file to WAL mode (a header change), and the file would no longer be as it was. With no
/// table in it, `PRAGMA quick_check` reads only the schema page and the free list.
fn check_empty(conn: &Connection, display: &str) -> Result<()> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| cause(display, "check", e))?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(Error::Store(format!(
            "`{display}` is a SQLite database without tables, and damaged ({}); it was left untouched. Point duraflow at a new path",
            verdict.replace('\n', " ")
        )))
    }
}

fn check_structure(conn: &Connection, display: &str, path: &Path) -> Result<()> {
    use std::io::Read;
    let damaged = |what: String| {
        Error::Store(format!(
            "`{display}` is damaged ({what}); it was left untouched. Restore a backup"
        ))
    };
    // A SQL error is damage only when SQLite says so; a permission, lock or I/O error is said as such.
    let sql_err = |what: String, e: rusqlite::Error| match classify(&e) {
        Cause::Damage | Cause::Other => damaged(format!("{what}: {e}")),
        _ => cause(display, "read", e),
    };
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).map_err(|e| io_cause(display, e))?;
    file.read_exact(&mut header)
        .map_err(|e| damaged(format!("its header cannot be read: {e}")))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(damaged("its header is not SQLite's".into()));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => n as u64,
    };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(damaged(format!(
            "its header names a page size of {page_size}"
        )));
    }
    let len = file.metadata().map_err(|e| io_cause(display, e))?.len();
    let counted = u32::from_be_bytes([header[28], header[29], header[30], header[31]]) as u64;
    // The count is valid when the change counter matches "version valid for". With frames in
    // the WAL the file may be shorter than that, legitimately: a checkpoint cut off by a crash
    // wrote page 1 before the last pages, and the WAL still holds them.
    let wal_frames = std::fs::metadata(format!("{}-wal", path.display()))
        .map(|m| m.len() > 32)
        .unwrap_or(false);
    if !wal_frames && header[24..28] == header[92..96] && counted.saturating_mul(page_size) > len {
        return Err(damaged(format!(
            "its header counts {counted} pages of {page_size} bytes, the file holds {len} bytes: it was cut short"
        )));
    }
    let probe = |sql: &str| -> Result<i64> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| sql_err(format!("`{sql}`"), e))
    };
    let pages = probe("PRAGMA page_count")?;
    let free = probe("PRAGMA freelist_count")?;
    if free > pages {
        return Err(damaged(format!("{free} free pages of {pages} in all")));
    }
    // Both ends of every b-tree of ours: tables by their key (every column read, overflow pages
    // included), indexes through their first column.
    let btrees: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT type, name, tbl_name FROM sqlite_master
              WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(|e| sql_err("its schema cannot be read".to_string(), e))?;
    for (kind, name, table) in &btrees {
        let (select, order) = if kind == "table" {
            let without_rowid: bool = conn
                .query_row(
                    "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .map_err(|e| sql_err(format!("table `{name}`"), e))?;
            let order = if without_rowid {
                let pk: Vec<String> = conn
                    .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
                    .and_then(|mut st| st.query_map([name], |r| r.get(0))?.collect())
                    .map_err(|e| sql_err(format!("table `{name}`"), e))?;
                pk.iter()
                    .map(|c| format!("{} DIR", ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                "rowid DIR".to_string()
            };
            (format!("SELECT * FROM {}", ident(table)), order)
        } else {
            let first: String = conn
                .query_row(
                    "SELECT name FROM pragma_index_info(?1) WHERE seqno = 0",
                    [name],
                    |r| r.get(0),
                )
                .map_err(|e| sql_err(format!("index `{name}`"), e))?;
            // A partial index serves only queries that carry its condition.
            let sql: Option<String> = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .map_err(|e| sql_err(format!("index `{name}`"), e))?;
            let condition = sql
                .as_deref()
                .and_then(|sql| {
                    sql.to_ascii_uppercase()
                        .rfind(" WHERE ")
                        .map(|at| sql[at..].to_string())
                })
                .unwrap_or_default();
            (
                format!(
                    "SELECT {} FROM {} INDEXED BY {}{condition}",
                    ident(&first),
                    ident(table),
                    ident(name)
                ),
                format!("{} DIR", ident(&first)),
            )
        };
        for dir in ["ASC", "DESC"] {
            let sql = format!("{select} ORDER BY {} LIMIT 1", order.replace("DIR", dir));
            let mut st = conn
                .prepare(&sql)
                .map_err(|e| sql_err(format!("`{sql}`"), e))?;
            let n = st.column_count();
            let mut rows = st.query([]).map_err(|e| sql_err(format!("`{sql}`"), e))?;
            while let Some(row) = rows.next().map_err(|e| sql_err(format!("`{sql}`"), e))? {
                for i in 0..n {
                    row.get_ref(i).map_err(|e| sql_err(format!("`{sql}`"), e))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, extended: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error {
                code: rusqlite::ffi::Error::new(code).code,
                extended_code: extended,
            },
            Some("from the test".into()),
        )
    }

    /// Each cause is said as itself. (The permission and lock cases are also met on real files in
    /// `tests/store_open_errors.rs`; a real I/O error cannot be caused on demand there, so the
    /// mapping of SQLite's I/O codes is checked here.)
    #[test]
    fn each_cause_is_said_as_itself() {
        use rusqlite::ffi::*;
        let cases = [
            (SQLITE_IOERR, SQLITE_IOERR_READ, "I/O error", Cause::Io),
            (SQLITE_IOERR, SQLITE_IOERR_FSYNC, "I/O error", Cause::Io),
            (SQLITE_FULL, SQLITE_FULL, "I/O error", Cause::Io),
            (
                SQLITE_READONLY,
                SQLITE_READONLY_DIRECTORY,
                "permission",
                Cause::Permission,
            ),
            (
                SQLITE_CANTOPEN,
                SQLITE_CANTOPEN,
                "permission",
                Cause::Permission,
            ),
            (SQLITE_PERM, SQLITE_PERM, "permission", Cause::Permission),
            (SQLITE_BUSY, SQLITE_BUSY, "locked", Cause::Lock),
            (SQLITE_LOCKED, SQLITE_LOCKED, "locked", Cause::Lock),
            (SQLITE_NOTADB, SQLITE_NOTADB, "corrupt", Cause::Damage),
            (SQLITE_CORRUPT, SQLITE_CORRUPT, "corrupt", Cause::Damage),
        ];
        for (code, ext, says, class) in cases {
            let e = failure(code, ext);
            assert_eq!(classify(&e), class, "{e}");
            let m = cause("x.db", "read", failure(code, ext)).to_string();
            assert!(m.contains(says), "{code}/{ext}: {m}");
            let blames_the_file = m.contains("corrupt") || m.contains("restore a backup");
            assert_eq!(blames_the_file, class == Cause::Damage, "{m}");
        }
    }

    #[test]
    fn a_setup_failure_keeps_its_cause_and_names_the_file() {
        let e = Error::database_from("x", failure(rusqlite::ffi::SQLITE_FULL, 13));
        let m = cause_of_start("/data/app.db", e).to_string();
        assert!(m.contains("/data/app.db") && m.contains("I/O error"), "{m}");
        let other = cause_of_start("/data/app.db", Error::Store("kept".into()));
        assert_eq!(other.to_string(), "store: `/data/app.db`: kept");
    }
}
