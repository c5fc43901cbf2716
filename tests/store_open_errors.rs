//! Opening a SQLite store names the real cause of a failure: a healthy database the process may
//! not write (a read-only directory), may not read (an unreadable file) or that another
//! connection has locked is refused as such, never as "corrupt", and is left as it was.
//! (Tests run as root in CI, where permission bits do not bite: the read-only directory is then a
//! read-only bind mount, and the unreadable file is opened by a child process run as `nobody`.
//! An I/O error cannot be caused on demand here; its mapping is checked on SQLite's own codes in
//! `store::sqlite::open::tests`, and a full disk in `tests/sqlite_faults.rs`.)

#[path = "support/privilege.rs"]
mod privilege;

use duraflow::{Client, Error, Store};
use serde_json::json;
use std::path::Path;

/// A healthy store at `p` holding one workflow, `w-1`.
async fn healthy_store(p: &Path) {
    let store = Store::sqlite(p).unwrap();
    Client::new(&store)
        .start_by_name("some_workflow", "w-1", json!(1))
        .await
        .unwrap();
    drop(store);
    // The writer thread closes the connection after the handle is dropped: wait for the WAL to be
    // checkpointed and removed, so that the file is at rest.
    let wal = p.with_extension("db-wal");
    for _ in 0..500 {
        if !wal.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the store did not close");
}

fn digest(p: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(p).unwrap().hash(&mut h);
    h.finish()
}

fn open_error(p: &Path) -> Error {
    match Store::sqlite(p) {
        Err(e) => e,
        Ok(_) => panic!("opened `{}`, which it should refuse", p.display()),
    }
}

fn assert_not_blamed_on_the_file(m: &str) {
    assert!(
        !m.contains("corrupt") && !m.contains("restore a backup") && !m.contains("damaged"),
        "a healthy file is blamed: {m}"
    );
}

async fn assert_still_healthy(p: &Path) {
    let store = Store::sqlite(p).expect("the file still opens where it may be written");
    let d = Client::new(&store).describe("w-1").await.unwrap();
    assert_eq!(d.workflow_id, "w-1");
}

#[tokio::test]
async fn a_healthy_database_in_a_read_only_directory_is_a_permission_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("duraflow.db");
    healthy_store(&p).await;
    let before = digest(&p);
    {
        let Some(ro) = privilege::ReadOnlyDir::of(dir.path()) else {
            return;
        };
        let e = open_error(&ro.path.join("duraflow.db"));
        let m = e.to_string();
        assert!(matches!(e, Error::Database { .. }), "{e:?}");
        assert!(m.contains("permission denied or read-only"), "{m}");
        assert!(m.contains("directory"), "says what to check: {m}");
        assert_not_blamed_on_the_file(&m);
    }
    assert_eq!(digest(&p), before, "left as it was");
    assert_still_healthy(&p).await;
}

/// Run in a child process as `nobody` by the test below; does nothing when run on its own.
#[test]
fn child_opens_the_store_named_by_its_environment() {
    if let Ok(p) = std::env::var("DURAFLOW_TEST_OPEN_AS_CHILD") {
        let m = match Store::sqlite(&p) {
            Ok(_) => "OPENED".to_string(),
            Err(e) => format!("{e:?} / {e}"),
        };
        println!("CHILD-ERROR: {m}");
    }
}

#[tokio::test]
async fn an_unreadable_file_is_a_permission_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("duraflow.db");
    healthy_store(&p).await;
    let before = digest(&p);
    privilege::set_mode(&p, 0o000);
    let m = if privilege::is_root() {
        // The directory may be entered, the file may not be read by anyone but root.
        privilege::set_mode(dir.path(), 0o755);
        let Some(out) = privilege::run_test_as_nobody(
            "child_opens_the_store_named_by_its_environment",
            &[("DURAFLOW_TEST_OPEN_AS_CHILD", p.to_str().unwrap())],
        ) else {
            return;
        };
        out.lines()
            .find_map(|l| l.split_once("CHILD-ERROR: ").map(|(_, m)| m))
            .unwrap_or_else(|| panic!("no answer from the child: {out}"))
            .to_string()
    } else {
        open_error(&p).to_string()
    };
    assert!(m.starts_with("Database"), "{m}");
    assert!(m.contains("permission denied or read-only"), "{m}");
    assert_not_blamed_on_the_file(&m);
    privilege::set_mode(&p, 0o644);
    assert_eq!(digest(&p), before, "left as it was");
    assert_still_healthy(&p).await;
}

#[tokio::test]
async fn a_database_locked_by_another_connection_is_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("duraflow.db");
    healthy_store(&p).await;
    {
        // Another program holds the file's exclusive lock (rollback journal mode, so that readers
        // are locked out too).
        let other = rusqlite::Connection::open(&p).unwrap();
        other
            .execute_batch(
                "PRAGMA journal_mode=DELETE; PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;",
            )
            .unwrap();
        let e = open_error(&p);
        let m = e.to_string();
        assert!(matches!(e, Error::Database { .. }), "{e:?}");
        assert!(m.contains("locked by another connection"), "{m}");
        assert!(m.contains("wait for the other process"), "{m}");
        assert_not_blamed_on_the_file(&m);
        other.execute_batch("COMMIT").unwrap();
    }
    assert_still_healthy(&p).await;
}
