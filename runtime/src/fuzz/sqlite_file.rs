//! The `sqlite_file` target: arbitrary bytes written to a file that `Store::sqlite` then opens.
//!
//! A file opening refuses must be left byte for byte as it was, and the error must name the file.
//! A file opening accepts (a mutant that still is a well-formed duraflow database where opening
//! looks) is then read the way a user does (`list`, `describe`, `read_history` of every workflow):
//! damage found there is an error that says something, never a panic.

use crate::store::{ListFilter, Store};
use std::path::PathBuf;

/// A scratch folder of this process and thread, made once.
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: PathBuf = {
            let dir = std::env::temp_dir().join(format!(
                "duraflow-fuzz-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ).replace(['(', ')'], ""));
            let _ = std::fs::create_dir_all(&dir);
            dir
        };
    }
    DIR.with(|d| d.clone())
}

fn remove_all(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Opens `data` as a SQLite store file; see the module docs for what is checked.
pub fn sqlite_file(data: &[u8]) -> String {
    let path = scratch().join("fuzzed.db");
    remove_all(&path);
    std::fs::write(&path, data).expect("the fuzzer's scratch file can be written");
    let display = path.display().to_string();
    let outcome = match Store::sqlite(&path) {
        Err(e) => {
            let after = std::fs::read(&path).expect("the refused file can be read back");
            assert!(
                after == data,
                "a refused file was changed by opening it ({} bytes before, {} after): {e}",
                data.len(),
                after.len()
            );
            let m = e.to_string();
            assert!(
                m.contains(&display),
                "the error `{m}` does not name the file it refused"
            );
            let m = m.replace(&display, "<file>");
            let cut = m.find(" (").or_else(|| m.find(": ")).unwrap_or(m.len());
            format!("refused:{}", &m[..cut.min(120)])
        }
        Ok(store) => read_everything(&store),
    };
    remove_all(&path);
    outcome
}

/// Reads every workflow of an opened store as a user would; returns the outcome's label.
fn read_everything(store: &Store) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let backend = &store.backend;
        let said = |e: crate::Error| {
            let m = e.to_string();
            assert!(m.len() > "store: ".len(), "an empty error: {e:?}");
            let cut = m.find(':').unwrap_or(m.len());
            format!("read-error:{}", &m[..cut.min(60)])
        };
        let list = match backend.list(&ListFilter::all()).await {
            Ok(l) => l,
            Err(e) => return said(e),
        };
        let mut errors = 0;
        for w in &list {
            if let Err(e) = backend.describe(&w.workflow_id).await {
                let _ = said(e);
                errors += 1;
            }
            if let Err(e) = backend.read_history(&w.workflow_id, 1).await {
                let _ = said(e);
                errors += 1;
            }
        }
        format!("opened:{}:{}", list.len().min(10), errors.min(3))
    })
}
