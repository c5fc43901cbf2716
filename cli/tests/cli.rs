//! The `duraflow` binary, run as a user runs it: its commands on a SQLite file and on Postgres,
//! its errors (one line with the fix, a non-zero exit code, never a panic) and its help (compared
//! with the committed snapshots in `tests/snapshots/`; `UPDATE_SNAPSHOTS=1` rewrites them).

mod support;

use duraflow::{Client, Registry, Store};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use support::seed::{
    cancellable_activity, cancellation_workflow, echo_workflow, run_activity, seed, ComposeArgs,
};

/// The seed workflow, changed in a way that breaks its recorded histories: it no longer starts
/// `cancellable_activity` first.
mod changed {
    use super::*;
    use duraflow::prelude::*;

    #[workflow(name = "cancellation_workflow")]
    pub async fn cancellation_workflow_v2(
        ctx: WorkflowContext,
        input: ComposeArgs,
    ) -> Result<i64, WorkflowError> {
        Ok(ctx.activity(run_activity, input).await?)
    }
}

fn duraflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duraflow"))
        .args(args)
        .env_remove("DURAFLOW_POSTGRES_URL")
        .env_remove("DURAFLOW_POSTGRES_SCHEMA")
        .output()
        .expect("run duraflow")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let out = duraflow(args);
    assert!(
        out.status.success(),
        "`duraflow {}` failed: {}",
        args.join(" "),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs a command that must succeed and print JSON.
fn ok_json(args: &[&str]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Runs a command that must fail with `code` and one line on stderr that contains each of `says`.
fn fails(args: &[&str], code: i32, says: &[&str]) -> String {
    let out = duraflow(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "`duraflow {}`: exit code; stderr: {err}",
        args.join(" ")
    );
    assert!(!err.contains("panicked"), "a panic: {err}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "one line: {err}");
    assert!(line.starts_with("error: "), "{err}");
    for s in says {
        assert!(line.contains(s), "`{s}` in: {line}");
    }
    assert!(
        stdout(&out).is_empty(),
        "nothing on stdout: {}",
        stdout(&out)
    );
    line.to_string()
}

/// Continues as new twice, then returns its input.
mod looping {
    use duraflow::prelude::*;

    #[workflow]
    pub async fn looper(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        if n < 2 {
            return ctx.continue_as_new(n + 1);
        }
        Ok(n)
    }
}

/// `describe --runs`, `describe --run-id`, `history --run-id`, `terminate` and `reset` on a
/// SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_terminate_and_reset_on_a_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runs.db");
    let store = Store::sqlite(&path).expect("store");
    let worker = duraflow::Worker::new(&store)
        .register(looping::looper)
        .start();
    let client = Client::new(&store);
    let h = client.start(looping::looper, "loop-1", 0).await.unwrap();
    assert_eq!(h.result().await.unwrap(), 2);
    let db = db_arg(&path);
    let db = db.as_str();

    let runs = ok_json(&["--db", db, "describe", "loop-1", "--runs", "--json"]);
    let runs = runs.as_array().unwrap().clone();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["status"], "continued_as_new");
    assert_eq!(runs[2]["status"], "completed");
    let first = runs[0]["run_id"].as_str().unwrap();
    let table = ok(&["--db", db, "describe", "loop-1", "--runs"]);
    assert!(
        table.contains("continued_as_new") && table.contains(first),
        "{table}"
    );
    let one = ok(&["--db", db, "describe", "loop-1", "--run-id", first]);
    assert!(
        one.contains("next run") && one.contains(runs[1]["run_id"].as_str().unwrap()),
        "{one}"
    );
    let events = ok_json(&["--db", db, "history", "loop-1", "--run-id", first, "--json"]);
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["event"],
        "workflow_task_completed"
    );
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "workflow_continued_as_new"));
    fails(
        &["--db", db, "history", "loop-1", "--run-id", "nope"],
        1,
        &["no run `nope`"],
    );

    // Reset the completed last run to its task 1: a new run, which the worker completes again.
    fails(
        &[
            "--db",
            db,
            "reset",
            "loop-1",
            "--to-task",
            "5",
            "--reason",
            "x",
        ],
        1,
        &["1..=1"],
    );
    let out = ok(&[
        "--db",
        db,
        "reset",
        "loop-1",
        "--to-task",
        "1",
        "--reason",
        "again",
    ]);
    assert!(out.contains("new run"), "{out}");
    assert_eq!(h.result().await.unwrap(), 2);
    assert_eq!(client.runs("loop-1").await.unwrap().len(), 4);

    // Terminate a workflow no worker serves; a second time says it had ended.
    client
        .start_by_name("not_served", "stuck-1", json!(null))
        .await
        .unwrap();
    let out = ok(&["--db", db, "terminate", "stuck-1", "--reason", "no worker"]);
    assert!(out.contains("Terminated `stuck-1`"), "{out}");
    fails(
        &["--db", db, "terminate", "stuck-1", "--reason", "again"],
        1,
        &["already ended (failed)"],
    );
    worker.shutdown().await;
}

fn db_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_string()
}

#[test]
fn help_matches_the_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    for sub in [
        "",
        "list",
        "describe",
        "history",
        "start",
        "signal",
        "cancel",
        "terminate",
        "reset",
        "ui",
        "replay",
    ] {
        let args: Vec<&str> = [sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = ok(&args);
        let file = dir.join(format!(
            "help{}{sub}.txt",
            if sub.is_empty() { "" } else { "-" }
        ));
        if update {
            std::fs::create_dir_all(&dir).expect("snapshot dir");
            std::fs::write(&file, &help).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "no snapshot {}; run with UPDATE_SNAPSHOTS=1 and review it",
                file.display()
            )
        });
        assert_eq!(
            help,
            expected,
            "`duraflow {}` changed; if intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff",
            args.join(" ")
        );
    }
    assert!(ok(&["--version"]).starts_with("duraflow "));
}

#[test]
fn bad_command_lines_are_one_line_errors() {
    fails(&["list"], 2, &["--db app.db", "--postgres URL"]);
    fails(&["frobnicate"], 2, &["frobnicate", "--help"]);
    fails(&["--db", "x.db", "describe"], 2, &["<ID>", "--help"]);
    fails(
        &["--db", "x.db", "list", "--status", "sleeping"],
        2,
        &["sleeping", "running"],
    );
    fails(&["--db", "x.db", "list", "--limit", "many"], 2, &["many"]);
    fails(
        &["--db", "x.db", "ui", "--bind", "localhost"],
        2,
        &["localhost"],
    );
    fails(
        &["--postgres", "not a url", "list"],
        2,
        &["not a Postgres URL", "postgres://"],
    );
}

/// A duraflow store with a few workflows in `path`, all of it in the main file (no WAL left).
async fn store_file(path: &Path) {
    let store = Store::sqlite(path).expect("store");
    let client = Client::new(&store);
    for i in 0..20 {
        client
            .start_by_name("not_served", format!("wf-{i}"), json!("x".repeat(500)))
            .await
            .unwrap();
    }
    drop(client);
    drop(store);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    assert!(std::fs::metadata(path).unwrap().len() > 8192);
}

#[tokio::test]
async fn stores_that_cannot_be_opened_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.db");
    fails(
        &["--db", &db_arg(&missing), "list"],
        1,
        &["no file at", "missing.db"],
    );
    assert!(!missing.exists(), "a missing store is not created");
    fails(
        &["--db", &db_arg(dir.path()), "list"],
        1,
        &["is a directory"],
    );

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    fails(
        &["--db", &db_arg(&empty), "list"],
        1,
        &["is empty", "not a duraflow store"],
    );
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "left empty");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n".repeat(100)).unwrap();
    fails(
        &["--db", &db_arg(&text), "list"],
        1,
        &["cannot open", "notes.txt"],
    );

    let foreign = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER); INSERT INTO invoices VALUES (1, 2);")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&foreign).unwrap();
    fails(
        &["--db", &db_arg(&foreign), "list"],
        1,
        &["cannot open", "other.db"],
    );
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        before,
        "a foreign file is left as it was"
    );

    // A duraflow store cut short.
    let cut = dir.path().join("cut.db");
    store_file(&cut).await;
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["--db", &db_arg(&cut), "list"],
        1,
        &["cannot open", "cut.db"],
    );

    // A damaged header.
    let damaged = dir.path().join("damaged.db");
    store_file(&damaged).await;
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&damaged, &bytes).unwrap();
    fails(
        &["--db", &db_arg(&damaged), "list"],
        1,
        &["cannot open", "damaged.db"],
    );

    fails(
        &["--postgres", "postgres://nobody@127.0.0.1:1/none", "list"],
        1,
        &["cannot open the Postgres store", "127.0.0.1:1"],
    );
    // The password never shows.
    let line = fails(
        &[
            "--postgres",
            "postgres://ann:hunter2@127.0.0.1:1/none",
            "list",
        ],
        1,
        &["ann:***@"],
    );
    assert!(!line.contains("hunter2"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    let store = Store::sqlite(&path).expect("store");
    seed(&store).await;
    let client = Client::new(&store);
    client
        .start_by_name("not_served", "waiting-1", json!({"n": 1}))
        .await
        .unwrap();
    let db = db_arg(&path);
    let db = db.as_str();

    // list: a table, JSON, filters, paging.
    let table = ok(&["--db", db, "list"]);
    for s in [
        "WORKFLOW ID",
        "cancellation-seed",
        "echo-1",
        "waiting-1",
        "cancellation_workflow",
    ] {
        assert!(table.contains(s), "`{s}` in:\n{table}");
    }
    assert!(
        table.contains("1-3 of 3 matching (running 1, completed 2, failed 0, cancelled 0)"),
        "{table}"
    );
    let all = ok_json(&["--db", db, "list", "--json"]);
    assert_eq!(all["workflows"].as_array().unwrap().len(), 3);
    assert_eq!(
        all["counts"],
        json!({"running": 1, "completed": 2, "failed": 0, "cancelled": 0})
    );
    let ids = |v: &Value| -> Vec<String> {
        v["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["workflow_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&ok_json(&[
            "--db", db, "list", "--json", "--status", "running"
        ])),
        ["waiting-1"]
    );
    assert_eq!(
        ids(&ok_json(&[
            "--db", db, "list", "--json", "--prefix", "echo"
        ])),
        ["echo-1"]
    );
    assert_eq!(
        ids(&ok_json(&[
            "--db",
            db,
            "list",
            "--json",
            "--type",
            "echo_workflow"
        ])),
        ["echo-1"]
    );
    assert_eq!(
        ids(&ok_json(&["--db", db, "list", "--json", "--after", "1h"])).len(),
        3
    );
    assert!(ids(&ok_json(&["--db", db, "list", "--json", "--before", "1h"])).is_empty());
    assert!(ids(&ok_json(&[
        "--db",
        db,
        "list",
        "--json",
        "--after",
        "2000-01-01T00:00:00Z",
        "--before",
        "2001-01-01T00:00:00Z"
    ]))
    .is_empty());
    let page1 = ok_json(&["--db", db, "list", "--json", "--limit", "2"]);
    assert_eq!(page1["next_offset"], json!(2));
    let page2 = ok_json(&[
        "--db", db, "list", "--json", "--limit", "2", "--offset", "2",
    ]);
    assert_eq!(page2["next_offset"], Value::Null);
    let mut paged = ids(&page1);
    paged.extend(ids(&page2));
    assert_eq!(paged, ids(&all), "two pages are the whole list, in order");
    assert!(ok(&["--db", db, "list", "--limit", "2"]).contains("next page: --offset 2"));
    assert!(ok(&["--db", db, "list", "--status", "failed"]).starts_with("No workflows match"));
    fails(
        &["--db", db, "list", "--after", "yesterday"],
        2,
        &["--after yesterday", "2h"],
    );

    // describe and history.
    let described = ok(&["--db", db, "describe", "cancellation-seed"]);
    assert!(
        described.contains("completed") && described.contains("result"),
        "{described}"
    );
    let d = ok_json(&["--db", db, "describe", "cancellation-seed", "--json"]);
    assert_eq!(d["status"], "completed");
    assert_eq!(d["result"], 3);
    let history = ok(&["--db", db, "history", "cancellation-seed"]);
    assert!(
        history.contains("activity_cancelled") && history.contains("details=\"some details\""),
        "{history}"
    );
    let exported = ok_json(&["--db", db, "history", "cancellation-seed", "--json"]);
    assert_eq!(
        exported,
        client.history_json("cancellation-seed").await.unwrap(),
        "the JSON the Replayer reads"
    );
    let long = "x".repeat(300);
    client
        .start(echo_workflow, "echo-long", long.clone())
        .await
        .unwrap();
    let short = ok(&["--db", db, "history", "echo-long"]);
    assert!(
        !short.contains(&long) && short.contains('…'),
        "payloads are shortened:\n{short}"
    );
    assert!(ok(&["--db", db, "history", "echo-long", "--full"]).contains(&long));
    fails(
        &["--db", db, "describe", "nope"],
        1,
        &["no workflow with id `nope`", "duraflow list"],
    );
    fails(
        &["--db", db, "history", "nope"],
        1,
        &["no workflow with id `nope`"],
    );

    // start by name, then a worker in this process runs it; --wait prints how it ended.
    fails(
        &["--db", db, "start", "echo_workflow", "cli-1", "{not json"],
        2,
        &["not JSON", "quote it"],
    );
    let worker = duraflow::Worker::new(&store)
        .register(echo_workflow)
        .start();
    let waited = ok_json(&[
        "--db",
        db,
        "--json",
        "start",
        "echo_workflow",
        "cli-1",
        "\"from the cli\"",
        "--wait",
    ]);
    assert_eq!(waited["status"], "completed");
    assert_eq!(waited["result"], "from the cli");
    assert!(ok(&["--db", db, "start", "echo_workflow", "cli-2"]).contains("Started `cli-2`"));
    fails(
        &["--db", db, "start", "echo_workflow", "cli-1", "\"again\""],
        1,
        &["`cli-1` already exists"],
    );
    worker.shutdown().await;

    // signal, by name with JSON: recorded once per request id; ended or unknown workflows refused.
    let sent = ok_json(&[
        "--db",
        db,
        "--json",
        "signal",
        "waiting-1",
        "Approve",
        "{\"by\": \"cli\"}",
        "--request-id",
        "r-1",
    ]);
    assert_eq!(sent["recorded"], true);
    assert!(ok(&[
        "--db",
        db,
        "signal",
        "waiting-1",
        "Approve",
        "{\"by\": \"cli\"}",
        "--request-id",
        "r-1"
    ])
    .contains("already recorded"));
    let signals: Vec<_> = client
        .history("waiting-1")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            serde_json::to_value(&e.kind)
                .unwrap()
                .to_string()
                .contains("\"cli\"")
        })
        .collect();
    assert_eq!(signals.len(), 1, "the signal is in the history once");
    fails(
        &["--db", db, "signal", "waiting-1", "Approve", "{not json"],
        2,
        &["not JSON"],
    );
    fails(
        &["--db", db, "signal", "echo-1", "Approve"],
        1,
        &["has ended"],
    );
    fails(&["--db", db, "signal", "nope", "Approve"], 1, &["nope"]);

    // cancel.
    let c = ok_json(&["--db", db, "--json", "cancel", "waiting-1"]);
    assert_eq!(c["cancel_requested"], true);
    assert!(client.describe("waiting-1").await.unwrap().cancel_requested);
    fails(
        &["--db", db, "cancel", "echo-1"],
        1,
        &["already ended (completed)", "nothing to cancel"],
    );
    fails(
        &["--db", db, "cancel", "nope"],
        1,
        &["no workflow with id `nope`"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_with_its_own_registry_checks_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    drop(Store::sqlite(&path).expect("store"));
    let db = db_arg(&path);
    let registry = Registry::new().register(echo_workflow);
    let e = duraflow_cli::run_with(
        ["duraflow", "--db", &db, "start", "ecoh_workflow", "x"],
        registry.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.message().contains("no workflow named `ecoh_workflow`")
            && e.message().contains("echo_workflow"),
        "{e}"
    );
    duraflow_cli::run_with(
        [
            "duraflow",
            "--db",
            &db,
            "start",
            "echo_workflow",
            "x",
            "\"hi\"",
        ],
        registry,
    )
    .await
    .expect("a registered name starts");
    let store = Store::sqlite(&path).expect("store");
    let d = Client::new(&store).describe("x").await.unwrap();
    assert_eq!(d.workflow_type, "echo_workflow");
}

fn pg_url() -> Option<String> {
    match std::env::var("DURAFLOW_TEST_PG_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => panic!("CI needs DURAFLOW_TEST_PG_URL"),
        Err(_) => {
            eprintln!("SKIPPED: set DURAFLOW_TEST_PG_URL to run the CLI on Postgres");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_postgres() {
    let Some(url) = pg_url() else { return };
    let schema = format!(
        "cli_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let store = Store::postgres_in_schema(&url, &schema)
        .await
        .expect("postgres store");
    seed(&store).await;
    let listed = ok_json(&[
        "--postgres",
        &url,
        "--postgres-schema",
        &schema,
        "--json",
        "list",
    ]);
    assert_eq!(listed["counts"]["completed"], 2);
    // The URL and schema from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_duraflow"))
        .args(["describe", "cancellation-seed", "--json"])
        .env("DURAFLOW_POSTGRES_URL", &url)
        .env("DURAFLOW_POSTGRES_SCHEMA", &schema)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["status"], "completed");
    let exported = ok_json(&[
        "--postgres",
        &url,
        "--postgres-schema",
        &schema,
        "history",
        "cancellation-seed",
        "--json",
    ]);
    assert_eq!(
        exported,
        Client::new(&store)
            .history_json("cancellation-seed")
            .await
            .unwrap()
    );
    drop(store);
    drop_schema(&url, &schema).await;
}

async fn drop_schema(url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop the test schema");
    drop(client);
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exported_histories() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    let store = Store::sqlite(&path).expect("store");
    seed(&store).await;
    let db = db_arg(&path);
    let histories = dir.path().join("histories");
    std::fs::create_dir(&histories).unwrap();
    let exported = ok(&["--db", &db, "history", "cancellation-seed", "--json"]);
    let file = histories.join("cancellation-seed.json");
    std::fs::write(&file, exported).unwrap();
    let file = db_arg(&file);
    let folder = db_arg(&histories);

    // The generic binary has no workflow code: it says how to build one that has.
    fails(
        &["replay", &file],
        1,
        &[
            "no workflow code",
            "duraflow_cli::run(duraflow::Registry::all())",
        ],
    );
    fails(&["replay"], 2, &["<FILES>"]);

    // The code that recorded it replays it, from the file or its folder.
    let same = Registry::new()
        .register(cancellation_workflow)
        .register(cancellable_activity)
        .register(run_activity);
    duraflow_cli::run_with(["duraflow", "replay", &file, &folder], same.clone())
        .await
        .expect("the recording code replays its history");
    duraflow_cli::run_with(["duraflow", "--json", "replay", &file], same.clone())
        .await
        .expect("replay --json");

    // A change that breaks it is reported, with a non-zero exit.
    let changed = Registry::new()
        .register(changed::cancellation_workflow_v2)
        .register(run_activity);
    let e = duraflow_cli::run_with(["duraflow", "replay", &folder], changed)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.message().contains("1 of 1 histories do not replay"),
        "{e}"
    );

    // A file that is not a history.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{ not json").unwrap();
    let e = duraflow_cli::run_with(["duraflow", "replay", &db_arg(&junk)], same)
        .await
        .unwrap_err();
    assert!(e.message().contains("do not replay"), "{e}");
}

/// `duraflow ui` says where it serves; anywhere but loopback with a warning first.
#[tokio::test]
async fn ui_warns_when_bound_beyond_loopback() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    drop(Store::sqlite(&path).expect("store"));
    let db = db_arg(&path);
    for (bind, warned) in [("127.0.0.1:0", false), ("0.0.0.0:0", true)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duraflow"))
            .args(["--db", &db, "ui", "--bind", bind])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start duraflow ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("its first line");
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        assert!(line.starts_with("duraflow ui: http://"), "{line}");
        assert!(line.contains("read-only"), "{line}");
        assert_eq!(
            err.starts_with("warning: serving on 0.0.0.0:"),
            warned,
            "{bind}: {err}"
        );
        if warned {
            assert!(err.contains("anyone who can reach it"), "{err}");
        }
    }
}
