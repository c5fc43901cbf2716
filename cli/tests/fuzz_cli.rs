//! Fuzzing the command line: arbitrary arguments (and the JSON inputs among them) run through
//! `duraflow_cli::run_with` on a copy of a real store (`tests/fixtures/v1-histories.db`). Every
//! command line either runs or fails with one line that says what is wrong; none panics.
//!
//! The input is a JSON array of arguments (the corpus: `fuzz/corpus/cli_args/`), mutated by the
//! runtime's fuzz driver (see `duraflow_runtime::fuzz`; `DURAFLOW_FUZZ_ITERATIONS` for a long
//! campaign). For safety the fuzzer never picks the store: arguments that name one (`--db`,
//! `--postgres...`) are dropped and `--db <the copy>` is given first; `ui` (a server that runs
//! until stopped) becomes `list`, and `--wait` (which waits for a worker there is none of) is
//! dropped.

use duraflow_runtime::fuzz::{campaign_of, Target};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The store the fuzzed command lines run on: a copy of the version-1 fixture, for this process.
fn store_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let path = dir.join("fuzzed-cli.db");
        let fixture =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/v1-histories.db");
        std::fs::copy(&fixture, &path).expect("the fixture store can be copied");
        path
    })
}

/// The arguments an input stands for: a JSON array (strings as they are, anything else as its
/// JSON text), else one argument per line.
fn arguments(data: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        _ => String::from_utf8_lossy(data)
            .split('\n')
            .map(str::to_string)
            .collect(),
    }
}

fn cli_args(data: &[u8]) -> String {
    let mut argv = vec![
        "duraflow".to_string(),
        "--db".to_string(),
        store_file().display().to_string(),
    ];
    for arg in arguments(data) {
        if arg.starts_with("--db") || arg.contains("postgres") || arg == "--wait" {
            continue;
        }
        argv.push(if arg == "ui" { "list".into() } else { arg });
    }
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
    }
    let result = RT.with(|rt| {
        rt.block_on(duraflow_cli::run_with(
            argv.clone(),
            duraflow::Registry::new(),
        ))
    });
    match result {
        Ok(()) => "ok".into(),
        Err(e) => {
            let m = e.message().to_string();
            assert!(
                !m.trim().is_empty(),
                "an empty error for {argv:?} (exit code {})",
                e.exit_code()
            );
            assert!(
                !m.contains('\n'),
                "the error for {argv:?} is not one line: {m}"
            );
            // What kind of error, not its values: the words before the first quote or colon.
            let kind: String = m
                .split(['`', ':', '\'', '"'])
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
                .take(50)
                .collect();
            format!("err{}:{kind}", e.exit_code())
        }
    }
}

#[test]
fn fuzz_cli_args() {
    let target = Target {
        name: "cli_args",
        run: cli_args,
        ci_iterations: 1_500,
    };
    let report = campaign_of(&target);
    assert!(
        report.executions > report.seeds as u64,
        "the CLI fuzz target ran no mutant"
    );
}
